"""Deconvnet, guided backpropagation and gradient reconstructions of one unit or one channel.

Zeiler & Fergus (2014) project an activation back to pixel space through an attached
*deconvnet*: set every other activation of the layer to zero, then, layer by layer in reverse,
**unpool** (place each value at the location of its pooling region's maximum, the *switch*),
**rectify** (pass the signal itself through a ReLU) and **filter** (convolve with the transposed
filters; biases unused; LRN skipped). This is backpropagation with one change: at every ReLU the
backward signal ``g`` becomes ``relu(g)`` instead of ``g * [x > 0]``. Guided backpropagation
(Springenberg et al. 2015) applies both masks, ``relu(g) * [x > 0]``; the plain gradient keeps
``g * [x > 0]``.

Two implementations are provided, and agree to float32 rounding on chain models:

* :func:`reconstruct_generic` (used by :func:`reconstruct`) rewrites any Keras functional graph,
  branches, concatenations and residual additions included, with the method's backward rules
  (:mod:`tfvis.rules`: :func:`~tfvis.rules.guided`, :func:`~tfvis.rules.deconvnet`, which also
  passes the signal back unchanged through every
  :class:`~tfvis.models.custom_layers.LocalResponseNorm`), through the one graph walker of
  :mod:`tfvis.graph`, then takes one gradient. Every other layer is the model's own layer object
  (shared weights).
* :func:`reconstruct_explicit` is the paper's pipeline written out layer by layer on a chain
  model (AlexNet, VGG16, Sequential CNNs): switches from ``tf.nn.max_pool_with_argmax``,
  ``tf.nn.conv2d_transpose`` with the layer's own kernel, the transposed dense kernel, and so on.

The signal fed back at the target layer is the activation itself at the kept unit(s), every
other activation of the layer zero: the gradient of ``sum(act * stop_gradient(mask * act))``
(``signal="activation"``, Zeiler & Fergus). Attribution libraries (captum's ``Deconvolution``
and ``GuidedBackprop``) feed back 1 instead, the gradient of ``sum(mask * act)``:
``signal="unit"``.

Max-pool ties. Post-ReLU zeros make many equal values in a pooling window. TensorFlow's
``MaxPoolGrad`` (the gradient of ``tf.nn.max_pool2d``) and ``tf.nn.max_pool_with_argmax`` both
route to the *first* maximum of a window in row-major order (the CPU kernels share one helper
that replaces the running maximum only on a strictly larger value); this was checked on TF 2.21
with and without oneDNN, so the explicit pipeline uses the switches as ``max_pool_with_argmax``
gives them. Overlapping windows (AlexNet's 3 x 3 / 2 pools) that share a switch add their
signals, as the gradient does. ``position="max"`` resolves ties the same way (``tf.argmax``:
first unit in row-major order).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .display import to_image
from .graph import activation_name, cached, feature_net, prepared, walk_to
from .images import model_batch
from .models.custom_layers import ImagePreprocess, LocalResponseNorm
from .rules import BACKWARD_METHODS, check_method, for_input_gradients, is_rectifier, rectify, vjp
from .targets import check_position, per_image, resolve

#: The reconstruction methods (:data:`tfvis.rules.BACKWARD_METHODS`), by the name ``deconv.METHODS`` users and tests know.
METHODS = BACKWARD_METHODS

# Position codes in the int tensor ``positions`` (B, S): a first coordinate of -1 means "the
# strongest unit of the channel", -2 "the whole channel map"; otherwise the unit's coordinates.
_MAX, _ALL = -1, -2


# --------------------------------------------------------------------------------------------
# Targets and positions
# --------------------------------------------------------------------------------------------


def _parse_targets(model, target, n):
    """One resolved target per image (``"layer:channel"``, ``"layer:channel@y,x"`` or a class), on the prepared ``model``."""
    resolved = {}
    out = []
    for item in per_image(target, n):
        if item not in resolved:
            resolved[item] = resolve(model, item, require_index=True)
        out.append(resolved[item])
    return out


def _is_coordinate(position):
    """True for one unit's coordinates, ``(y, x)``: a flat sequence of integers."""
    if isinstance(position, np.ndarray):
        return position.ndim == 1 and position.size > 0 and np.issubdtype(position.dtype, np.integer)
    return (
        isinstance(position, (tuple, list))
        and len(position) > 0
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in position)
    )


