"""What a model offers to visualize: its layers, their channel counts, and sub-models that expose them."""

from __future__ import annotations

import keras

from .graph import prepared
from .layer_lookup import VISUAL_TYPES, channel_count, find_layer


def layer_info(model: keras.Model, kinds: tuple | None = None) -> list[tuple[str, int | None]]:
    """The layers worth visualizing, in order, with their channel counts.

    Convolutions, dense layers, concatenations (Inception's mixed blocks) and additions (residual
    sums). In the zoo these are the pre-ReLU outputs; ``<name>_relu`` follows each. The layers are
    those of the prepared model (:func:`tfvis.graph.prepared`), the names every method takes: a
    nested base model's layers are listed by their own names.

    Parameters
    ----------
    model : keras.Model
    kinds : tuple of layer classes, optional
        Restrict to these classes (e.g. ``(keras.layers.Conv2D,)``); default
        :data:`tfvis.layer_lookup.VISUAL_TYPES`.

    Returns
    -------
    list of (str, int)
        ``[("conv1", 96), ("conv2", 256), ...]``.

    Examples
    --------
    >>> layer_info(tfvis.load_model("vgg16", weights="hed", include_top=False))[:2]  # doctest: +SKIP
    [('block1_conv1', 64), ('block1_conv2', 64)]
    """
    kinds = kinds or VISUAL_TYPES
    return [(layer.name, channel_count(layer)) for layer in prepared(model).layers if isinstance(layer, kinds)]


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers with a spatial map (rank-4 output) among :func:`layer_info`."""
    net = prepared(model)
    return [name for name, _ in layer_info(net) if len(net.get_layer(name).output.shape) == 4]


def get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """``model.get_layer(name)`` with an error that names the valid layers (:func:`tfvis.layer_lookup.find_layer`)."""
    return find_layer(model, name)


def feature_model(model: keras.Model, layers: list[str]) -> keras.Model:
    """A model from ``model``'s input to the outputs of ``layers`` (a list of names), sharing weights.

    Names are read on ``model`` as given; methods pass :func:`tfvis.graph.prepared` models.
    """
    outputs = [get_layer(model, name).output for name in layers]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_features")
