"""Targets: what a method looks at, named the way users type it, resolved once against a model.

Every method of tfvis (deconvnet reconstructions, saliency, top-k, feature-visualization
objectives, weight surgery and the command lines) names what it looks at with one syntax:

==========================  =====================================================================
``"block4_conv3"``          a layer (its whole output)
``"block4_conv3:12"``       channel 12 of a layer (a dense layer's unit 12)
``"block4_conv3:12@3,5"``   the unit at row 3, column 5 of channel 12's map
``281`` or ``"logits:281"`` class 281: the unnormalised class score (see :func:`logits_layer`)
==========================  =====================================================================

A layer is named by the name Keras gave it, any layer of the model. Layer names refer to the
*prepared* model (:func:`tfvis.graph.prepared`): a fused activation is split out, so
``"c"`` is the pre-activation output of layer ``c`` and ``"c_relu"`` (``c_tanh``, ...) the
post-activation one, in every module.

On the command line several targets are separated by ``;`` or spaces; a comma separates the
coordinates of a position, never two targets (a comma-separated list without any ``@`` position
is still read as a list, as older commands wrote it).

Examples
--------
>>> parse("block4_conv3:12@3,5")
Target(layer='block4_conv3', index=12, position=(3, 5))
>>> parse(281).is_class
True
>>> [str(t) for t in parse_list("281; block5_conv3:12@3,5")]
['logits:281', 'block5_conv3:12@3,5']
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .graph import activation_name, as_list, layout, producer
from .layer_lookup import find_layer

#: The pseudo layer name of the class scores: ``"logits:281"`` is class 281.
LOGITS = "logits"

_SYNTAX = "'layer', 'layer:channel', 'layer:channel@y,x', a class index or 'logits:class'"


@dataclass(frozen=True)
class Target:
    """A parsed target: a layer, optionally a channel (or dense unit, or class) and a unit position.

    Attributes
    ----------
    layer : str
        Layer name, or :data:`LOGITS` for a class.
    index : int or None
        Channel, dense unit or class index; None for the whole layer.
    position : tuple of int or None
        Coordinates of one unit in the channel's map; None for the whole channel.
    """

    layer: str
    index: int | None = None
    position: tuple | None = None

    @property
    def is_class(self):
        """True for a class score (``281`` or ``"logits:281"``; a bare ``"logits"`` is a layer name)."""
        return self.layer == LOGITS and self.index is not None

    def __str__(self):
        text = self.layer if self.index is None else f"{self.layer}:{self.index}"
        if self.position is not None:
            text += "@" + ",".join(str(p) for p in self.position)
        return text


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def parse(spec: Target | int | str) -> Target:
    """Parse one target: a :class:`Target`, an int class index or a string of the target syntax.

    Parameters
    ----------
    spec : Target, int or str
        ``"layer"``, ``"layer:channel"``, ``"layer:channel@y,x"``, a class index (int or digits)
        or ``"logits:class"``.

    Returns
    -------
    Target

    Raises
    ------
    ValueError
        Text that does not follow the syntax; the message shows the valid forms.

    Examples
    --------
    >>> parse("conv1:3")
    Target(layer='conv1', index=3, position=None)
    >>> parse("281")
    Target(layer='logits', index=281, position=None)
    """
    if isinstance(spec, Target):
        return spec
    if _is_int(spec):
        return Target(LOGITS, int(spec))
    if not isinstance(spec, str):
        raise ValueError(f"target {spec!r}: use {_SYNTAX}")
    text = spec.strip()
    if re.fullmatch(r"\d+", text):
        return Target(LOGITS, int(text))
    head, at, where = text.partition("@")
    name, colon, index = head.rpartition(":") if ":" in head else (head, "", "")
    if not name or (colon and not re.fullmatch(r"-?\d+", index.strip())):
        raise ValueError(f"target {spec!r}: use {_SYNTAX}, with an integer channel")
    index = int(index) if colon else None
    position = None
    if at:
        if index is None:
            raise ValueError(f"target {spec!r}: a position needs a channel, e.g. '{name}:0@{where}'")
        try:
            position = tuple(int(v) for v in where.split(","))
        except ValueError:
            raise ValueError(f"target {spec!r}: the position after '@' must be integers, e.g. '{head}@3,4'") from None
    if index is not None and index < 0:
        raise ValueError(f"target {spec!r}: the channel must be a non-negative integer")
    return Target(name.strip(), index, position)


def parse_list(spec: str | Sequence[str]) -> list[Target]:
    """Several targets from command-line text: separated by ``;`` or whitespace.

    A comma belongs to a position (``@y,x``). Text without any ``@`` may still separate targets
    with commas (``"281,block5_conv3:12"``); mixing commas between targets with positions is refused,
    because ``"a:1@3,5"`` could not be told from two targets.

    Parameters
    ----------
    spec : str or sequence
        Text, or a sequence of texts (e.g. a repeated command-line option), each split as above.

    Returns
    -------
    list of Target

    Examples
    --------
    >>> [str(t) for t in parse_list("block5_conv3:1@3,5 block4_conv3:2;7")]
    ['block5_conv3:1@3,5', 'block4_conv3:2', 'logits:7']
    >>> [str(t) for t in parse_list("281,block5_conv3:12")]
    ['logits:281', 'block5_conv3:12']
    """
    parts = [spec] if isinstance(spec, str) else list(spec)
    targets = []
    for part in parts:
        for piece in filter(None, re.split(r"[;\s]+", str(part).strip())):
            if "@" not in piece:
                targets.extend(parse(p) for p in piece.split(",") if p)
            elif piece.count("@") > 1 or "," in piece.partition("@")[0] or re.search(r"@[^,]*,[^,]*,.*:", piece):
                raise ValueError(f"targets {piece!r}: separate several targets with ';' or spaces when they have '@' positions")
            else:
                targets.append(parse(piece))
    return targets


# --------------------------------------------------------------------------------------------
# Resolving against a model
# --------------------------------------------------------------------------------------------


def _is_softmax(layer):
    if isinstance(layer, keras.layers.Softmax):
        return True
    return isinstance(layer, keras.layers.Activation) and activation_name(layer) == "softmax"


@dataclass(frozen=True)
class Logits:
    """Where a model's class scores are: ``layer``'s output, through ``head`` when it is not None.

    ``head`` is a Dense layer with a fused softmax whose *pre-activation* gives the scores: it is
    applied to ``layer``'s output inside the graph (kernel and bias only).
    """

    layer: str
    classes: int
    head: object = None


def apply_head(act: tf.Tensor, head: keras.layers.Dense | None) -> tf.Tensor:
    """Class scores from ``act``, the input of a fused-softmax Dense ``head``: its kernel and bias, no softmax.

    ``head=None`` (the scores are ``act`` itself) returns ``act``. Graph code (TensorFlow ops).
    """
    if head is None:
        return act
    act = tf.matmul(act, tf.cast(head.kernel, act.dtype))
    return act + tf.cast(head.bias, act.dtype) if head.use_bias else act


def _scores_of(model, output):
    """The :class:`Logits` of one output tensor, or a ``ValueError`` saying why it holds no class scores."""
    no_class = (
        f"model {model.name!r} has no class output (a Dense layer, optionally followed by a softmax, "
        "at the end of the model); use a 'layer:channel' target, or a model with its top"
    )
    last = producer(output)
    softmaxes = 0
    # walk back over the final softmax and linear activations (a split softmax leaves one of each)
    while last is not None and (
        _is_softmax(last) or (isinstance(last, keras.layers.Activation) and activation_name(last) is None)
    ):
        softmaxes += _is_softmax(last)
        last = producer(last.input)
    if softmaxes > 1 or not isinstance(last, keras.layers.Dense):
        raise ValueError(no_class)
    activation = activation_name(last)
    if activation is None:
        return Logits(last.name, int(last.units))
    if activation == "softmax":  # fused: read the Dense input, apply the kernel in the graph
        source = producer(last.input)
        if source is None or len(source.output.shape) != 2:
            raise ValueError(no_class)
        return Logits(source.name, int(last.units), last)
    raise ValueError(no_class + f" (its last Dense layer {last.name!r} has activation {activation!r})")


def _output_chain(output):
    """Names of the layers from ``output`` back over its final activations to the first other layer."""
    names, last = [], producer(output)
    while last is not None:
        names.append(last.name)
        if not isinstance(last, (keras.layers.Activation, keras.layers.Softmax)):
            break
        last = producer(last.input)
    return names


def _ends_in_softmax(output):
    last = producer(output)
    return last is not None and (_is_softmax(last) or activation_name(last) == "softmax")


def logits_layer(model: keras.Model) -> Logits:
    """The layer of ``model``'s unnormalised class scores (logits).

    The last Dense layer before the model's final softmax (a ``Softmax`` layer, an
    ``Activation("softmax")``, or a fused softmax, whose pre-activation is then used); a model
    ending in a linear Dense layer is taken to output logits.

    A model with several outputs: the output named by :func:`tfvis.graph.set_class_output`; with
    none named, the first output that ends in a softmax, else the first linear Dense output of
    more than one unit (a one-unit output is taken for a regression or a binary score, not classes).

    Parameters
    ----------
    model : keras.Model
        Usually the prepared model (:func:`tfvis.graph.prepared`).

    Returns
    -------
    Logits

    Raises
    ------
    ValueError
        The model has no class output; with several outputs the message lists them.
    """
    outputs = as_list(model.outputs)
    named = layout(model).class_output
    listed = ", ".join(f"{producer(o).name if producer(o) else o.name} {tuple(o.shape)}" for o in outputs)
    if named is not None:
        aliases = getattr(model, "tfvis_aliases", {})
        wanted = {named, aliases.get(named, named), named.replace("/", ".")}
        chosen = [o for o in outputs if wanted & set(_output_chain(o))]
        if not chosen:
            raise ValueError(f"class output {named!r} is not an output layer of model {model.name!r}; its outputs: {listed}")
        return _scores_of(model, chosen[0])
    if len(outputs) == 1:
        return _scores_of(model, outputs[0])
    candidates = []
    for output in outputs:
        try:
            candidates.append((output, _scores_of(model, output)))
        except ValueError:
            continue
    for keep in (lambda o, s: _ends_in_softmax(o), lambda o, s: s.classes > 1):
        for output, scores in candidates:
            if keep(output, scores):
                return scores
    raise ValueError(
        f"model {model.name!r} has outputs {listed} and none looks like class scores (a softmax, or a Dense layer "
        "of several units); name one: tfvis.graph.set_class_output(model, name), or use a 'layer:channel' target"
    )


@dataclass(frozen=True)
class Resolved:
    """A target checked against a model: the tensor it names and how to read it.

    Attributes
    ----------
    target : Target
    layer : str
        The layer whose output carries the target (the logits layer for a class).
    channels : int
        Channels (or units, or classes) of that output.
    spatial : tuple
        The spatial shape of the output without batch and channels (``()`` for dense outputs);
        None where the size depends on the input.
    head : keras.layers.Dense or None
        A Dense layer with a fused softmax whose pre-activation gives class scores.
    """

    target: Target
    layer: str
    channels: int
    spatial: tuple
    head: object = None

    @property
    def index(self):
        return self.target.index

    @property
    def position(self):
        return self.target.position

    @property
    def kind(self):
        """``"layer"``, ``"class"``, ``"unit"`` (a dense unit or a spatial unit) or ``"channel"`` (a map)."""
        if self.target.index is None:
            return "layer"
        if self.target.is_class:
            return "class"
        if self.position is not None or not self.spatial:
            return "unit"
        return "channel"

    @property
    def key(self):
        """What compiled functions are specialised on: layer, kind, position rank and head."""
        rank = 0 if self.position is None else len(self.position)
        return (self.layer, self.kind, rank, None if self.head is None else self.head.name)


def _output_shape(layer):
    output = layer.output
    if isinstance(output, (list, tuple)):
        raise ValueError(f"layer {layer.name!r} has {len(output)} outputs; name a layer with one output")
    return tuple(output.shape)


def resolve(model: keras.Model, target: Target | int | str, require_index: bool = False) -> Resolved:
    """Check ``target`` against ``model`` and say which tensor it names.

    Parameters
    ----------
    model : keras.Model
        The model the target is read on, normally :func:`tfvis.graph.prepared` of the user's model.
    target : Target, int or str
        See :func:`parse`.
    require_index : bool
        Refuse a whole-layer target (a method that needs a channel, unit or class).

    Returns
    -------
    Resolved

    Raises
    ------
    ValueError
        An unknown layer (the message names the valid ones), a channel or class out of range
        (the message gives the range), a position of the wrong rank or outside the map.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")])
    >>> resolve(m, "c:2@1,1").kind
    'unit'
    """
    target = parse(target)
    if target.is_class and target.index is not None:
        logits = logits_layer(model)
        if not 0 <= target.index < logits.classes:
            raise ValueError(f"class index {target.index} out of range: model {model.name!r} has classes 0..{logits.classes - 1}")
        if target.position is not None:
            raise ValueError(f"target {target}: a class score has no position")
        return Resolved(target, logits.layer, logits.classes, (), logits.head)
    layer = find_layer(model, target.layer)
    shape = _output_shape(layer)
    channels = shape[-1] if len(shape) > 1 else None
    spatial = tuple(shape[1:-1])
    if target.index is None:
        if require_index:
            raise ValueError(f"target {target}: expected 'layer:channel', e.g. '{target.layer}:0'")
        return Resolved(target, layer.name, channels, spatial)
    if channels is None or not 0 <= target.index < channels:
        valid = f"channels 0..{channels - 1}" if channels else "no channel axis"
        raise ValueError(f"target {target}: layer {target.layer!r} has {valid}; got {target.index}")
    if target.position is not None:
        if not spatial:
            raise ValueError(f"target {target}: layer {target.layer!r} has no spatial map; drop the '@' position")
        if len(target.position) != len(spatial):
            raise ValueError(f"target {target}: layer {target.layer!r} needs {len(spatial)} coordinates")
        check_position(target.position, spatial, target.layer)
    return Resolved(target, layer.name, int(channels), spatial)


def check_position(position: Sequence[int], spatial: Sequence[int | None], layer: str) -> None:
    """Raise ``ValueError`` when ``position`` lies outside a map of shape ``spatial`` (None: unknown size)."""
    for p, size in zip(position, spatial):
        if p < 0 or (size is not None and p >= size):
            raise ValueError(f"position {tuple(position)}: outside layer {layer!r}, whose map is {tuple(spatial)}")


def per_image(targets, count: int) -> list[Target]:
    """One target per image: ``targets`` repeated ``count`` times, or a sequence of ``count`` targets, parsed."""
    if isinstance(targets, (list, tuple, np.ndarray)):
        if len(targets) != count:
            raise ValueError(f"got {len(targets)} targets for {count} images; give one target, or one per image")
        return [parse(t.item() if isinstance(t, np.generic) else t) for t in targets]
    return [parse(targets)] * count


def resolve_many(model: keras.Model, targets, count: int, require_index: bool = True) -> list[Resolved]:
    """One :class:`Resolved` per image: one target for all ``count`` images, or a sequence of one per image.

    Raises
    ------
    ValueError
        A sequence of the wrong length, or targets of different layers or kinds (one compiled call
        serves one layer and kind).
    """
    cache, resolved = {}, []
    for key in per_image(targets, count):
        if key not in cache:
            cache[key] = resolve(model, key, require_index)
        resolved.append(cache[key])
    if resolved:
        first = resolved[0]
        for other in resolved[1:]:
            if other.key != first.key:
                raise ValueError(
                    f"targets {str(first.target)!r} and {str(other.target)!r} differ in layer or kind; one call takes "
                    "targets of one layer and kind (e.g. all class indices, or all 'layer:channel' of one layer)"
                )
    return resolved


# find_layer (imported above from the leaf module tfvis.layer_lookup) stays importable from here, where it was defined.

#: ``tfvis.parse_target`` and ``tfvis.resolve_target``: the names these have at the package's top level.
parse_target = parse
resolve_target = resolve

__all__ = [
    "LOGITS",
    "Logits",
    "Resolved",
    "Target",
    "apply_head",
    "check_position",
    "find_layer",
    "logits_layer",
    "parse",
    "parse_list",
    "parse_target",
    "per_image",
    "resolve",
    "resolve_many",
    "resolve_target",
]