def _per_image_positions(position, n, targets=None):
    """One position per image; a target's own ``@y,x`` overrides the ``position`` argument."""
    if position is None or isinstance(position, str) or _is_coordinate(position):
        positions = [position] * n
    else:
        positions = list(position)
        if len(positions) != n:
            raise ValueError(f"got {len(positions)} positions for {n} images: give one position, or one per image")
    if targets is not None:
        positions = [p if t.position is None else t.position for p, t in zip(positions, targets)]
    return positions


def _target_shape(net, image_shape):
    """The target's output shape (without batch) for images of ``image_shape``."""
    shape = tuple(net.outputs[0].shape[1:])
    if all(d is not None for d in shape):
        return shape
    try:
        return tuple(net.compute_output_spec(keras.KerasTensor((1,) + tuple(image_shape))).shape[1:])
    except Exception:  # shape inference unavailable: unknown sizes are not checked
        return shape


def _encode_positions(positions, spatial, names):
    """Int32 array (B, S) of position codes for a target with spatial shape ``spatial``."""
    rank = len(spatial)
    codes = np.zeros((len(positions), rank), dtype=np.int32)
    for i, (position, name) in enumerate(zip(positions, names)):
        if rank == 0:  # dense output: the position is irrelevant
            continue
        if isinstance(position, str):
            if position != "max":
                raise ValueError(f"position={position!r}: use 'max', None or a unit's coordinates")
            codes[i] = _MAX
        elif position is None:
            codes[i] = _ALL
        else:
            coords = tuple(int(v) for v in np.asarray(position).ravel())
            if len(coords) != rank:
                raise ValueError(f"position {position!r}: layer {name!r} needs {rank} coordinates")
            check_position(coords, spatial, name)
            codes[i] = coords
    return codes


# --------------------------------------------------------------------------------------------
# The top signal
# --------------------------------------------------------------------------------------------


#: What is fed back at the kept units: the activation itself (Zeiler & Fergus) or 1 (captum's
#: ``Deconvolution`` and ``GuidedBackprop``, whose maps are the activation-signal maps divided by it).
SIGNALS = ("activation", "unit")


def _check_signal(signal):
    if signal not in SIGNALS:
        raise ValueError(f"signal={signal!r}; choose one of: {', '.join(SIGNALS)}")
    return signal


def _top_signal(act, channels, positions, signal="activation"):
    """``mask * act`` (``signal="activation"``) or ``mask`` (``"unit"``) at the kept units of each image's channel.

    ``channels`` (B,) int32; ``positions`` (B, S) int32 codes (see :data:`_MAX`, :data:`_ALL`).
    """
    shape = tf.shape(act)
    depth = shape[-1]
    channel_hot = tf.one_hot(channels, depth, dtype=act.dtype)  # (B, C)
    rank = act.shape.rank
    if rank == 2:
        return channel_hot if signal == "unit" else act * channel_hot
    batch = shape[0]
    spatial = shape[1:-1]
    units = tf.reduce_prod(spatial)
    channel_map = tf.reshape(tf.gather(act, channels, axis=-1, batch_dims=1), [batch, units])
    strongest = tf.argmax(channel_map, axis=1, output_type=tf.int32)
    strides = tf.math.cumprod(spatial, exclusive=True, reverse=True)
    given = tf.reduce_sum(tf.maximum(positions, 0) * strides[None, :], axis=1)
    mode = positions[:, 0]
    index = tf.where(mode == _MAX, strongest, given)
    unit_hot = tf.one_hot(index, units, dtype=act.dtype)
    unit_hot = tf.where((mode == _ALL)[:, None], tf.ones_like(unit_hot), unit_hot)
    ones = tf.ones([rank - 2], dtype=tf.int32)
    unit_mask = tf.reshape(unit_hot, tf.concat([[batch], spatial, [1]], 0))
    channel_mask = tf.reshape(channel_hot, tf.concat([[batch], ones, [depth]], 0))
    mask = unit_mask * channel_mask
    return mask + tf.zeros_like(act) if signal == "unit" else act * mask


