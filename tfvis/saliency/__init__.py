"""Gradient saliency maps, Grad-CAM and class model visualization.

Simonyan, Vedaldi & Zisserman (2014) rank the pixels of an image by how much the class score
changes when they change: the map ``M_ij = max_c |dS/dI_{i,j,c}|``, where ``S`` is the
*unnormalised* class score (the logit, before the softmax). This module computes that map
(:func:`vanilla`) and its usual extensions: SmoothGrad (:func:`smoothgrad`), Integrated Gradients
(:func:`integrated_gradients`), guided backpropagation and the deconvnet applied to a class score
(:func:`guided`, :func:`deconvnet`), Grad-CAM (:func:`grad_cam`), and the class model
visualization, gradient ascent on the image (:func:`class_model`).

Targets
-------
Every function takes a *target*, the scalar score whose gradient is taken, per image:

* an ``int`` ``c``: the unnormalised score of class ``c``, the output of the last Dense layer
  before the model's final softmax (a ``Softmax`` layer, an ``Activation("softmax")``, or a Dense
  layer with a fused softmax, whose pre-activation is then used). A model ending in a linear Dense
  layer is taken to output logits.
* ``"layer:channel"``: the mean of the channel's map over all positions (Lucid's ``channel``
  objective); for a dense layer, the unit itself.
* ``"layer:channel@y,x"``: one unit of the channel's map.
* a list with one of these per image, all of one layer and kind (e.g. each image's own top
  class, or each image's strongest channel of a layer): still one compiled call per batch.

Layer names follow :func:`tfvis.deconv.reconstruct`: fused ReLUs are split internally, so
``"c:3"`` names the pre-activation output of ``c``, as in the zoo where ``c_relu`` follows ``c``.

Every gradient is taken by one ``tf.function`` per (model, target layer, target kind, method),
cached for the model's lifetime, that serves whole batches.
"""
import weakref

import keras
import numpy as np
import tensorflow as tf

from ..deconv import _as_batch, _graph, _prepared
from ..fastgrad import fast_feature_model, fast_input_gradients
from ..layers import get_layer
from ..models.surgery import _activation_name

#: Integration rules of :func:`integrated_gradients`.
RULES = ("trapezoid", "midpoint")

# model -> {key: value}: score graphs and compiled functions. Weak keys: dropping the model drops them.
_CACHE = weakref.WeakKeyDictionary()


def _entry(model):
    try:
        return _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        return {}


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


class _Target:
    """A parsed target: the layer whose output carries the score, and how to read the score.

    ``kind`` is ``"unit"`` (a dense unit, a class logit, or one spatial unit) or ``"mean"``
    (the mean of a channel map); ``dense`` is a Dense layer whose *pre-activation* is applied to
    the layer's output inside the graph (a fused softmax head), else None.
    """

    def __init__(self, layer, kind, channel, position=(), dense=None, text=None):
        self.layer, self.kind, self.channel = layer, kind, int(channel)
        self.position = tuple(int(p) for p in position)
        self.dense, self.text = dense, text

    @property
    def key(self):
        return (self.layer, self.kind, len(self.position), None if self.dense is None else self.dense.name)


