"""Receptive fields: which input pixels a unit of a layer sees, for any Keras CNN.

The geometry of a unit is read from the model's functional graph, layer by layer, per spatial
axis. With kernel ``k`` (dilated: ``d (k - 1) + 1``), stride ``s`` and left padding ``p`` of
layer ``L``, and starting from ``r = 1, j = 1, o = 0`` at the input:

* jump (stride in input pixels) ``j_L = j_{L-1} s_L``;
* size ``r_L = r_{L-1} + (k_L - 1) j_{L-1}``;
* centre of unit 0 ``o_L = o_{L-1} + ((k_L - 1) / 2 - p_L) j_{L-1}``,

so that unit ``i`` sees the ``r_L`` pixels centred on ``o_L + i j_L``. TensorFlow's ``"same"``
padding depends on the size of the map (``out = ceil(in / s)``, ``pad = max((out - 1) s + k - in,
0)``, ``pad // 2`` of it on the left), so the spatial size is propagated along with the field.
Branches that meet in a merge (concatenation, addition, ...) must have the same jump; the merged
unit sees the union of what its inputs see.

Conventions:

* Offsets are centres and may be half-integers (an even field has no centre pixel). Internally the
  first pixel of unit 0 is kept as an integer, so no rounding ever happens.
* Layers that act on each position alone (activations, softmax, batch / layer / group
  normalisation, :class:`~tfvis.models.custom_layers.LocalResponseNorm`, dropout, rescaling,
  dense layers on a map, ...) leave the field as it is; so does an unknown layer (a ``Lambda``,
  a custom layer, a ``keras.ops`` call) that keeps the spatial size, while an unknown layer that
  changes it is an error.
* A tensor without a spatial map (after ``Flatten``, global pooling, a ``Dense`` on a vector)
  depends on the whole input: its field is the whole input, with ``stride`` ``(0, 0)``, so that
  every unit's :meth:`ReceptiveField.box` is the whole image.
* Global context is not counted: statistics over the positions (normalisation, a softmax over
  the positions) and whole-input tensors broadcast into a map (a squeeze-and-excitation gate
  multiplied into it) leave the map's field as its convolutions and pools make it, as is usual
  for receptive fields. Strictly, such units depend on every pixel a little.
* Only ``channels_last`` maps are supported. A model used as a layer is walked through; a layer
  called more than once counts by its first call in the graph.

Examples
--------
>>> model = tfvis.load_model("alexnet", weights=None)  # doctest: +SKIP
>>> receptive_field(model, "pool1")  # doctest: +SKIP
ReceptiveField(size=(19, 19), stride=(8, 8), offset=(9.0, 9.0), input_size=(227, 227), output_size=(27, 27))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from .graph import cached, prepared
from .models.custom_layers import ImagePreprocess, LocalResponseNorm
from .targets import find_layer as get_layer

__all__ = ["ReceptiveField", "ReceptiveFieldError", "receptive_field", "receptive_fields"]

DEFAULT_INPUT_SIZE = 224


# ----------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveField:
    """Size, stride and offset of the units of a layer, in input pixels.

    One entry per spatial axis: ``(y, x)`` for images (``(t,)`` for ``Conv1D`` models).

    Parameters
    ----------
    size : tuple of int
        Side ``r`` of the field of one unit.
    stride : tuple of int
        Jump ``j`` between the fields of neighbouring units. ``0`` for a layer without a spatial
        map (``Flatten``, ``Dense`` after it, global pooling): every unit then sees the whole
        input and ``size`` is the input size.
    offset : tuple of float
        Centre ``o`` of the field of unit 0, which may be a half-integer (between two pixels) and
        may lie outside the image (negative) when the layers pad.
    input_size : tuple of int, optional
        Spatial size of the input the field was computed for (``"same"`` padding depends on it).
    output_size : tuple of int, optional
        Spatial size of the layer's map at that input size; None without a spatial map.

    Notes
    -----
    Unit ``i`` along an axis is centred on ``o + i j`` and covers the pixels
    ``o + i j - (r - 1) / 2`` to ``o + i j + (r - 1) / 2`` inclusive: exactly ``r`` pixels, as
    ``o - (r - 1) / 2`` is always an integer.
    """

    size: tuple
    stride: tuple
    offset: tuple
    input_size: tuple | None = None
    output_size: tuple | None = None

    @property
    def ndim(self):
        """Number of spatial axes."""
        return len(self.size)

    @property
    def is_global(self):
        """True for a layer without a spatial map: every unit sees the whole input."""
        return all(j == 0 for j in self.stride)

    @property
    def start(self):
        """First pixel (per axis) of the field of unit 0; negative when it reaches into the padding."""
        return tuple(int(round(o - (r - 1) / 2)) for o, r in zip(self.offset, self.size))

    def center(self, *index):
        """Centre, in input pixels, of the field of the unit at ``index`` (one int per axis)."""
        index = self._index(index)
        return tuple(o + i * j for o, i, j in zip(self.offset, index, self.stride))

    def _index(self, index):
        if len(index) != self.ndim:
            raise ValueError(f"expected {self.ndim} unit coordinate(s) for a {self.ndim}-d field, got {index}")
        out = []
        for i in index:
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"unit coordinates must be integers, got {i!r}")
            out.append(int(i))
        return tuple(out)

    def _spans(self, index):
        """``[(first, stop)]`` per axis for the unit at ``index``, stop exclusive, unclipped."""
        index = self._index(index)
        return [(s + i * j, s + i * j + r) for s, i, j, r in zip(self.start, index, self.stride, self.size)]

    def box(self, y, x=None, image_shape=None):
        """Input box seen by unit ``(y, x)``.

        Parameters
        ----------
        y, x : int
            The unit's position in the layer's map. For a 1-d field give ``y`` only.
        image_shape : tuple of int, optional
            ``(H, W)`` (extra trailing entries such as channels are ignored): clip the box to the
            image. The clipped box may then hold fewer than ``size`` pixels, or none.

        Returns
        -------
        tuple of int
            ``(top, left, bottom, right)`` with ``bottom`` and ``right`` exclusive, so the unclipped
            box is exactly ``size`` pixels high and wide. For a 1-d field, ``(start, stop)``.

        Examples
        --------
        >>> rf = ReceptiveField(size=(4, 4), stride=(2, 2), offset=(0.5, 0.5))
        >>> rf.box(0, 0)
        (-1, -1, 3, 3)
        >>> rf.box(0, 0, image_shape=(8, 8))
        (0, 0, 3, 3)
        """
        index = (y,) if x is None else (y, x)
        spans = self._spans(index)
        if image_shape is not None:
            if len(image_shape) < self.ndim:
                raise ValueError(f"image_shape {tuple(image_shape)} has fewer than {self.ndim} spatial sides")
            spans = [_clip(first, stop, int(side)) for (first, stop), side in zip(spans, image_shape)]
        return tuple(first for first, _ in spans) + tuple(stop for _, stop in spans)

    def crop(self, image, y, x=None, fill=0):
        """The patch of ``image`` that unit ``(y, x)`` sees, always exactly ``size`` pixels.

        Parameters
        ----------
        image : array_like
            ``(H, W)`` or ``(H, W, C)`` (for a 1-d field ``(T,)`` or ``(T, C)``).
        y, x : int
            The unit's position in the layer's map. For a 1-d field give ``y`` only.
        fill : scalar
            Value of the pixels of the field that lie outside the image (in the padding); it must
            be representable in the image's dtype.

        Returns
        -------
        ndarray
            ``(r_y, r_x)`` or ``(r_y, r_x, C)``, of the image's dtype, with the unit's centre at
            the patch centre.

        Examples
        --------
        >>> rf = ReceptiveField(size=(3, 3), stride=(1, 1), offset=(0.0, 0.0))
        >>> rf.crop(np.ones((4, 4)), 0, 0)
        array([[0., 0., 0.],
               [0., 1., 1.],
               [0., 1., 1.]])
        """
        image = np.asarray(image)
        if image.ndim < self.ndim:
            raise ValueError(f"image of shape {image.shape} has fewer than {self.ndim} spatial axes")
        spans = self._spans((y,) if x is None else (y, x))
        patch = np.full(tuple(self.size) + image.shape[self.ndim :], fill, dtype=image.dtype)
        src, dst = [], []
        for (first, stop), side in zip(spans, image.shape):
            lo, hi = _clip(first, stop, side)
            src.append(slice(lo, hi))
            dst.append(slice(lo - first, hi - first))
        patch[tuple(dst)] = image[tuple(src)]
        return patch


def _clip(first, stop, side):
    lo = min(max(first, 0), side)
    hi = min(max(stop, 0), side)
    return lo, max(hi, lo)


# ----------------------------------------------------------------------------------------------
# Geometry of one tensor during the walk
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a tensor: map size ``n``; unit 0 sees pixels ``start .. start + r - 1``; jump ``j``."""

    n: int
    start: int
    r: int
    j: int


