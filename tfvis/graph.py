"""The one place where tfvis reads and rewrites a model's graph.

Three ideas live here, each once:

* :func:`prepared`: the model every method works on. **Rule: every fused activation is split
  out.** A ``Conv2D(..., activation="tanh", name="c")`` becomes ``c`` (linear) followed by
  ``c_tanh``, so the name ``c`` always means the pre-activation output and ``c_<activation>``
  (``c_relu``, ``c_relu6``, ...) the post-activation one, in every module (deconv, saliency,
  featurevis, top-k, activations, inversion, compare). A model without fused activations (the
  zoo, whose ReLUs are layers of their own) is its own prepared model. The split model holds
  copies of the weights, re-synchronised from the user's model each time it is asked for.
* :func:`rewrite`: one walker over a model's graph, calling each *original* layer (shared
  weights) on fresh symbolic inputs, with the layers that a backward rule
  (:mod:`tfvis.rules`) claims swapped for their replacement, nested models included. It records
  every call, which the explicit deconvnet reads to follow the chain back.
* :func:`cached`: the per-model cache (weak keys: dropping the model drops its entries) that
  holds prepared models, rewritten nets and compiled functions.

:func:`feature_net` combines them: a model from the input to some layers' outputs, with rules.
"""
import weakref
from dataclasses import dataclass

import keras
import numpy as np

# model -> {key: value}. Weak keys: dropping the model drops every entry made for it.
_CACHE = weakref.WeakKeyDictionary()


def cached(model, key, build):
    """``build()``, computed once per ``(model, key)`` and kept while ``model`` lives.

    Models that cannot be weakly referenced are not cached (``build()`` runs every time).

    Parameters
    ----------
    model : keras.Model
    key : hashable
        What the value depends on besides the model (a layer name, a method, settings).
    build : callable
        ``() -> value``. It must not hold a strong reference to ``model`` in the value itself
        only through closures that are fine to keep (the model would then never be dropped).

    Returns
    -------
    object
    """
    try:
        entry = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        return build()
    if key not in entry:
        entry[key] = build()
    return entry[key]


def activation_name(layer):
    """The name of ``layer``'s fused activation (``"relu"``, ``"tanh"``, ...), None when linear or absent."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = keras.activations.serialize(activation)
    if isinstance(name, dict):
        name = name.get("config", {}).get("name", name.get("class_name"))
    return None if name in (None, "linear") else str(name)


def has_fused_activation(layer):
    """True for a layer (not an ``Activation`` layer) that applies a non-linear activation itself."""
    return not isinstance(layer, keras.layers.Activation) and activation_name(layer) is not None


def producer(tensor):
    """The layer that produced a symbolic (Keras) tensor, or None for an input."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def inbound(tensor):
    """The input tensors of the call that produced ``tensor`` (``[]`` for a model input)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return []
    layer = history[0]
    nodes = getattr(layer, "_inbound_nodes", [])
    if history[1] >= len(nodes):
        return []
    return list(keras.tree.flatten(nodes[history[1]].input_tensors))


def as_functional(model):
    """A functional model with ``model``'s layers (shared, not copied); Sequential models are rewired."""
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype, name="image")
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    return model


class _Prepared:
    """The split model and the (user weight, copy) pairs that keep it in step; None: the model itself."""

    def __init__(self, split, pairs):
        self.split, self.pairs = split, pairs


def _split(model):
    if not any(has_fused_activation(layer) for layer in model.layers):
        return _Prepared(None, [])  # a value must not hold its weak key
    from .models.surgery import split_activations

    split = split_activations(model)
    pairs = [pair for layer in split.layers if layer.weights for pair in zip(model.get_layer(layer.name).weights, layer.weights)]
    return _Prepared(split, pairs)


def prepared(model):
    """The model every method works on: ``model`` with every fused activation split out.

    Cached per model (one split copy per model, however many methods use it); the copy's weights
    are re-synchronised from ``model`` at every call, so weight surgery done on ``model`` after the
    first call is seen.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    keras.Model
        ``model`` itself when no layer has a fused activation.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="tanh", name="c")])
    >>> [layer.name for layer in prepared(m).layers][1:]
    ['c', 'c_tanh']
    """
    state = cached(model, "prepared", lambda: _split(model))
    if state.split is None:
        return model
    for source, copy in state.pairs:
        copy.assign(source)
    return state.split


@dataclass
class Walk:
    """What :func:`rewrite` produced.

    Attributes
    ----------
    model : keras.Model
        The rewritten model, from the original inputs to the original outputs.
    outputs : dict of str to KerasTensor
        Each layer name to the output of its first call in the walk.
    calls : dict
        ``id(output tensor) -> (output tensor, original layer, [input tensors])``.
    """

    model: keras.Model
    outputs: dict
    calls: dict


def _first_rule(rules, layer):
    for rule in rules:
        replacement = rule(layer)
        if replacement is not None:
            return replacement
    return None