def _producer(tensor):
    """The layer that produced a symbolic tensor."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def _is_softmax(layer):
    if isinstance(layer, keras.layers.Softmax):
        return True
    return isinstance(layer, keras.layers.Activation) and _activation_name(layer) == "softmax"


def _class_layer(model):
    """``(layer_name, dense_or_None, classes)`` of the class logits of ``model``."""
    no_class = (
        f"model {model.name!r} has no class output (a Dense layer, optionally followed by a softmax, "
        "at the end of the model); use a 'layer:channel' target, or a model with its top"
    )
    if len(model.outputs) != 1:
        raise ValueError(no_class)
    last = _producer(model.outputs[0])
    softmaxes = 0
    # walk back over the final softmax and identity activations (split_activations leaves a
    # linear Activation where a softmax Activation was split)
    while last is not None and (
        _is_softmax(last) or (isinstance(last, keras.layers.Activation) and _activation_name(last) is None)
    ):
        softmaxes += _is_softmax(last)
        last = _producer(last.input)
    if softmaxes > 1 or not isinstance(last, keras.layers.Dense):
        raise ValueError(no_class)
    classes = int(last.units)
    activation = _activation_name(last)
    if activation is None:
        return last.name, None, classes
    if activation == "softmax":  # fused: read the Dense input, apply the kernel in the graph
        source = _producer(last.input)
        if source is None or len(source.output.shape) != 2:
            raise ValueError(no_class)
        return source.name, last, classes
    raise ValueError(no_class + f" (its last Dense layer {last.name!r} has activation {activation!r})")


def _parse_target(prepared, target):
    """One :class:`_Target` for ``target`` on the prepared model."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        name, dense, classes = _class_layer(prepared)
        if not 0 <= int(target) < classes:
            raise ValueError(f"class index {int(target)} out of range: model {prepared.name!r} has classes 0..{classes - 1}")
        return _Target(name, "unit", int(target), (), dense, text=int(target))
    if not isinstance(target, str):
        raise ValueError(f"target {target!r}: use a class index (int), 'layer:channel' or 'layer:channel@y,x'")
    spec, _, where = target.partition("@")
    name, _, channel = spec.partition(":")
    try:
        channel = int(channel)
    except ValueError:
        raise ValueError(f"target {target!r}: expected 'layer:channel' or 'layer:channel@y,x' with integers") from None
    layer = get_layer(prepared, name)
    shape = tuple(layer.output.shape)
    if not 0 <= channel < shape[-1]:
        raise ValueError(f"target {target!r}: layer {name!r} has channels 0..{shape[-1] - 1}; got {channel}")
    spatial = shape[1:-1]
    if not where:
        return _Target(name, "mean" if spatial else "unit", channel, (), None, target)
    try:
        position = tuple(int(v) for v in where.split(","))
    except ValueError:
        raise ValueError(f"target {target!r}: the position after '@' must be integers, e.g. '{spec}@3,4'") from None
    if not spatial:
        raise ValueError(f"target {target!r}: layer {name!r} has no spatial map; drop the '@' position")
    if len(position) != len(spatial):
        raise ValueError(f"target {target!r}: layer {name!r} needs {len(spatial)} coordinates")
    for p, size in zip(position, spatial):
        if p < 0 or (size is not None and p >= size):
            raise ValueError(f"target {target!r}: position {position} outside layer {name!r}, whose map is {spatial}")
    return _Target(name, "unit", channel, position, None, target)


def _score(act, target, channels, positions):
    """Per-image score ``(B,)`` from the target layer's output ``act``.

    ``channels`` is ``(B,)`` (one channel per image) and ``positions`` ``(B, P)`` (one unit per
    image, ``P`` = 0 for a channel mean or a dense unit).
    """
    if target.dense is not None:
        act = tf.matmul(act, tf.cast(target.dense.kernel, act.dtype))
        if target.dense.use_bias:
            act = act + tf.cast(target.dense.bias, act.dtype)
    maps = tf.gather(act, channels, axis=-1, batch_dims=1)  # (B, *spatial)
    if target.kind == "mean":
        return tf.reduce_mean(tf.reshape(maps, [tf.shape(maps)[0], -1]), axis=1)
    if target.position:
        return tf.gather_nd(maps, positions, batch_dims=1)
    return maps


def _net(model, prepared, layer_name, method):
    """A model from the input to ``layer_name``; ReLUs carry ``method``'s rule for guided/deconvnet."""
    if method in ("guided", "deconvnet"):
        return fast_input_gradients(_graph(model, prepared, layer_name, method)[0])
    entry = _entry(model)
    key = ("net", layer_name)
    if key not in entry:
        entry[key] = fast_feature_model(prepared, [layer_name])
    return entry[key]


def _row_specs(target):
    """Signatures of the per-row channels ``(B,)`` and positions ``(B, P)`` of compiled functions."""
    return [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, len(target.position)], tf.int32)]


def _gradient_function(model, prepared, target, method):
    """Compiled ``(images, channels, positions) -> (dS/dimages, S)``, cached."""
    entry = _entry(model)
    key = ("gradient", method) + target.key
    if key not in entry:
        net = _net(model, prepared, target.layer, method)
        spec = tf.TensorSpec([None] + list(prepared.inputs[0].shape[1:]), tf.float32)

        @tf.function(input_signature=[spec] + _row_specs(target))
        def run(images, channels, positions):
            with tf.GradientTape() as tape:
                tape.watch(images)
                scores = _score(net(images, training=False), target, channels, positions)
                total = tf.reduce_sum(scores)
            return tape.gradient(total, images), scores

        entry[key] = run
    return entry[key]


