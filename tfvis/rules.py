"""Backward rules: how a rewritten graph passes the signal back through a layer.

Each rule is a small function ``layer -> replacement or None`` for :func:`tfvis.graph.rewrite`;
the replacement computes the layer's forward pass unchanged and only changes its backward pass.
At a rectifier with input ``x`` and incoming backward signal ``g``:

=====================  ===================================  ===================================
rule                   backward signal                      used by
=====================  ===================================  ===================================
(none: the gradient)   ``g * [x > 0]``                      saliency, inversion, top-k
:func:`guided`         ``relu(g) * [x > 0]``                guided backprop (Springenberg 2015)
:func:`deconvnet`      ``relu(g)``, LRN passed through      Zeiler & Fergus 2014
:func:`redirected`     ``g * [x > 0]``, or, for an image    Lucid's feature visualization
                       whose mask stops all of it, ``g``
                       where it pushes ``x`` up
=====================  ===================================  ===================================

For ReLU6 and other clipped rectifiers ``[x > 0]`` is the layer's own derivative mask.
:func:`fast_conv` changes no result: a stride-1 convolution passes its input gradient back as a
forward convolution, which oneDNN runs 1.2x to 2.3x faster than ``Conv2DBackpropInput`` on CPUs.

:data:`BACKWARD_METHODS` names the rule sets of the gradient methods; :func:`for_input_gradients` gives
the rules of a net whose gradient with respect to its input is taken.
"""

import keras
import tensorflow as tf

from .graph import activation_name
from .models.custom_layers import LocalResponseNorm

#: Backward methods: ``"deconvnet"`` (g -> relu(g)), ``"guided"`` (g -> relu(g) * [x > 0]) and
#: ``"gradient"`` (g -> g * [x > 0]) at every ReLU.
BACKWARD_METHODS = ("deconvnet", "guided", "gradient")
#: The name :data:`BACKWARD_METHODS` had before; kept for scripts that use it.
METHODS = BACKWARD_METHODS

_RECTIFIER_ACTIVATIONS = ("relu", "relu6")


def check_method(method):
    """Raise ``ValueError`` naming the valid methods when ``method`` is not one of :data:`BACKWARD_METHODS`."""
    if method not in BACKWARD_METHODS:
        raise ValueError(f"method={method!r}; choose one of: {', '.join(BACKWARD_METHODS)}")
    return method


def is_rectifier(layer):
    """True for ``keras.layers.ReLU`` (any parameters) and ``Activation("relu" | "relu6")``."""
    if isinstance(layer, keras.layers.ReLU):
        return True
    return isinstance(layer, keras.layers.Activation) and activation_name(layer) in _RECTIFIER_ACTIVATIONS


def is_plain_relu(layer):
    """True when the rectifier is ``max(x, 0)``, whose derivative mask is ``[x > 0]``."""
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    return activation_name(layer) == "relu"


def vjp(forward, x, g):
    """Vector-Jacobian product of one layer (or function) at ``x`` with the signal ``g``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = forward(x)
    grad = tape.gradient(y, x, output_gradients=g)
    return tf.zeros_like(x) if grad is None else grad


def _relu_mask(layer, x, g):
    """``g`` times the rectifier's derivative at ``x``."""
    if is_plain_relu(layer):
        return g * tf.cast(x > 0, g.dtype)
    return vjp(lambda t: layer(t), x, g)  # ReLU6, thresholds, slopes: the layer's own mask


def rectify(method, layer, x, g):
    """The backward signal of ``method`` at a rectifier ``layer`` whose input was ``x``."""
    if method == "deconvnet":
        return tf.nn.relu(g)
    if method == "guided":
        g = tf.nn.relu(g)
    return _relu_mask(layer, x, g)


def redirect(layer, x, g):
    """Lucid's redirected ReLU gradient, for *ascent* (``g`` is the gradient of what is maximised).

    Where some of an image's signal passes the mask ``[x > 0]``, the plain gradient. Where the
    mask stops all of it (every unit of the image below zero: a dead start), ``g`` passes where it
    would raise ``x`` (``g > 0``), so the optimisation can leave the flat region.
    """
    plain = _relu_mask(layer, x, g)
    rising = tf.where(tf.logical_and(x < 0, g < 0), tf.zeros_like(g), g)
    norms = tf.norm(tf.reshape(plain, [tf.shape(plain)[0], -1]), axis=1)
    alive = tf.reshape(norms > 0, [-1] + [1] * (g.shape.rank - 1))
    return tf.where(alive, plain, rising)


class BackwardRule(keras.layers.Layer):
    """Forward of ``layer`` unchanged; backward ``backward(layer, x, g)`` (a ``tf.custom_gradient``).

    The wrapped layer is the original object; the replacement carries its name.
    """

    def __init__(self, layer, backward, **kwargs):
        super().__init__(name=layer.name, dtype=layer.dtype_policy, **kwargs)
        self.wrapped = layer
        self.backward = backward

    def call(self, inputs):
        layer, backward = self.wrapped, self.backward

        @tf.custom_gradient
        def op(x):
            def grad(g):
                return backward(layer, x, g)

            return layer(x), grad

        return op(inputs)

    def compute_output_shape(self, input_shape):
        return self.wrapped.compute_output_shape(input_shape)


def _pass_through(layer, x, g):
    return g


