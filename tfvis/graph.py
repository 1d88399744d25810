"""The one place where tfvis reads and rewrites a model's graph.

Three ideas live here, each once:

* :func:`prepared`: the model every method works on. **Rule: every fused activation is split
  out.** A ``Conv2D(..., activation="tanh", name="c")`` becomes ``c`` (linear) followed by
  ``c_tanh``, so the name ``c`` always means the pre-activation output and ``c_<activation>``
  (``c_relu``, ``c_relu6``, ...) the post-activation one, in every module (deconv, saliency,
  featurevis, top-k, activations, inversion, compare). It is also flat (a nested base model's
  layers are the prepared model's layers), has one input (the image, :func:`image_input`; other
  inputs held at values given to :func:`set_image_input`) and computes in float32 (a
  mixed-precision model is copied in float32). A model that is all of this already (the zoo,
  whose ReLUs are layers of their own) is its own prepared model. Otherwise the prepared model
  holds copies of the weights, re-synchronised from the user's model each time it is asked for.
  Several outputs are kept; :func:`set_class_output` names the one of class scores.
* :func:`rewrite`: one walker over a model's graph, calling each *original* layer (shared
  weights) on fresh symbolic inputs, with the layers that a backward rule
  (:mod:`tfvis.rules`) claims swapped for their replacement, nested models included. It records
  every call, which the explicit deconvnet reads to follow the chain back.
* :func:`split_activations`: the same split as a standalone rewrite of any model, for users
  who want the split model itself (the prepared model also flattens and recasts).
* :func:`cached`: the per-model cache (weak keys: dropping the model drops its entries) that
  holds prepared models, rewritten nets and compiled functions.

:func:`feature_net` combines them: a model from the input to some layers' outputs, with rules.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace

import keras
import numpy as np
import tensorflow as tf

from .layer_lookup import find_layer

# model -> {key: value}. Weak keys: dropping the model drops every entry made for it.
_CACHE = weakref.WeakKeyDictionary()


def cached(model: keras.Model, key: Hashable, build: Callable[[], object]) -> object:
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


def activation_name(layer: keras.layers.Layer) -> str | None:
    """The name of ``layer``'s fused activation (``"relu"``, ``"tanh"``, ...), None when linear or absent."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = keras.activations.serialize(activation)
    if isinstance(name, dict):
        name = name.get("config", {}).get("name", name.get("class_name"))
    return None if name in (None, "linear") else str(name)


def has_fused_activation(layer: keras.layers.Layer) -> bool:
    """True for a layer (not an ``Activation`` layer) that applies a non-linear activation itself."""
    return not isinstance(layer, keras.layers.Activation) and activation_name(layer) is not None


def producer(tensor) -> keras.layers.Layer | None:
    """The layer that produced a symbolic (Keras) tensor, or None for an input."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def inbound(tensor) -> list:
    """The input tensors of the call that produced ``tensor`` (``[]`` for a model input)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return []
    layer = history[0]
    nodes = getattr(layer, "_inbound_nodes", [])
    if history[1] >= len(nodes):
        return []
    return list(keras.tree.flatten(nodes[history[1]].input_tensors))


def as_functional(model: keras.Model) -> keras.Model:
    """A functional model with ``model``'s layers (shared, not copied); Sequential models are rewired."""
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype, name="image")
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    return model


# --------------------------------------------------------------------------------------------
# The layout: which input is the image, what the other inputs hold, which output is the class
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """What tfvis reads of a model with several inputs or outputs (see :func:`set_image_input`).

    Attributes
    ----------
    image_input : str or None
        The name of the image input; None: the one input of rank 4 with 1 or 3 channels.
    held : dict of str to ndarray
        The values the other inputs hold (one example, without the batch axis); an input not
        named holds zeros.
    class_output : str or None
        The output layer whose values are the class scores; None: found (:func:`tfvis.targets.logits_layer`).
    """

    image_input: str | None = None
    held: dict = field(default_factory=dict)
    class_output: str | None = None


def layout(model: keras.Model) -> Layout:
    """The :class:`Layout` set on ``model`` (by :func:`set_image_input`, :func:`set_class_output`), or the default one."""
    found = getattr(model, "tfvis_layout", None)
    return found if isinstance(found, Layout) else Layout()


def _set_layout(model, value):
    model.tfvis_layout = value
    _CACHE.pop(model, None)  # the prepared model and everything compiled on it read the layout
    return model