class _Rows:
    """The parsed target of each image of a batch: one shared layer and kind, per-image units."""

    def __init__(self, targets):
        first = targets[0]
        for other in targets[1:]:
            if other.key != first.key:
                raise ValueError(
                    f"targets {first.text!r} and {other.text!r} differ in layer or kind; one call takes targets "
                    "of one layer and kind (e.g. all class indices, or all 'layer:channel' of one layer)"
                )
        self.target = first
        self.channels = np.array([t.channel for t in targets], np.int32)
        self.positions = np.array([t.position for t in targets], np.int32).reshape(len(targets), len(first.position))

    def _with(self, channels, positions):
        rows = object.__new__(_Rows)
        rows.target, rows.channels, rows.positions = self.target, channels, positions
        return rows

    def select(self, part):
        """The rows of ``part`` (a slice of images)."""
        return self._with(self.channels[part], self.positions[part])

    def repeat(self, times):
        """Rows for ``times`` consecutive copies of each image (noise samples, path points)."""
        return self._with(np.repeat(self.channels, times), np.repeat(self.positions, times, axis=0))

    def chunk(self, part):
        """Tensors of the channels and positions of ``part`` (a slice of rows)."""
        return tf.constant(self.channels[part]), tf.constant(self.positions[part])


def _parse_targets(prepared, target, count):
    """A :class:`_Rows` for ``count`` images: one target for all, or a sequence of one per image."""
    if isinstance(target, (list, tuple, np.ndarray)):
        if len(target) != count:
            raise ValueError(f"got {len(target)} targets for {count} images; give one target, or one per image")
        return _Rows([_parse_target(prepared, t.item() if isinstance(t, np.generic) else t) for t in target])
    return _Rows([_parse_target(prepared, target)] * count)


def _setup(model, images, target, batch_size):
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    images, single, prepared = (*_as_batch(model, images), _prepared(model))
    return images, single, prepared, _parse_targets(prepared, target, len(images))


def _run_gradients(model, prepared, rows, images, batch_size, method=None):
    """Gradients and scores of ``images`` (M, H, W, C), whose targets are ``rows``, ``batch_size`` per compiled call."""
    run = _gradient_function(model, prepared, rows.target, method)
    grads, scores = np.zeros(images.shape, np.float32), np.zeros(len(images), np.float32)
    for start in range(0, len(images), int(batch_size)):
        chunk = slice(start, start + int(batch_size))
        g, s = run(tf.constant(images[chunk]), *rows.chunk(chunk))
        grads[chunk], scores[chunk] = g.numpy(), s.numpy()
    return grads, scores


def _reduce(attributions, reduce):
    if reduce is None:
        return attributions
    if reduce == "max":
        return np.abs(attributions).max(axis=-1)
    if reduce == "sum":
        return attributions.sum(axis=-1)
    raise ValueError(f"reduce={reduce!r}; use 'max', 'sum' or None")


# --------------------------------------------------------------------------------------------
# Saliency maps
# --------------------------------------------------------------------------------------------


def score(model, images, target, batch_size=16):
    """The target's score for each image (the quantity whose gradient the maps show).

    Parameters
    ----------
    model : keras.Model
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo).
    target : int or str
        Class index, ``"layer:channel"`` or ``"layer:channel@y,x"`` (see the module notes).
    batch_size : int
        Images per compiled call.

    Returns
    -------
    ndarray, float32, shape (N,) (a scalar for one image)

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights=None)  # doctest: +SKIP
    >>> score(model, photo, 281)                           # doctest: +SKIP
    """
    images, single, prepared, rows = _setup(model, images, target, batch_size)
    _, scores = _run_gradients(model, prepared, rows, images, batch_size)
    return scores[0] if single else scores


def has_class_output(model):
    """Whether ``model`` ends in class scores that int targets can name (see the module notes)."""
    try:
        _class_layer(_prepared(model))
    except ValueError:
        return False
    return True


def class_scores(model, images, batch_size=16):
    """The unnormalised class scores (logits) of each image, shape (N, classes).

    Raises
    ------
    ValueError
        The model has no class output (see the module notes).
    """
    images, single = _as_batch(model, images)
    prepared = _prepared(model)
    name, dense, _ = _class_layer(prepared)
    net = _net(model, prepared, name, None)
    out = []
    for start in range(0, len(images), int(batch_size)):
        act = net(tf.constant(images[start : start + int(batch_size)]), training=False)
        if dense is not None:
            act = tf.matmul(act, dense.kernel) + (dense.bias if dense.use_bias else 0.0)
        out.append(np.asarray(act, np.float32))
    scores = np.concatenate(out)
    return scores[0] if single else scores


