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
  branches, concatenations and residual additions included, so that every ReLU (and, for the
  deconvnet, every :class:`~tfvis.models.custom_layers.LocalResponseNorm`) carries a
  ``tf.custom_gradient`` with the method's backward rule, then takes one gradient. Every other
  layer is the model's own layer object (shared weights).
* :func:`reconstruct_explicit` is the paper's pipeline written out layer by layer on a chain
  model (AlexNet, VGG16, Sequential CNNs): switches from ``tf.nn.max_pool_with_argmax``,
  ``tf.nn.conv2d_transpose`` with the layer's own kernel, the transposed dense kernel, and so on.

The signal fed back at the target layer is the activation itself at the kept unit(s), every
other activation of the layer zero: the gradient of ``sum(act * stop_gradient(mask * act))``.

Max-pool ties. Post-ReLU zeros make many equal values in a pooling window. TensorFlow's
``MaxPoolGrad`` (the gradient of ``tf.nn.max_pool2d``) and ``tf.nn.max_pool_with_argmax`` both
route to the *first* maximum of a window in row-major order (the CPU kernels share one helper
that replaces the running maximum only on a strictly larger value); this was checked on TF 2.21
with and without oneDNN, so the explicit pipeline uses the switches as ``max_pool_with_argmax``
gives them. Overlapping windows (AlexNet's 3 x 3 / 2 pools) that share a switch add their
signals, as the gradient does. ``position="max"`` resolves ties the same way (``tf.argmax``:
first unit in row-major order).
"""
import numbers
import weakref

import keras
import numpy as np
import tensorflow as tf

from .fastgrad import fast_input_gradients
from .layers import get_layer, parse_target
from .models.custom_layers import ImagePreprocess, LocalResponseNorm
from .models.surgery import _activation_name, as_functional, split_activations

#: The backward rules: ``"deconvnet"`` (g -> relu(g)), ``"guided"`` (g -> relu(g) * [x > 0]) and
#: ``"gradient"`` (g -> g * [x > 0]) at every ReLU.
METHODS = ("deconvnet", "guided", "gradient")

_RECTIFIER_ACTIVATIONS = ("relu", "relu6")

# Position codes in the int tensor ``positions`` (B, S): a first coordinate of -1 means "the
# strongest unit of the channel", -2 "the whole channel map"; otherwise the unit's coordinates.
_MAX, _ALL = -1, -2

# model -> {key: value}: the prepared (activation-split) model and the compiled functions per
# (layer, method, implementation). Weak keys: dropping the model drops its entries.
_CACHE = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------------------------
# Layers and their backward rules
# --------------------------------------------------------------------------------------------


def _is_rectifier(layer):
    """True for ``keras.layers.ReLU`` (any parameters) and ``Activation("relu" | "relu6")``."""
    if isinstance(layer, keras.layers.ReLU):
        return True
    return isinstance(layer, keras.layers.Activation) and _activation_name(layer) in _RECTIFIER_ACTIVATIONS


def _is_plain_relu(layer):
    """True when the rectifier is ``max(x, 0)``, whose derivative mask is ``[x > 0]``."""
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    return _activation_name(layer) == "relu"


def _vjp(forward, x, g):
    """Vector-Jacobian product of one layer (or function) at ``x`` with the signal ``g``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = forward(x)
    grad = tape.gradient(y, x, output_gradients=g)
    return tf.zeros_like(x) if grad is None else grad


def _rectify(layer, method, x, g):
    """The backward rule of ``method`` at a rectifier ``layer`` whose input was ``x``."""
    if method == "deconvnet":
        return tf.nn.relu(g)
    if method == "guided":
        g = tf.nn.relu(g)
    if _is_plain_relu(layer):
        return g * tf.cast(x > 0, g.dtype)
    # ReLU6, thresholds, slopes: the layer's own derivative mask.
    return _vjp(lambda t: layer(t), x, g)


class _BackwardRule(keras.layers.Layer):
    """Forward of ``layer`` unchanged; backward replaced by ``method``'s rule (a ``tf.custom_gradient``).

    For rectifiers the rule is :func:`_rectify`; for ``kind="identity"`` (LRN in the deconvnet)
    the signal passes unchanged. The wrapped layer is the original object.
    """

    def __init__(self, layer, method, kind, **kwargs):
        super().__init__(name=layer.name, **kwargs)
        self.wrapped = layer
        self.method = method
        self.kind = kind

    def call(self, inputs):
        layer, method, kind = self.wrapped, self.method, self.kind

        @tf.custom_gradient
        def op(x):
            y = layer(x)

            def grad(g):
                if kind == "identity":
                    return g
                return _rectify(layer, method, x, g)

            return y, grad

        return op(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def _rule_for(layer, method):
    """The replacement of ``layer`` in the rewritten graph, or None to keep the layer."""
    if method == "gradient":
        return None
    if _is_rectifier(layer):
        return _BackwardRule(layer, method, "rectify")
    if method == "deconvnet" and isinstance(layer, LocalResponseNorm):
        return _BackwardRule(layer, method, "identity")
    return None


def _single_output(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _calls_through(model, layer_name, method):
    """Run ``model``'s own graph on fresh symbolic inputs, with its own layer objects.

    ``keras.models.clone_model(..., clone_function=lambda layer: layer, call_function=...)``
    walks the model's graph and calls each *original* layer (shared weights, no copies) on new
    symbolic inputs; the ``call_function`` swaps the rectifiers for :class:`_BackwardRule`
    wrappers when ``method`` asks for it, recurses into nested models, and records every call.
    Walking the model's own graph (rather than reading ``layer.output``) also serves layers
    shared with other models. In Keras 3.15 this adds one inbound node to each layer called;
    node 0, which ``layer.output`` reads, is unchanged.

    Returns
    -------
    inputs : list of KerasTensor
    target : KerasTensor or None
        The output of the first call of the layer named ``layer_name`` (None: not reached).
    calls : dict
        ``id(output tensor) -> (output tensor, layer, [input tensors])``.
    """
    calls, found = {}, []

    def call(layer, *args, **kwargs):
        rule = _rule_for(layer, method) if method in ("deconvnet", "guided") else None
        if rule is not None:
            outputs = rule(args[0])
        elif isinstance(layer, keras.Model) and method in ("deconvnet", "guided"):
            outputs = _rewrite(layer, method)(*args, **kwargs)
        else:
            outputs = layer(*args, **kwargs)
        inbound = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        for tensor in keras.tree.flatten(outputs):
            calls[id(tensor)] = (tensor, layer, inbound)
        if layer.name == layer_name and not found:
            found.append(outputs)
        return outputs

    clone = keras.models.clone_model(as_functional(model), clone_function=lambda layer: layer, call_function=call)
    return clone.inputs, (_single_output(found[0]) if found else None), calls


def _rewrite(model, method):
    """A nested ``model`` with each ReLU (and LRN for the deconvnet) carrying ``method``'s rule."""

    def call(layer, *args, **kwargs):
        rule = _rule_for(layer, method)
        if rule is not None:
            return rule(args[0])
        if isinstance(layer, keras.Model):
            return _rewrite(layer, method)(*args, **kwargs)
        return layer(*args, **kwargs)

    return keras.models.clone_model(as_functional(model), clone_function=lambda layer: layer, call_function=call)


# --------------------------------------------------------------------------------------------
# Preparing a model, targets, positions
# --------------------------------------------------------------------------------------------


def _has_fused_rectifier(model):
    return any(
        _activation_name(layer) in _RECTIFIER_ACTIVATIONS
        for layer in model.layers
        if not isinstance(layer, (keras.layers.Activation, keras.layers.ReLU))
    )


def _entry(model):
    try:
        return _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        return {}


def _prepared(model):
    """``model``, or its :func:`~tfvis.split_activations` rewrite when it has fused ReLUs.

    The split model holds copies of the weights; they are re-synchronised from ``model`` at
    every call, so that weight changes made to ``model`` after the first call are seen.
    """
    entry = _entry(model)
    if "prepared" not in entry:
        if _has_fused_rectifier(model):
            split = split_activations(model)
            pairs = []
            for layer in split.layers:
                if layer.weights:
                    original = model.get_layer(layer.name)
                    pairs.extend(zip(original.weights, layer.weights))
            entry["prepared"] = (split, pairs)
        else:
            entry["prepared"] = (None, [])  # the model itself (a value must not hold its weak key)
    prepared, pairs = entry["prepared"]
    if prepared is None:
        return model
    for source, copy in pairs:
        copy.assign(source)
    return prepared


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of: {', '.join(METHODS)}")


def _as_batch(model, images):
    """Float32 batch of images for ``model``; also whether a single image was given."""
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs; reconstructions need a single image input")
    images = np.asarray(images, dtype=np.float32)
    shape = tuple(model.inputs[0].shape)
    rank = len(shape)
    single = images.ndim == rank - 1
    if single:
        images = images[None]
    if images.ndim != rank:
        raise ValueError(
            f"images must have shape {('N',) + shape[1:]} (or one image {shape[1:]}) for model "
            f"{model.name!r}; got an array of shape {images.shape}"
        )
    for axis, (want, got) in enumerate(zip(shape[1:], images.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(
                f"images of shape {images.shape} do not fit model {model.name!r}, which takes "
                f"{('N',) + shape[1:]} (axis {axis}: {got} instead of {want})"
            )
    return images, single


def _parse_targets(model, target, n):
    """One ``(layer_name, channel)`` per image, validated against ``model``."""
    targets = [target] * n if isinstance(target, str) else list(target)
    if len(targets) != n:
        raise ValueError(f"got {len(targets)} targets for {n} images: give one target, or one per image")
    parsed = []
    for item in targets:
        name, channel = parse_target(item)
        layer = get_layer(model, name)
        if channel is None:
            raise ValueError(f"target {item!r}: expected 'layer:channel', e.g. '{name}:0'")
        channels = layer.output.shape[-1]
        if not 0 <= channel < channels:
            raise ValueError(f"target {item!r}: layer {name!r} has channels 0..{channels - 1}; got {channel}")
        parsed.append((name, channel))
    return parsed


def _is_coordinate(position):
    """True for one unit's coordinates, ``(y, x)``: a flat sequence of integers."""
    if isinstance(position, np.ndarray):
        return position.ndim == 1 and position.size > 0 and np.issubdtype(position.dtype, np.integer)
    return (
        isinstance(position, (tuple, list))
        and len(position) > 0
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in position)
    )


def _per_image_positions(position, n):
    if position is None or isinstance(position, str) or _is_coordinate(position):
        return [position] * n
    positions = list(position)
    if len(positions) != n:
        raise ValueError(f"got {len(positions)} positions for {n} images: give one position, or one per image")
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
            for c, size in zip(coords, spatial):
                if c < 0 or (size is not None and c >= size):
                    raise ValueError(
                        f"position {coords}: outside layer {name!r}, whose map is {tuple(spatial)} for these images"
                    )
            codes[i] = coords
    return codes


# --------------------------------------------------------------------------------------------
# The top signal
# --------------------------------------------------------------------------------------------


def _top_signal(act, channels, positions):
    """``mask * act``: the activation at the kept units of each image's channel, zero elsewhere.

    ``channels`` (B,) int32; ``positions`` (B, S) int32 codes (see :data:`_MAX`, :data:`_ALL`).
    """
    shape = tf.shape(act)
    depth = shape[-1]
    channel_hot = tf.one_hot(channels, depth, dtype=act.dtype)  # (B, C)
    rank = act.shape.rank
    if rank == 2:
        return act * channel_hot
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
    return act * unit_mask * channel_mask


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


def _graph(model, prepared, layer_name, method):
    """``(net, calls)``: a model from the input to the target layer (rules swapped in for the
    deconvnet and guided methods), and the calls that built it; cached per (model, layer, method)."""
    entry = _entry(model)
    method = method if method in ("deconvnet", "guided") else None
    key = ("graph", layer_name, method)
    if key not in entry:
        inputs, target, calls = _calls_through(prepared, layer_name, method)
        if target is None:
            raise ValueError(f"layer {layer_name!r} is not on a path from the input of model {prepared.name!r}")
        net = keras.Model(inputs, target, name=f"{prepared.name}_{layer_name}_{method or 'plain'}")
        entry[key] = (net, calls)
    return entry[key]


def _generic_function(net, calls):
    fast = fast_input_gradients(net)

    @tf.function(input_signature=_signatures(net))
    def run(images, channels, positions):
        with tf.GradientTape() as tape:
            tape.watch(images)
            act = _single_output(fast(images, training=False))
        top = _top_signal(act, channels, positions)
        return tape.gradient(act, images, output_gradients=top)

    run.rewritten = net
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
                f"reconstruct_explicit: layer {layer.name!r} is a nested model; only chains of plain layers "
                f"are supported: {hint}"
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
    linear = _activation_name(layer) is None
    if _is_rectifier(layer):
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
        return _rectify(layer, method, x, g)
    if kind == "lrn":
        return g if method == "deconvnet" else _vjp(lambda t: layer(t), x, g)
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
            input=x, grad=g, argmax=switches, ksize=(1, *layer.pool_size, 1), strides=(1, *layer.strides, 1),
            padding=_padding(layer), include_batch_in_index=True,
        )
    if kind == "reshape":
        return tf.reshape(g, tf.shape(x))
    return _vjp(lambda t: layer(t, training=False), x, g)


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


def _explicit_function(net, calls, method):
    steps = [(layer, _explicit_kind(layer)) for layer in _chain(net, calls)]

    @tf.function(input_signature=_signatures(net))
    def run(images, channels, positions):
        act, records = _forward_records(steps, images)
        g = _top_signal(act, channels, positions)
        for layer, kind, x, switches in reversed(records):
            g = _explicit_backward(kind, layer, method, g, x, switches)
        return g

    return run


# --------------------------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------------------------


def _compiled(model, prepared, layer_name, method, implementation):
    """The compiled reconstruction for (model, layer, method, implementation), cached."""
    entry = _entry(model)
    key = (implementation, layer_name, method)
    if key not in entry:
        if implementation == "generic":
            entry[key] = _generic_function(*_graph(model, prepared, layer_name, method))
        else:
            entry[key] = _explicit_function(*_graph(model, prepared, layer_name, None), method)
    return entry[key]


def _reconstruct(model, images, target, method, position, batch_size, implementation):
    _check_method(method)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    images, single = _as_batch(model, images)
    n = len(images)
    prepared = _prepared(model)
    targets = _parse_targets(prepared, target, n)
    positions = _per_image_positions(position, n)
    result = np.zeros_like(images)
    for layer_name in dict.fromkeys(name for name, _ in targets):
        index = np.array([i for i, (name, _) in enumerate(targets) if name == layer_name])
        net, _ = _graph(model, prepared, layer_name, None)
        spatial = _target_shape(net, images.shape[1:])[:-1]
        channels = np.array([targets[i][1] for i in index], dtype=np.int32)
        codes = _encode_positions([positions[i] for i in index], spatial, [layer_name] * len(index))
        run = _compiled(model, prepared, layer_name, method, implementation)
        for start in range(0, len(index), int(batch_size)):
            chunk = slice(start, start + int(batch_size))
            out = run(tf.constant(images[index[chunk]]), tf.constant(channels[chunk]), tf.constant(codes[chunk]))
            result[index[chunk]] = out.numpy()
    return result[0] if single else result


_COMMON_PARAMETERS = """
    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model. Fused activations (``Conv2D(..., activation="relu")``)
        are split internally with :func:`tfvis.split_activations`; a target ``"c:3"`` then names
        the pre-activation output of layer ``c``, as in the zoo, where ``c_relu`` follows ``c``.
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo); any number of channels.
    target : str or list of str
        ``"layer:channel"``, or one such string per image (a batch may project different
        channels, and even different layers).
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

    Returns
    -------
    ndarray, float32
        Shaped like ``images``: the signal that reaches the input. It is not rectified and can be
        negative; see :func:`to_image` for display.
"""


def reconstruct_generic(model, images, target, method="deconvnet", position="max", batch_size=16):
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
    return _reconstruct(model, images, target, method, position, batch_size, "generic")


def reconstruct_explicit(model, images, target, method="deconvnet", position="max", batch_size=16):
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
    return _reconstruct(model, images, target, method, position, batch_size, "explicit")


def reconstruct(model, images, target, method="deconvnet", position="max", batch_size=16):
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
    return reconstruct_generic(model, images, target, method, position, batch_size)


def _shared_explicit_function(net, calls, methods):
    """Compiled chain pipeline: one forward pass over U images, backward passes for M units and every method."""
    steps = [(layer, _explicit_kind(layer)) for layer in _chain(net, calls)]
    image_spec, channel_spec, position_spec = _signatures(net)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([None], tf.int32), channel_spec, position_spec])
    def run(images, image_index, channels, positions):
        act, records = _forward_records(steps, images)
        top = _top_signal(tf.gather(act, image_index), channels, positions)
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


def reconstruct_units(model, images, image_index, targets, positions, methods=("deconvnet", "guided"), batch_size=16):
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
        _check_method(method)
    images, _ = _as_batch(model, images)
    image_index = np.asarray(image_index, dtype=np.int64)
    if image_index.size and (image_index.min() < 0 or image_index.max() >= len(images)):
        raise ValueError(f"image_index must lie in 0..{len(images) - 1}")
    prepared = _prepared(model)
    parsed = _parse_targets(prepared, list(targets), len(image_index))
    layers = {name for name, _ in parsed}
    if len(layers) > 1:
        raise ValueError(f"reconstruct_units takes units of one layer; got {sorted(layers)}")
    positions = _per_image_positions(positions, len(image_index))
    results = {method: np.zeros((len(image_index),) + images.shape[1:], np.float32) for method in methods}
    if not len(image_index):
        return results
    (layer_name,) = layers
    net, calls = _graph(model, prepared, layer_name, None)
    try:
        _chain(net, calls)
    except NotImplementedError:
        for method in methods:
            results[method] = reconstruct_generic(model, images[image_index], targets, method, positions, batch_size)
        return results
    key = ("shared", layer_name, tuple(methods))
    entry = _entry(model)
    if key not in entry:
        entry[key] = _shared_explicit_function(net, calls, tuple(methods))
    run = entry[key]
    spatial = _target_shape(net, images.shape[1:])[:-1]
    channels = np.array([channel for _, channel in parsed], dtype=np.int32)
    codes = _encode_positions(positions, spatial, [layer_name] * len(parsed))
    order = np.argsort(image_index, kind="stable")  # units of one image share a batch
    for start in range(0, len(order), int(batch_size)):
        chunk = order[start : start + int(batch_size)]
        distinct, local = np.unique(image_index[chunk], return_inverse=True)
        out = run(tf.constant(images[distinct]), tf.constant(local.astype(np.int32)), tf.constant(channels[chunk]), tf.constant(codes[chunk]))
        for method, maps in zip(methods, out.numpy()):
            results[method][chunk] = maps
    return results


for _function in (reconstruct_generic, reconstruct_explicit, reconstruct):
    _function.__doc__ = _function.__doc__.replace("    {parameters}\n", "\n" + _COMMON_PARAMETERS.strip("\n") + "\n\n")


def to_image(reconstruction, batch=None, percentile=100.0):
    """Normalise reconstructions for display: centred at 0.5, scaled by the largest magnitude.

    The deconvnet papers show reconstructions as signed maps: zero is mid grey, and each image is
    scaled by its own largest absolute value, ``0.5 + 0.5 * r / max|r|``, so the sign and the
    relative strength of the colours are kept (a min-max stretch would move zero). A map that is
    zero everywhere gives flat 0.5 grey, never NaN.

    Parameters
    ----------
    reconstruction : ndarray
        One map ``(H, W)`` / ``(H, W, C)`` or a batch ``(N, H, W, C)``.
    batch : bool, optional
        Whether the first axis is the batch; default: True for 4-D arrays.
    percentile : float
        Scale by this percentile of ``|r|`` per image instead of the maximum (e.g. 99.5 to keep a
        few extreme pixels from washing out the rest); values beyond are clipped.

    Returns
    -------
    ndarray, float32
        Same shape, values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> to_image(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    array([[0.  , 0.5 ],
           [0.75, 1.  ]], dtype=float32)
    >>> to_image(np.zeros((2, 2)))
    array([[0.5, 0.5],
           [0.5, 0.5]], dtype=float32)
    """
    r = np.nan_to_num(np.asarray(reconstruction, dtype=np.float32))
    batch = r.ndim == 4 if batch is None else bool(batch)
    batched = r if batch else r[None]
    magnitude = np.abs(batched.reshape(len(batched), -1))
    if magnitude.shape[1] == 0:
        return np.full(r.shape, 0.5, dtype=np.float32)
    scale = np.percentile(magnitude, percentile, axis=1) if percentile < 100 else magnitude.max(axis=1)
    scale = scale.reshape((-1,) + (1,) * (batched.ndim - 1))
    safe = np.where(scale > 0, scale, 1.0)
    out = np.where(scale > 0, 0.5 + 0.5 * batched / safe, 0.5)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return out if batch else out[0]


__all__ = ["METHODS", "reconstruct", "reconstruct_explicit", "reconstruct_generic", "to_image"]