def set_image_input(model: keras.Model, name: str | None = None, others: dict | None = None) -> keras.Model:
    """Name the image input of a model with several inputs, and the values its other inputs hold.

    Every method sees one input, the image: the prepared model (:func:`prepared`) holds each
    other input at a constant value, the same for every image of a batch.

    Parameters
    ----------
    model : keras.Model
        Changed in place: the choice is kept on the model (attribute ``tfvis_layout``).
    name : str, optional
        The image input's name (``model.inputs[i].name``). None: the one input of rank 4 with
        1 or 3 channels.
    others : dict of str to array_like, optional
        ``{input name: value}`` for the other inputs, one example each (without the batch axis).
        Inputs not given hold zeros.

    Returns
    -------
    keras.Model
        ``model``.

    Raises
    ------
    ValueError
        A name that is not one of the model's inputs (the message lists them).

    Examples
    --------
    >>> import keras, numpy as np
    >>> image, meta = keras.Input((8, 8, 3), name="image"), keras.Input((2,), name="meta")
    >>> pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="c")(image))
    >>> m = keras.Model([image, meta], keras.layers.Dense(3)(keras.layers.Concatenate()([pooled, meta])))
    >>> _ = set_image_input(m, "image", others={"meta": np.array([1.0, 0.5])})
    >>> [tuple(t.shape) for t in prepared(m).inputs]
    [(None, 8, 8, 3)]
    """
    names = [t.name for t in model.inputs]
    for given in ([name] if name is not None else []) + list(others or {}):
        if given not in names:
            raise ValueError(f"model {model.name!r} has no input {given!r}; its inputs: {_describe(model.inputs)}")
    held = {key: np.asarray(value) for key, value in (others or {}).items()}
    return _set_layout(model, replace(layout(model), image_input=name, held=held))


def set_class_output(model: keras.Model, name: str | None) -> keras.Model:
    """Name the output whose values are the class scores (class targets ``281``, ``"logits:281"``).

    For a model with several outputs (class scores and a regression head, say), when the one
    :func:`tfvis.targets.logits_layer` picks is not the right one.

    Parameters
    ----------
    model : keras.Model
        Changed in place (attribute ``tfvis_layout``).
    name : str or None
        The layer that produces the output (a Dense layer, or the softmax after it); None: found.

    Returns
    -------
    keras.Model
        ``model``.
    """
    return _set_layout(model, replace(layout(model), class_output=name))


def _describe(tensors):
    return ", ".join(f"{t.name} {tuple(t.shape)}" for t in as_list(tensors))


def _looks_like_image(tensor):
    return len(tensor.shape) == 4 and tensor.shape[-1] in (1, 3)


def image_input(model: keras.Model):
    """The image input of ``model``: the one it has, the one named (:func:`set_image_input`), or the rank-4 1- or 3-channel one.

    Raises
    ------
    ValueError
        Several inputs and none or several look like images; the message lists the inputs.
    """
    inputs = list(model.inputs)
    if len(inputs) == 1:
        return inputs[0]
    chosen = layout(model).image_input
    if chosen is not None:
        return next(t for t in inputs if t.name == chosen)
    images = [t for t in inputs if _looks_like_image(t)]
    if len(images) == 1:
        return images[0]
    raise ValueError(
        f"model {model.name!r} has inputs {_describe(inputs)}: {'none' if not images else 'several'} of them "
        "an image of 1 or 3 channels (N, H, W, C); name the image input: "
        f"tfvis.graph.set_image_input(model, {inputs[0].name!r})"
    )


def _half(dtype):
    return str(dtype) in ("float16", "bfloat16")