def gradients(model, images, target, batch_size=16):
    """Raw gradients ``dS/dI`` of the target score, shaped like ``images``.

    Parameters are those of :func:`vanilla`.

    Returns
    -------
    ndarray, float32, shape (N, H, W, C) (or (H, W, C) for one image)
    """
    images, single, prepared, rows = _setup(model, images, target, batch_size)
    grads, _ = _run_gradients(model, prepared, rows, images, batch_size)
    return grads[0] if single else grads


def vanilla(model, images, target, batch_size=16):
    """Simonyan et al.'s image-specific saliency: ``max_c |dS/dI_{i,j,c}|``.

    Parameters
    ----------
    model : keras.Model
        A model with one image input. Fused ReLUs are split internally (see the module notes).
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo).
    target : int, str or list
        A class index (its unnormalised score), ``"layer:channel"`` (the mean of the channel's
        map) or ``"layer:channel@y,x"`` (one unit); or a list of one such target per image.
    batch_size : int
        Images per compiled call.

    Returns
    -------
    ndarray, float32, shape (N, H, W) (or (H, W) for one image)

    Raises
    ------
    ValueError
        Images of the wrong rank or size, a class index out of range (the message gives the
        valid range), a model without a class output for an int target, an unknown layer.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights=None)      # doctest: +SKIP
    >>> maps = vanilla(model, photos, 281)                     # doctest: +SKIP
    >>> maps.shape == photos.shape[:3]                         # doctest: +SKIP
    True
    """
    grads = gradients(model, images, target, batch_size)
    return np.abs(grads).max(axis=-1)