class _Global:
    """Marker of a tensor without a spatial map: it depends on the whole input."""

    def __repr__(self):
        return "<whole input>"


GLOBAL = _Global()


class ReceptiveFieldError(ValueError):
    """A layer whose geometry :func:`receptive_field` cannot work out."""


class _NotConnected(ReceptiveFieldError):
    """A tensor that does not come from the inputs of the graph being walked."""


# Layers that act on each position alone.
_POINTWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Softmax,  # even over the positions: like normalisation statistics, not counted
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Rescaling,
    keras.layers.Normalization,
    keras.layers.Identity,
    keras.layers.Masking,
    keras.layers.Dense,  # on a map it acts on the channel axis alone; on a vector the input is global
    ImagePreprocess,
    LocalResponseNorm,
)
_CONVS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
_POOLS = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
_PADS = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)
_CROPS = (keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D)
_GLOBALS = (
    keras.layers.Flatten,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
)
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)
# Layers that move or resample pixels in ways these recurrences do not describe.
_UNSUPPORTED = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
    keras.layers.Resizing,
)


def _describe(op):
    return f"layer {op.name!r} ({type(op).__name__})"


def _ntuple(value, count):
    if isinstance(value, int):
        return (value,) * count
    return tuple(int(v) for v in value)


def _pairs(value, count):
    """Keras' padding / cropping argument as ``count`` (before, after) pairs."""
    if isinstance(value, int):
        return ((value, value),) * count
    value = tuple(value)
    if count == 1 and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        return ((int(value[0]), int(value[1])),)
    return tuple((int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1])) for v in value)


