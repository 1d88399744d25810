"""Simonyan et al.'s class model visualization: the image that maximises a class score, by gradient ascent."""
import numpy as np
import tensorflow as tf

from ..graph import cached, prepared
from ..models.info import model_info
from ..targets import resolve
from .gradient import target_net, target_scores


def mean_image(model, shape=None):
    """The image whose preprocessed value is zero (the model's mean), in the model's input space.

    The mean is :attr:`tfvis.models.info.ModelInfo.mean_rgb` of :func:`tfvis.models.info.model_info`
    (the zoo's declaration, or the mean of the model's ``preprocess`` layer; zeros without one).

    Parameters
    ----------
    model : keras.Model
    shape : tuple of int, optional
        ``(H, W, C)``; default: the model's input shape.

    Returns
    -------
    ndarray, float32, shape (H, W, C)

    Examples
    --------
    >>> import keras
    >>> mean_image(keras.Sequential([keras.Input((2, 3, 3)), keras.layers.Flatten()])).shape
    (2, 3, 3)
    """
    shape = tuple(shape or model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"model {model.name!r} takes images of any size {shape}; give shape=(H, W, C)")
    return model_info(model).mean_image(shape)


def _step_function(model, target):
    """Compiled ascent step ``image -> clip(image + rate * g / rms(g))`` on the prepared ``model``, cached."""

    def build():
        net = target_net(model, target)

        @tf.function
        def step(image, mean, channel, position, l2, rate, low, high):
            with tf.GradientTape() as tape:
                tape.watch(image)
                s = target_scores(net(image, training=False), target, channel, position)
                objective = tf.reduce_sum(s) - l2 * tf.reduce_sum(tf.square(image - mean))
            g = tape.gradient(objective, image)
            g = g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-12)
            return tf.clip_by_value(image + rate * g, low, high)

        return step

    return cached(model, ("saliency.class_model",) + target.key, build)


def class_model(model, class_index, steps=200, l2=1e-6, learning_rate=1.0, seed=0, shape=None, init_noise=0.0, value_range=None):
    """Simonyan et al.'s class model: ``argmax_I S_c(I) - l2 * ||I - mean||^2`` by gradient ascent.

    Starts from the model's mean image (:func:`mean_image`: zero after preprocessing) and takes
    ``steps`` compiled ascent steps ``I += learning_rate * g / rms(g)`` (the gradient normalised
    to unit root mean square, so ``learning_rate`` is in pixel values per step), clipping to
    ``value_range`` after each step.

    Parameters
    ----------
    model : keras.Model
        A model with a class output (:func:`tfvis.targets.logits_layer`).
    class_index : int or str
        The class; any target with a channel or unit (:mod:`tfvis.targets`) is also accepted.
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
    value_range : (float, float), optional
        Clip range of the image; default the model's
        (:attr:`tfvis.models.info.ModelInfo.value_range`, RGB [0, 255] for the zoo).

    Returns
    -------
    ndarray, float32, shape (H, W, C)
        RGB in ``value_range``.

    Examples
    --------
    >>> image = class_model(tfvis.load_model("vgg16", weights="imagenet"), 281)  # doctest: +SKIP
    """
    net = prepared(model)
    target = resolve(net, class_index, require_index=True)
    mean = mean_image(model, shape)
    start = mean + float(init_noise) * np.random.default_rng(int(seed)).standard_normal(mean.shape).astype(np.float32)
    low, high = (float(v) for v in (model_info(model).value_range if value_range is None else value_range))
    start = np.clip(start, low, high)[None].astype(np.float32)
    step = _step_function(net, target)
    image = tf.constant(start)
    args = (
        tf.constant(mean[None]),
        tf.constant([target.index], tf.int32),
        tf.constant(np.array(target.position or (), np.int32).reshape(1, -1 if target.position else 0)),
        tf.constant(float(l2), tf.float32),
        tf.constant(float(learning_rate), tf.float32),
        tf.constant(low, tf.float32),
        tf.constant(high, tf.float32),
    )
    for _ in range(int(steps)):
        image = step(image, *args)
    return image.numpy()[0]


__all__ = ["class_model", "mean_image"]