def smoothgrad(model, images, target, noise=0.15, samples=25, batch_size=16, seed=0, magnitude=True, value_range=255.0):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of each image.

    Each image gets ``samples`` copies with Gaussian noise of standard deviation
    ``noise * value_range``. The copies of several images share one compiled call when
    ``batch_size`` allows (``batch_size // samples`` images per call); with fewer rows per call
    than samples, an image's copies are spread over consecutive calls.

    Parameters
    ----------
    model, images, target
        As in :func:`vanilla`.
    noise : float
        Noise standard deviation as a fraction of the input range (0.15: PAIR saliency's default).
        ``noise=0`` returns :func:`vanilla` exactly.
    samples : int
        Noisy copies per image.
    batch_size : int
        Rows (noisy copies) per compiled call.
    seed : int
        The noise of image ``i`` is :func:`smoothgrad_noise` with seed ``(seed, i)``, drawn inside
        the compiled call: the result does not depend on ``batch_size``.
    magnitude : bool
        True: average ``|dS/dI|`` over the copies; False: average the signed gradient. The map is
        then ``max_c |.|`` of the average, so both equal :func:`vanilla` at ``noise=0``.
    value_range : float
        The input range (255 for the zoo's RGB [0, 255] images).

    Returns
    -------
    ndarray, float32, shape (N, H, W) (or (H, W) for one image)

    Examples
    --------
    >>> maps = smoothgrad(model, photos, 281, noise=0.15, samples=25)  # doctest: +SKIP
    """
    if int(samples) < 1:
        raise ValueError(f"samples must be at least 1; got {samples}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative; got {noise}")
    if noise == 0:
        return vanilla(model, images, target, batch_size)
    images, single, prepared, rows = _setup(model, images, target, batch_size)
    samples, batch_size = int(samples), int(batch_size)
    run = _smooth_function(model, prepared, rows.target, samples, bool(magnitude))
    sigma = tf.constant(float(noise) * float(value_range), tf.float32)
    seeds = np.stack([np.full(len(images), int(seed)), np.arange(len(images))], axis=1).astype(np.int32)
    per_call = max(batch_size // samples, 1)  # images whose copies fit in one call
    count = min(samples, batch_size)  # copies of one image per call
    total = np.zeros(images.shape, np.float64)
    for first in range(0, len(images), per_call):
        group = slice(first, first + per_call)
        for start in range(0, samples, count):
            part = run(tf.constant(images[group]), tf.constant(seeds[group]), sigma, tf.constant(start),
                       tf.constant(min(count, samples - start)), *rows.chunk(group))  # fmt: skip
            total[group] += part.numpy()
    maps = np.abs(total / samples).max(axis=-1).astype(np.float32)
    return maps[0] if single else maps


def smoothgrad_noise(shape, samples, sigma, seed, index):
    """The noise SmoothGrad adds to image ``index``: ``sigma`` times a seeded standard normal.

    ``tf.random.stateless_normal`` of shape ``(samples, *shape)`` with seed ``(seed, index)``, so a
    map depends on the seed and the image's position in the batch, never on ``batch_size``.
    """
    shape = tf.concat([[samples], tf.cast(shape, tf.int32)], 0)
    return sigma * tf.random.stateless_normal(shape, tf.stack([seed, index]))


def _smooth_function(model, prepared, target, samples, magnitude):
    """Compiled SmoothGrad sum: noise drawn in the graph, gradients summed over the copies in the graph.

    ``(images (g, H, W, C), seeds (g, 2), sigma, start, count, channels, positions) -> (g, H, W, C)``:
    for each image, the sum over its copies ``start .. start + count - 1`` of the gradient (or its
    magnitude) at ``image + noise``.
    """
    entry = _entry(model)
    key = ("smooth", samples, magnitude) + target.key
    if key not in entry:
        net = _net(model, prepared, target.layer, None)
        shape = list(prepared.inputs[0].shape[1:])
        spec = tf.TensorSpec([None] + shape, tf.float32)
        scalar = tf.TensorSpec([], tf.int32)

        @tf.function(input_signature=[spec, tf.TensorSpec([None, 2], tf.int32), tf.TensorSpec([], tf.float32), scalar, scalar] + _row_specs(target))
        def run(images, seeds, sigma, start, count, channels, positions):
            size = tf.shape(images)[1:]

            def copies(args):
                image, seed = args
                noise = smoothgrad_noise(tf.shape(image), samples, sigma, seed[0], seed[1])
                return image[None] + noise[start : start + count]

            rows = tf.map_fn(copies, (images, seeds), fn_output_signature=tf.TensorSpec([None] + shape, tf.float32))
            rows = tf.reshape(rows, tf.concat([[-1], size], 0))
            with tf.GradientTape() as tape:
                tape.watch(rows)
                scores = _score(net(rows, training=False), target, tf.repeat(channels, count), tf.repeat(positions, count, axis=0))
                total = tf.reduce_sum(scores)
            grads = tape.gradient(total, rows)
            if magnitude:
                grads = tf.abs(grads)
            return tf.reduce_sum(tf.reshape(grads, tf.concat([[-1, count], size], 0)), axis=1)

        entry[key] = run
    return entry[key]


def integrated_gradients(model, images, target, baseline=None, steps=64, reduce="max", batch_size=16, rule="trapezoid"):
    """Integrated Gradients (Sundararajan et al. 2017): ``(x - x') * mean_alpha dS/dI(x' + alpha (x - x'))``.

    The attributions sum, over pixels and channels, to ``S(x) - S(x')`` up to the integration
    error of the rule (completeness).

    Parameters
    ----------
    model, images, target
        As in :func:`vanilla`.
    baseline : None, float or ndarray
        The reference image ``x'``: None is the black image (zeros in the model's input space);
        a scalar, one image (H, W, C) for all, or one per image (N, H, W, C).
    steps : int
        Intervals of the path. The path points of an image go through the compiled function
        together, ``batch_size // points`` images per call when ``batch_size`` allows (else
        ``batch_size`` points per call).
    reduce : {"max", "sum", None}
        ``"max"``: ``max_c |a|`` (N, H, W); ``"sum"``: the signed sum over channels (N, H, W);
        None: the raw attributions (N, H, W, C).
    batch_size : int
        Path points per compiled call.
    rule : {"trapezoid", "midpoint"}
        Riemann trapezoid rule (``steps + 1`` points, end points weighted 1/2) or midpoint rule
        (``steps`` points at ``(k + 1/2) / steps``).

    Returns
    -------
    ndarray, float32

    Examples
    --------
    >>> a = integrated_gradients(model, photos, 281, reduce=None)  # doctest: +SKIP
    >>> a.sum(axis=(1, 2, 3))  # ~ score(model, photos, 281) - score(model, 0 * photos, 281)  # doctest: +SKIP
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    if rule not in RULES:
        raise ValueError(f"rule={rule!r}; use one of: {', '.join(RULES)}")
    if reduce not in ("max", "sum", None):
        raise ValueError(f"reduce={reduce!r}; use 'max', 'sum' or None")
    images, single, prepared, targets = _setup(model, images, target, batch_size)
    if baseline is None:
        baselines = np.zeros_like(images)
    else:
        baselines = np.broadcast_to(np.asarray(baseline, np.float32), images.shape).astype(np.float32)
    steps = int(steps)
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
    else:
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    points = len(alphas)
    per_call = max(int(batch_size) // points, 1)  # images whose whole paths fit in one call
    alphas = alphas.reshape(1, -1, 1, 1, 1).astype(np.float32)
    result = np.zeros(images.shape, np.float32)
    for start in range(0, len(images), per_call):
        group = slice(start, start + per_call)
        delta = images[group] - baselines[group]
        rows = (baselines[group][:, None] + alphas * delta[:, None]).astype(np.float32)
        path = rows.reshape((-1,) + images.shape[1:])
        grads, _ = _run_gradients(model, prepared, targets.select(group).repeat(points), path, batch_size)
        grads = grads.reshape(rows.shape).astype(np.float64)
        average = np.tensordot(weights, grads, axes=([0], [1]))  # (n, H, W, C)
        result[group] = (delta * average).astype(np.float32)
    out = _reduce(result, reduce)
    return out[0] if single else out


def _rule_map(model, images, target, method, batch_size):
    images, single, prepared, rows = _setup(model, images, target, batch_size)
    grads, _ = _run_gradients(model, prepared, rows, images, batch_size, method)
    maps = np.abs(grads).max(axis=-1)
    return maps[0] if single else maps


def guided(model, images, target, batch_size=16):
    """Guided backpropagation (Springenberg et al. 2015) of the target score: ``max_c |.|``.

    The gradient of the score with every ReLU's backward rule replaced by
    ``relu(g) * [x > 0]``, using the rewritten graph of :func:`tfvis.deconv.reconstruct`. The
    signal fed back is 1 at the target (the score's own gradient), so a class target gives the
    same map whatever the sign of its logit; :func:`tfvis.deconv.reconstruct` instead feeds back
    the activation itself, ``"predictions:281"`` with ``position=None`` there equals this map
    times the logit when the logit is positive.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`vanilla`. For a class index the logit layer is used (e.g. VGG16's
        ``predictions``); ``"layer:channel@y,x"`` is one unit, ``"layer:channel"`` the
        channel's mean.

    Returns
    -------
    ndarray, float32, shape (N, H, W) (or (H, W) for one image)
    """
    return _rule_map(model, images, target, "guided", batch_size)


def deconvnet(model, images, target, batch_size=16):
    """Zeiler & Fergus's deconvnet applied to the target score: ``max_c |.|``.

    As :func:`guided` with the backward rule ``relu(g)`` at every ReLU (LRN skipped).

    Returns
    -------
    ndarray, float32, shape (N, H, W) (or (H, W) for one image)
    """
    return _rule_map(model, images, target, "deconvnet", batch_size)


# --------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------


def _cam_function(model, prepared, target, layer_name):
    entry = _entry(model)
    key = ("cam", layer_name) + target.key
    if key not in entry:
        get_layer(prepared, layer_name)
        net = fast_feature_model(prepared, [layer_name, target.layer])
        spec = tf.TensorSpec([None] + list(prepared.inputs[0].shape[1:]), tf.float32)

        @tf.function(input_signature=[spec] + _row_specs(target))
        def run(images, channels, positions):
            with tf.GradientTape() as tape:
                tape.watch(images)  # the fast net's weights are constants: connect the maps through the input
                maps, act = net(images, training=False)
                total = tf.reduce_sum(_score(act, target, channels, positions))
            grads = tape.gradient(total, maps)
            if grads is None:
                raise ValueError(f"target {target.text!r} does not depend on layer {layer_name!r}")
            weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1, keepdims=True))
            return tf.image.resize(cam, tf.shape(images)[1:3], method="bilinear")[..., 0]

        entry[key] = run
    return entry[key]


def grad_cam(model, images, target, layer, batch_size=16):
    """Grad-CAM (Selvaraju et al. 2017): ``relu(sum_k w_k A_k)``, ``w_k`` the spatial mean of ``dS/dA_k``.

    ``A`` is the output of ``layer`` (a spatial map); the result is upsampled bilinearly
    (``tf.image.resize``, half-pixel centres) to the input size.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`vanilla`.
    layer : str
        A layer with a 2-D spatial map, e.g. ``"block5_conv3_relu"``.

    Returns
    -------
    ndarray, float32, shape (N, H, W) (or (H, W) for one image)

    Raises
    ------
    ValueError
        ``layer`` has no spatial map (its output is not (N, h, w, K)); the layer is unknown; the
        target does not depend on the layer.

    Examples
    --------
    >>> cam = grad_cam(model, photos, 281, "block5_conv3_relu")  # doctest: +SKIP
    """
    images, single, prepared, rows = _setup(model, images, target, batch_size)
    shape = tuple(get_layer(prepared, layer).output.shape)
    if len(shape) != 4:
        raise ValueError(f"layer {layer!r} has output shape {shape}, not a spatial map (N, h, w, K); choose a convolutional layer")
    run = _cam_function(model, prepared, rows.target, layer)
    out = np.zeros(images.shape[:3], np.float32)
    for start in range(0, len(images), int(batch_size)):
        chunk = slice(start, start + int(batch_size))
        out[chunk] = run(tf.constant(images[chunk]), *rows.chunk(chunk)).numpy()
    return out[0] if single else out


# --------------------------------------------------------------------------------------------
# Class model visualization
# --------------------------------------------------------------------------------------------


def mean_image(model, shape=None):
    """The image whose preprocessed value is zero (the model's mean), in the model's input space.

    Read from the ``preprocess`` layer (:class:`~tfvis.models.custom_layers.ImagePreprocess`, or any layer of that name with ``mean`` and ``bgr`` attributes):
    its ``mean`` is in the network's channel order, flipped back for ``bgr``. Zeros when the
    model has no such layer.

    Parameters
    ----------
    model : keras.Model
    shape : tuple of int, optional
        ``(H, W, C)``; default: the model's input shape.

    Returns
    -------
    ndarray, float32, shape (H, W, C)
    """
    shape = tuple(shape or model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"model {model.name!r} takes images of any size {shape}; give shape=(H, W, C)")
    image = np.zeros(shape, np.float32)
    try:
        layer = model.get_layer("preprocess")
    except ValueError:
        layer = None
    mean = getattr(layer, "mean", None)
    if mean is not None:
        mean = np.asarray(mean, np.float32).reshape(-1)
        if getattr(layer, "bgr", False):
            mean = mean[::-1]
        image = image + np.broadcast_to(mean, shape[-1:])
    return image


def class_model(model, class_index, steps=200, l2=1e-6, learning_rate=1.0, seed=0, shape=None, init_noise=0.0, value_range=(0.0, 255.0)):
    """Simonyan et al.'s class model: ``argmax_I S_c(I) - l2 * ||I - mean||^2`` by gradient ascent.

    Starts from the model's mean image (:func:`mean_image`: zero after preprocessing) and takes
    ``steps`` compiled ascent steps ``I += learning_rate * g / rms(g)`` (the gradient normalised
    to unit root mean square, so ``learning_rate`` is in pixel values per step), clipping to
    ``value_range`` after each step.

    Parameters
    ----------
    model : keras.Model
        A model with a class output (see the module notes).
    class_index : int
    steps : int
    l2 : float
        Weight of the L2 penalty on ``I - mean`` (pixel units).
    learning_rate : float
    seed : int
        Seeds the start noise (``init_noise``).
    shape : tuple of int, optional
        ``(H, W, C)`` for models that take any image size.
    init_noise : float
        Standard deviation of Gaussian noise added to the start image (0: the mean image).
    value_range : (float, float)
        Clip range of the image (the zoo's RGB [0, 255]).

    Returns
    -------
    ndarray, float32, shape (H, W, C)
        RGB in ``value_range``.

    Examples
    --------
    >>> image = class_model(tfvis.load_model("vgg16", weights="imagenet"), 281)  # doctest: +SKIP
    """
    prepared = _prepared(model)
    target = _parse_target(prepared, class_index)
    mean = mean_image(model, shape)
    start = mean + float(init_noise) * np.random.default_rng(int(seed)).standard_normal(mean.shape).astype(np.float32)
    low, high = (float(v) for v in value_range)
    start = np.clip(start, low, high)[None].astype(np.float32)
    entry = _entry(model)
    key = ("class_model",) + target.key
    if key not in entry:
        net = _net(model, prepared, target.layer, None)

        @tf.function
        def step(image, mean, channel, l2, rate, low, high):
            with tf.GradientTape() as tape:
                tape.watch(image)
                s = _score(net(image, training=False), target, channel[None], tf.zeros([1, 0], tf.int32))
                objective = tf.reduce_sum(s) - l2 * tf.reduce_sum(tf.square(image - mean))
            g = tape.gradient(objective, image)
            g = g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-12)
            return tf.clip_by_value(image + rate * g, low, high)

        entry[key] = step
    step = entry[key]
    image = tf.constant(start)
    args = (
        tf.constant(mean[None]),
        tf.constant(target.channel, tf.int32),
        tf.constant(float(l2), tf.float32),
        tf.constant(float(learning_rate), tf.float32),
        tf.constant(low, tf.float32),
        tf.constant(high, tf.float32),
    )
    for _ in range(int(steps)):
        image = step(image, *args)
    return image.numpy()[0]


# --------------------------------------------------------------------------------------------
# Display
# --------------------------------------------------------------------------------------------


def _as_display_image(image):
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3); got {image.shape}")
    image = image[..., :3]
    if image.size and image.max() > 1.0:  # [0, 255]
        image = image / 255.0
    return np.clip(image, 0.0, 1.0)


def _normalised(saliency):
    saliency = np.nan_to_num(np.asarray(saliency, np.float32))
    low, high = float(saliency.min()), float(saliency.max())
    if high <= low:
        return np.zeros_like(saliency)
    return (saliency - low) / (high - low)


def overlay(image, saliency, cmap="jet", alpha=0.5):
    """Blend a saliency map, coloured with a matplotlib colormap, over an image.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), (H, W, 1) or (H, W)
        RGB or grey, in [0, 255] (when its maximum exceeds 1) or [0, 1].
    saliency : ndarray, shape (H, W)
        Scaled to [0, 1] by its minimum and maximum (a constant map is 0); resized bilinearly
        when its size differs from the image's.
    cmap : str or matplotlib colormap
    alpha : float
        Weight of the coloured map, in [0, 1].

    Returns
    -------
    ndarray, float32, shape (H, W, 3)
        RGB in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> overlay(np.zeros((4, 5, 3)), np.eye(4, 5)).shape
    (4, 5, 3)
    """
    import matplotlib

    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha}")
    rgb = _as_display_image(image)
    saliency = np.asarray(saliency, np.float32)
    if saliency.ndim != 2:
        raise ValueError(f"saliency must have shape (H, W); got {saliency.shape}")
    if saliency.shape != rgb.shape[:2]:
        saliency = tf.image.resize(saliency[..., None], rgb.shape[:2], method="bilinear").numpy()[..., 0]
    colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    coloured = colormap(_normalised(saliency))[..., :3].astype(np.float32)
    return np.clip((1.0 - alpha) * rgb + alpha * coloured, 0.0, 1.0).astype(np.float32)


