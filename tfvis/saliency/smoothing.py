"""SmoothGrad (Smilkov et al. 2017) over any gradient method: the map averaged over noisy copies of each image.

Each image gets ``samples`` copies with Gaussian noise (:func:`smoothgrad_noise`), and the
method's attributions of the copies are averaged: the gradient (``"vanilla"``), guided
backpropagation, the deconvnet, or Integrated Gradients (``"integrated"``: each noisy copy
integrated from the same baseline). The noise is drawn inside the compiled call that takes the
gradients, one call for the copies of several images.
"""
import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached
from ..models.info import model_info
from .gradient import METHODS as GRADIENT_METHODS
from .gradient import backward_method, gradient_map, image_spec, input_gradients, row_specs, setup, target_net
from .integrated import baselines_for, integrated_gradients, path_attributions, path_points

#: Methods SmoothGrad can smooth.
METHODS = tuple(GRADIENT_METHODS) + ("integrated",)

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


def _smooth_function(model, target, samples, magnitude, integrated, backward):
    """Compiled SmoothGrad sum: noise drawn in the graph, attributions summed over the copies in the graph.

    ``(images (g, H, W, C), baselines (g, H, W, C), seeds (g, 2), sigma, start, count, channels,
    positions, alphas, weights) -> (g, H, W, C)``: for each image, the sum over its copies
    ``start .. start + count - 1`` of the attributions (or their magnitude) at ``image + noise``.
    ``baselines``, ``alphas`` and ``weights`` are read for Integrated Gradients (``integrated``) only.
    """

    def build():
        net = target_net(model, target, backward)
        spec = image_spec(model)
        shape = spec.shape[1:]
        scalar = tf.TensorSpec([], tf.int32)
        seeds = tf.TensorSpec([None, 2], tf.int32)
        points = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float64)]
        signature = [spec, spec, seeds, tf.TensorSpec([], tf.float32), scalar, scalar] + row_specs(target) + points

        @tf.function(input_signature=signature)
        def run(images, baselines, seeds, sigma, start, count, channels, positions, alphas, weights):
            size = tf.shape(images)[1:]

            def copies(args):
                image, seed = args
                noise = smoothgrad_noise(tf.shape(image), samples, sigma, seed[0], seed[1])
                return image[None] + noise[start : start + count]

            rows = tf.map_fn(copies, (images, seeds), fn_output_signature=tf.TensorSpec([None] + list(shape), tf.float32))
            rows = tf.reshape(rows, tf.concat([[-1], size], 0))
            channels, positions = tf.repeat(channels, count), tf.repeat(positions, count, axis=0)
            if integrated:
                bases = tf.repeat(baselines, count, axis=0)
                grads = path_attributions(net, target, rows, bases, alphas, weights, channels, positions)
            else:
                grads, _ = input_gradients(net, target, rows, channels, positions)
            if magnitude:
                grads = tf.abs(grads)
            return tf.reduce_sum(tf.reshape(grads, tf.concat([[-1, count], size], 0)), axis=1)

        return run

    return cached(model, ("saliency.smoothgrad", samples, magnitude, integrated, backward) + target.key, build)


def _check_options(method, options):
    allowed = INTEGRATED_OPTIONS if method == "integrated" else ()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = f"; method='integrated' takes {', '.join(INTEGRATED_OPTIONS)}" if method == "integrated" else ""
        raise TypeError(f"smoothgrad(method={method!r}) got unexpected options {', '.join(unknown)}{valid}")


def smoothgrad(model, images, target, noise=0.15, samples=25, batch_size=16, seed=0, magnitude=True, value_range=None, method="vanilla", **options):
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
        map is then ``max_c |.|`` of the average, so both equal the method's map at ``noise=0``.
    value_range : None, float or (float, float)
        The input range, as its width or ``(low, high)``; None: the model's
        (:func:`tfvis.models.info.model_info`, RGB [0, 255] for the zoo).
    method : {"vanilla", "gradient", "guided", "deconvnet", "integrated"}
        The attributions smoothed: the gradient, guided backpropagation, the deconvnet, or
        Integrated Gradients of each noisy copy from an unchanged baseline.
    **options
        For ``"integrated"``: ``baseline``, ``steps``, ``rule`` and ``gradient`` of
        :func:`tfvis.saliency.integrated_gradients`.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Examples
    --------
    >>> maps = smoothgrad(model, photos, 281, noise=0.15, samples=25)          # doctest: +SKIP
    >>> maps = smoothgrad(model, photos, 281, method="guided")                 # doctest: +SKIP
    >>> maps = smoothgrad(model, photos, 281, method="integrated", steps=16)  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of: {', '.join(METHODS)}")
    _check_options(method, options)
    if int(samples) < 1:
        raise ValueError(f"samples must be at least 1; got {samples}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative; got {noise}")
    if noise == 0:
        if method == "integrated":
            return integrated_gradients(model, images, target, reduce="max", batch_size=batch_size, **options)
        return gradient_map(model, images, target, method, batch_size)
    integrated = method == "integrated"
    if integrated:  # the defaults of integrated_gradients
        backward = backward_method(options.get("gradient", "vanilla"))
        alphas, weights = path_points(options.get("steps", 64), options.get("rule", "trapezoid"))
    else:
        backward, alphas, weights = backward_method(method), np.zeros(0, np.float32), np.zeros(0)
    sigma = tf.constant(float(noise) * noise_scale(model, value_range), tf.float32)
    images, single, net, rows = setup(model, images, target, batch_size)
    baselines = baselines_for(images, options.get("baseline")) if integrated else None
    samples, batch_size = int(samples), int(batch_size)
    run = _smooth_function(net, rows.target, samples, bool(magnitude), integrated, backward)
    seeds = np.stack([np.full(len(images), int(seed)), np.arange(len(images))], axis=1).astype(np.int32)
    capacity = max(batch_size // max(len(alphas), 1), 1)  # noisy copies per call
    per_call = max(capacity // samples, 1)  # images whose copies fit in one call
    count = min(samples, capacity)  # copies of one image per call
    points = (tf.constant(alphas), tf.constant(weights, tf.float64))
    total = np.zeros(images.shape, np.float64)
    for first in range(0, len(images), per_call):
        group = slice(first, first + per_call)
        x = tf.constant(images[group])
        x0 = tf.constant(baselines[group]) if integrated else x
        for start in range(0, samples, count):
            part = run(x, x0, tf.constant(seeds[group]), sigma, tf.constant(start),
                       tf.constant(min(count, samples - start)), *rows.tensors(group), *points)  # fmt: skip
            total[group] += part.numpy()
    maps = np.abs(total / samples).max(axis=-1).astype(np.float32)
    return as_maps(maps[0] if single else maps)


__all__ = ["INTEGRATED_OPTIONS", "METHODS", "noise_scale", "smoothgrad", "smoothgrad_noise"]
