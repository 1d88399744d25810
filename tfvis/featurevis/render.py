"""Render feature visualizations: optimise parameterized images to maximise an objective.

One compiled ``tf.function`` makes a whole optimisation step (parameterization, random
transforms, one forward pass of a feature model returning every layer the objective reads, the
gradient, an Adam ascent step of :mod:`tfvis.optim`); the Python loop only calls it. Randomness is
stateless, keyed by the seed and the step number, so a render is reproducible.

Layers are named on the prepared model (:func:`tfvis.graph.prepared`): for a layer ``c`` with a
fused activation, ``"c:0"`` is the pre-activation value and ``"c_relu:0"`` (``"c_tanh:0"``, ...)
the post-activation one. :func:`describe` words the settings of a render for reports.
"""
import sys
import warnings

import keras
import numpy as np
import tensorflow as tf

from .. import graph, optim, rules, targets
from ..display import html_images
from ..models.info import model_info
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
    In a notebook the result shows as its images, each labelled with its objective
    (:func:`tfvis.display.html_images`).
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

    def _repr_html_(self):
        images = np.asarray(self)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3 or not 0 < len(images) <= 64:
            return None  # not a batch of renders: the plain array repr
        names = list(self.objectives) if len(self.objectives) == len(images) else [f"image {i}" for i in range(len(images))]
        labels = [f"{name} (flat or NaN)" if i in self.failed else name for i, name in enumerate(names)]
        return html_images(images, labels, title=f"{self.steps} steps" if self.steps else None)


def _as_result(images, failed, names, values, steps):
    result = np.asarray(images, np.float32).view(RenderResult)
    result.failed, result.objectives, result.values, result.steps = list(failed), list(names), values, steps
    return result


_PARAM_WORDS = {"fft": "Fourier", "pixel": "pixel"}


def describe(steps=512, size=128, param="fft", decorrelate=True, transforms="standard", redirect_relu=False):
    """The settings of a render in words, for report pages.

    The defaults are :func:`render`'s, so ``describe(**kwargs)`` describes ``render(model, objective, **kwargs)``
    for these settings.

    Parameters
    ----------
    steps : int
    size : int or (int, int)
    param : {"fft", "pixel"}
    decorrelate : bool
    transforms : "standard", None, "none", callable or list of callables
    redirect_relu : bool

    Returns
    -------
    str

    Examples
    --------
    >>> describe(steps=256, size=128)
    '256 steps at 128 px, Fourier + decorrelated colours, standard transforms'
    >>> describe(steps=64, size=(32, 48), param="pixel", decorrelate=False, transforms=None)
    '64 steps at 32 x 48 px, pixel parameterization, RGB colours, no transforms'
    """
    if param not in _PARAM_WORDS:
        raise ValueError(f"param={param!r}; choose one of: {', '.join(param_.PARAMS)}")
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    side = f"{h} px" if h == w else f"{h} x {w} px"
    basis = _PARAM_WORDS[param]
    colours = f"{basis} + decorrelated colours" if decorrelate else f"{basis} parameterization, RGB colours"
    if transforms is None or transforms == "none":
        moves = "no transforms"
    elif transforms == "standard":
        moves = "standard transforms"
    else:
        moves = "custom transforms"
    words = [f"{int(steps)} steps at {side}", colours, moves]
    if redirect_relu:
        words.append("redirected ReLU")
    return ", ".join(words)


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


