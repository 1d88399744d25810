"""The fast_conv rule (tfvis.rules): same outputs, same input gradients, computed with forward convolutions.

The checks run on the rule and the graph walker themselves (the ``tfvis.fastgrad`` shim that
forwarded to them is gone: :func:`tfvis.rules.fast_conv` with :func:`tfvis.graph.rewritten`).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvis.graph import feature_net, rewritten
from tfvis.layers import feature_model
from tfvis.rules import conv2d_fast_input_gradient, fast_conv
from tfvis.rules import fast_conv_eligible as eligible


def fast_input_gradients(model):
    return rewritten(model, (fast_conv,))


def fast_feature_model(model, layers):
    return feature_net(model, layers[0] if len(layers) == 1 else list(layers), (fast_conv,))


def _branchy(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((15, 15, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="same3")(inputs)
    b = keras.layers.Conv2D(4, 5, padding="valid", name="valid5")(inputs)
    b = keras.layers.ZeroPadding2D(2)(b)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="strided")(x)  # not eligible
    x = keras.layers.Conv2D(6, 2, padding="same", name="even")(x)  # not eligible
    inner_in = keras.Input((8, 8, 6))
    inner = keras.Model(inner_in, keras.layers.Conv2D(5, (3, 1), padding="same", name="inner")(inner_in), name="nested")
    x = inner(x)
    x = keras.layers.Conv2D(3, 1, name="pointwise")(x)
    return keras.Model(inputs, x, name="branchy")


def _input_gradient(model, x, weights):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=False)
        total = tf.reduce_sum(y * weights)
    return y, tape.gradient(total, x)


@pytest.mark.parametrize("padding, kernel", [("SAME", (3, 3)), ("SAME", (5, 3)), ("VALID", (3, 5)), ("VALID", (1, 1))])
def test_conv_gradient_equals_conv2d_backprop(padding, kernel):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 9, 11, 4)), tf.float32)
    k = tf.constant(rng.standard_normal(kernel + (4, 6)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        fast = conv2d_fast_input_gradient(x, k, padding)
        plain = tf.nn.conv2d(x, k, 1, padding)
        dy = tf.constant(rng.standard_normal(plain.shape), tf.float32)
        loss_fast, loss_plain = tf.reduce_sum(fast * dy), tf.reduce_sum(plain * dy)
    np.testing.assert_array_equal(fast.numpy(), plain.numpy())
    np.testing.assert_allclose(tape.gradient(loss_fast, x), tape.gradient(loss_plain, x), rtol=1e-5, atol=1e-5)


def test_eligibility():
    model = _branchy()
    verdicts = {layer.name: eligible(layer) for layer in model.layers}
    assert verdicts["same3"] and verdicts["valid5"] and verdicts["pointwise"]
    assert not verdicts["strided"] and not verdicts["even"]
    assert eligible(model.get_layer("nested").get_layer("inner"))
    assert not eligible(keras.layers.DepthwiseConv2D(3)) and not eligible(keras.layers.Conv2D(2, 3, dilation_rate=2))


def test_rewritten_model_same_outputs_and_input_gradients():
    model = _branchy()
    fast = fast_input_gradients(model)
    assert fast is fast_input_gradients(model)  # cached
    names = [[layer.name for layer in m.layers if not isinstance(layer, keras.layers.InputLayer)] for m in (model, fast)]
    assert names[0] == names[1]
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(-1, 1, (3, 15, 15, 3)), tf.float32)
    weights = tf.constant(rng.standard_normal((3, 8, 8, 3)), tf.float32)
    y_plain, g_plain = _input_gradient(model, x, weights)
    y_fast, g_fast = _input_gradient(fast, x, weights)
    np.testing.assert_allclose(y_fast, y_plain, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g_fast, g_plain, rtol=1e-5, atol=1e-6)
    # the weights are shared: surgery on the original shows in the rewrite
    model.get_layer("same3").kernel.assign(tf.zeros_like(model.get_layer("same3").kernel))
    np.testing.assert_allclose(fast(x), model(x), rtol=1e-6, atol=1e-6)


def test_vgg16_hed_input_gradient_matches(vgg16_hed):
    import tfvis

    model = vgg16_hed
    fast = fast_input_gradients(model)
    photo = tfvis.images.sample_images(["coffee"], size=40)["coffee"][None]
    x = tf.constant(photo, tf.float32)
    cut = [keras.Model(m.inputs[0], m.get_layer("block3_conv3").output) for m in (model, fast)]
    weights = tf.constant(np.random.default_rng(2).standard_normal((1, 10, 10, 256)), tf.float32)
    (y0, g0), (y1, g1) = (_input_gradient(m, x, weights) for m in cut)
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-4)
    assert float(tf.reduce_max(tf.abs(g1 - g0)) / tf.reduce_max(tf.abs(g0))) < 1e-5


def test_fast_feature_model_reaches_intermediate_layers():
    model = _branchy()
    names = ["concatenate", "same3", "strided"]
    names[0] = next(layer.name for layer in model.layers if isinstance(layer, keras.layers.Concatenate))
    plain, fast = feature_model(model, names), fast_feature_model(model, names)
    x = tf.constant(np.random.default_rng(3).uniform(-1, 1, (2, 15, 15, 3)), tf.float32)
    weights = [tf.constant(np.random.default_rng(i).standard_normal(o.shape), tf.float32) for i, o in enumerate(plain(x))]
    grads = []
    for m in (plain, fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = sum(tf.reduce_sum(o * w) for o, w in zip(m(x), weights))
        grads.append(tape.gradient(total, x))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        fast_feature_model(model, ["nope"])
