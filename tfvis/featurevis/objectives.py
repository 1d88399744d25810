"""Objectives for feature visualization: scalar functions of layer outputs, maximised by :func:`render`.

An :class:`Objective` declares the layers it reads (:attr:`Objective.layers`) and maps a dict
``{layer name: output (B, ..., C)}`` to a scalar. Objectives compose::

    objective = channel("block4_conv3:12") - 0.5 * channel("block4_conv3:3") + 1e-2 * diversity("block4_conv3")

``batch=i`` restricts an objective to image ``i`` of the batch (``None``: the mean over the
batch). A target (:mod:`tfvis.targets`) stands for its objective wherever an objective is taken:
``"layer:n"`` for ``channel("layer:n")``, ``"layer:n@y,x"`` for ``neuron("layer:n@y,x")``, a class
(``281``, ``"281"``, ``"logits:281"``) for ``class_logit(281)``. Layers are named on the prepared
model (:func:`tfvis.graph.prepared`): a named conv layer is the pre-activation value, and
``<name>_relu`` (``<name>_tanh``, ...) the post-activation one, whether the activation is a layer of
its own (the zoo) or fused into the convolution.

The pseudo layer :data:`LOGITS` stands for the model's class scores, found by
:func:`tfvis.targets.logits_layer` (see :func:`class_logit`).
"""

import numbers

import numpy as np
import tensorflow as tf

from .. import targets

#: Pseudo layer name of the class scores (:data:`tfvis.targets.LOGITS`): the logits before the final softmax.
LOGITS = targets.LOGITS


class Objective:
    """A scalar to maximise, computed from the outputs of named layers.

    Parameters
    ----------
    fn : callable
        ``fn(acts) -> scalar tensor``, where ``acts`` maps layer names to outputs ``(B, ..., C)``.
    layers : sequence of str
        The layers ``fn`` reads.
    name : str
        A readable description.
    checks : sequence of callable, optional
        ``check(shapes)`` functions raising ``ValueError`` for outputs of the wrong shape
        (``shapes`` maps layer names to output shapes without the batch axis).
    batch_indices : sequence of int, optional
        Batch indices the objective reads (to check them against the batch size).

    Examples
    --------
    >>> (2 * channel("c:0") - channel("c:1")).layers
    ('c',)
    """

    def __init__(self, fn, layers, name, checks=(), batch_indices=()):
        self.fn = fn
        self.layers = tuple(dict.fromkeys(layers))
        self.name = name
        self.checks = tuple(checks)
        self.batch_indices = tuple(sorted(set(batch_indices)))

    def __call__(self, acts):
        return self.fn(acts)

    def check(self, shapes, batch_size=None):
        """Raise ``ValueError`` if the outputs' shapes or the batch size don't suit this objective."""
        for check in self.checks:
            check(shapes)
        if batch_size is not None and self.batch_indices and self.batch_indices[-1] >= batch_size:
            raise ValueError(
                f"objective {self.name} uses batch index {self.batch_indices[-1]}, "
                f"but the batch has {batch_size} image(s) (indices 0..{batch_size - 1})"
            )

    def _combine(self, other, fn, name):
        other = as_objective(other)
        return Objective(
            lambda acts: fn(self(acts), other(acts)),
            self.layers + other.layers,
            name,
            self.checks + other.checks,
            self.batch_indices + other.batch_indices,
        )

    def _scaled(self, factor, name):
        factor = float(factor)
        return Objective(lambda acts: factor * self(acts), self.layers, name, self.checks, self.batch_indices)

    def __add__(self, other):
        if isinstance(other, numbers.Number):
            value = float(other)
            return Objective(
                lambda acts: self(acts) + value, self.layers, f"({self.name} + {value})", self.checks, self.batch_indices
            )
        return self._combine(other, lambda a, b: a + b, f"({self.name} + {_name(other)})")

    def __radd__(self, other):
        if isinstance(other, numbers.Number) and other == 0:  # sum([...])
            return self
        return self.__add__(other)

    def __sub__(self, other):
        if isinstance(other, numbers.Number):
            return self + (-float(other))
        return self._combine(other, lambda a, b: a - b, f"({self.name} - {_name(other)})")

    def __rsub__(self, other):
        return (-self) + other

    def __neg__(self):
        return self._scaled(-1.0, f"-{self.name}")

    def __mul__(self, factor):
        if not isinstance(factor, numbers.Number):
            raise TypeError(f"an objective can be multiplied by a number only, not {type(factor).__name__}")
        return self._scaled(factor, f"{float(factor):g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, factor):
        if not isinstance(factor, numbers.Number):
            raise TypeError(f"an objective can be divided by a number only, not {type(factor).__name__}")
        return self._scaled(1.0 / float(factor), f"{self.name} / {float(factor):g}")

    def on(self, index):
        """This objective evaluated on image ``index`` of the batch only.

        Parameters
        ----------
        index : int
            Batch index.

        Returns
        -------
        Objective

        Raises
        ------
        ValueError
            If the objective already reads given batch images (``batch=`` was set inside it).

        Examples
        --------
        >>> channel("c:3").on(2).batch_indices
        (2,)
        """
        index = _index(index)
        if self.batch_indices:
            raise ValueError(
                f"objective {self.name} already reads batch image(s) {list(self.batch_indices)}; "
                f"it cannot also be restricted to image {index} (drop one of the batch indices)"
            )
        return Objective(
            lambda acts: self({k: v[index : index + 1] for k, v in acts.items()}),
            self.layers,
            f"{self.name}@{index}",
            self.checks,
            (index,),
        )

    def __repr__(self):
        return f"Objective({self.name})"


def _name(objective):
    return objective.name if isinstance(objective, Objective) else str(objective)


def _index(index):
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"batch={index!r}: give a non-negative image index, or None for the whole batch")
    return int(index)