def _needs_float32(layers):
    """True when a layer computes in float16 or bfloat16, or holds half-precision weights."""
    return any(
        _half(getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32"))
        or any(_half(w.dtype) for w in layer.weights)
        for layer in layers
    )


def _leaves(model, path=()):
    """``(layer, path of nested model names)`` for every layer that is not a model, depth first."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            yield from _leaves(layer, path + (layer.name,))
        else:
            yield layer, path


def source_layer(model: keras.Model, name: str) -> keras.layers.Layer | None:
    """The layer of ``model`` (a nested model's included) that layer ``name`` of :func:`prepared` copies or is.

    For weight surgery: the prepared model reads its weights from this layer.

    Parameters
    ----------
    model : keras.Model
    name : str
        A layer name of the prepared model (``base.layer`` or ``base/layer`` where nested models
        share a name).

    Returns
    -------
    keras.layers.Layer or None
        None when no layer of ``model`` has that name (e.g. a split activation ``c_relu``).
    """
    wanted = str(name).replace("/", ".")
    try:
        names = _copy_names(model)
        leaves = list(_leaves(model))
    except AttributeError:  # no graph
        return None
    return next((layer for layer, _ in leaves if names[id(layer)] == wanted), None)


class HeldInput(keras.layers.Layer):
    """A model input held at a constant value: ``value`` repeated over the batch of the tensor it is called on.

    In the prepared model of a model with several inputs, each input other than the image is
    one of these, called on the image (which gives the batch size; no gradient flows back).
    """

    def __init__(self, value, value_dtype=None, **kwargs):
        super().__init__(**kwargs)
        self.value_dtype = str(value_dtype or np.asarray(value).dtype)
        self.value = np.asarray(value, dtype=self.value_dtype)

    def call(self, inputs):
        value = tf.constant(self.value, dtype=self.value_dtype)
        shape = tf.concat([tf.shape(inputs)[:1], tf.shape(value)], 0)
        return tf.broadcast_to(value[None], shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.value.shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0],) + self.value.shape, dtype=self.value_dtype)

    def get_config(self):
        return {**super().get_config(), "value": self.value.tolist(), "value_dtype": self.value_dtype}


def activation_layer(activation: str, layer_name: str, dtype=None) -> keras.layers.Layer:
    """The layer that applies a fused ``activation`` of layer ``layer_name`` on its own: ``<layer_name>_<activation>``."""
    name = f"{layer_name}_{activation}"
    if activation == "relu":
        return keras.layers.ReLU(name=name, dtype=dtype)
    if activation == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=name, dtype=dtype)
    return keras.layers.Activation(activation, name=name, dtype=dtype)


def split_activations(model: keras.Model) -> keras.Model:
    """Rewrite ``model`` so that every layer with a fused activation is linear and followed by it.

    ``Activation`` layers are left as they are: their output is already a post-activation tensor.

    A ``Conv2D(..., activation="relu", name="c")`` becomes ``Conv2D(name="c")`` followed by
    ``ReLU(name="c_relu")`` (``c_relu6`` for ReLU6, ``c_softmax`` for softmax, ...). Weights are
    copied, so outputs are unchanged; pre-activation values become reachable as the layer's output.
    This is the split rule of :func:`prepared`, as a model of its own (not flattened, not recast).

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
        return activation_layer(activation_name(original), layer.name)(outputs)

    rewritten_model = keras.models.clone_model(source, clone_function=clone_layer, call_function=call_layer)
    for layer in rewritten_model.layers:
        if layer.name in originals and originals[layer.name].weights:
            layer.set_weights(originals[layer.name].get_weights())
    return rewritten_model


class _Prepared:
    """The flat copy and the (user weight, copy weight) pairs that keep it in step; None: the model itself."""

    def __init__(self, flat, pairs):
        self.flat, self.pairs = flat, pairs

    def sync(self):
        for source, copy in self.pairs:
            copy.assign(source if source.dtype == copy.dtype else keras.ops.cast(source, copy.dtype))


def _is_plain(model):
    """True when ``model`` is its own prepared model: one input, no nested model, nothing fused, float32."""
    try:
        inputs = model.inputs
    except AttributeError:  # no graph (an unbuilt Sequential): the method that needs one says so
        return True
    if not inputs or len(inputs) != 1 or any(isinstance(layer, keras.Model) for layer in model.layers):
        return False
    return not any(has_fused_activation(layer) for layer in model.layers) and not _needs_float32(model.layers)


def _copy_names(model):
    """``id(layer) -> name in the flat copy``: its own name, or ``base.name`` where nested models share a name."""
    leaves = list(_leaves(model))
    owners = {}
    for layer, _ in leaves:
        owners.setdefault(layer.name, set()).add(id(layer))
    names = {}
    for layer, path in leaves:
        ambiguous = len(owners[layer.name]) > 1 and path
        names.setdefault(id(layer), ".".join(path + (layer.name,)) if ambiguous else layer.name)
    return names


def _flatten(model):
    """The flat, single-input, float32 copy of ``model`` with fused activations split (see :func:`prepared`)."""
    names = _copy_names(model)
    dtype = "float32" if _needs_float32([layer for layer, _ in _leaves(model)]) else None
    copies, pairs, aliases = {}, [], {}

    def copy_of(layer):
        """The layer itself (shared weights) where the flat model can call it as it is, else a copy."""
        if id(layer) in copies:
            return copies[id(layer)][1]
        fused, renamed = has_fused_activation(layer), names[id(layer)] != layer.name
        recast = dtype is not None and _needs_float32([layer])
        if not (fused or renamed or recast):
            copies[id(layer)] = (layer, layer)
            return layer
        config = layer.get_config()
        config["name"] = names[id(layer)]
        if fused:
            config["activation"] = "linear"
        attempts = ([{**config, "dtype": dtype}] if recast else []) + [config]
        copy = None
        for attempt in attempts:
            try:
                copy = layer.__class__.from_config(attempt)
                break
            except (TypeError, ValueError) as err:  # a custom layer that takes no dtype, a Lambda
                failure = err
        if copy is None and (fused or renamed):
            raise ValueError(
                f"tfvis needs a copy of layer {layer.name!r} ({type(layer).__name__}) to "
                f"{'split its activation' if fused else 'rename it ' + repr(names[id(layer)])}, and from_config() "
                f"failed: {failure}"
            ) from failure
        copies[id(layer)] = (layer, copy or layer)  # a layer that cannot be copied in float32 computes as it did
        return copies[id(layer)][1]

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.Model):
            return run(layer, keras.tree.flatten(args))
        if not isinstance(layer, keras.layers.Layer):  # a bare Keras operation (keras.ops in a functional graph)
            return layer(*args, **kwargs)
        copy = copy_of(layer)
        if getattr(copy, "_call_has_training_arg", False):
            kwargs["training"] = False  # BatchNorm and Dropout in inference mode, whatever the graph recorded
        outputs = copy(*args, **kwargs)
        if has_fused_activation(layer):
            outputs = activation_layer(activation_name(layer), copy.name, copy.dtype_policy)(outputs)
        return outputs

    def run(net, args):  # args: the list of tensors the model's inputs take
        if isinstance(net, keras.Sequential):
            x = args[0]
            for layer in net.layers:
                x = call(layer, x)
            outputs = x
        else:
            outputs = net._run_through_graph(args, operation_fn=lambda op: op, call_fn=call)
        if net is not model:
            last = producer(as_list(outputs)[0])
            if last is not None and len(as_list(outputs)) == 1 and net.name not in names.values():
                aliases[net.name] = last.name  # the nested model's name means its output
        return outputs

    image = image_input(model)
    chosen = layout(model)
    image_dtype = "float32" if _half(image.dtype) else image.dtype
    new_image = keras.Input(batch_shape=tuple(image.shape), dtype=image_dtype, name=image.name)
    feeds = []
    for tensor in model.inputs:
        if tensor is image:
            feeds.append(new_image)
            continue
        shape = tuple(tensor.shape[1:])
        value = chosen.held.get(tensor.name)
        if value is None:
            if any(d is None for d in shape):
                raise ValueError(
                    f"input {tensor.name!r} of model {model.name!r} has shape {tuple(tensor.shape)}; give the value it "
                    f"holds: tfvis.graph.set_image_input(model, {image.name!r}, others={{{tensor.name!r}: value}})"
                )
            value = np.zeros(shape)
        value_dtype = "float32" if _half(tensor.dtype) else tensor.dtype
        value = np.asarray(value, dtype=value_dtype)
        if value.ndim != len(shape) or any(d is not None and d != v for d, v in zip(shape, value.shape)):
            raise ValueError(f"the value held for input {tensor.name!r} has shape {value.shape}; the input takes {shape}")
        feeds.append(HeldInput(value, value_dtype, name=tensor.name, dtype=dtype)(new_image))
    outputs = as_list(run(model, feeds))
    flat = keras.Model(new_image, outputs[0] if len(outputs) == 1 else outputs, name=model.name)
    for original, copy in copies.values():
        if copy is original:
            continue
        if len(original.weights) != len(copy.weights) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in zip(original.weights, copy.weights)
        ):
            raise ValueError(f"the prepared copy of layer {original.name!r} does not hold the same weights as the layer")
        pairs.extend(zip(original.weights, copy.weights))
    flat.tfvis_layout = chosen
    flat.tfvis_aliases = aliases
    prepared_ = _Prepared(flat, pairs)
    prepared_.sync()
    return prepared_


