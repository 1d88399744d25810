"""Render feature visualizations: optimise parameterized images to maximise an objective.

One compiled ``tf.function`` runs a whole stretch of optimisation steps (a ``tf.range`` loop; each
step: parameterization, random transforms, one forward pass of a feature model returning every
layer the objective reads, the gradient, an Adam ascent step of :mod:`tfvis.optim`), with no
transfer to the host inside it; the Python loop calls it once per stretch of about a second (so a
progress bar moves and Ctrl-C is answered) and fetches the objective's values then. Randomness is
stateless, keyed by the seed and the step number, so a render is reproducible, whatever the
stretches.

The loop is :mod:`tfvis.optim`'s (:class:`~tfvis.optim.Loop`, the one loop of caricatures,
inversion and the class model too; :func:`render_loop` builds a render's). It is cached per model
(:func:`tfvis.optim.cached_loop`, the :data:`CACHE_SIZE` most recently used per model) and per
objective structure, size, batch and settings; the seed is one of its inputs. A list of
plain channel targets (``["block4_conv3:0", "block4_conv3:1", ...]``, as reports render them)
feeds its channel indices to the loop as a tensor, so every batch of channels of one layer reuses
one trace. Weights are read when the loop runs, so weight changes between renders are seen.

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
from .. import precision as precision_
from ..display import html_images
from ..images import model_batch
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
    precision : str
        The precision the network ran in (``"float32"`` or ``"bfloat16"``).

    Slices and arithmetic give plain arrays' behaviour with these attributes left at their defaults.
    In a notebook the result shows as its images, each labelled with its objective
    (:func:`tfvis.display.html_images`).
    """

    failed = ()
    objectives = ()
    values = None
    steps = 0
    precision = "float32"

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


def _as_result(images, failed, names, values, steps, precision="float32"):
    result = np.asarray(images, np.float32).view(RenderResult)
    result.failed, result.objectives, result.values, result.steps = list(failed), list(names), values, steps
    result.precision = precision
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
    input_hw : (int, int), optional
        The size of the images the net will be fed; a model whose input size is fixed at another
        size is given a free-size copy where its graph allows, else the images are resized.
    precision : {"float32", "bfloat16", "auto"}
        ``"bfloat16"``: the net is cut from :func:`tfvis.precision.bfloat16_model` of the prepared
        model and its outputs are cast back to float32 (taken as given: no warning where bfloat16
        is emulated). ``"auto"`` resolves with :func:`tfvis.precision.resolve_precision` and
        :data:`AUTO_BFLOAT16`.

    Attributes
    ----------
    precision : str
        ``"float32"`` or ``"bfloat16"``, what the net computes in.

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

    def __init__(self, model, layers, redirect_relu=False, input_hw=None, precision="float32"):
        if precision not in ("float32", "bfloat16"):  # "auto" (and errors); an explicit precision is taken as given
            precision = precision_.resolve_precision(precision, AUTO_BFLOAT16)
        self.precision = precision
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
        source = prepared if self.precision == "float32" else precision_.bfloat16_model(prepared, cast_outputs=False)
        self.model = graph.feature_net(source, self.sources, rules.for_input_gradients(redirect_relu=bool(redirect_relu)))
        self.resize_to = None
        self.notice = None
        fixed = tuple(self.model.inputs[0].shape[1:3])
        if input_hw is not None and all(d is not None for d in fixed) and fixed != tuple(input_hw):
            free = graph.free_input(self.model)
            where = ", ".join(self.sources)
            if free is not None:
                self.model = free
                self.notice = (
                    f"model {model.name!r} takes {fixed[0]} x {fixed[1]} images; rendering {input_hw[0]} x {input_hw[1]} "
                    f"through a copy with a free input size (its layers up to {where} are fully convolutional)"
                )
            else:
                self.resize_to = fixed
                self.notice = (
                    f"model {model.name!r} takes {fixed[0]} x {fixed[1]} images and its layers up to {where} need that size; "
                    f"rendering at {fixed[0]} x {fixed[1]} (the transformed images resized to it)"
                )

    def __call__(self, x):
        if self.resize_to is not None:
            x = tf.image.resize(x, self.resize_to, method="bilinear")
        outs = self.model(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        if self.precision != "float32":
            outs = [tf.cast(o, tf.float32) for o in outs]
        by_source = dict(zip(self.sources, outs))
        acts = {name: by_source[self._source[name]] for name in self.layers}
        if self.logits is not None and self.logits.head is not None:
            acts[obj_.LOGITS] = targets.apply_head(acts[obj_.LOGITS], self.logits.head)
        return acts

    def sync(self, model):
        """Copy ``model``'s weights into the copies this net reads (split activations, bfloat16); before reusing the net."""
        prepared = graph.prepared(model)
        if self.precision != "float32":
            precision_.bfloat16_model(prepared, cast_outputs=False)

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
    shape = graph.image_input(model).shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"model {model.name!r} takes inputs of shape {tuple(shape)}; render needs RGB images (N, H, W, 3)")


