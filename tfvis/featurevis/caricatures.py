"""Caricatures: render what a layer "sees" in an image (Lucid's activation-grid notebooks).

:func:`caricature` (also ``tfvis.featurevis.caricature``) renders them; :func:`reference_activations`
gives the activations they match.
"""
import numpy as np
import tensorflow as tf

from ..images import check_finite
from . import objectives
from . import transforms as transforms_
from .render import FeatureNet, input_range, render


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
    around it: the expected position of the rendered image under pad and jitter), so that the
    activations line up with those of the rendered image.

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
    transforms : "standard", None, callable or list
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


def caricature(model, image, layer, steps=512, size=None, power=2.0, seed=0, progress=True, **kwargs):
    """Render what ``layer`` sees in ``image``: maximise ``dot(act, A) * cossim(act, A) ** power``.

    ``A`` are the image's activations at ``layer`` (:func:`reference_activations`); the render uses
    the Fourier parameterization, decorrelated colours and the standard transforms unless
    ``kwargs`` say otherwise. A batch of images gives one caricature per image in one render.

    Parameters
    ----------
    model : keras.Model
        A CNN taking RGB images in ``value_range`` (default: the model's, [0, 255] for the zoo).
    image : ndarray, shape (H, W, 3) or (N, H, W, 3)
        The image(s), in the model's value range.
    layer : str
        Layer whose view is rendered.
    steps : int
        Optimisation steps.
    size : int, optional
        Side of the caricatures; default the image's shorter side.
    power : float
        Exponent of the cosine similarity (1 to 4; higher follows the direction more closely).
    seed : int
        Seeds the render.
    progress : bool
        Show a progress bar.
    **kwargs
        Passed to :func:`~tfvis.featurevis.render` (``param``, ``transforms``, ``value_range``, ...).

    Returns
    -------
    RenderResult
        ``(N, size, size, 3)`` in [0, 1].

    Examples
    --------
    >>> photo = tfvis.images.sample_images(["chelsea"], size=128)["chelsea"]  # doctest: +SKIP
    >>> art = caricature(model, photo, "block4_conv1")  # doctest: +SKIP
    """
    images = np.asarray(image, np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"image of shape {np.shape(image)}: expected (H, W, 3) or (N, H, W, 3) RGB")
    check_finite(images)
    size = int(size or min(images.shape[1:3]))
    transforms = kwargs.pop("transforms", "standard")
    value_range = kwargs.get("value_range")
    target = reference_activations(model, images, layer, size, transforms, value_range)
    objective = objectives.caricature(layer, target, power=power)
    return render(
        model, objective, size=size, steps=steps, batch=len(images), transforms=transforms, seed=seed, progress=progress, **kwargs
    )