def prepared(model: keras.Model) -> keras.Model:
    """The model every method works on: flat, one image input, float32, every fused activation split out.

    ``model`` itself when it already is all of these (the zoo). Otherwise a copy:

    * **fused activations split**: a ``Conv2D(..., activation="tanh", name="c")`` becomes ``c``
      (linear) followed by ``c_tanh``;
    * **nested models flattened**: a base model used as a layer (``Sequential([VGG16(...),
      GlobalAveragePooling2D(), Dense(k)])``) is replaced by its layers, reachable by their own
      names; where two nested models hold layers of one name (two copies of a base), those are
      named ``base.layer`` (Keras forbids ``/`` in names; targets may also write ``base/layer``),
      and a nested model's own name names its output;
    * **one input**: the image (:func:`image_input`); every other input holds the value given to
      :func:`set_image_input`, zeros by default;
    * **float32**: a model built under a ``mixed_float16`` or ``mixed_bfloat16`` policy (or with
      half-precision weights) is copied layer by layer in float32, with its weights cast. Mixed
      policies keep float32 weights, so the copy computes exactly what a float32 twin computes,
      and every method (gradient rules, the explicit deconvnet's transposed convolutions,
      optimisation) runs in the one dtype it was written for;
    * **inference mode**: every layer that takes ``training`` is called with ``training=False``.

    All outputs are kept (:func:`tfvis.targets.logits_layer` picks the class output). Cached per
    model (one copy however many methods use it); the copy's weights are re-synchronised from
    ``model`` at every call, so weight surgery done on ``model`` after the first call is seen.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="tanh", name="c")])
    >>> [layer.name for layer in prepared(m).layers][1:]
    ['c', 'c_tanh']
    """
    state = cached(model, "prepared", lambda: _Prepared(None, []) if _is_plain(model) else _flatten(model))
    if state.flat is None:
        return model
    state.sync()
    return state.flat


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