def rewrite(model, rules=()):
    """Walk ``model``'s graph, calling its own layers, with the layers that ``rules`` claim replaced.

    ``keras.models.clone_model(..., clone_function=lambda layer: layer, call_function=...)`` calls
    each *original* layer (shared weights, no copies) on new symbolic inputs. A rule is a function
    ``layer -> replacement layer or None`` (see :mod:`tfvis.rules`); the first rule that answers
    wins, one replacement per layer however often it is called. Nested models are walked with the
    same rules. Walking the graph, rather than reading ``layer.output``, also serves layers shared
    with other models. In Keras 3 this adds an inbound node to each layer called; node 0, which
    ``layer.output`` reads, is unchanged.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential.
    rules : sequence of callable

    Returns
    -------
    Walk
    """
    rules = tuple(rules)
    calls, outputs, replaced = {}, {}, {}

    def call(layer, *args, **kwargs):
        if layer.name not in replaced:
            replaced[layer.name] = _first_rule(rules, layer)
        replacement = replaced[layer.name]
        if replacement is not None:
            result = replacement(*args, **kwargs)
        elif isinstance(layer, keras.Model) and rules:
            result = rewritten(layer, rules)(*args, **kwargs)
        else:
            result = layer(*args, **kwargs)
        inbound = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        for tensor in keras.tree.flatten(result):
            calls[id(tensor)] = (tensor, layer, inbound)
        outputs.setdefault(layer.name, result)
        return result

    clone = keras.models.clone_model(as_functional(model), clone_function=lambda layer: layer, call_function=call)
    return Walk(clone, outputs, calls)


def rewritten(model, rules=()):
    """``rewrite(model, rules).model``, cached per (model, rules)."""
    return cached(model, ("rewritten", tuple(rules)), lambda: rewrite(model, rules).model)


def _single(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def walk_to(model, layers, rules=()):
    """``(net, walk)``: a model from ``model``'s input to the outputs of ``layers``, through :func:`rewrite`.

    Cached per (model, layers, rules). ``model`` is used as given (pass the prepared model).

    Raises
    ------
    ValueError
        A layer that is not on a path from the input (or unknown).
    """
    names = (layers,) if isinstance(layers, str) else tuple(layers)

    def build():
        from .targets import find_layer

        for name in names:
            find_layer(model, name)
        walk = rewrite(model, rules)
        missing = [n for n in names if n not in walk.outputs]
        if missing:
            raise ValueError(f"layers {missing} are not on a path from the input of model {model.name!r}")
        chosen = [_single(walk.outputs[n]) for n in names]
        inputs = walk.model.inputs[0] if len(walk.model.inputs) == 1 else walk.model.inputs
        suffix = "_".join(getattr(rule, "__name__", "rule") for rule in rules) or "plain"
        net = keras.Model(inputs, chosen[0] if isinstance(layers, str) else chosen, name=f"{model.name}_{suffix}")
        return net, walk

    return cached(model, ("walk", names, isinstance(layers, str), tuple(rules)), build)


def feature_net(model, layers, rules=()):
    """A model from ``model``'s input to the outputs of ``layers``, with backward ``rules``.

    Parameters
    ----------
    model : keras.Model
        Used as given: pass :func:`prepared` of the user's model.
    layers : str or sequence of str
        One name gives a single output, a sequence a list of outputs.
    rules : sequence of callable
        Backward rules (:mod:`tfvis.rules`); e.g. ``rules.for_input_gradients("guided")``.

    Returns
    -------
    keras.Model
        Cached per (model, layers, rules); it shares ``model``'s weights.
    """
    return walk_to(model, layers, rules)[0]


def free_input(net):
    """``net`` rebuilt on an input of free spatial size (its own layers), or None when its graph needs its size.

    For a model whose input size is fixed (e.g. ``keras.applications.ResNet50(weights=None)``,
    224 x 224) but whose layers up to the outputs of ``net`` are fully convolutional, so that
    feature visualization can feed it images of another size. Cached per net.

    Parameters
    ----------
    net : keras.Model
        Typically a :func:`feature_net` cut at the layers an objective reads.

    Returns
    -------
    keras.Model or None
        ``net`` itself when its input size is already free.
    """
    shape = tuple(net.inputs[0].shape)
    if len(net.inputs) != 1 or all(d is None for d in shape[1:-1]):
        return net

    def build():
        free = keras.Input(batch_shape=(None,) * (len(shape) - 1) + shape[-1:], dtype=net.inputs[0].dtype)
        try:
            clone = keras.models.clone_model(net, input_tensors=free, clone_function=lambda layer: layer)
            probe = tuple(d + 16 if d else 32 for d in shape[1:-1])  # a size the original would refuse
            clone(np.zeros((1,) + probe + shape[-1:], np.float32), training=False)  # shape inference alone misses Dense
        except Exception:  # noqa: BLE001 - any layer that needs the fixed size (Flatten + Dense, Reshape...)
            return None
        return clone

    return cached(net, "free_input", build)


def as_list(outputs):
    """A model's outputs as a list (Keras returns a lone tensor for a one-element output list)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


__all__ = ["Walk", "activation_name", "as_functional", "as_list", "free_input", "inbound", "producer", "cached", "feature_net", "has_fused_activation", "prepared", "rewrite", "rewritten", "walk_to"]
