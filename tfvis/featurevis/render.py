"""Render feature visualizations: optimise parameterized images to maximise an objective.

One compiled ``tf.function`` makes a whole optimisation step (parameterization, random
transforms, one forward pass of a feature model returning every layer the objective reads, the
gradient, an Adam update); the Python loop only calls it. Randomness is stateless, keyed by the
seed and the step number, so a render is reproducible.
"""
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from ..fastgrad import fast_feature_model
from ..layers import get_layer
from ..models.surgery import _activation_name, split_activations
from . import objectives as obj_
from . import param as param_
from . import transforms as transforms_


class RenderResult(np.ndarray):
    """Rendered images ``(B, H, W, 3)`` in [0, 1], a NumPy array with what went wrong attached.

    Attributes
    ----------
    failed : list of int
        Indices of images that came out flat (pixel std below ``flat_tolerance``, e.g. the mid-grey
        of a dead channel whose gradient is zero) or not finite (NaN/inf). A warning names them too.
    objectives : list of str
        The objective of each image (the same name for all when one objective drives the batch).
    values : ndarray
        The objective's value at each step (what was maximised), ``(steps,)``.
    steps : int
        Optimisation steps taken.

    Slices and arithmetic give plain arrays' behaviour with these attributes left at their defaults.
    """

    failed = ()
    objectives = ()
    values = None
    steps = 0

    def __array_finalize__(self, source):
        pass  # views and results of arithmetic carry no report

    @property
    def ok(self):
        """True when no image failed."""
        return not self.failed


def _as_result(images, failed, names, values, steps):
    result = np.asarray(images, np.float32).view(RenderResult)
    result.failed, result.objectives, result.values, result.steps = list(failed), list(names), values, steps
    return result


def flat_or_nan(images, tolerance=0.01):
    """Indices of images whose pixel std is below ``tolerance`` or that hold NaN/inf.

    Parameters
    ----------
    images : ndarray, shape (B, H, W, 3)
        Images in [0, 1].
    tolerance : float
        Smallest std of a real visualization.

    Returns
    -------
    list of int

    Examples
    --------
    >>> flat_or_nan(np.full((2, 8, 8, 3), 0.5))
    [0, 1]
    """
    images = np.asarray(images)
    bad = []
    for i, image in enumerate(images):
        if not np.all(np.isfinite(image)) or float(np.std(image)) < tolerance:
            bad.append(i)
    return bad


def _batch_objective(objective, batch):
    """``(objective, batch size, per-image names)`` from an objective or a list of them (one per image)."""
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise ValueError("objective: an empty list; give one objective or 'layer:channel' string per image")
        if batch is not None and batch != len(objective):
            raise ValueError(f"batch={batch} but {len(objective)} objectives were given (one per image); drop batch")
        parts = [obj_.as_objective(o) for o in objective]
        total = sum(p.on(i) for i, p in enumerate(parts))
        return total, len(parts), [p.name for p in parts]
    objective = obj_.as_objective(objective)
    if batch is None:
        batch = objective.batch_indices[-1] + 1 if objective.batch_indices else 1
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch={batch!r}: give a positive number of images")
    return objective, int(batch), [objective.name] * int(batch)


# model -> (split model or None, [(source weight, copy)]): the fused-activation rewrite, weakly cached
_SPLIT = weakref.WeakKeyDictionary()


def _prepared(model):
    """``model``, or its :func:`~tfvis.split_activations` rewrite when a layer has a fused activation.

    Objectives then read pre-activation values by the layer's name. The rewrite holds copies of
    the weights, re-synchronised from ``model`` at every render.
    """
    try:
        entry = _SPLIT.get(model)
    except TypeError:
        entry = None
    if entry is None:
        if any(_activation_name(layer) is not None for layer in model.layers if not isinstance(layer, keras.layers.Activation)):
            split = split_activations(model)
            pairs = [
                pair for layer in split.layers if layer.weights for pair in zip(model.get_layer(layer.name).weights, layer.weights)
            ]
            entry = (split, pairs)
        else:
            entry = (None, [])
        try:
            _SPLIT[model] = entry
        except TypeError:
            pass
    split, pairs = entry
    for source, copy in pairs:
        copy.assign(source)
    return model if split is None else split


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def _logits_layer(model):
    """The name of the layer giving class logits: the last Dense layer, before any final softmax."""
    layer = _producer(model.outputs[0]) if len(model.outputs) == 1 else None
    while isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        layer = _producer(layer.input)
    if not isinstance(layer, keras.layers.Dense):
        raise ValueError(
            f"class_logit: model {model.name!r} has no class output (a Dense layer, optionally followed by a "
            "softmax, at its end); use a 'layer:channel' objective, or a model with its top"
        )
    return layer.name, int(layer.units)


