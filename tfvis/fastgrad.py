"""Faster input gradients: convolutions that backpropagate with a forward convolution.

Every method that differentiates a network with respect to its *input* (saliency, feature
visualization, inversion) spends most of its time in the backward pass of the convolutions. For
a stride-1 convolution with an odd kernel, the gradient with respect to the input is itself a
stride-1 convolution of the output gradient with the kernel flipped in space and transposed in
its channels ("same" padding stays "same"; "valid" becomes a "full" convolution, "valid" on the
gradient padded by ``k - 1``). On CPUs, oneDNN's forward convolution runs this faster than
TensorFlow's ``Conv2DBackpropInput`` (measured on VGG16's layers: 1.2x to 2.3x), so
:func:`fast_input_gradients` rewrites a model to use it.

The rewritten model computes the same outputs with the same weight variables; only the gradient
of eligible convolutions with respect to their input changes how it is computed (to float32
rounding). Gradients with respect to the weights are *not* computed through those layers (their
kernels enter as constants): use the rewritten model for gradients with respect to the input, or
to intermediate outputs while the tape watches the input.
"""
import weakref

import keras
import tensorflow as tf

from .models.surgery import as_functional

# model -> rewritten model
_CACHE = weakref.WeakKeyDictionary()


def _odd(size):
    return all(k % 2 == 1 for k in size)


def eligible(layer):
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
    """

    def __init__(self, conv, **kwargs):
        super().__init__(name=conv.name, dtype=conv.dtype_policy, **kwargs)
        self.conv = conv

    def call(self, inputs):
        conv = self.conv
        kernel = tf.convert_to_tensor(conv.kernel)
        outputs = conv2d_fast_input_gradient(inputs, tf.stop_gradient(kernel), conv.padding.upper())
        if conv.use_bias:
            outputs = outputs + conv.bias
        return conv.activation(outputs) if conv.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


def _rewrite(model):
    """``(clone, outputs_by_layer_name)``: ``model``'s graph with eligible convolutions replaced."""
    replaced, outputs = {}, {}

    def call(layer, *args, **kwargs):
        if eligible(layer):
            if layer.name not in replaced:
                replaced[layer.name] = FastInputGradientConv2D(layer)
            result = replaced[layer.name](*args, **kwargs)
        elif isinstance(layer, keras.Model):
            result = fast_input_gradients(layer)(*args, **kwargs)
        else:
            result = layer(*args, **kwargs)
        outputs.setdefault(layer.name, result)
        return result

    clone = keras.models.clone_model(as_functional(model), clone_function=lambda layer: layer, call_function=call)
    return clone, outputs


def _cached(model, key, build):
    try:
        entry = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        return build()
    if key not in entry:
        entry[key] = build()
    return entry[key]


def fast_input_gradients(model):
    """A model with ``model``'s layers and outputs whose eligible convolutions backpropagate faster.

    Eligible layers are those of :func:`eligible`, including inside nested models; the others
    are called as they are. The result is cached per model and shares its weights. Layers other
    than the replaced convolutions are the model's own objects, so their ``.output`` is in the
    original graph: reach intermediate layers with :func:`fast_feature_model`.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential.

    Returns
    -------
    keras.Model
        Same inputs and outputs; use it for gradients with respect to the input.

    Examples
    --------
    >>> fast = fast_input_gradients(tfvis.load_model("vgg16", weights="hed", include_top=False))  # doctest: +SKIP
    """
    return _cached(model, None, lambda: _rewrite(model)[0])


def fast_feature_model(model, layers):
    """A model from ``model``'s input to the outputs of ``layers``, with faster input gradients.

    The counterpart of :func:`tfvis.layers.feature_model` for input gradients (see
    :func:`fast_input_gradients`); cached per (model, layers).

    Parameters
    ----------
    model : keras.Model
    layers : list of str
        Names of layers of ``model`` (not inside nested models).

    Returns
    -------
    keras.Model
        One output per name, in order (a single output for one name).
    """
    from .layers import get_layer

    names = tuple(layers)
    for name in names:
        get_layer(model, name)  # a clear error for an unknown name

    def build():
        clone, outputs = _rewrite(model)
        missing = [n for n in names if n not in outputs]
        if missing:
            raise ValueError(f"layers {missing} are not on a path from the input of model {model.name!r}")
        chosen = [outputs[n] for n in names]
        inputs = clone.inputs[0] if len(clone.inputs) == 1 else clone.inputs
        return keras.Model(inputs, chosen[0] if len(chosen) == 1 else chosen, name=f"{model.name}_fast_features")

    return _cached(model, names, build)