class FeatureNet:
    """The outputs of an objective's layers on the prepared model: ``net(x) -> {layer: output}``.

    Layers are named on :func:`tfvis.graph.prepared` (every fused activation split out: ``"c"`` is
    the pre-activation output of a layer ``c``, ``"c_relu"`` or ``"c_tanh"`` the post-activation one);
    :data:`~tfvis.featurevis.objectives.LOGITS` stands for the class scores
    (:func:`tfvis.targets.logits_layer`). The net's input gradients go through
    :func:`tfvis.rules.for_input_gradients`.

    Parameters
    ----------
    model : keras.Model
        The user's model.
    layers : sequence of str
        Layer names (and :data:`~tfvis.featurevis.objectives.LOGITS`).
    redirect_relu : bool
        Lucid's redirected ReLU gradient at every rectifier (:func:`tfvis.rules.redirected`).

    Raises
    ------
    ValueError
        An unknown layer (the message names the valid ones), or class scores asked of a model
        without a class output.

    Examples
    --------
    >>> features = FeatureNet(model, ["block4_conv3"])  # doctest: +SKIP
    >>> features(images)["block4_conv3"].shape  # doctest: +SKIP
    TensorShape([1, 28, 28, 512])
    """

    def __init__(self, model, layers, redirect_relu=False, input_hw=None):
        prepared = graph.prepared(model)
        self.layers = list(dict.fromkeys(layers))
        self.logits = targets.logits_layer(prepared) if obj_.LOGITS in self.layers else None
        names = []
        for name in self.layers:
            if name == obj_.LOGITS:
                names.append(self.logits.layer)
            else:
                names.append(targets.find_layer(prepared, name).name)
        self._source = dict(zip(self.layers, names))
        self.sources = list(dict.fromkeys(names))
        self.model = graph.feature_net(prepared, self.sources, rules.for_input_gradients(redirect_relu=bool(redirect_relu)))
        self.resize_to = None
        self.notice = None
        fixed = tuple(self.model.inputs[0].shape[1:3])
        if input_hw is not None and all(d is not None for d in fixed) and fixed != tuple(input_hw):
            free = graph.free_input(self.model)
            where = ", ".join(self.sources)
            if free is not None:
                self.model = free
                self.notice = (f"model {model.name!r} takes {fixed[0]} x {fixed[1]} images; rendering {input_hw[0]} x {input_hw[1]} "
                               f"through a copy with a free input size (its layers up to {where} are fully convolutional)")  # fmt: skip
            else:
                self.resize_to = fixed
                self.notice = (f"model {model.name!r} takes {fixed[0]} x {fixed[1]} images and its layers up to {where} need that size; "
                               f"rendering at {fixed[0]} x {fixed[1]} (the transformed images resized to it)")  # fmt: skip

    def __call__(self, x):
        if self.resize_to is not None:
            x = tf.image.resize(x, self.resize_to, method="bilinear")
        outs = self.model(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        by_source = dict(zip(self.sources, outs))
        acts = {name: by_source[self._source[name]] for name in self.layers}
        if self.logits is not None and self.logits.head is not None:
            acts[obj_.LOGITS] = targets.apply_head(acts[obj_.LOGITS], self.logits.head)
        return acts

    def shapes(self, input_hw):
        """Output shapes without the batch axis for an input of ``input_hw`` pixels."""
        hw = self.resize_to or input_hw
        spec = keras.KerasTensor((1, hw[0], hw[1], 3))
        outs = self.model.compute_output_spec(spec)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        by_source = {n: tuple(o.shape[1:]) for n, o in zip(self.sources, outs)}
        shapes = {name: by_source[self._source[name]] for name in self.layers}
        if self.logits is not None:
            shapes[obj_.LOGITS] = (self.logits.classes,)
        return shapes


def _check_input(model):
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"model {model.name!r} takes inputs of shape {tuple(shape)}; render needs RGB images (N, H, W, 3)")


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
    update = optim.Adam(image_param.variables, learning_rate, sign=1)
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
    value_range=None,
    jit_compile=False,
    flat_tolerance=0.01,
    redirect_relu=False,
):
    """Optimise images to maximise ``objective`` on ``model`` (Lucid's ``render_vis``).

    Parameters
    ----------
    model : keras.Model
        A CNN taking RGB images ``(N, H, W, 3)`` in ``value_range`` (the zoo's models take [0, 255]
        and preprocess inside). Layers are named on :func:`tfvis.graph.prepared`: every fused
        activation is split out, so ``"c:0"`` is the pre-activation value of layer ``c`` and
        ``"c_relu:0"`` (``"c_tanh:0"``, ...) the post-activation one.
    objective : Objective, str, int, or list of them
        What to maximise. A target (:mod:`tfvis.targets`) stands for its objective:
        ``"layer:n"`` for :func:`~tfvis.featurevis.objectives.channel`, ``"layer:n@y,x"`` for
        :func:`~tfvis.featurevis.objectives.neuron`, a class (``281``, ``"logits:281"``) for
        :func:`~tfvis.featurevis.objectives.class_logit`. A list renders one image per entry,
        objective ``i`` on image ``i``, in one batch.
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
    value_range : (float, float), optional
        The model's input range; [0, 1] images are scaled onto it. Default: the model's
        (:func:`tfvis.models.info.model_info`; [0, 255] for the zoo and for unknown models).
    jit_compile : bool
        Compile the step with XLA. Off by default: on CPU, XLA's convolutions ran VGG16's step
        2-3x slower than TensorFlow's oneDNN kernels (``benchmarks/featurevis.py``); try it on GPU.
    flat_tolerance : float
        Images whose pixel std falls below this are reported as flat (see :class:`RenderResult`).
    redirect_relu : bool
        Lucid's redirected ReLU (:func:`tfvis.rules.redirected`): where a rectifier stops all of
        an image's gradient (every unit below zero, e.g. a dead start), pass the gradient that would
        raise its input, so the image can leave the flat region. Off by default; the plain gradient
        elsewhere is unchanged.

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
    _check_input(model)
    features = FeatureNet(model, objective.layers, redirect_relu=redirect_relu, input_hw=out_hw)
    if features.notice:
        print(f"tfvis: {features.notice}", file=sys.stderr)
    objective.check(features.shapes(out_hw), batch)
    value_range = input_range(model, value_range)
    step = make_step(features, objective, image_param, transform, value_range, learning_rate, seed, jit_compile)
    return _optimise(step, image_param, checkpoints, thresholds is not None, names, progress, flat_tolerance)


def input_range(model, value_range=None):
    """``value_range`` checked, or the model's input range (:func:`tfvis.models.info.model_info`) when None.

    Parameters
    ----------
    model : keras.Model
    value_range : (float, float), optional

    Returns
    -------
    (float, float)

    Raises
    ------
    ValueError
        Not two numbers with ``low < high``.
    """
    if value_range is None:
        value_range = model_info(model).value_range
    if len(value_range) != 2 or not value_range[1] > value_range[0]:
        raise ValueError(f"value_range={value_range!r}: give (low, high) with low < high, e.g. (0, 255)")
    return value_range


def objective_value(model, objective, images, batch_size=16):
    """The value of ``objective`` on ``images`` (in the model's input space), without optimising.

    What :func:`render` maximises, measured on given images: e.g. how strongly photos drive a
    channel compared with its feature visualization. Images are read in batches; an objective
    that averages over the batch (the default of every objective) is averaged over all images.

    Parameters
    ----------
    model : keras.Model
    objective : Objective or str
    images : ndarray, shape (N, H, W, 3)
        In the model's input space (RGB in [0, 255] for the zoo).
    batch_size : int

    Returns
    -------
    float

    Examples
    --------
    >>> objective_value(model, "block4_conv3:12", photos)  # doctest: +SKIP
    """
    from ..images import model_batch

    objective = obj_.as_objective(objective)
    images, _ = model_batch(model, images)
    features = FeatureNet(model, objective.layers)
    total = 0.0
    for start in range(0, len(images), int(batch_size)):
        chunk = images[start : start + int(batch_size)]
        total += float(objective(features(tf.constant(chunk)))) * len(chunk)
    return total / len(images)


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