def _check_channels_last(op):
    if getattr(op, "data_format", "channels_last") == "channels_first":
        raise NotImplementedError(f"{_describe(op)} is channels_first; receptive_field supports channels_last maps only")


def _window(axis, kernel, stride, dilation, padding, op):
    """Geometry after a sliding window (convolution or pooling) along one axis."""
    k_eff = dilation * (kernel - 1) + 1
    n = axis.n
    if padding == "valid":
        left, out = 0, (n - k_eff) // stride + 1
    elif padding == "same":
        out = -(-n // stride)
        left = max((out - 1) * stride + k_eff - n, 0) // 2
    elif padding == "causal":
        left = k_eff - 1
        out = (n - 1) // stride + 1
    else:
        raise ReceptiveFieldError(f"{_describe(op)} has padding {padding!r}, expected 'valid', 'same' or 'causal'")
    if out < 1:
        raise ReceptiveFieldError(
            f"{_describe(op)}: a map of {n} pixels is smaller than its {k_eff}-pixel window; use a larger input_size"
        )
    return _Axis(out, axis.start - left * axis.j, axis.r + (k_eff - 1) * axis.j, axis.j * stride)


def _spatial_axes_hit(axis, rank, n_spatial):
    """Whether a layer's ``axis`` argument (int or list) names a spatial axis of a rank-``rank`` tensor."""
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    return any(1 <= (a % rank) <= n_spatial for a in axes)


def _union(fields, op):
    """The field of a unit that combines, position by position, units of ``fields``."""
    if any(f is GLOBAL for f in fields):
        return GLOBAL
    if not fields:
        return GLOBAL
    ndims = {len(f) for f in fields}
    if len(ndims) > 1:
        raise ReceptiveFieldError(f"{_describe(op)} combines maps with different numbers of spatial axes")
    out = []
    for axis_fields in zip(*fields):
        sizes = {a.n for a in axis_fields}
        jumps = {a.j for a in axis_fields}
        if len(jumps) > 1:
            raise ReceptiveFieldError(
                f"{_describe(op)} combines maps with different strides (jumps {sorted(jumps)} input pixels): "
                "their units do not sit on one grid"
            )
        if len(sizes) > 1:
            raise ReceptiveFieldError(f"{_describe(op)} combines maps of different spatial sizes {sorted(sizes)}")
        start = min(a.start for a in axis_fields)
        end = max(a.start + a.r - 1 for a in axis_fields)
        out.append(_Axis(axis_fields[0].n, start, end - start + 1, axis_fields[0].j))
    return tuple(out)


def _graph_of(model):
    """The functional graph (inputs, outputs, nodes) behind ``model``; a built Sequential has one inside."""
    functional = getattr(model, "_functional", None)
    if functional is not None:
        return functional
    if isinstance(model, keras.Sequential):
        raise ValueError(f"Sequential model {model.name!r} is not built: give it an Input (or call it once) first")
    try:
        model.inputs  # noqa: B018  (a subclassed model has no graph)
    except AttributeError:
        model_inputs = None
    else:
        model_inputs = model.inputs
    if not model_inputs:
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) has no functional graph to walk: "
            "build it with keras.Input (functional or Sequential API)"
        )
    return model