#: Where ``precision="auto"`` (asked for; the default is float32) renders in bfloat16
#: (``auto_bfloat16`` of :func:`tfvis.precision.resolve_precision`): ``"cpu"``, on CPUs with
#: ``avx512_bf16`` or ``amx_bf16`` when no GPU is in use. Measured (``benchmarks/featurevis.py``, VGG16 ``block4_conv3``,
#: 8 channels, 128 px, 256 steps): bfloat16 renders reach the activation gain of float32 ones (20.8
#: against 20.9; mean target activation 75.8 against 76.5). GPUs stay float32 under "auto" (they
#: already run float32 convolutions in TF32; bfloat16 renders there are unmeasured).
AUTO_BFLOAT16 = "cpu"

#: Compiled render loops kept per model (:data:`tfvis.optim.CACHE_SIZE`, shared with the other methods' loops).
CACHE_SIZE = optim.CACHE_SIZE

# Compute only the batch's channels of a convolution that channel targets read (_objective_conv).
_PRUNE = True


def render_loop(
    features, objective_fn, image_param, transform, value_range, learning_rate=0.05, jit_compile=False, shapes=None, extra=None
):
    """The :class:`tfvis.optim.Loop` of a render: Adam ascent on ``objective_fn`` of the transformed images' features.

    Each step: the images of ``image_param`` (in [0, 1]), the random ``transform`` keyed by the seed
    and the step number, scaled onto ``value_range``, ``features`` of them, ``objective_fn(acts,
    aux)``, plus ``extra(images)`` when given (a penalty on the untransformed images, e.g. the
    caricature's blur). The loop carries ``features``, ``image_param`` and ``shapes`` (the
    objective layers' output shapes) as attributes; :meth:`~tfvis.optim.Loop.start` resets the
    images to a seed's.

    Parameters
    ----------
    features : FeatureNet or callable
        ``x -> {layer: output}``.
    objective_fn : callable
        ``(acts, aux) -> scalar``.
    image_param : tfvis.featurevis.param.ImageParam
        Or anything with ``variables``, ``reset(seed)`` and a call giving ``(B, H, W, 3)`` in [0, 1].
    transform : callable
        ``(images, seed pair) -> images`` (:func:`tfvis.featurevis.transforms.get`).
    value_range : (float, float)
    learning_rate : float
    jit_compile : bool
    shapes : dict, optional
    extra : callable, optional
        ``images -> scalar`` added to the objective.

    Returns
    -------
    tfvis.optim.Loop
    """
    low, high = float(value_range[0]), float(value_range[1])

    def objective(seed, index, total, aux):
        images = image_param()
        x = transform(images, tf.stack([seed, index]))
        value = objective_fn(features(low + x * (high - low)), aux)
        if extra is not None:
            value += extra(images)
        return value

    update = optim.Adam(image_param.variables, learning_rate, sign=1)
    loop = optim.Loop(objective, update, jit_compile=jit_compile, reset=image_param.reset)
    loop.features, loop.image_param, loop.shapes = features, image_param, shapes
    return loop


def _channel_batch(objective):
    """``(layer, [n0, n1, ...])`` for a list of plain channel targets of one layer, one per image; else None."""
    if not isinstance(objective, (list, tuple)) or not objective:
        return None
    layers, indices = set(), []
    for item in objective:
        if not isinstance(item, (str, targets.Target)):
            return None
        try:
            parsed = targets.parse(item)
        except (ValueError, TypeError):
            return None
        if parsed.is_class or parsed.index is None or parsed.position is not None:
            return None
        layers.add(parsed.layer)
        indices.append(int(parsed.index))
    return (layers.pop(), indices) if len(layers) == 1 else None


