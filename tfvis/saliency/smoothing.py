"""SmoothGrad (Smilkov et al. 2017) over any method of the table: the map averaged over noisy copies of each image.

Each image gets ``samples`` copies with Gaussian noise (:func:`smoothgrad_noise`), and the
method's attributions of the copies are averaged, like Captum's ``NoiseTunnel`` around any
attribution: the gradient (``"vanilla"``), guided backpropagation, the deconvnet, Integrated
Gradients (``"integrated"``: each noisy copy integrated from the same baseline) or Grad-CAM
(``"grad_cam"``: the mean of the copies' maps), or any method that
:data:`tfvis.saliency.methods.METHODS` gives an ``attribution`` builder. The noise is drawn inside
the compiled call that computes the attributions, one call for the copies of several images.
"""

import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached
from ..models.info import model_info
from .gradient import image_spec, row_specs, setup
from .integrated import baselines_for
from .methods import SMOOTHABLE
from .methods import method as saliency_method

#: Methods SmoothGrad can smooth (the table's methods with an attribution builder, and aliases).
SMOOTHABLE_METHODS = SMOOTHABLE
#: The former name of :data:`SMOOTHABLE_METHODS`.
METHODS = SMOOTHABLE_METHODS

#: Options of ``method="integrated"``, passed on to :func:`tfvis.saliency.integrated_gradients`.
INTEGRATED_OPTIONS = ("baseline", "steps", "rule", "gradient")


def smoothgrad_noise(shape, samples, sigma, seed, index):
    """The noise SmoothGrad adds to image ``index``: ``sigma`` times a seeded standard normal.

    ``sigma * tf.random.stateless_normal((samples, *shape), seed=(seed, index))``, so a map depends
    on the seed and the image's position in the batch, never on ``batch_size``.

    Examples
    --------
    >>> smoothgrad_noise((2, 2, 3), 5, 10.0, 0, 1).shape
    TensorShape([5, 2, 2, 3])
    """
    shape = tf.concat([[samples], tf.cast(shape, tf.int32)], 0)
    return sigma * tf.random.stateless_normal(shape, tf.stack([seed, index]))


def noise_scale(model, value_range=None):
    """The width ``high - low`` of the input range: ``value_range`` (a width or a ``(low, high)`` pair), else the model's.

    The model's range is :attr:`tfvis.models.info.ModelInfo.value_range` (the zoo: 255).
    """
    if value_range is None:
        value_range = model_info(model).value_range
    if np.ndim(value_range) == 0:
        return float(value_range)
    low, high = (float(v) for v in value_range)
    return high - low


def _smooth_function(model, target, samples, magnitude, attribution):
    """Compiled SmoothGrad sum: noise drawn in the graph, attributions summed over the copies in the graph.

    ``(images (g, H, W, C), references (g, H, W, C), seeds (g, 2), sigma, start, count, channels,
    positions) -> (g, H, W, C')``: for each image, the sum over its copies ``start .. start +
    count - 1`` of ``attribution``'s attributions (or their magnitude) at ``image + noise``;
    ``references`` (Integrated Gradients' baselines) are not noised.
    """

    def build():
        attribute = attribution.build()
        spec = image_spec(model)
        shape = spec.shape[1:]
        scalar = tf.TensorSpec([], tf.int32)
        seeds = tf.TensorSpec([None, 2], tf.int32)
        signature = [spec, spec, seeds, tf.TensorSpec([], tf.float32), scalar, scalar] + row_specs(target)

        @tf.function(input_signature=signature)
        def run(images, references, seeds, sigma, start, count, channels, positions):
            size = tf.shape(images)[1:]

            def copies(args):
                image, seed = args
                noise = smoothgrad_noise(tf.shape(image), samples, sigma, seed[0], seed[1])
                return image[None] + noise[start : start + count]

            rows = tf.map_fn(copies, (images, seeds), fn_output_signature=tf.TensorSpec([None] + list(shape), tf.float32))
            rows = tf.reshape(rows, tf.concat([[-1], size], 0))
            channels, positions = tf.repeat(channels, count), tf.repeat(positions, count, axis=0)
            grads = attribute(rows, tf.repeat(references, count, axis=0), channels, positions)
            if magnitude:
                grads = tf.abs(grads)
            out = tf.shape(grads)[1:]
            return tf.reduce_sum(tf.reshape(grads, tf.concat([[-1, count], out], 0)), axis=1)

        return run

    return cached(model, ("saliency.smoothgrad", samples, magnitude) + attribution.key + target.key, build)


def _check_options(entry, options):
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = f"; method={entry.name!r} takes {', '.join(entry.options)}" if entry.options else ""
        raise TypeError(f"smoothgrad(method={entry.name!r}) got unexpected options {', '.join(unknown)}{valid}")


