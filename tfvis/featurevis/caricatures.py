"""Caricatures: render what a layer "sees" in an image (Lucid's feature-inversion caricatures).

:func:`caricature` (also ``tfvis.featurevis.caricature``) renders them, Lucid's way: the photos
are stacked behind the renders in one batch, so that both go through the same random transforms
and the render is compared, at every step, with the photo's activations under the very same jitter,
scale and rotation. :func:`reference_activations` gives a photo's activations on the transforms'
canvas without any transform (what the fixed-target objective
:func:`tfvis.featurevis.objectives.caricature` with explicit activations matches).
"""

import warnings

import numpy as np
import tensorflow as tf

from .. import graph, optim, targets
from .. import precision as precision_
from ..images import check_finite
from . import objectives
from . import param as param_
from . import transforms as transforms_
from .render import AUTO_BFLOAT16, FeatureNet, _as_result, _transforms_key, flat_or_nan, input_range, render_loop

#: Default weight of the blur penalty (see :func:`blur_penalty`), against a caricature objective of 1 at the photo.
BLUR = 100.0
#: Keyword arguments of :func:`caricature` besides its own (the render's settings).
RENDER_KEYWORDS = (
    "param",
    "decorrelate",
    "learning_rate",
    "value_range",
    "jit_compile",
    "flat_tolerance",
    "redirect_relu",
    "precision",
)
# The render settings' defaults (those of render(), for a caricature).
_DEFAULTS = {
    "param": "fft",
    "decorrelate": True,
    "learning_rate": 0.05,
    "jit_compile": False,
    "flat_tolerance": 0.01,
    "redirect_relu": False,
    "precision": "float32",
}


def _canvas(images, hw, fill):
    """Centre ``images`` on an ``hw`` canvas filled with ``fill`` (or centre-crop them to it)."""
    h, w = images.shape[1:3]
    top, left = (hw[0] - h) // 2, (hw[1] - w) // 2
    if top >= 0 and left >= 0:
        paddings = [[0, 0], [top, hw[0] - h - top], [left, hw[1] - w - left], [0, 0]]
        return np.pad(images, paddings, constant_values=fill)
    top, left = max(-top, 0), max(-left, 0)
    return images[:, top : top + hw[0], left : left + hw[1]]


def reference_activations(model, images, layer, size, transforms="standard", value_range=None):
    """The activations of ``images`` at ``layer``, placed as the rendered image sits after the transforms.

    Each image is resized to ``size`` and centred on the transforms' output canvas (mid-grey
    around it: the expected position of the rendered image under pad and jitter). These are the
    fixed targets of :func:`tfvis.featurevis.objectives.caricature` given explicit activations;
    :func:`caricature` itself stacks the photos into the render's batch instead, so that its
    targets move with the transforms.

    Parameters
    ----------
    model : keras.Model
        The model, taking images in ``value_range``.
    images : ndarray, shape (N, H, W, 3)
        Images in ``value_range``.
    layer : str
        Layer name, on the prepared model (:func:`tfvis.graph.prepared`).
    size : int
        Side of the rendered images.
    transforms : "standard", "caricature", None, callable or list
        The render's transforms.
    value_range : (float, float), optional
        The model's input range; default the model's (:func:`tfvis.models.info.model_info`).

    Returns
    -------
    ndarray, shape (N, H', W', C)

    Examples
    --------
    >>> acts = reference_activations(model, photos, "block4_conv3", 128)  # doctest: +SKIP
    """
    transform = transforms_.get(transforms)
    hw = transforms_.output_size(transform, size)
    resized = tf.image.resize(tf.constant(images, tf.float32), (size, size), antialias=True).numpy()
    low, high = input_range(model, value_range)
    canvas = _canvas(resized, hw, low + 0.5 * (high - low))
    features = FeatureNet(model, [layer], input_hw=hw)  # the same net (and input size) the render will use
    return features(tf.constant(canvas, tf.float32))[layer].numpy()


_ACTIVATION_LAYERS = ("ReLU", "Activation", "LeakyReLU", "ELU", "PReLU")


def activated_layer(model, layer):
    """The name of ``layer``'s output after its activation, on the prepared model.

    A layer whose only consumer (on :func:`tfvis.graph.prepared`) is an activation layer (``ReLU``,
    ``Activation``, ...; the zoo's ``<name>_relu``, or a fused activation split out) gives that
    layer's name; any other layer (an activation, a pooling, a concatenation) gives its own name.

    Parameters
    ----------
    model : keras.Model
    layer : str

    Returns
    -------
    str

    Raises
    ------
    ValueError
        An unknown layer (the message names the valid ones).

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="c")])
    >>> activated_layer(m, "c"), activated_layer(m, "c_relu")
    ('c_relu', 'c_relu')
    """
    prepared = graph.prepared(model)
    found = targets.find_layer(prepared, layer)
    members = {id(item) for item in prepared.layers}
    consumers = {id(node.operation): node.operation for node in getattr(found, "_outbound_nodes", [])}
    consumers = [c for key, c in consumers.items() if key in members]
    if len(consumers) == 1 and type(consumers[0]).__name__ in _ACTIVATION_LAYERS:
        return consumers[0].name
    return found.name