def _is_model(op):
    if not isinstance(op, keras.Model):
        return False
    return getattr(op, "_functional", None) is not None or hasattr(op, "_nodes_by_depth")


# ----------------------------------------------------------------------------------------------
# The walk
# ----------------------------------------------------------------------------------------------


class _Walker:
    """Fields of the tensors of one functional graph, computed on demand and memoised by tensor id."""

    def __init__(self, graph, input_fields, check_static):
        self.graph = graph
        self.fields = dict(input_fields)  # id(KerasTensor) -> tuple of _Axis, or GLOBAL
        self.inputs = set(input_fields)
        self.check_static = check_static

    # The walk itself: an iterative depth-first search from the wanted tensor back to the inputs.
    def field(self, tensor):
        if id(tensor) in self.fields:
            return self.fields[id(tensor)]
        stack = [tensor]
        while stack:
            t = stack[-1]
            if id(t) in self.fields:
                stack.pop()
                continue
            node = self._node(t)
            missing = [x for x in node.input_tensors if id(x) not in self.fields]
            if missing:
                stack.extend(missing)
                continue
            outputs = self._apply(node)
            for x, f in zip(node.outputs, outputs):
                self.fields[id(x)] = f
            stack.pop()
        return self.fields[id(tensor)]

    def _node(self, tensor):
        history = getattr(tensor, "_keras_history", None)
        op = history.operation if history is not None else None
        if op is None or isinstance(op, keras.layers.InputLayer) or not op._inbound_nodes:
            raise _NotConnected(
                f"tensor {getattr(tensor, 'name', tensor)!r} does not come from the inputs of model {self.graph.name!r}"
            )
        return op._inbound_nodes[history.node_index]

    # One layer.
    def _apply(self, node):
        op = node.operation
        ins = [self.fields[id(x)] for x in node.input_tensors]
        n_out = len(node.outputs)
        if _is_model(op):
            return self._nested(op, node)
        spatial = [f for f in ins if f is not GLOBAL]
        if not spatial or isinstance(op, _GLOBALS):
            return [GLOBAL] * n_out
        field = spatial[0]
        ndim = len(field)
        if isinstance(op, _UNSUPPORTED):
            raise ReceptiveFieldError(
                f"{_describe(op)} resamples its input (upsampling or transposed convolution); "
                "receptive_field handles convolutions, pooling, padding, cropping and merges"
            )
        if isinstance(op, _CONVS + _POOLS):
            _check_channels_last(op)
            if isinstance(op, _POOLS):
                kernel, stride, dilation = op.pool_size, op.strides, (1,) * ndim
            else:
                kernel, stride, dilation = op.kernel_size, op.strides, op.dilation_rate
            kernel, stride, dilation = (_ntuple(v, ndim) for v in (kernel, stride, dilation))
            padding = str(op.padding).lower()
            out = tuple(_window(a, k, s, d, padding, op) for a, k, s, d in zip(field, kernel, stride, dilation))
            return self._checked(node, [out] * n_out)
        if isinstance(op, _PADS + _CROPS):
            _check_channels_last(op)
            pad = isinstance(op, _PADS)
            pairs = _pairs(op.padding if pad else op.cropping, ndim)
            out = []
            for a, (before, after) in zip(field, pairs):
                if pad:
                    out.append(_Axis(a.n + before + after, a.start - before * a.j, a.r, a.j))
                else:
                    n = a.n - before - after
                    if n < 1:
                        raise ReceptiveFieldError(f"{_describe(op)} crops a map of {a.n} pixels to nothing")
                    out.append(_Axis(n, a.start + before * a.j, a.r, a.j))
            return self._checked(node, [tuple(out)] * n_out)
        if isinstance(op, _POINTWISE):
            if len(node.outputs[0].shape) != ndim + 2:
                return [GLOBAL] * n_out
            return [field] * n_out
        if isinstance(op, _MERGES):
            if isinstance(op, keras.layers.Concatenate):
                if _spatial_axes_hit(op.axis, ndim + 2, ndim):
                    raise ReceptiveFieldError(f"{_describe(op)} concatenates along a spatial axis ({op.axis})")
            return [_union(spatial, op)] * n_out
        return self._unknown(node, ins)

    def _checked(self, node, outs):
        """Compare computed sizes with Keras' static shapes when both describe the same input."""
        if not self.check_static:
            return outs
        for x, f in zip(node.outputs, outs):
            static = tuple(x.shape[1 : 1 + len(f)])
            ours = tuple(a.n for a in f)
            if all(s is not None for s in static) and static != ours:
                raise RuntimeError(
                    f"{_describe(node.operation)}: computed a {ours} map but Keras says {static}; please report this model"
                )
        return outs

    def _unknown(self, node, ins):
        """A layer of unknown kind: pass-through (or union) if the map keeps its size, else an error."""
        op = node.operation
        spatial = [f for f in ins if f is not GLOBAL]
        ndim = len(spatial[0])
        results = []
        for shape in self._output_shapes(node, ins):
            if shape is None or len(shape) != ndim + 2:
                results.append(GLOBAL)  # no spatial map any more: it depends on everything
                continue
            sizes = tuple(shape[1 : 1 + ndim])
            for f in spatial:
                if tuple(a.n for a in f) != sizes:
                    raise ReceptiveFieldError(
                        f"{_describe(op)} changes the spatial size from {tuple(a.n for a in f)} to {sizes} "
                        "and receptive_field does not know its geometry (it handles convolutions, pooling, "
                        "ZeroPadding, Cropping, merges and layers that keep the size)"
                    )
            results.append(_union(spatial, op))
        return results

    def _output_shapes(self, node, ins):
        """Output shapes of ``node`` for inputs of the walk's spatial sizes (Keras' static ones as a fallback)."""
        op = node.operation
        concrete = {}
        for x, f in zip(node.input_tensors, ins):
            shape = tuple(x.shape) if f is GLOBAL else (x.shape[0], *(a.n for a in f), *x.shape[1 + len(f) :])
            concrete[id(x)] = keras.KerasTensor(shape, dtype=x.dtype)
        try:
            args, kwargs = node.arguments.fill_in(concrete)
            specs = keras.tree.flatten(op.compute_output_spec(*args, **kwargs))
            if len(specs) == len(node.outputs):
                return [tuple(spec.shape) for spec in specs]
        except Exception:  # noqa: BLE001  (any failure: fall back on the graph's static shapes)
            pass
        # Static fallback: the map keeps its size when Keras' shapes say so (unknown sides included).
        pairs = [(x, f) for x, f in zip(node.input_tensors, ins) if f is not GLOBAL]
        ndim = len(pairs[0][1])
        static_in = [tuple(x.shape[1 : 1 + ndim]) for x, _ in pairs]
        shapes = []
        for x in node.outputs:
            if len(x.shape) != ndim + 2:
                shapes.append(tuple(x.shape))
                continue
            static_out = tuple(x.shape[1 : 1 + ndim])
            if not all(s == static_out for s in static_in):
                raise ReceptiveFieldError(
                    f"{_describe(op)} changes the spatial size (static shapes {static_in[0]} -> {static_out}) "
                    "and receptive_field does not know its geometry"
                )
            shapes.append((x.shape[0], *(a.n for a in pairs[0][1]), *x.shape[1 + ndim :]))
        return shapes

    def _nested(self, op, node):
        """A model used as a layer: walk its own graph from the fields of its arguments."""
        inner = _graph_of(op)
        inner_inputs = list(inner.inputs)
        args = list(node.input_tensors)
        if len(args) != len(inner_inputs):
            raise ReceptiveFieldError(f"{_describe(op)}: cannot match its {len(args)} arguments to its inputs")
        fields = {id(i): self.fields[id(a)] for i, a in zip(inner_inputs, args)}
        walker = _Walker(inner, fields, check_static=False)
        return [walker.field(x) for x in inner.outputs]


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