def as_objective(objective):
    """An :class:`Objective` from an objective or a target (:mod:`tfvis.targets`).

    ``"layer:n"`` gives :func:`channel`, ``"layer:n@y,x"`` :func:`neuron`, a class (``281``,
    ``"logits:281"``) :func:`class_logit`.

    Parameters
    ----------
    objective : Objective, str, int or tfvis.targets.Target

    Returns
    -------
    Objective

    Examples
    --------
    >>> as_objective("block4_conv3:7").name
    'channel(block4_conv3:7)'
    >>> as_objective("block4_conv3:7@3,5").name
    'neuron(block4_conv3:7, x=5, y=3)'
    >>> as_objective(281).name
    'class_logit(281)'
    """
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, (str, numbers.Integral, targets.Target)) and not isinstance(objective, bool):
        return channel(objective)
    raise ValueError(
        f"objective {objective!r}: use an Objective (tfvis.featurevis.objectives), a 'layer:channel' string or a class index"
    )


def _leaf(fn, layer, name, batch, checks=()):
    """An objective reading ``layer``, restricted to image ``batch`` when it is not None."""
    objective = Objective(lambda acts: fn(acts[layer]), [layer], name, checks)
    return objective if batch is None else objective.on(batch)


def _split(target, n):
    """A :class:`tfvis.targets.Target` with a channel, from ``"layer:n"`` (any target form) or ``("layer", n)``."""
    if n is None:
        parsed = targets.parse(target)
        if parsed.index is None:
            raise ValueError(f"target {target!r}: expected 'layer:channel', e.g. '{target}:0'")
        return parsed
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)) or n < 0:
        raise ValueError(f"n={n!r}: give a non-negative integer channel")
    return targets.Target(str(target), int(n))


def _channel_check(layer, n, text):
    def check(shapes):
        channels = shapes[layer][-1]
        if channels is not None and not 0 <= n < channels:
            raise ValueError(f"{text}: layer {layer!r} has channels 0..{channels - 1}; got {n}")

    return check