def _signatures(net):
    image_spec = tf.TensorSpec([None] + list(net.inputs[0].shape[1:]), tf.float32)
    spatial_rank = max(len(net.outputs[0].shape) - 2, 0)
    return [
        image_spec,
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None, spatial_rank], tf.int32),
    ]


# --------------------------------------------------------------------------------------------
# Generic implementation
# --------------------------------------------------------------------------------------------


def _plain_walk(net_model, layer_name):
    """``(net, walk)``: the prepared model cut at ``layer_name``, and the calls that built it (for the explicit pipeline)."""
    return walk_to(net_model, layer_name)


def _generic_function(net, signal):
    @tf.function(input_signature=_signatures(net))
    def run(images, channels, positions):
        with tf.GradientTape() as tape:
            tape.watch(images)
            act = net(images, training=False)
        top = _top_signal(act, channels, positions, signal)
        return tape.gradient(act, images, output_gradients=top)

    return run


# --------------------------------------------------------------------------------------------
# Explicit implementation
# --------------------------------------------------------------------------------------------


def _chain(net, calls):
    """The layers from the input to the target, in order; NotImplementedError at a branch."""
    hint = "use reconstruct_generic (what reconstruct uses), which handles any graph"
    inputs = {id(t) for t in net.inputs}
    tensor, chain = net.outputs[0], []
    while id(tensor) not in inputs:
        _, layer, inbound = calls[id(tensor)]
        if isinstance(layer, keras.Model):
            raise NotImplementedError(
                f"reconstruct_explicit: layer {layer.name!r} is a nested model; only chains of plain layers are supported: {hint}"
            )
        if len(inbound) != 1:
            raise NotImplementedError(
                f"reconstruct_explicit needs a chain model, but layer {layer.name!r} "
                f"({type(layer).__name__}) takes {len(inbound)} inputs (a branching graph): {hint}"
            )
        chain.append(layer)
        tensor = inbound[0]
    return chain[::-1]


def _padding(layer):
    return layer.padding.upper()


def _explicit_kind(layer):
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    linear = activation_name(layer) is None
    if is_rectifier(layer):
        return "rectify"
    if isinstance(layer, LocalResponseNorm):
        return "lrn"
    if isinstance(layer, ImagePreprocess):
        return "preprocess"
    if isinstance(layer, keras.layers.Conv2D) and channels_last and linear:
        # TF's CPU conv2d_transpose has no dilations: a dilated conv passes through its own
        # vector-Jacobian product (the same transposed convolution, computed by TF).
        return "conv" if tuple(layer.dilation_rate) == (1, 1) else "vjp"
    if isinstance(layer, keras.layers.Dense) and linear:
        return "dense"
    if isinstance(layer, keras.layers.MaxPooling2D) and channels_last:
        return "maxpool"
    if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape)):
        return "reshape"
    return "vjp"  # any other single-input layer: its own vector-Jacobian product


def _conv_backward(layer, g, x):
    """``conv2d_transpose`` of ``g`` with the layer's own kernel; grouped convs group by group."""
    kernel = tf.convert_to_tensor(layer.kernel)
    strides = (1, *layer.strides, 1)
    padding = _padding(layer)
    groups = layer.groups
    if groups == 1 and padding == "SAME" and tuple(layer.strides) == (1, 1) and all(k % 2 for k in kernel.shape[:2]):
        # Stride 1, odd kernel, SAME: the transposed convolution is a plain convolution with the
        # kernel flipped in space and its in/out channels swapped; CPUs run that one faster.
        return tf.nn.conv2d(g, tf.transpose(kernel[::-1, ::-1], [0, 1, 3, 2]), 1, "SAME")
    if groups == 1:
        return tf.nn.conv2d_transpose(g, kernel, tf.shape(x), strides, padding)
    in_shape = tf.shape(x)
    group_shape = tf.concat([in_shape[:-1], [kernel.shape[-2]]], 0)
    parts = [
        tf.nn.conv2d_transpose(g_part, k_part, group_shape, strides, padding)
        for g_part, k_part in zip(tf.split(g, groups, axis=-1), tf.split(kernel, groups, axis=-1))
    ]
    return tf.concat(parts, axis=-1)