def _input_fields(graph, input_size):
    """Fields of the graph's inputs, their spatial sizes, and whether they match Keras' static shapes."""
    fields = {}
    first_size = None
    check_static = True
    for x in graph.inputs:
        shape = tuple(x.shape)
        ndim = len(shape) - 2
        if ndim < 1:
            fields[id(x)] = GLOBAL  # a vector input has no spatial map
            continue
        static = shape[1 : 1 + ndim]
        if input_size is None:
            sizes = tuple(DEFAULT_INPUT_SIZE if s is None else int(s) for s in static)
        else:
            sizes = _ntuple(input_size, ndim) if isinstance(input_size, (int, np.integer)) else tuple(int(s) for s in input_size)
            if len(sizes) != ndim:
                raise ValueError(f"input_size {input_size!r} has {len(sizes)} sides; the input has {ndim} spatial axes")
        if any(s < 1 for s in sizes):
            raise ValueError(f"input_size must be positive, got {sizes}")
        check_static = check_static and tuple(static) == sizes
        fields[id(x)] = tuple(_Axis(n, 0, 1, 1) for n in sizes)
        if first_size is None:
            first_size = sizes
    if first_size is None:
        raise ValueError("the model has no input with a spatial map")
    return fields, first_size, check_static


def _result(field, input_size):
    if field is GLOBAL:
        return ReceptiveField(
            size=tuple(input_size),
            stride=(0,) * len(input_size),
            offset=tuple((n - 1) / 2 for n in input_size),
            input_size=tuple(input_size),
            output_size=None,
        )
    return ReceptiveField(
        size=tuple(a.r for a in field),
        stride=tuple(a.j for a in field),
        offset=tuple(a.start + (a.r - 1) / 2 for a in field),
        input_size=tuple(input_size),
        output_size=tuple(a.n for a in field),
    )