def _blur3(images):
    """A 3 x 3 binomial blur of ``(B, H, W, 3)`` images, edges reflected."""
    k = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    kernel = np.zeros((3, 3, 3, 3), np.float32)
    for c in range(3):
        kernel[:, :, c, c] = k
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.conv2d(padded, tf.constant(kernel, images.dtype), 1, "VALID")


def blur_penalty(images):
    """``mean((x - blur(x))^2)`` over each image's pixels, the blur held fixed (Lucid's ``blur_input_each_step``).

    Its gradient ``2 (x - blur(x)) / (H W 3)`` pulls each pixel toward the average of its
    neighbours, damping the pixel-level noise and saturated speckle that the layer cannot see.

    Parameters
    ----------
    images : tensor, shape (B, H, W, 3)
        Images in [0, 1].

    Returns
    -------
    tensor, shape (B,)

    Examples
    --------
    >>> float(blur_penalty(tf.fill([1, 8, 8, 3], 0.5))[0])
    0.0
    """
    images = tf.convert_to_tensor(images)
    return tf.reduce_mean(tf.square(images - tf.stop_gradient(_blur3(images))), axis=[1, 2, 3])


class _Stacked:
    """The renders followed by the fixed photos: ``(2N, H, W, 3)`` in [0, 1]; only the renders are variables.

    The photos are a variable too (not optimised: not in :attr:`variables`), so that a cached loop
    caricatures other photos of the same shape without tracing again (:meth:`use`).
    """

    def __init__(self, image_param, count, size):
        self.param = image_param
        self.photos = tf.Variable(tf.zeros([count, size, size, 3]), trainable=False)
        self.variables = image_param.variables

    def use(self, photos):
        self.photos.assign(photos)

    def reset(self, seed):
        self.param.reset(seed)

    def __call__(self):
        return tf.concat([self.param(), tf.convert_to_tensor(self.photos)], axis=0)