def _spatial_check(layer, text):
    def check(shapes):
        if len(shapes[layer]) != 3:
            raise ValueError(f"{text}: layer {layer!r} has no 2-D spatial map (output shape {shapes[layer]})")

    return check


def channel(target, n=None, batch=None):
    """The mean of one channel of a layer over positions (and over the batch).

    A target with a position (``"layer:n@y,x"``) gives that unit's :func:`neuron`; a class
    (``"logits:281"``, ``281``) its :func:`class_logit`.

    Parameters
    ----------
    target : str, int or tfvis.targets.Target
        ``"layer:n"``, or the layer name with ``n`` given.
    n : int, optional
        Channel index when ``target`` is a layer name.
    batch : int, optional
        Image of the batch; None for the mean over the batch.

    Returns
    -------
    Objective

    Examples
    --------
    >>> channel("block4_conv3:12").layers
    ('block4_conv3',)
    >>> channel("logits:281").name
    'class_logit(281)'
    """
    parsed = _split(target, n)
    if parsed.is_class:
        return class_logit(parsed.index, batch)
    if parsed.position is not None:
        return neuron(parsed, batch=batch)
    layer, n = parsed.layer, parsed.index
    text = f"channel({layer}:{n})"
    return _leaf(lambda act: tf.reduce_mean(act[..., n]), layer, text, batch, [_channel_check(layer, n, text)])


def neuron(target, x=None, y=None, n=None, batch=None):
    """One unit of a channel map: column ``x``, row ``y`` (the centre by default).

    Parameters
    ----------
    target : str or tfvis.targets.Target
        ``"layer:n"``, ``"layer:n@y,x"`` (the unit at row ``y``, column ``x``), or the layer name
        with ``n`` given.
    x, y : int, optional
        Column and row in the layer's map; default the target's position, else the map's centre
        ``(W // 2, H // 2)``.
    n : int, optional
        Channel index when ``target`` is a layer name.
    batch : int, optional
        Image of the batch; None for the mean over the batch.

    Returns
    -------
    Objective

    Examples
    --------
    >>> neuron("block4_conv3:12", 3, 4).name
    'neuron(block4_conv3:12, x=3, y=4)'
    >>> neuron("block4_conv3:12@4,3").name
    'neuron(block4_conv3:12, x=3, y=4)'
    """
    parsed = _split(target, n)
    if parsed.is_class:
        raise ValueError(f"neuron({target!r}): a class score has no map; use class_logit({parsed.index})")
    layer, n = parsed.layer, parsed.index
    if parsed.position is not None:
        if len(parsed.position) != 2:
            raise ValueError(f"neuron({target!r}): give the position as '@y,x' (row, column)")
        if x is not None or y is not None:
            raise ValueError(f"neuron({target!r}, x={x}, y={y}): give the position once, in the target or as x and y")
        y, x = parsed.position
    where = "centre" if x is None and y is None else f"x={x}, y={y}"
    text = f"neuron({layer}:{n}, {where})"

    def value(act):
        h, w = act.shape[1], act.shape[2]
        row = h // 2 if y is None else int(y)
        col = w // 2 if x is None else int(x)
        return tf.reduce_mean(act[:, row, col, n])

    def inside(shapes):
        h, w = shapes[layer][0], shapes[layer][1]
        for name, v, size in (("x", x, w), ("y", y, h)):
            if v is not None and size is not None and not 0 <= int(v) < size:
                raise ValueError(f"{text}: {name}={v} is outside layer {layer!r}'s map ({h} x {w}) at this size")

    checks = [_spatial_check(layer, text), _channel_check(layer, n, text), inside]
    return _leaf(value, layer, text, batch, checks)


def layer(name, batch=None):
    """DeepDream: the mean of the squared outputs of a layer.

    Parameters
    ----------
    name : str
        Layer name.
    batch : int, optional
        Image of the batch; None for the mean over the batch.

    Returns
    -------
    Objective

    Examples
    --------
    >>> layer("block4_conv3").name
    'layer(block4_conv3)'
    """
    return _leaf(lambda act: tf.reduce_mean(tf.square(act)), name, f"layer({name})", batch)


