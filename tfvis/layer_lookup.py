"""Finding a model's layers by name, and which of them are worth visualizing.

A leaf of the package: it imports no other tfvis module, so that the graph code
(:mod:`tfvis.graph`), targets (:mod:`tfvis.targets`), layer tools (:mod:`tfvis.layers`) and
weight surgery (:mod:`tfvis.models.surgery`) can all stand on it without importing each other
in a circle.
"""

from __future__ import annotations

import keras

#: The layer classes whose outputs tfvis shows by default: convolutions, dense layers,
#: concatenations (Inception's mixed blocks) and additions (residual sums).
VISUAL_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.Dense,
    keras.layers.Concatenate,
    keras.layers.Add,
)


def channel_count(layer: keras.layers.Layer) -> int | None:
    """The size of the last axis of ``layer``'s output, None when unknown."""
    shape = layer.output.shape
    return None if shape is None or shape[-1] is None else int(shape[-1])


def visual_layers(model: keras.Model, kinds: tuple | None = None) -> list:
    """The layers of ``model`` that are instances of ``kinds`` (default :data:`VISUAL_TYPES`), in order.

    A nested model's layers are listed in its place, by their own names. On a prepared model
    (:func:`tfvis.graph.prepared`), which has no nested model, these are its own layers.

    Parameters
    ----------
    model : keras.Model
    kinds : tuple of layer classes, optional

    Returns
    -------
    list of keras.layers.Layer
    """
    kinds = kinds or VISUAL_TYPES
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(visual_layers(layer, kinds))
        elif isinstance(layer, kinds):
            found.append(layer)
    return found


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """``model.get_layer(name)`` with an error that names the valid layers.

    Every layer of the model is valid, by the name Keras gave it. On a prepared model
    (:func:`tfvis.graph.prepared`) of a model with nested models, a layer whose name two nested
    models share is ``base.layer`` (``base/layer`` is read the same), and a nested model's name
    is its output layer.

    Parameters
    ----------
    model : keras.Model
    name : str

    Returns
    -------
    keras.layers.Layer

    Raises
    ------
    ValueError
        No layer of that name; the message lists the layers worth visualizing.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")])
    >>> find_layer(m, "c").name
    'c'
    """
    aliases = getattr(model, "tfvis_aliases", {})
    for candidate in dict.fromkeys((name, aliases.get(name), str(name).replace("/", "."))):
        if candidate is None:
            continue
        try:
            return model.get_layer(candidate)
        except ValueError:
            continue
    shown = [layer.name for layer in visual_layers(model)]
    others = len(model.layers) - len(shown)
    more = f" (and {others} other layers: model.summary() lists them)" if others > 0 else ""
    raise ValueError(f"model {model.name!r} has no layer {name!r}; its layers include: {', '.join(shown)}{more}") from None


__all__ = ["VISUAL_TYPES", "channel_count", "find_layer", "visual_layers"]