def _explicit_backward(kind, layer, method, g, x, switches):
    if kind == "rectify":
        return rectify(method, layer, x, g)
    if kind == "lrn":
        return g if method == "deconvnet" else vjp(lambda t: layer(t), x, g)
    if kind == "preprocess":
        g = g * layer.scale
        return g[..., ::-1] if layer.bgr else g
    if kind == "conv":
        return _conv_backward(layer, g, x)
    if kind == "dense":
        kernel = tf.convert_to_tensor(layer.kernel)
        return tf.tensordot(g, kernel, [[g.shape.rank - 1], [1]])
    if kind == "maxpool":  # unpool: each value goes to its switch (TF's kernel for exactly that)
        return tf.raw_ops.MaxPoolGradWithArgmax(
            input=x,
            grad=g,
            argmax=switches,
            ksize=(1, *layer.pool_size, 1),
            strides=(1, *layer.strides, 1),
            padding=_padding(layer),
            include_batch_in_index=True,
        )
    if kind == "reshape":
        return tf.reshape(g, tf.shape(x))
    return vjp(lambda t: layer(t, training=False), x, g)


def _forward_records(steps, images):
    """Run the chain layer by layer: the target's activation and, per layer, (layer, kind, input, switches)."""
    x, records = images, []
    for layer, kind in steps:
        switches = None
        if kind == "maxpool":
            y, switches = tf.nn.max_pool_with_argmax(
                x, layer.pool_size, layer.strides, _padding(layer), include_batch_in_index=True
            )
        else:
            y = layer(x, training=False) if kind == "vjp" else layer(x)
        records.append((layer, kind, x, switches))
        x = y
    return x, records


def _explicit_function(net, walk, method, signal):
    calls = walk.calls
    steps = [(layer, _explicit_kind(layer)) for layer in _chain(net, calls)]

    @tf.function(input_signature=_signatures(net))
    def run(images, channels, positions):
        act, records = _forward_records(steps, images)
        g = _top_signal(act, channels, positions, signal)
        for layer, kind, x, switches in reversed(records):
            g = _explicit_backward(kind, layer, method, g, x, switches)
        return g

    return run


# --------------------------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------------------------


def _compiled(net_model, layer_name, method, implementation, signal):
    """The compiled reconstruction for (prepared model, layer, method, implementation, signal), cached."""

    def build():
        if implementation == "generic":
            return _generic_function(feature_net(net_model, layer_name, for_input_gradients(method)), signal)
        return _explicit_function(*_plain_walk(net_model, layer_name), method, signal)

    return cached(net_model, ("reconstruct", implementation, layer_name, method, signal), build)


def _check_batch_size(batch_size):
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    return int(batch_size)


def _reconstruct(model, images, target, method, position, batch_size, implementation, signal):
    check_method(method)
    _check_signal(signal)
    batch_size = _check_batch_size(batch_size)
    images, single = model_batch(prepared(model), images)  # the image input alone (tfvis.graph)
    n = len(images)
    net_model = prepared(model)
    targets = _parse_targets(net_model, target, n)
    positions = _per_image_positions(position, n, [t.target for t in targets])
    result = np.zeros_like(images)
    for layer_name in dict.fromkeys(t.layer for t in targets):
        index = np.array([i for i, t in enumerate(targets) if t.layer == layer_name])
        net, _ = _plain_walk(net_model, layer_name)
        spatial = _target_shape(net, images.shape[1:])[:-1]
        channels = np.array([targets[i].index for i in index], dtype=np.int32)
        codes = _encode_positions([positions[i] for i in index], spatial, [layer_name] * len(index))
        run = _compiled(net_model, layer_name, method, implementation, signal)
        for start in range(0, len(index), batch_size):
            chunk = slice(start, start + batch_size)
            out = run(tf.constant(images[index[chunk]]), tf.constant(channels[chunk]), tf.constant(codes[chunk]))
            result[index[chunk]] = out.numpy()
    return result[0] if single else result