deepdream = layer


def direction(name, vector, batch=None):
    """The mean over positions of the dot product of a layer's output with ``vector``.

    Parameters
    ----------
    name : str
        Layer name.
    vector : array_like, shape (C,)
        A direction in the layer's channel space.
    batch : int, optional
        Image of the batch; None for the mean over the batch.

    Returns
    -------
    Objective

    Examples
    --------
    >>> direction("block4_conv3", np.ones(512)).layers
    ('block4_conv3',)
    """
    vector = np.asarray(vector, np.float32).reshape(-1)
    text = f"direction({name})"

    def check(shapes):
        if shapes[name][-1] != vector.size:
            raise ValueError(f"{text}: vector has {vector.size} entries, layer {name!r} has {shapes[name][-1]} channels")

    def value(act):
        return tf.reduce_mean(tf.tensordot(act, tf.constant(vector, act.dtype), axes=1))

    return _leaf(value, name, text, batch, [check])


def class_logit(n, batch=None):
    """The unnormalised score of class ``n`` (the logit before the model's final softmax).

    The scores are those of :func:`tfvis.targets.logits_layer`: the last Dense layer before the
    model's final softmax.

    Parameters
    ----------
    n : int or str
        Class index (``281``, ``"281"`` or ``"logits:281"``).
    batch : int, optional
        Image of the batch; None for the mean over the batch.

    Returns
    -------
    Objective

    Examples
    --------
    >>> class_logit(281).layers
    ('logits',)
    >>> class_logit("logits:281").name
    'class_logit(281)'
    """
    parsed = targets.parse(n)
    if not parsed.is_class or parsed.index is None or parsed.position is not None:
        raise ValueError(f"class_logit({n!r}): give a class index, e.g. 281 or 'logits:281'")
    n = parsed.index
    text = f"class_logit({n})"
    return _leaf(lambda logits: tf.reduce_mean(logits[:, n]), LOGITS, text, batch, [_channel_check(LOGITS, n, text)])


def _gram(act):
    """Per-image Gram matrices of the channels, flattened: ``(B, C * C)``."""
    b, c = tf.shape(act)[0], act.shape[-1]
    flat = tf.reshape(act, [b, -1, c])
    gram = tf.matmul(flat, flat, transpose_a=True) / tf.cast(tf.shape(flat)[1], act.dtype)
    return tf.reshape(gram, [b, c * c])


def _pairwise_cosine(vectors):
    unit = tf.math.l2_normalize(vectors, axis=1)
    return tf.matmul(unit, unit, transpose_b=True)


def diversity(name):
    """Minus the mean pairwise cosine similarity of the images' flattened Gram matrices at a layer.

    Pushes the images of a batch apart in style; 0 for a batch of one.

    Parameters
    ----------
    name : str
        Layer name.

    Returns
    -------
    Objective

    Examples
    --------
    >>> objective = channel("block4_conv3:3") + 1e2 * diversity("block4_conv3")
    """

    def value(act):
        b = tf.shape(act)[0]
        sims = _pairwise_cosine(_gram(act))
        off_diagonal = tf.reduce_sum(sims) - tf.linalg.trace(sims)
        pairs = tf.cast(b * (b - 1), act.dtype)
        return -tf.math.divide_no_nan(off_diagonal, pairs)

    return Objective(lambda acts: value(acts[name]), [name], f"diversity({name})")


def alignment(name, decay_ratio=2.0):
    """Pull neighbouring images of a batch together: minus ``sum_d mean((a_i - a_{i+d})^2) / decay_ratio^d``.

    Use it when rendering a sequence (e.g. interpolations) that should change smoothly.

    Parameters
    ----------
    name : str
        Layer name.
    decay_ratio : float
        How fast the weight of a pair falls with its distance ``d`` in the batch.

    Returns
    -------
    Objective

    Examples
    --------
    >>> alignment("block4_conv3").name
    'alignment(block4_conv3)'
    """

    def value(act):
        b = act.shape[0]
        total = tf.constant(0.0, act.dtype)
        for d in range(1, b or 1):
            total += tf.reduce_mean(tf.square(act[d:] - act[:-d])) * (b - d) / decay_ratio**d
        return -total

    return Objective(lambda acts: value(acts[name]), [name], f"alignment({name})")