def _resolve_layer(model, layer):
    if isinstance(layer, str):
        return get_layer(model, layer)
    if isinstance(layer, keras.layers.Layer):
        if not any(layer is candidate for candidate in model.layers):
            raise ValueError(f"layer {layer.name!r} is not a layer of model {model.name!r}")
        return layer
    raise TypeError(f"layer must be a layer name or a keras layer, got {type(layer).__name__}")


def _layer_field(walker, layer):
    """Field of ``layer``'s output; a layer called several times counts by its first call in the graph."""
    if any(layer is x._keras_history.operation for x in walker.graph.inputs if hasattr(x, "_keras_history")):
        return walker.fields[id(layer.output)]
    last_error = None
    for node in layer._inbound_nodes:
        try:
            return walker.field(node.outputs[0])
        except _NotConnected as err:
            last_error = err
    raise ReceptiveFieldError(f"layer {layer.name!r} is not connected to the inputs of the model") from last_error


def receptive_fields(
    model: keras.Model, layers: Sequence | None = None, input_size: int | tuple[int, int] | None = None
) -> dict[str, ReceptiveField]:
    """Receptive fields of many layers of ``model``, in one walk of its graph.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential Keras model (built, with a known input rank).
    layers : list of str or keras layers, optional
        Default: every layer of ``model.layers``, in order (the input layer included).
    input_size : int or tuple of int, optional
        Spatial size of the input, ``(H, W)`` or one int for every side. Default: the model's
        static input shape, and :data:`DEFAULT_INPUT_SIZE` (224) for each side it leaves open.

    Returns
    -------
    dict
        ``{layer_name: ReceptiveField}`` in the order of ``layers``.

    Raises
    ------
    ValueError
        An unknown layer name (the error lists the valid names), a layer whose geometry is not
        known (unknown type that changes the spatial size, transposed convolution, upsampling),
        or branches of different strides meeting in a merge.

    Examples
    --------
    >>> fields = receptive_fields(tfvis.load_model("vgg16", weights=None, include_top=False))  # doctest: +SKIP
    >>> fields["block5_pool"].size  # doctest: +SKIP
    (212, 212)
    """
    if layers is not None and all(isinstance(layer, str) for layer in layers):
        model = prepared(model)  # names as every method reads them: fused activations split (tfvis.graph)
    graph = _graph_of(model)  # of the model the layers are resolved in, so that they are connected to its input
    input_fields, size, check_static = _input_fields(graph, input_size)
    walker = _Walker(graph, input_fields, check_static)
    chosen = list(model.layers) if layers is None else [_resolve_layer(model, layer) for layer in layers]
    return {layer.name: _result(_layer_field(walker, layer), size) for layer in chosen}