_COMMON_PARAMETERS = """
    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model. Targets are read on :func:`tfvis.graph.prepared`: a
        fused activation is split out, so ``"c:3"`` names the pre-activation output of layer ``c``
        and ``"c_relu:3"`` the post-activation one, as in the zoo, where ``c_relu`` follows ``c``.
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo); any number of channels.
    target : str or list of str
        ``"layer:channel"`` or ``"layer:channel@y,x"`` (that unit, whatever ``position`` says),
        a class (``281``, ``"logits:281"``), or one such target per image (a batch may project
        different channels, and even different layers). See :mod:`tfvis.targets`.
    method : {"deconvnet", "guided", "gradient"}
        The rule applied to the backward signal ``g`` at every ReLU with input ``x``:
        ``relu(g)`` (Zeiler & Fergus), ``relu(g) * [x > 0]`` (guided backpropagation) or
        ``g * [x > 0]`` (the plain gradient). For ReLU6 and other clipped rectifiers ``[x > 0]``
        is the layer's own derivative mask. The deconvnet also skips LRN layers (identity).
    position : "max", None or tuple of int, or a list of these, one per image
        ``"max"``: keep only the strongest unit of the channel in each image (Zeiler & Fergus);
        ``(y, x)``: that unit; ``None``: the whole channel map. Ignored for rank-2 (dense)
        outputs.
    batch_size : int
        Images per compiled call.
    signal : {"activation", "unit"}
        What is fed back at the kept units: the activation itself (Zeiler & Fergus, the default)
        or 1 (captum's ``Deconvolution`` and ``GuidedBackprop``, attribution libraries' convention:
        their maps are the ``"activation"`` maps divided by the activation at a single kept unit).

    Returns
    -------
    ndarray, float32
        Shaped like ``images``: the signal that reaches the input. It is not rectified and can be
        negative; see :func:`to_image` for display.
"""


def reconstruct_generic(model, images, target, method="deconvnet", position="max", batch_size=16, signal="activation"):
    """Project a unit or a channel back to the input by backpropagation with a replaced ReLU rule.

    Works on any Keras graph (branches, concatenations, residual additions, nested functional
    models): the model, truncated at the target layer, is rewritten so that every ReLU
    (``keras.layers.ReLU`` with any parameters, ``Activation("relu")``/``"relu6"``, fused
    activations after splitting) runs a ``tf.custom_gradient`` op with the method's backward rule,
    and, for the deconvnet, every LocalResponseNorm passes the signal back unchanged; all other
    layers are the model's own objects (shared weights). The rewritten model and its compiled
    ``tf.function`` are cached per (model, layer, method): one trace serves every batch,
    channel and position.
    {parameters}
    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights=None, include_top=False)  # doctest: +SKIP
    >>> rec = reconstruct_generic(model, photos, "block3_conv2:17")           # doctest: +SKIP
    >>> rec.shape == photos.shape                                             # doctest: +SKIP
    True
    """
    return _reconstruct(model, images, target, method, position, batch_size, "generic", signal)