def figure(images, maps, titles=None, cmap="jet", size=2.5):
    """A matplotlib Figure (Agg canvas) with each image beside its saliency map, one row per image.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, C) or sequence of images
        In [0, 255] or [0, 1].
    maps : ndarray, shape (N, H, W) or sequence of maps
    titles : sequence of str, optional
        One per image, shown above the image.
    cmap : str
        Colormap of the maps.
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per row; save it with ``fig.savefig(path)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images, maps = list(images), list(maps)
    if len(images) != len(maps):
        raise ValueError(f"got {len(images)} images and {len(maps)} maps")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    rows = max(len(images), 1)
    fig = Figure(figsize=(2 * size, rows * size))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, squeeze=False)
    for i, (image, saliency) in enumerate(zip(images, maps)):
        axes[i, 0].imshow(_as_display_image(image))
        axes[i, 1].imshow(_normalised(saliency), cmap=cmap, vmin=0.0, vmax=1.0)
        if titles is not None:
            axes[i, 0].set_title(str(titles[i]))
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


__all__ = [
    "RULES",
    "class_model",
    "class_scores",
    "has_class_output",
    "smoothgrad_noise",
    "deconvnet",
    "figure",
    "grad_cam",
    "gradients",
    "guided",
    "integrated_gradients",
    "mean_image",
    "overlay",
    "score",
    "smoothgrad",
    "vanilla",
]