def smoothgrad(
    model,
    images,
    target,
    noise=0.15,
    samples=25,
    batch_size=16,
    seed=0,
    magnitude=True,
    value_range=None,
    method="vanilla",
    image_indices=None,
    **options,
):
    """SmoothGrad (Smilkov et al. 2017): a method's attributions averaged over noisy copies of each image.

    Each image gets ``samples`` copies with Gaussian noise of standard deviation
    ``noise * (high - low)``, ``(low, high)`` the input range. The copies of several images
    share one compiled call when ``batch_size`` allows; with fewer rows per call than samples,
    an image's copies are spread over consecutive calls.

    Parameters
    ----------
    model, images, target
        As in :func:`tfvis.saliency.vanilla`.
    noise : float
        Noise standard deviation as a fraction of the input range (0.15: PAIR saliency's default).
        ``noise=0`` returns the method's own map exactly.
    samples : int
        Noisy copies per image.
    batch_size : int
        Rows per compiled call: noisy copies, or for ``"integrated"`` path points (a copy's
        whole path goes through one call, even when it is longer than ``batch_size``).
    seed : int
        The noise of image ``i`` (its index in ``images``) is :func:`smoothgrad_noise` with seed
        ``(seed, i)``, drawn inside the compiled call: the result does not depend on ``batch_size``.
    magnitude : bool
        True: average ``|a|`` over the copies; False: average the signed attributions ``a``. The
        map is then ``max_c |.|`` of the average, so both equal the method's map at ``noise=0``
        (Grad-CAM's maps are non-negative: both are the mean of the copies' maps).
    value_range : None, float or (float, float)
        The input range, as its width or ``(low, high)``; None: the model's
        (:func:`tfvis.models.info.model_info`, RGB [0, 255] for the zoo).
    method : str
        The method smoothed, any of :data:`SMOOTHABLE_METHODS` (the entries of
        :data:`tfvis.saliency.methods.METHODS` with an attribution builder): ``"vanilla"``
        (``"gradient"``), ``"guided"``, ``"deconvnet"``, ``"integrated"`` (each noisy copy
        integrated from an unchanged baseline) or ``"grad_cam"``.
    image_indices : sequence of int, optional
        The index ``i`` of each image in the noise seed ``(seed, i)``; default ``0 .. N-1``.
        Pass the images' positions in a larger set to get the maps that one call on the whole
        set gives them (the report's work units do).
    **options
        The method's options (its entry's ``options``): for ``"integrated"``, ``baseline``,
        ``steps``, ``rule`` and ``gradient`` of :func:`tfvis.saliency.integrated_gradients`; for
        ``"grad_cam"``, ``layer``.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Examples
    --------
    >>> maps = smoothgrad(model, photos, 281, noise=0.15, samples=25)          # doctest: +SKIP
    >>> maps = smoothgrad(model, photos, 281, method="guided")                 # doctest: +SKIP
    >>> maps = smoothgrad(model, photos, 281, method="integrated", steps=16)  # doctest: +SKIP
    >>> maps = smoothgrad(model, photos, 281, method="grad_cam")              # doctest: +SKIP
    """
    if method not in SMOOTHABLE_METHODS:
        raise ValueError(f"method={method!r}; choose one of: {', '.join(SMOOTHABLE_METHODS)}")
    entry = saliency_method(method)
    _check_options(entry, options)
    if int(samples) < 1:
        raise ValueError(f"samples must be at least 1; got {samples}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative; got {noise}")
    if noise == 0:
        return entry(model, images, target, batch_size=batch_size, **options)
    sigma = tf.constant(float(noise) * noise_scale(model, value_range), tf.float32)
    images, single, net, rows = setup(model, images, target, batch_size)
    attribution = entry.build_attribution(model, net, rows.target, options)
    references = baselines_for(images, options.get(entry.reference)) if entry.reference else images
    samples, batch_size = int(samples), int(batch_size)
    run = _smooth_function(net, rows.target, samples, bool(magnitude), attribution)
    indices = np.arange(len(images)) if image_indices is None else np.asarray(image_indices).reshape(-1)
    if len(indices) != len(images):
        raise ValueError(f"image_indices has {len(indices)} entries for {len(images)} images")
    seeds = np.stack([np.full(len(images), int(seed)), indices], axis=1).astype(np.int32)
    capacity = max(batch_size // attribution.rows, 1)  # noisy copies per call
    per_call = max(capacity // samples, 1)  # images whose copies fit in one call
    count = min(samples, capacity)  # copies of one image per call
    total = None
    for first in range(0, len(images), per_call):
        group = slice(first, first + per_call)
        x, x0 = tf.constant(images[group]), tf.constant(references[group])
        for start in range(0, samples, count):
            part = run(
                x,
                x0,
                tf.constant(seeds[group]),
                sigma,
                tf.constant(start),
                tf.constant(min(count, samples - start)),
                *rows.tensors(group),
            ).numpy()
            if total is None:
                total = np.zeros((len(images), *part.shape[1:]), np.float64)
            total[group] += part
    maps = np.abs(total / samples).max(axis=-1).astype(np.float32)
    return as_maps(maps[0] if single else maps)


__all__ = ["INTEGRATED_OPTIONS", "METHODS", "SMOOTHABLE_METHODS", "noise_scale", "smoothgrad", "smoothgrad_noise"]