def rewrite(model: keras.Model, rules: Sequence[Callable] = ()) -> Walk:
    """Walk ``model``'s graph, calling its own layers, with the layers that ``rules`` claim replaced.

    ``keras.models.clone_model(..., clone_function=lambda layer: layer, call_function=...)`` calls
    each *original* layer (shared weights, no copies) on new symbolic inputs. A rule is a function
    ``layer -> replacement layer or None`` (see :mod:`tfvis.rules`); the first rule that answers
    wins, one replacement per layer however often it is called. Nested models are walked with the
    same rules. Walking the graph, rather than reading ``layer.output``, also serves layers shared
    with other models. Every layer that takes ``training`` is called with ``training=False``, even
    where the model's graph was built with ``training=True`` (BatchNorm's statistics never move). In Keras 3 this adds an inbound node to each layer called; node 0, which
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
        if getattr(layer, "_call_has_training_arg", False):
            kwargs["training"] = False  # inference mode, whatever the graph recorded (BatchNorm's statistics stay)
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


def rewritten(model: keras.Model, rules: Sequence[Callable] = ()) -> keras.Model:
    """``rewrite(model, rules).model``, cached per (model, rules)."""
    return cached(model, ("rewritten", tuple(rules)), lambda: rewrite(model, rules).model)


def _single(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def walk_to(model: keras.Model, layers: str | Sequence[str], rules: Sequence[Callable] = ()) -> tuple[keras.Model, Walk]:
    """``(net, walk)``: a model from ``model``'s input to the outputs of ``layers``, through :func:`rewrite`.

    Cached per (model, layers, rules). ``model`` is used as given (pass the prepared model).

    Raises
    ------
    ValueError
        A layer that is not on a path from the input (or unknown).
    """
    names = (layers,) if isinstance(layers, str) else tuple(layers)

    def build():
        canonical = [find_layer(model, name).name for name in names]  # aliases (base/layer) to layer names
        walk = rewrite(model, rules)
        missing = [n for n in canonical if n not in walk.outputs]
        if missing:
            raise ValueError(f"layers {missing} are not on a path from the input of model {model.name!r}")
        chosen = [_single(walk.outputs[n]) for n in canonical]
        inputs = walk.model.inputs[0] if len(walk.model.inputs) == 1 else walk.model.inputs
        suffix = "_".join(getattr(rule, "__name__", "rule") for rule in rules) or "plain"
        net = keras.Model(inputs, chosen[0] if isinstance(layers, str) else chosen, name=f"{model.name}_{suffix}")
        return net, walk

    return cached(model, ("walk", names, isinstance(layers, str), tuple(rules)), build)


def feature_net(model: keras.Model, layers: str | Sequence[str], rules: Sequence[Callable] = ()) -> keras.Model:
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


def free_input(net: keras.Model) -> keras.Model | None:
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


def as_list(outputs) -> list:
    """A model's outputs as a list (Keras returns a lone tensor for a one-element output list)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


__all__ = [
    "HeldInput",
    "Layout",
    "Walk",
    "activation_layer",
    "activation_name",
    "as_functional",
    "as_list",
    "cached",
    "feature_net",
    "free_input",
    "has_fused_activation",
    "image_input",
    "inbound",
    "layout",
    "prepared",
    "producer",
    "rewrite",
    "rewritten",
    "set_class_output",
    "set_image_input",
    "source_layer",
    "split_activations",
    "walk_to",
]