def guided(layer):
    """Guided backpropagation at every rectifier: ``relu(g) * [x > 0]``."""
    if is_rectifier(layer):
        return BackwardRule(layer, lambda lyr, x, g: rectify("guided", lyr, x, g))
    return None


def deconvnet(layer):
    """Zeiler & Fergus' deconvnet at every rectifier (``relu(g)``); LRN layers pass the signal back unchanged."""
    if is_rectifier(layer):
        return BackwardRule(layer, lambda lyr, x, g: rectify("deconvnet", lyr, x, g))
    return lrn_pass_through(layer)


def lrn_pass_through(layer):
    """A LocalResponseNorm layer that passes the backward signal back unchanged (the deconvnet skips LRN)."""
    if isinstance(layer, LocalResponseNorm):
        return BackwardRule(layer, _pass_through)
    return None


def redirected(layer):
    """Lucid's redirected ReLU (see :func:`redirect`) at every rectifier, for feature visualization."""
    if is_rectifier(layer):
        return BackwardRule(layer, redirect)
    return None


# --------------------------------------------------------------------------------------------
# The fast input-gradient convolution
# --------------------------------------------------------------------------------------------


def _odd(size):
    return all(k % 2 == 1 for k in size)


def fast_conv_eligible(layer):
    """Whether ``layer`` is a plain 2-D convolution whose input gradient can be a forward convolution.

    ``keras.layers.Conv2D`` itself (not a subclass), channels last, stride 1, no dilation, one
    group, an odd kernel, "same" or "valid" padding.
    """
    return (
        type(layer) is keras.layers.Conv2D
        and layer.data_format == "channels_last"
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and _odd(layer.kernel_size)
        and layer.padding in ("same", "valid")
    )


def conv2d_fast_input_gradient(x, kernel, padding):
    """``tf.nn.conv2d(x, kernel, 1, padding)`` whose gradient with respect to ``x`` is a forward convolution.

    For a stride-1 convolution with an odd kernel the input gradient is a stride-1 convolution of
    the output gradient with the kernel flipped in space and transposed in its channels ("same"
    stays "same"; "valid" becomes "valid" on the gradient padded by ``k - 1``).

    Parameters
    ----------
    x : tensor, shape (N, H, W, C)
    kernel : tensor, shape (kh, kw, C, K), kh and kw odd
    padding : {"SAME", "VALID"}

    Returns
    -------
    tensor, shape (N, H', W', K)
        No gradient flows to ``kernel``.
    """
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])

    @tf.custom_gradient
    def conv(inputs):
        def grad(dy):
            flipped = tf.transpose(kernel[::-1, ::-1], [0, 1, 3, 2])
            if padding == "SAME":
                return tf.nn.conv2d(dy, flipped, 1, "SAME")
            full = tf.pad(dy, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
            return tf.nn.conv2d(full, flipped, 1, "VALID")

        return tf.nn.conv2d(inputs, kernel, 1, padding), grad

    return conv(x)


class FastInputGradientConv2D(keras.layers.Layer):
    """Calls a ``Conv2D`` layer's own weights with :func:`conv2d_fast_input_gradient`.

    Holds the original layer (its variables are shared, not copied), so weight changes are seen.
    Its kernel enters as a constant: no gradient with respect to the weights flows through it.
    """

    def __init__(self, conv, **kwargs):
        super().__init__(name=conv.name, dtype=conv.dtype_policy, **kwargs)
        self.conv = conv

    def call(self, inputs):
        conv = self.conv
        kernel = tf.cast(tf.convert_to_tensor(conv.kernel), inputs.dtype)
        outputs = conv2d_fast_input_gradient(inputs, tf.stop_gradient(kernel), conv.padding.upper())
        if conv.use_bias:
            outputs = outputs + tf.cast(conv.bias, outputs.dtype)
        return conv.activation(outputs) if conv.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


def fast_conv(layer):
    """Eligible convolutions (:func:`fast_conv_eligible`) backpropagate to their input as forward convolutions."""
    return FastInputGradientConv2D(layer) if fast_conv_eligible(layer) else None


_METHOD_RULES = {"gradient": (), "guided": (guided,), "deconvnet": (deconvnet,)}


def for_method(method):
    """The rules of a backward ``method`` (one of :data:`BACKWARD_METHODS`), without :func:`fast_conv`."""
    return _METHOD_RULES[check_method(method)]


def for_input_gradients(method="gradient", redirect_relu=False):
    """The rules of a net differentiated with respect to its input: the method's, then :func:`fast_conv`.

    Parameters
    ----------
    method : {"gradient", "guided", "deconvnet"}
    redirect_relu : bool
        Lucid's redirected ReLU at every rectifier (only with ``method="gradient"``).

    Returns
    -------
    tuple of callable
    """
    rules = for_method(method)
    if redirect_relu:
        if method != "gradient":
            raise ValueError(f"redirect_relu applies to the plain gradient, not to method={method!r}")
        rules = (redirected,)
    return rules + (fast_conv,)


__all__ = [
    "BACKWARD_METHODS",
    "METHODS",
    "BackwardRule",
    "FastInputGradientConv2D",
    "check_method",
    "conv2d_fast_input_gradient",
    "deconvnet",
    "fast_conv",
    "fast_conv_eligible",
    "for_input_gradients",
    "for_method",
    "guided",
    "is_plain_relu",
    "is_rectifier",
    "lrn_pass_through",
    "rectify",
    "redirect",
    "redirected",
    "vjp",
]