def reconstruct_explicit(model, images, target, method="deconvnet", position="max", batch_size=16, signal="activation"):
    """Project a unit or a channel back to the input with the paper's layer-by-layer pipeline.

    For chain models (every layer on the way to the target has a single inbound layer: AlexNet,
    VGG16, Sequential CNNs). The forward pass runs layer by layer, keeping each layer's input;
    max pools record their switches with ``tf.nn.max_pool_with_argmax``. The backward pass then
    unpools (scatters each value to its switch), rectifies at every ReLU per ``method``, filters
    with ``tf.nn.conv2d_transpose`` and the layer's own kernel (grouped convs group by group; no
    bias), multiplies by the transposed dense kernel, undoes Flatten/Reshape, skips LRN for the
    deconvnet (its own vector-Jacobian product otherwise), and undoes :class:`ImagePreprocess`
    (times the scale, channels flipped back for BGR). Any other single-input layer (Dropout,
    BatchNormalization, padding, average pooling) passes the signal through its own
    vector-Jacobian product. There is no gradient tape over the model. The result agrees with
    :func:`reconstruct_generic` to float32 rounding; this function exists as the reference.
    {parameters}
    Raises
    ------
    NotImplementedError
        The path from the input to the target branches (e.g. Inception's Concatenate layers),
        naming the layer; use :func:`reconstruct_generic`.

    Examples
    --------
    >>> model = tfvis.load_model("alexnet", weights=None, include_top=False)  # doctest: +SKIP
    >>> rec = reconstruct_explicit(model, photos, "conv5:7", "deconvnet")      # doctest: +SKIP
    """
    return _reconstruct(model, images, target, method, position, batch_size, "explicit", signal)


def reconstruct(
    model: keras.Model,
    images: np.ndarray,
    target,
    method: str = "deconvnet",
    position: str | Sequence[int] | None = "max",
    batch_size: int = 16,
    signal: str = "activation",
) -> np.ndarray:
    """Deconvnet, guided-backpropagation or gradient reconstruction of a unit or a channel.

    Keeps the chosen unit(s) of the target channel, every other activation of the layer zero,
    and projects that signal back to the input (Zeiler & Fergus 2014, Springenberg et al. 2015).
    Uses :func:`reconstruct_generic`, which works on any Keras graph.
    {parameters}
    Examples
    --------
    >>> import numpy as np, tfvis
    >>> model = tfvis.load_model("alexnet", weights=None, include_top=False)  # doctest: +SKIP
    >>> photos = np.random.uniform(0, 255, (2, 99, 99, 3)).astype("float32")  # doctest: +SKIP
    >>> rec = reconstruct(model, photos, "conv2:3")                           # doctest: +SKIP
    >>> tiles = to_image(rec)                                                 # doctest: +SKIP
    >>> float(tiles.min()) >= 0.0 and float(tiles.max()) <= 1.0               # doctest: +SKIP
    True
    """
    return reconstruct_generic(model, images, target, method, position, batch_size, signal)


def _shared_explicit_function(net, calls, methods, signal):
    """Compiled chain pipeline: one forward pass over U images, backward passes for M units and every method."""
    steps = [(layer, _explicit_kind(layer)) for layer in _chain(net, calls)]
    image_spec, channel_spec, position_spec = _signatures(net)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([None], tf.int32), channel_spec, position_spec])
    def run(images, image_index, channels, positions):
        act, records = _forward_records(steps, images)
        top = _top_signal(tf.gather(act, image_index), channels, positions, signal)
        units = tf.cast(tf.shape(image_index)[0], tf.int64)
        results = []
        for method in methods:
            g = top
            for layer, kind, x_images, switches in reversed(records):
                x_units = tf.gather(x_images, image_index)
                if switches is not None:  # re-index the switches from image rows to unit rows
                    per_image = tf.cast(tf.reduce_prod(tf.shape(x_images)[1:]), tf.int64)
                    rows = tf.reshape(tf.range(units, dtype=tf.int64), [-1, 1, 1, 1])
                    switches = tf.math.floormod(tf.gather(switches, image_index), per_image) + rows * per_image
                g = _explicit_backward(kind, layer, method, g, x_units, switches)
            results.append(g)
        return tf.stack(results)

    return run