class _Features:
    """The feature model for an objective's layers on the prepared (fused-ReLU-split) model."""

    def __init__(self, model, layers):
        prepared = _prepared(model)
        names = []
        for name in layers:
            if name == obj_.LOGITS:
                self.logits_source, self.classes = _logits_layer(prepared)
                names.append(self.logits_source)
            else:
                get_layer(prepared, name)  # a clear error for an unknown name
                names.append(name)
        self.layers = list(layers)
        self.sources = list(dict.fromkeys(names))
        # input gradients through stride-1 convs as forward convs: ~15% faster steps on CPU
        self.model = fast_feature_model(prepared, self.sources)

    def __call__(self, x):
        outs = self.model(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        by_source = dict(zip(self.sources, outs))
        acts = {}
        for name in self.layers:
            acts[name] = by_source[self.logits_source if name == obj_.LOGITS else name]
        return acts

    def shapes(self, input_hw):
        """Output shapes without the batch axis for an input of ``input_hw`` pixels."""
        spec = keras.KerasTensor((1, input_hw[0], input_hw[1], 3))
        outs = self.model.compute_output_spec(spec)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        by_source = {n: tuple(o.shape[1:]) for n, o in zip(self.sources, outs)}
        return {
            name: (self.classes,) if name == obj_.LOGITS else by_source[name] for name in self.layers
        }


def _check_input(model, hw):
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"model {model.name!r} takes inputs of shape {tuple(shape)}; render needs RGB images (N, H, W, 3)")
    fixed = tuple(shape[1:3])
    if all(s is not None for s in fixed) and fixed != tuple(hw):
        raise ValueError(
            f"model {model.name!r} takes {fixed[0]} x {fixed[1]} images, but the transformed images are "
            f"{hw[0]} x {hw[1]}; choose size and transforms that give {fixed[0]} x {fixed[1]} (e.g. transforms=None, size={fixed[0]})"
        )