def _channel_values(layer):
    """The objective of image ``i`` maximising channel ``aux[i]`` of ``layer``, summed over the batch.

    The value and gradient of ``sum(channel(f"{layer}:{n}").on(i) for i, n in enumerate(aux))``
    (equal in eager mode; within float32 rounding, 1e-7, in a compiled graph, whose rewrites
    differ), with the indices a tensor, so one trace serves every batch of channels.
    """

    def value(acts, aux):
        act = acts[layer]
        picked = tf.gather(act, aux, axis=act.shape.rank - 1, batch_dims=1)  # (B, ...) channel aux[i] of image i
        per_image = tf.reduce_mean(tf.reshape(picked, [tf.shape(picked)[0], -1]), axis=1)
        return tf.reduce_sum(per_image)

    return value


def _objective_conv(model, layer):
    """``(conv, input layer name)`` where channel targets of ``layer`` can be computed from the conv's input alone.

    ``layer`` must be a plain ``Conv2D`` of the prepared model (linear there: a fused activation is
    split out), channels last, one group, fed by the single output of one named layer. Then a batch
    of channel targets needs only its own output channels of the conv (:func:`_conv_channel_values`),
    not all of them. None otherwise (the full layer is computed).
    """
    if not _PRUNE:
        return None
    try:
        conv = targets.find_layer(graph.prepared(model), layer)
    except ValueError:
        return None
    if type(conv) is not keras.layers.Conv2D or conv.data_format != "channels_last" or conv.groups != 1:
        return None
    if graph.activation_name(conv) is not None or not getattr(conv, "_inbound_nodes", None):
        return None
    inputs = list(keras.tree.flatten(conv._inbound_nodes[0].input_tensors))
    if len(inputs) != 1:
        return None
    history = getattr(inputs[0], "_keras_history", None)
    source = graph.producer(inputs[0])
    if source is None or history is None or history[1] != 0 or isinstance(source, keras.layers.InputLayer):
        return None
    if len(keras.tree.flatten(source._inbound_nodes[0].output_tensors)) != 1:
        return None
    return conv, source.name


def _conv_channel_values(conv, source):
    """:func:`_channel_values` of ``conv``'s output, computed from its input ``acts[source]`` for the batch's channels only.

    The convolution runs with the kernel's columns ``aux`` (one output channel per image of the
    batch, for every image), and image ``i`` keeps its own: for a batch of ``B`` channels of a
    ``C``-channel layer, ``B / C`` of the layer's work, forward and backward.
    """

    def value(acts, aux):
        x = acts[source]
        kernel = tf.cast(tf.gather(tf.convert_to_tensor(conv.kernel), aux, axis=3), x.dtype)
        y = tf.nn.conv2d(x, kernel, strides=list(conv.strides), padding=conv.padding.upper(), dilations=list(conv.dilation_rate))
        if conv.use_bias:
            y = y + tf.cast(tf.gather(tf.convert_to_tensor(conv.bias), aux), y.dtype)
        own = tf.gather(y, tf.range(tf.shape(y)[0]), axis=3, batch_dims=1)  # (B, H, W): image i's channel aux[i]
        return tf.reduce_sum(tf.reduce_mean(tf.reshape(own, [tf.shape(own)[0], -1]), axis=1))

    return value


def _transforms_key(transforms):
    if transforms is None or isinstance(transforms, str):
        return transforms
    if callable(transforms):
        return transforms
    return ("list",) + tuple(transforms)


