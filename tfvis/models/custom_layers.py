"""Keras layers that the zoo models need beyond Keras' own.

Every zoo model takes float32 RGB images in [0, 255]; :class:`ImagePreprocess` maps them to the
network's own input space inside the model, so that every method optimises and attributes in
one input space. :class:`LocalResponseNorm` is TensorFlow's LRN as a serializable layer.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfvis")
class ImagePreprocess(keras.layers.Layer):
    """Map RGB images in [0, 255] to a network's input space: optional RGB to BGR, minus a mean, times a scale.

    ``output = (swap(images) - mean) * scale``. The zoo models carry one, named ``preprocess``; a
    model given with a declared input convention carries one named ``tfvis_input``
    (:mod:`tfvis.models.inputs`).

    Parameters
    ----------
    bgr : bool
        Reverse the channel order (Caffe models expect BGR).
    mean : sequence of float
        Subtracted after the channel swap, in pixel units and the network's channel order: one
        value per channel, or one for all.
    scale : float or sequence of float
        Factor applied after the mean subtraction: one for all channels, or one per channel
        (``1 / (255 * std)`` for torchvision's normalisation).
    """

    def __init__(self, bgr=False, mean=(0.0, 0.0, 0.0), scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.bgr = bool(bgr)
        self.mean = tuple(float(m) for m in mean)
        self.scale = tuple(float(s) for s in scale) if isinstance(scale, (list, tuple)) else float(scale)

    def call(self, images):
        if self.bgr:
            images = images[..., ::-1]
        return (images - tf.constant(self.mean, dtype=images.dtype)) * tf.constant(self.scale, dtype=images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        scale = list(self.scale) if isinstance(self.scale, tuple) else self.scale
        return {**super().get_config(), "bgr": self.bgr, "mean": list(self.mean), "scale": scale}


@keras.saving.register_keras_serializable(package="tfvis")
class LocalResponseNorm(keras.layers.Layer):
    """Local response normalisation across channels, in TensorFlow's convention.

    ``b_c = a_c / (bias + alpha * sum_{|d - c| <= depth_radius} a_d^2) ** beta``.
    Caffe and PyTorch divide alpha by the window size; use :meth:`from_caffe` for their values.
    """

    def __init__(self, depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.bias = float(bias)

    @classmethod
    def from_caffe(cls, local_size, alpha, beta, k=1.0, **kwargs):
        """Build from Caffe's ``local_size, alpha, beta, k`` (alpha is divided by ``local_size``)."""
        return cls(depth_radius=(local_size - 1) // 2, alpha=alpha / local_size, beta=beta, bias=k, **kwargs)

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "alpha": self.alpha,
            "beta": self.beta,
            "bias": self.bias,
        }


def conv_relu(x, filters, kernel_size, name, strides=1, padding="same", groups=1):
    """A linear ``Conv2D`` named ``name`` followed by a ReLU named ``<name>_relu``.

    Keeping the ReLU separate makes pre-activation values reachable (Lucid's objectives optimise them)
    and gives the deconvnet one place per layer to override the ReLU's gradient.
    """
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups, name=name)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def dense_relu(x, units, name):
    """A linear ``Dense`` named ``name`` followed by a ReLU named ``<name>_relu``."""
    x = keras.layers.Dense(units, name=name)(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
