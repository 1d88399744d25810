"""Rewriting models: separate fused activations, and copy or set weights layer by layer.

These work on any Keras functional or Sequential model, not only the zoo.
"""
import numbers

import keras
import numpy as np

from ..graph import activation_layer, activation_name, as_functional, has_fused_activation, source_layer
from ..targets import find_layer, parse


def split_activations(model):
    """Rewrite ``model`` so that every layer with a fused activation is linear and followed by it.

    ``Activation`` layers are left as they are: their output is already a post-activation tensor.

    A ``Conv2D(..., activation="relu", name="c")`` becomes ``Conv2D(name="c")`` followed by
    ``ReLU(name="c_relu")`` (``c_relu6`` for ReLU6, ``c_softmax`` for softmax, ...). Weights are
    copied, so outputs are unchanged; pre-activation values become reachable as the layer's output.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model (the input is not modified).

    Returns
    -------
    keras.Model
        A new model with the same weights and outputs.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    >>> [layer.name for layer in split_activations(m).layers][1:]
    ['c', 'c_relu']
    """
    source = as_functional(model)
    originals = {}

    def clone_layer(layer):
        config = layer.get_config()
        if has_fused_activation(layer):  # an Activation layer is its own post-activation tensor: kept whole
            config["activation"] = "linear"
        clone = layer.__class__.from_config(config)
        originals[clone.name] = layer
        return clone

    def call_layer(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        original = originals.get(layer.name, layer)
        if not has_fused_activation(original):
            return outputs
        activation = activation_name(original)
        return activation_layer(activation, layer.name)(outputs)

    rewritten = keras.models.clone_model(source, clone_function=clone_layer, call_function=call_layer)
    for layer in rewritten.layers:
        if layer.name in originals and originals[layer.name].weights:
            layer.set_weights(originals[layer.name].get_weights())
    return rewritten


def _roles(layer):
    """Each weight array's role: 'weight' for kernels, 'bias' for biases, 'other' for the rest."""
    roles = []
    for variable in layer.weights:
        base = variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name
        roles.append("bias" if "bias" in base else "weight" if "kernel" in base else "other")
    return roles


def _channel_view(array, role, layer, channel):
    """Index of output channel ``channel`` in a kernel or bias array of ``layer``."""
    if role == "bias":
        return (channel,)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        multiplier = array.shape[-1]
        return (Ellipsis, channel // multiplier, channel % multiplier)
    return (Ellipsis, channel)


def set_weights(model, target, source, mode="both"):
    """Copy weights from another model, or set them to a constant, for a layer or one output channel.

    Weight surgery for ablations: re-initialise a block, silence a channel, transplant a layer.

    Parameters
    ----------
    model : keras.Model
        The model to change, in place.
    target : str
        ``"layer"`` for every array of the layer, ``"layer:channel"`` for one output channel.
    source : keras.Model or float
        A model of the same architecture (the layer of the same name is read), or a constant.
    mode : {"both", "weight", "bias"}
        Which arrays to change: kernels, biases, or both.

    Examples
    --------
    >>> set_weights(model, "block5_conv1", random_model)  # doctest: +SKIP
    >>> set_weights(model, "block4_conv3:12", 0.0)        # silence channel 12  # doctest: +SKIP
    """
    if mode not in ("both", "weight", "bias"):
        raise ValueError(f"mode={mode!r}; choose one of: both, weight, bias")
    parsed = parse(target)
    name, channel = parsed.layer, parsed.index
    layer = source_layer(model, name) or find_layer(model, name)  # a nested base's layers by their names too
    arrays = layer.get_weights()
    if not arrays:
        raise ValueError(f"layer {name!r} has no weights to set")
    roles = _roles(layer)
    if mode == "bias" and "bias" not in roles:
        raise ValueError(f"layer {name!r} has no bias")
    if isinstance(source, numbers.Number):
        values = [np.full_like(a, float(source)) for a in arrays]
    elif isinstance(source, keras.Model):
        values = (source_layer(source, name) or find_layer(source, name)).get_weights()
        for a, b in zip(arrays, values):
            if a.shape != b.shape:
                raise ValueError(f"layer {name!r}: shape {a.shape} in the model, {b.shape} in the source model")
    else:
        raise TypeError(f"source must be a keras.Model or a number, got {type(source).__name__}")
    if channel is not None:
        channels = arrays[roles.index("bias")].shape[0] if "bias" in roles else arrays[0].shape[-1]
        if not 0 <= channel < channels:
            raise ValueError(f"layer {name!r} has channels 0..{channels - 1}; got {channel}")
    updated = []
    for array, value, role in zip(arrays, values, roles):
        if mode != "both" and role != mode:
            updated.append(array)
            continue
        if channel is None:
            updated.append(value)
        else:
            index = _channel_view(array, role, layer, channel)
            array = array.copy()
            array[index] = value[index]
            updated.append(array)
    layer.set_weights(updated)