def clear_cache(model=None):
    """Drop the compiled render loops of ``model`` (of every model when None); :func:`tfvis.optim.clear_cache`.

    Parameters
    ----------
    model : keras.Model, optional
    """
    optim.clear_cache(model)


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
    precision="float32",
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
        objective ``i`` on image ``i``, in one batch. A list of channel targets of one layer
        reuses the compiled loop of any earlier list of as many channels of that layer.
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
    precision : {"float32", "auto", "bfloat16"}
        What the network computes in (:mod:`tfvis.precision`); the images, transforms,
        objective and optimiser stay float32. ``"float32"`` (default): a seed gives the same
        images on every CPU. ``"auto"``: bfloat16 on a CPU that runs it natively (``avx512_bf16``
        or ``amx_bf16``) with no GPU in use (:data:`AUTO_BFLOAT16`; its renders were measured to
        reach float32's activation gain in 0.62x the time per step), else float32.
        ``"bfloat16"`` runs anywhere (emulated and slower than float32, with a warning, where the
        hardware lacks it).

    Returns
    -------
    RenderResult or dict of int to RenderResult
        Images ``(B, H, W, 3)`` in [0, 1]; with ``thresholds``, one result per threshold. Flat or
        NaN images are listed in ``result.failed`` and a ``RuntimeWarning`` names them.

    Notes
    -----
    The compiled loop is kept per model and reused by later renders with the same objective
    structure, size, batch and settings (:data:`CACHE_SIZE` per model; :func:`clear_cache`): the
    first render of a configuration traces it (seconds for VGG16), later ones start at once. A
    render gives the same images whether its loop was cached or not.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights="hed", include_top=False)  # doctest: +SKIP
    >>> images = render(model, [f"block4_conv3:{c}" for c in range(8)])  # doctest: +SKIP
    >>> images.shape, images.failed  # doctest: +SKIP
    ((8, 128, 128, 3), [])
    """
    channels = _channel_batch(objective)
    given = tuple(objective) if isinstance(objective, (list, tuple)) else objective
    objective, batch, names = _batch_objective(objective, batch)
    checkpoints = _thresholds(thresholds, steps)
    _check_input(model)
    value_range = tuple(float(v) for v in input_range(model, value_range))
    resolved = precision_.resolve_precision(precision, AUTO_BFLOAT16)
    transform = transforms_.get(transforms)  # checks the argument before anything is built

    def build():
        image_param = param_.image(size, batch, param=param, decorrelate=decorrelate, seed=seed)
        _, h, w, _ = image_param.shape
        out_hw = transforms_.output_size(transform, h) if h == w else _output_hw(transform, h, w)
        conv = _objective_conv(model, channels[0]) if channels else None
        if conv is not None:  # the conv's input from the net, the batch's channels of the conv in the objective
            features = FeatureNet(model, [conv[1]], redirect_relu=redirect_relu, input_hw=out_hw, precision=resolved)
            inner = features.shapes(out_hw)[conv[1]]
            shapes = {channels[0]: tuple(conv[0].compute_output_shape((1,) + tuple(inner)))[1:]}
            fn = _conv_channel_values(conv[0], conv[1])
        else:
            features = FeatureNet(model, objective.layers, redirect_relu=redirect_relu, input_hw=out_hw, precision=resolved)
            shapes = features.shapes(out_hw)
            fn = _channel_values(channels[0]) if channels else (lambda acts, aux: objective(acts))
        return render_loop(features, fn, image_param, transform, value_range, learning_rate, jit_compile, shapes)

    what = ("channels", channels[0], _PRUNE) if channels else ("objective", given)  # objectives by identity, targets by value
    key = (
        "render",
        what,
        int(batch),
        _size_key(size),
        param,
        bool(decorrelate),
        _transforms_key(transforms),
        value_range,
        float(learning_rate),
        bool(jit_compile),
        bool(redirect_relu),
        resolved,
    )
    loop = optim.cached_loop(model, key, build)
    try:
        loop.features.sync(model)
        if loop.features.notice:
            print(f"tfvis: {loop.features.notice}", file=sys.stderr)
        objective.check(loop.shapes, batch)
        loop.start(seed)
        return _optimise(
            loop, seed, channels[1] if channels else None, checkpoints, thresholds is not None, names, progress, flat_tolerance
        )
    finally:
        loop.lock.release()


def _size_key(size):
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)


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


def _optimise(loop, seed, aux, checkpoints, as_dict, names, progress, flat_tolerance, desc="render"):
    """Run ``loop`` (:func:`tfvis.optim.optimize`) to each checkpoint; the results at the checkpoints."""

    def result(stop, history):
        images = loop.image_param().numpy()
        failed = _report(images, names, stop, flat_tolerance)
        return _as_result(images, failed, names, history, stop, loop.features.precision)

    _, results = optim.optimize(loop, checkpoints[-1], seed, aux, checkpoints, progress, desc, result)
    return results if as_dict else results[checkpoints[-1]]


def _report(images, names, steps, tolerance):
    failed = flat_or_nan(images, tolerance)
    if failed:
        which = ", ".join(f"{i} ({names[i]})" for i in failed)
        warnings.warn(
            f"render: image(s) {which} came out flat grey or NaN after {steps} steps: the objective may have "
            "no gradient there (a dead channel, a post-ReLU layer), or the optimisation diverged",
            RuntimeWarning,
            stacklevel=6,  # _report, the checkpoint callback, optim.optimize, _optimise, render, the caller
        )
    return failed