def caricature(
    model,
    image,
    layer,
    steps=512,
    size=None,
    power=4.0,
    seed=0,
    progress=True,
    activated=True,
    blur=BLUR,
    transforms="caricature",
    **kwargs,
):
    """Render what ``layer`` sees in ``image``, Lucid's way.

    Maximises ``dot(act, A) / |A|^2 * max(cossim(act, A), 0.1) ** power - blur * blur_penalty(X)``
    for each render ``X``, with ``act`` its activations and ``A`` the photo's at ``layer`` (after
    the layer's activation function unless ``activated=False``). The photos are stacked behind the
    renders in one batch, so both go through the same random transforms at every step and ``A``
    is always the photo's activation under the same jitter, scale and rotation (Lucid's
    ``feature_inversion`` recipe). The render uses the Fourier parameterization and decorrelated
    colours from small noise unless ``param`` or ``decorrelate`` say otherwise.

    Why these settings (measured on VGG16 with the hed weights, ``docs/caricatures.md``): the
    earlier version matched the *pre-ReLU* activations against a *fixed* target with the cosine
    squared, and gave saturated rainbow textures without a trace of the photo even at
    ``block2_conv2``. Pre-ReLU maps are mostly negative (94% of ``block2_conv2``'s values on a
    photo) and their direction is nearly the same for any input: the cosine between a photo's and a
    flat grey image's is 0.88, so matching it says almost nothing about the photo, and the dot
    product is raised fastest by driving the already negative units further down, i.e. by
    saturated high-contrast texture. After the ReLU the same cosine is 0.29, and what is matched is
    where the units fire. A fixed target also misaligns with the render by up to the jitter (12
    pixels, several units at stride 2), which blurs the layout out of the objective; stacking
    aligns them exactly. The cosine to the fourth power keeps the direction (the layout) ahead of
    the magnitude, and the blur penalty removes pixel-level speckle.

    Parameters
    ----------
    model : keras.Model
        A CNN taking RGB images in ``value_range`` (default: the model's, [0, 255] for the zoo).
    image : ndarray, shape (H, W, 3) or (N, H, W, 3)
        The image(s), in the model's value range.
    layer : str
        Layer whose view is rendered, on :func:`tfvis.graph.prepared` (see ``activated``).
    steps : int
        Optimisation steps (Adam).
    size : int, optional
        Side of the caricatures; default the image's shorter side. Images are resized to it.
    power : float
        Exponent of the cosine similarity (1 to 4; higher follows the direction more closely,
        but much above 4 a render that starts far from the photo's direction gets no gradient).
    seed : int
        Seeds the starting noise and the transforms.
    progress : bool
        Show a progress bar.
    activated : bool
        Match the layer's output after its activation function (:func:`activated_layer`:
        ``block2_conv2`` is read at ``block2_conv2_relu``), as Lucid's layer names are post-ReLU.
        False: the named tensor itself (for a zoo conv layer, the pre-ReLU value).
    blur : float
        Weight of :func:`blur_penalty` (Lucid's ``blur_input_each_step``); 0 disables it.
    transforms : "caricature", "standard", None, callable or list
        Random transforms applied to renders and photos alike; default
        :func:`tfvis.featurevis.transforms.caricature` (Lucid's milder set for this recipe).
    **kwargs
        Render settings (:func:`~tfvis.featurevis.render`'s): ``param`` ("fft"), ``decorrelate``
        (True), ``learning_rate`` (0.05), ``value_range``, ``jit_compile`` (False),
        ``flat_tolerance`` (0.01), ``redirect_relu`` (False), ``precision`` ("float32").

    Returns
    -------
    RenderResult
        ``(N, size, size, 3)`` in [0, 1]; ``values`` holds the objective at each step.

    Notes
    -----
    The optimisation is :func:`~tfvis.featurevis.render`'s loop (:func:`tfvis.optim.optimize` over
    :func:`~tfvis.featurevis.render.render_loop`), cached per model and settings like a render's:
    another batch of as many photos at the same layer and size runs without tracing again.

    Raises
    ------
    ValueError
        Images not ``(H, W, 3)`` or ``(N, H, W, 3)`` RGB, or holding NaN or inf; an unknown layer.
    TypeError
        An unknown keyword.

    Examples
    --------
    >>> photo = tfvis.images.sample_images(["chelsea"], size=128)["chelsea"]  # doctest: +SKIP
    >>> art = caricature(model, photo, "block3_conv3")  # doctest: +SKIP
    """
    unknown = sorted(set(kwargs) - set(RENDER_KEYWORDS))
    if unknown:
        raise TypeError(
            f"caricature() got unexpected keyword(s) {', '.join(unknown)}; render settings: {', '.join(RENDER_KEYWORDS)}"
        )
    images = np.asarray(image, np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"image of shape {np.shape(image)}: expected (H, W, 3) or (N, H, W, 3) RGB")
    check_finite(images)
    n = len(images)
    size = int(size or min(images.shape[1:3]))
    name = activated_layer(model, layer) if activated else targets.find_layer(graph.prepared(model), layer).name
    low, high = (float(v) for v in input_range(model, kwargs.get("value_range")))
    photos = tf.image.resize(tf.constant(images, tf.float32), (size, size), antialias=True)
    photos = tf.clip_by_value((photos - low) / (high - low), 0.0, 1.0).numpy()

    transform = transforms_.get(transforms)
    settings = {key: kwargs.get(key, default) for key, default in _DEFAULTS.items()}
    settings["precision"] = precision_.resolve_precision(settings["precision"], AUTO_BFLOAT16)
    blur = float(blur)

    def build():
        hw = transforms_.output_size(transform, size)
        features = FeatureNet(
            model, [name], redirect_relu=settings["redirect_relu"], input_hw=hw, precision=settings["precision"]
        )
        image_param = param_.image(size, n, param=settings["param"], decorrelate=settings["decorrelate"], seed=seed)
        stacked = _Stacked(image_param, n, size)
        matched = objectives.caricature(name, None, power=power, normalize=True)
        matched.check(features.shapes(hw), 2 * n)

        def penalty(batch):  # on the renders only, untransformed
            return -blur * tf.reduce_mean(blur_penalty(batch[:n]))

        loop = render_loop(
            features,
            lambda acts, aux: matched(acts),
            stacked,
            transform,
            (low, high),
            settings["learning_rate"],
            settings["jit_compile"],
            extra=penalty if blur else None,
        )
        loop.stacked = stacked
        return loop

    key = (
        "caricature",
        name,
        n,
        size,
        float(power),
        blur,
        _transforms_key(transforms),
        (low, high),
        *(settings[k] if k != "learning_rate" else float(settings[k]) for k in _DEFAULTS),
    )
    loop = optim.cached_loop(model, key, build)
    try:
        loop.features.sync(model)
        loop.stacked.use(photos)
        loop.start(seed)
        values, _ = optim.optimize(loop, int(steps), seed, progress=progress, desc=f"caricature {name}")
        images = loop.stacked.param().numpy()
    finally:
        loop.lock.release()
    failed = flat_or_nan(images, settings["flat_tolerance"])
    result = _as_result(images, failed, [f"caricature({name}, power={power:g})"] * n, values, int(steps), loop.features.precision)
    if result.failed:
        which = ", ".join(map(str, result.failed))
        warnings.warn(
            f"caricature: image(s) {which} came out flat grey or NaN after {steps} steps at {name}", RuntimeWarning, stacklevel=2
        )
    return result
