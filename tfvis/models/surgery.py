"""Weight surgery: copy or set weights layer by layer, or one output channel at a time.

It works on any Keras functional or Sequential model, not only the zoo. :func:`split_activations`
(separating fused activations) lives in :mod:`tfvis.graph`, beside the prepared model's split
rule; it is importable from here as before.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from ..graph import source_layer, split_activations
from ..layer_lookup import find_layer
from ..targets import parse


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


def set_weights(model: keras.Model, target: str, source: keras.Model | float, mode: str = "both") -> None:
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


__all__ = ["set_weights", "split_activations"]