def reconstruct_units(
    model: keras.Model,
    images: np.ndarray,
    image_index,
    targets,
    positions,
    methods: Sequence[str] = ("deconvnet", "guided"),
    batch_size: int = 16,
    signal: str = "activation",
) -> dict[str, np.ndarray]:
    """Reconstructions of many units drawn from few images, sharing each image's forward pass.

    What top-k reports need: units of many channels whose images repeat, and several methods.
    On chain models (AlexNet, VGG16, Sequential CNNs) the explicit pipeline runs one forward pass
    per distinct image of a batch and then one backward pass per unit and method; other graphs
    use :func:`reconstruct_generic` per method. Both give the same numbers as :func:`reconstruct`.

    Parameters
    ----------
    model : keras.Model
    images : ndarray, shape (N, H, W, C)
        The distinct images.
    image_index : sequence of int, length M
        For each unit, the row of ``images`` it belongs to.
    targets : sequence of str, length M
        ``"layer:channel"`` per unit, all of one layer.
    positions : sequence, length M
        Per unit ``(y, x)``, ``"max"`` or None, as in :func:`reconstruct`.
    methods : sequence of {"deconvnet", "guided", "gradient"}
    batch_size : int
        Units per compiled call.
    signal : {"activation", "unit"}
        What is fed back at each unit (see :func:`reconstruct`).

    Returns
    -------
    dict of str to ndarray
        Method to reconstructions of shape (M, H, W, C).

    Examples
    --------
    >>> maps = reconstruct_units(model, photos, [0, 0, 1], ["conv5:1", "conv5:7", "conv5:1"],
    ...                          [(3, 4), (5, 5), (0, 2)])  # doctest: +SKIP
    >>> maps["guided"].shape[0]                             # doctest: +SKIP
    3
    """
    for method in methods:
        check_method(method)
    _check_signal(signal)
    images, _ = model_batch(prepared(model), images)
    image_index = np.asarray(image_index, dtype=np.int64)
    if image_index.size and (image_index.min() < 0 or image_index.max() >= len(images)):
        raise ValueError(f"image_index must lie in 0..{len(images) - 1}")
    net_model = prepared(model)
    parsed = _parse_targets(net_model, list(targets), len(image_index))
    layers = {t.layer for t in parsed}
    if len(layers) > 1:
        raise ValueError(f"reconstruct_units takes units of one layer; got {sorted(layers)}")
    positions = _per_image_positions(positions, len(image_index), [t.target for t in parsed])
    results = {method: np.zeros((len(image_index),) + images.shape[1:], np.float32) for method in methods}
    if not len(image_index):
        return results
    (layer_name,) = layers
    net, walk = _plain_walk(net_model, layer_name)
    calls = walk.calls
    try:
        _chain(net, calls)
    except NotImplementedError:
        for method in methods:
            results[method] = reconstruct_generic(model, images[image_index], targets, method, positions, batch_size, signal)
        return results
    run = cached(
        net_model,
        ("shared", layer_name, tuple(methods), signal),
        lambda: _shared_explicit_function(net, calls, tuple(methods), signal),
    )
    spatial = _target_shape(net, images.shape[1:])[:-1]
    channels = np.array([t.index for t in parsed], dtype=np.int32)
    codes = _encode_positions(positions, spatial, [layer_name] * len(parsed))
    order = np.argsort(image_index, kind="stable")  # units of one image share a batch
    for start in range(0, len(order), int(batch_size)):
        chunk = order[start : start + int(batch_size)]
        distinct, local = np.unique(image_index[chunk], return_inverse=True)
        out = run(
            tf.constant(images[distinct]),
            tf.constant(local.astype(np.int32)),
            tf.constant(channels[chunk]),
            tf.constant(codes[chunk]),
        )
        for method, maps in zip(methods, out.numpy()):
            results[method][chunk] = maps
    return results


for _function in (reconstruct_generic, reconstruct_explicit, reconstruct):
    _function.__doc__ = _function.__doc__.replace("    {parameters}\n", "\n" + _COMMON_PARAMETERS.strip("\n") + "\n\n")


__all__ = ["METHODS", "SIGNALS", "reconstruct", "reconstruct_explicit", "reconstruct_generic", "reconstruct_units", "to_image"]