def _adam(variables, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """State and an update rule for Adam *ascent* (maximising) on ``variables``."""
    m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    v2 = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    t = tf.Variable(0.0, trainable=False)

    def apply(grads):
        t.assign_add(1.0)
        correction = tf.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        for var, g, mi, vi in zip(variables, grads, m, v2):
            mi.assign(beta1 * mi + (1.0 - beta1) * g)
            vi.assign(beta2 * vi + (1.0 - beta2) * tf.square(g))
            var.assign_add(learning_rate * correction * mi / (tf.sqrt(vi) + epsilon))

    return apply


def make_step(features, objective, image_param, transform, value_range=(0.0, 255.0), learning_rate=0.05, seed=0, jit_compile=False):
    """The compiled optimisation step ``step(i) -> objective value`` (``i``: the step number).

    Parameters
    ----------
    features : callable
        ``x -> {layer: output}`` (the objective's layers) for images ``x`` in ``value_range``.
    objective : Objective
        What to maximise.
    image_param : ImageParam
        The parameterized images.
    transform : callable
        ``(images, seed) -> images``.
    value_range : (float, float)
        The model's input range; images in [0, 1] are mapped onto it.
    learning_rate : float
        Adam's learning rate.
    seed : int
        Keys the transforms' randomness, with the step number.
    jit_compile : bool
        Compile the step with XLA.

    Returns
    -------
    tf.function

    Examples
    --------
    >>> step = make_step(features, channel("c:0"), param.image(64), transforms.standard())  # doctest: +SKIP
    >>> value = step(tf.constant(0))  # doctest: +SKIP
    """
    low, high = float(value_range[0]), float(value_range[1])
    update = _adam(image_param.variables, learning_rate)
    seed = int(seed) & 0x7FFFFFFF

    @tf.function(jit_compile=bool(jit_compile), reduce_retracing=True)
    def step(index):
        with tf.GradientTape() as tape:
            images = image_param()
            x = transform(images, tf.stack([tf.constant(seed, tf.int32), index]))
            value = objective(features(low + x * (high - low)))
        grads = tape.gradient(value, image_param.variables)
        update(grads)
        return value

    return step


def render(
    model,
    objective,
    size=128,
    steps=512,
    param="fft",
    decorrelate=True,
    transforms="standard",
    batch=None,
    thresholds=None,
    seed=0,
    progress=True,
    learning_rate=0.05,
    value_range=(0, 255),
    jit_compile=False,
    flat_tolerance=0.01,
):
    """Optimise images to maximise ``objective`` on ``model`` (Lucid's ``render_vis``).

    Parameters
    ----------
    model : keras.Model
        A CNN taking RGB images ``(N, H, W, 3)`` in ``value_range`` (the zoo's models take [0, 255]
        and preprocess inside). Fused ReLUs are split, so objectives see pre-ReLU values.
    objective : Objective, str, or list of them
        What to maximise; ``"layer:n"`` means :func:`~tfvis.featurevis.objectives.channel`. A list
        renders one image per entry, objective ``i`` on image ``i``, in one batch.
    size : int or (int, int)
        Side of the rendered images (before the transforms' padding).
    steps : int
        Optimisation steps (Adam).
    param : {"fft", "pixel"}
        Parameterization (see :mod:`tfvis.featurevis.param`).
    decorrelate : bool
        Decorrelate colours with ImageNet's colour correlation.
    transforms : "standard", None, callable or list of callables
        Random transforms before each step (see :mod:`tfvis.featurevis.transforms`).
    batch : int, optional
        Number of images for a single objective (default: 1, or one more than the largest batch
        index it uses). Inferred from a list.
    thresholds : sequence of int, optional
        Steps at which to keep the images; the render runs to the largest and returns a dict.
    seed : int
        Seeds the starting images and the transforms.
    progress : bool
        Show a progress bar.
    learning_rate : float
        Adam's learning rate.
    value_range : (float, float)
        The model's input range; [0, 1] images are scaled onto it.
    jit_compile : bool
        Compile the step with XLA. Off by default: on CPU, XLA's convolutions ran VGG16's step
        2-3x slower than TensorFlow's oneDNN kernels (``benchmarks/featurevis.py``); try it on GPU.
    flat_tolerance : float
        Images whose pixel std falls below this are reported as flat (see :class:`RenderResult`).

    Returns
    -------
    RenderResult or dict of int to RenderResult
        Images ``(B, H, W, 3)`` in [0, 1]; with ``thresholds``, one result per threshold. Flat or
        NaN images are listed in ``result.failed`` and a ``RuntimeWarning`` names them.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights="hed", include_top=False)  # doctest: +SKIP
    >>> images = render(model, [f"block4_conv3:{c}" for c in range(8)])  # doctest: +SKIP
    >>> images.shape, images.failed  # doctest: +SKIP
    ((8, 128, 128, 3), [])
    """
    objective, batch, names = _batch_objective(objective, batch)
    checkpoints = _thresholds(thresholds, steps)
    transform = transforms_.get(transforms)
    image_param = param_.image(size, batch, param=param, decorrelate=decorrelate, seed=seed)
    _, h, w, _ = image_param.shape
    out_hw = transforms_.output_size(transform, h) if h == w else _output_hw(transform, h, w)
    _check_input(model, out_hw)
    features = _Features(model, objective.layers)
    objective.check(features.shapes(out_hw), batch)
    if len(value_range) != 2 or not value_range[1] > value_range[0]:
        raise ValueError(f"value_range={value_range!r}: give (low, high) with low < high, e.g. (0, 255)")
    step = make_step(features, objective, image_param, transform, value_range, learning_rate, seed, jit_compile)
    return _optimise(step, image_param, checkpoints, thresholds is not None, names, progress, flat_tolerance)


def _output_hw(transform, h, w):
    out = transform(tf.zeros([1, h, w, 3]), tf.constant([0, 0]))
    return int(out.shape[1]), int(out.shape[2])


def _thresholds(thresholds, steps):
    if thresholds is None:
        values = [int(steps)]
    else:
        values = sorted({int(t) for t in thresholds})
    if not values or values[0] < 1:
        what = "steps" if thresholds is None else "thresholds"
        raise ValueError(f"{what}={steps if thresholds is None else thresholds!r}: give step counts of at least 1")
    return values


def _optimise(step, image_param, checkpoints, as_dict, names, progress, flat_tolerance):
    from tqdm.auto import tqdm

    results, values = {}, []
    bar = tqdm(total=checkpoints[-1], disable=not progress, desc="render", unit="step")
    for i in range(checkpoints[-1]):
        values.append(step(tf.constant(i, tf.int32)))
        bar.update(1)
        if i + 1 in checkpoints:
            images = image_param().numpy()
            history = np.array([float(v) for v in values], np.float32)
            results[i + 1] = _as_result(images, _report(images, names, i + 1, flat_tolerance), names, history, i + 1)
    bar.close()
    return results if as_dict else results[checkpoints[-1]]


def _report(images, names, steps, tolerance):
    failed = flat_or_nan(images, tolerance)
    if failed:
        which = ", ".join(f"{i} ({names[i]})" for i in failed)
        warnings.warn(
            f"render: image(s) {which} came out flat grey or NaN after {steps} steps: the objective may have "
            "no gradient there (a dead channel, a post-ReLU layer), or the optimisation diverged",
            RuntimeWarning,
            stacklevel=4,
        )
    return failed