def receptive_field(model: keras.Model, layer, input_size: int | tuple[int, int] | None = None) -> ReceptiveField:
    """Size, stride and offset of the units of ``layer`` in input pixels.

    Works for any Keras CNN built with the functional or Sequential API, branching graphs
    included (Inception's concatenations, residual additions): the geometry is read layer by layer
    from the graph between the model's input and ``layer``.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential Keras model with ``channels_last`` maps.
    layer : str or keras layer
        The layer (by name or object); a model used as a layer counts as one layer.
    input_size : int or tuple of int, optional
        Spatial size of the input, ``(H, W)`` or one int for both. ``"same"`` padding, and so the
        offsets, depend on it. Default: the model's static input size, 224 where it is open.

    Returns
    -------
    ReceptiveField
        ``size``, ``stride`` and ``offset`` as (y, x) tuples. A layer without a spatial map
        (``Flatten``, ``Dense`` after it, global pooling) sees the whole input: its ``size`` is the
        input size, its ``stride`` is ``(0, 0)``, and :meth:`ReceptiveField.box` is the whole image.

    Raises
    ------
    ValueError
        An unknown layer name (the error lists the valid names), a layer whose geometry is not
        known (unknown type that changes the spatial size, transposed convolution, upsampling),
        or branches of different strides meeting in a merge.

    See Also
    --------
    receptive_fields : many layers in one walk.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights=None, include_top=False)  # doctest: +SKIP
    >>> rf = receptive_field(model, "block1_pool")  # doctest: +SKIP
    >>> rf.size, rf.stride, rf.offset  # doctest: +SKIP
    ((6, 6), (2, 2), (0.5, 0.5))
    >>> rf.box(0, 0, image_shape=(224, 224))  # doctest: +SKIP
    (0, 0, 4, 4)
    """
    if isinstance(layer, str):
        model = prepared(model)  # names as every method reads them: fused activations split (tfvis.graph)
    layer = _resolve_layer(model, layer)
    size = tuple(np.atleast_1d(input_size).tolist()) if input_size is not None else None
    # One walk per (layer, size) and model: every unit of a report asks for its layer's field.
    return cached(
        model, ("receptive_field", layer.name, size), lambda: receptive_fields(model, [layer], input_size=input_size)[layer.name]
    )