def caricature(name, activations=None, power=2.0, batch=None, normalize=False):
    """``dot(act(X), A) * max(cossim(act(X), A), 0.1) ** power``: match an image's activations ``A``.

    Rewards magnitude along ``A`` and, through the power of the cosine, the direction of the
    activation vector (Lucid's caricatures). The cosine is floored at 0.1 so that an odd or
    fractional power stays defined and a wrong direction is never rewarded.

    With ``activations=None`` the references are in the batch itself, Lucid's way: the batch is
    ``2 N`` images, the renders followed by the photos, and render ``i`` is matched to the
    activations of image ``N + i`` (held fixed: no gradient flows into them), so that both went
    through the same random transforms (:func:`tfvis.featurevis.caricature`).

    Parameters
    ----------
    name : str
        Layer name.
    activations : array_like, shape (H', W', C) or (B, H', W', C), optional
        The target activations at the layer, one per image of the batch (or one for all).
        Resized bilinearly when the rendered map's size differs. None: the second half of the batch.
    power : float
        Exponent of the cosine similarity, about 1 to 4.
    batch : int, optional
        Image of the batch; None for every image (image ``i`` matched to ``activations[i]``).
        Not with ``activations=None``.
    normalize : bool
        Divide each dot product by ``|A|^2``, so that the value is 1 where ``act(X) = A`` whatever
        the layer's scale (e.g. to weigh a penalty against it).

    Returns
    -------
    Objective

    Examples
    --------
    >>> caricature("block4_conv3", np.ones((8, 8, 512))).name
    'caricature(block4_conv3, power=2)'
    >>> caricature("block4_conv3", power=4).name
    'caricature(block4_conv3, power=4, stacked)'
    """
    normalize = bool(normalize)

    def score(x, a):
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        a = tf.reshape(a, [tf.shape(a)[0], -1])
        dot = tf.reduce_sum(x * a, axis=1)
        cos = dot / (tf.norm(x, axis=1) * tf.norm(a, axis=1) + 1e-6)
        if normalize:
            dot = dot / (tf.reduce_sum(a * a, axis=1) + 1e-6)
        return tf.reduce_mean(dot * tf.maximum(cos, 0.1) ** power)

    if activations is None:
        if batch is not None:
            raise ValueError("caricature with the references in the batch (activations=None) reads every image; drop batch")
        text = f"caricature({name}, power={power:g}, stacked)"

        def stacked(acts):
            act = acts[name]
            n = act.shape[0] // 2 if act.shape[0] is not None else tf.shape(act)[0] // 2
            return score(act[:n], tf.stop_gradient(act[n:]))

        return Objective(stacked, [name], text)

    target = np.asarray(activations, np.float32)
    if target.ndim not in (3, 4):
        raise ValueError(f"activations of shape {target.shape}: expected (H, W, C) or (B, H, W, C)")
    if target.ndim == 3:
        target = target[None]
    if batch is not None and len(target) > 1:
        target = target[_index(batch) : _index(batch) + 1]
    text = f"caricature({name}, power={power:g})"

    def check(shapes):
        if tuple(shapes[name][-1:]) != target.shape[-1:] or len(shapes[name]) != target.ndim - 1:
            raise ValueError(f"{text}: activations of shape {target.shape[1:]} don't match layer {name!r} ({shapes[name]})")

    def value(act):
        a = tf.constant(target, act.dtype)
        if a.shape[1:3] != act.shape[1:3] and act.shape.rank == 4:
            a = tf.image.resize(a, act.shape[1:3], method="bilinear")
        return score(act, a)

    return _leaf(value, name, text, batch, [check])
