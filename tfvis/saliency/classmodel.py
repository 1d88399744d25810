"""Simonyan et al.'s class model visualization: the image that maximises a class score, by gradient ascent."""

import numpy as np
import tensorflow as tf

from .. import optim
from ..graph import prepared
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


def _class_model_loop(model, target, shape, mean, l2, learning_rate, low, high):
    """The :class:`tfvis.optim.Loop` of :func:`class_model` on the prepared ``model``: normalised gradient ascent.

    The image and the model's mean image are variables of the loop (``loop.image``, ``loop.mean``) and the class (with its unit position, if
    any) comes in as the loop's ``aux`` vector, so one trace serves every class of a target layer.
    """
    net = target_net(model, target)
    image = tf.Variable(tf.zeros((1,) + tuple(shape)), name="class_model_image")
    mean = tf.Variable(mean[None], trainable=False, name="class_model_mean")  # the model's, set by each run (loop.mean)
    ranks = len(target.position or ())

    def objective(seed, index, total, aux):
        channel, position = aux[:1], tf.reshape(aux[1:], [1, ranks])
        score = tf.reduce_sum(target_scores(net(image, training=False), target, channel, position))
        return score - l2 * tf.reduce_sum(tf.square(image - mean))

    def unit_rms(g):  # the step's size in pixel values is the learning rate, whatever the score's scale
        return g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-12)

    def clip(value):
        return tf.clip_by_value(value, low, high)

    loop = optim.Loop(objective, optim.Gradient([image], learning_rate, sign=1, project=clip), shape_gradient=unit_rms)
    loop.image, loop.mean = image, mean
    return loop


def class_model(
    model,
    class_index,
    steps=200,
    l2=1e-6,
    learning_rate=1.0,
    seed=0,
    shape=None,
    init_noise=0.0,
    value_range=None,
    progress=False,
):
    """Simonyan et al.'s class model: ``argmax_I S_c(I) - l2 * ||I - mean||^2`` by gradient ascent.

    Starts from the model's mean image (:func:`mean_image`: zero after preprocessing) and takes
    ``steps`` compiled ascent steps ``I += learning_rate * g / rms(g)`` (the gradient normalised
    to unit root mean square, so ``learning_rate`` is in pixel values per step), clipping to
    ``value_range`` after each step. The steps are :mod:`tfvis.optim`'s one loop (as for feature
    visualization): plain gradient steps (:class:`tfvis.optim.Gradient`) with the gradient
    normalised, cached per model, target layer and settings.

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
    progress : bool
        Show a progress bar.

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
    settings = (tuple(mean.shape), float(l2), float(learning_rate), low, high)
    key = ("class_model", target.key) + settings
    loop = optim.cached_loop(model, key, lambda: _class_model_loop(net, target, mean.shape, mean, *settings[1:]))
    try:
        loop.image.assign(start)
        loop.mean.assign(mean[None])
        loop.start(seed)
        aux = [int(target.index)] + [int(p) for p in target.position or ()]
        optim.optimize(loop, int(steps), seed, aux, progress=progress, desc=f"class model {target.index}")
        return loop.image.numpy()[0]
    finally:
        loop.lock.release()


__all__ = ["class_model", "mean_image"]
