"""Deconvnet, guided backpropagation and gradient reconstructions (tfvis.deconv).

The layer-by-layer pipeline of the paper (reconstruct_explicit) and the ReLU-gradient rewrite
(reconstruct_generic) are independent implementations; they must agree on the zoo's chain
models. A hand-worked 4 x 4 case, receptive-field supports and a hand-written raw-TensorFlow
branching network pin the results down further.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvis
from tfvis import deconv
from tfvis.deconv import reconstruct, reconstruct_explicit, reconstruct_generic, to_image

AGREE = 1e-5  # max |explicit - generic| relative to max |generic|


def sample(n, size, seed=0):
    """Natural photos (scikit-image's samples) plus seeded noise, float32 RGB in [0, 255]."""
    names = ["chelsea", "coffee", "astronaut", "rocket"][:n]
    photos = tfvis.images.sample_images(names, size=size)
    batch = np.stack([photos[name] for name in names])
    noise = np.random.default_rng(seed).uniform(-20, 20, batch.shape).astype(np.float32)
    return np.clip(batch + noise, 0, 255)


def assert_agree(model, images, target, method, **kwargs):
    generic = reconstruct_generic(model, images, target, method, **kwargs)
    explicit = reconstruct_explicit(model, images, target, method, **kwargs)
    scale = np.abs(generic).max()
    assert scale > 0, (target, method)
    assert np.isfinite(generic).all() and np.isfinite(explicit).all()
    diff = np.abs(generic - explicit).max() / scale
    assert diff <= AGREE, (target, method, diff)
    return generic


@pytest.fixture(scope="module")
def photos64():
    return sample(2, 64)


# ---------------------------------------------------------------------------------------------
# Explicit pipeline == generic rewrite
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", deconv.METHODS)
def test_agree_alexnet(alexnet_random, method):
    images = sample(2, 99)
    for target in ("conv2:3", "conv5:7"):
        assert_agree(alexnet_random, images, target, method)


@pytest.mark.parametrize("method", deconv.METHODS)
def test_agree_vgg16(vgg16_random, photos64, method):
    for target in ("block2_conv2:5", "block4_conv3:11"):
        assert_agree(vgg16_random, photos64, target, method)


@pytest.mark.slow
def test_agree_alexnet_fc8(alexnet_random_top):
    model = alexnet_random_top
    image = sample(1, 227)
    results = {method: assert_agree(model, image, "fc8:281", method) for method in deconv.METHODS}
    assert not np.allclose(results["deconvnet"], results["gradient"])


# ---------------------------------------------------------------------------------------------
# A case worked by hand
# ---------------------------------------------------------------------------------------------


def tiny_model():
    """4 x 4 x 1 -> Conv2D 2 x 2 SAME (bias -1) -> ReLU -> MaxPool 2 x 2 / 2."""
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(1, 2, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="conv_relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    model = keras.Model(inputs, x)
    kernel = np.array([[1.0, -1.0], [2.0, 0.0]], dtype=np.float32).reshape(2, 2, 1, 1)
    model.get_layer("conv").set_weights([kernel, np.array([-1.0], dtype=np.float32)])
    return model


def test_hand_worked_deconvnet():
    x = np.array([[1, 2, 0, 1], [0, 1, 3, 0], [2, 0, 1, 1], [1, 1, 0, 2]], dtype=np.float32)
    images = x[None, :, :, None]
    model = tiny_model()
    # conv (SAME pads one zero row/column at the bottom/right), o = x[i,j] - x[i,j+1] + 2 x[i+1,j] - 1:
    #   [[-2, 3, 4, 0], [2, -3, 4, 1], [3, 0, -1, 4], [-1, 0, -3, 1]]
    # ReLU: [[0, 3, 4, 0], [2, 0, 4, 1], [3, 0, 0, 4], [0, 0, 0, 1]]
    # pool: [[3, 4], [3, 4]]; the top-right window ties 4 at (0, 2) and (1, 2): the switch is the
    # first in row-major order, (0, 2). Switches: (0, 1), (0, 2), (2, 0), (2, 3).
    pooled = np.asarray(model(images))[0, :, :, 0]
    np.testing.assert_array_equal(pooled, [[3, 4], [3, 4]])
    # position "max": the first 4, pool unit (0, 1), switch (0, 2) in the conv map. Unpool puts 4
    # there, ReLU keeps it, the transposed conv spreads 4 * kernel from (0, 2): no bias.
    expected_max = np.array([[0, 0, 4, -4], [0, 0, 8, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    # position None: 3 at (0, 1), 4 at (0, 2), 3 at (2, 0), 4 at (2, 3); 4 * kernel from (2, 3) loses
    # its right column off the edge.
    expected_all = np.array([[0, 3, 1, -4], [0, 6, 8, 0], [3, -3, 0, 4], [6, 0, 0, 8]], dtype=np.float32)
    for function in (reconstruct_generic, reconstruct_explicit):
        np.testing.assert_allclose(function(model, images, "pool:0", "deconvnet")[0, :, :, 0], expected_max)
        np.testing.assert_allclose(function(model, images, "pool:0", position=None)[0, :, :, 0], expected_all)
        # unit (1, 0) by its coordinates: 3 at switch (2, 0)
        single = function(model, images, "pool:0", position=(1, 0))[0, :, :, 0]
        expected = np.zeros((4, 4), np.float32)
        expected[2:4, 0:2] = 3 * np.array([[1, -1], [2, 0]])
        np.testing.assert_allclose(single, expected)


# ---------------------------------------------------------------------------------------------
# The three methods
# ---------------------------------------------------------------------------------------------


def test_methods_differ_as_expected():
    """Identity 1x1 conv with biases, ReLU, signed 1x1 conv: the rules act pixel by pixel at the input."""
    inputs = keras.Input((6, 6, 3))
    z = keras.layers.Conv2D(3, 1, name="shift")(inputs)
    h = keras.layers.ReLU(name="shift_relu")(z)
    out = keras.layers.Conv2D(1, 1, name="mix")(h)
    model = keras.Model(inputs, out)
    model.get_layer("shift").set_weights([np.eye(3, dtype=np.float32)[None, None], np.array([-0.5, 0.0, 0.5], np.float32)])
    model.get_layer("mix").set_weights([np.array([1.0, -2.0, 0.5], np.float32).reshape(1, 1, 3, 1), np.array([0.1], np.float32)])
    images = np.random.default_rng(0).uniform(-1, 1, (2, 6, 6, 3)).astype(np.float32)
    rec = {m: reconstruct(model, images, "mix:0", m, position=None) for m in deconv.METHODS}
    for m in deconv.METHODS:
        np.testing.assert_allclose(rec[m], reconstruct_explicit(model, images, "mix:0", m, position=None), atol=1e-6)
    forward_on = (images + np.array([-0.5, 0.0, 0.5])) > 0
    # guided == gradient masked to positive values
    np.testing.assert_allclose(rec["guided"], np.maximum(rec["gradient"], 0), atol=1e-6)
    # deconvnet == guided where the forward ReLU was on; elsewhere it still passes positive signal
    np.testing.assert_allclose(rec["deconvnet"][forward_on], rec["guided"][forward_on], atol=1e-6)
    off = ~forward_on
    assert np.all(rec["guided"][off] == 0) and np.all(rec["gradient"][off] == 0)
    assert np.count_nonzero(rec["deconvnet"][off]) > 0
    # the signal that reaches the input is not rectified: gradient has both signs here
    assert rec["gradient"].min() < 0 < rec["gradient"].max()


# ---------------------------------------------------------------------------------------------
# Positions and per-image targets
# ---------------------------------------------------------------------------------------------


def rf_box(y, x, size=64, extent=10, jump=2):
    """VGG16 block2_conv1: size 10, jump 2, offset 0.5: unit y covers input rows 2y-4 ... 2y+5."""
    lo_y, lo_x = y * jump - 4, x * jump - 4
    return slice(max(lo_y, 0), min(lo_y + extent, size)), slice(max(lo_x, 0), min(lo_x + extent, size))


def test_position_max_and_receptive_field(vgg16_random, photos64):
    act = tfvis.activations(vgg16_random, "block2_conv1", photos64)["block2_conv1"][..., 5]
    rec = reconstruct(vgg16_random, photos64, "block2_conv1:5", "deconvnet", position="max")
    for i in range(len(photos64)):
        y, x = np.unravel_index(np.argmax(act[i]), act[i].shape)
        inside = np.zeros(photos64.shape[1:3], bool)
        inside[rf_box(y, x)] = True
        energy = np.abs(rec[i]).sum(axis=-1)
        assert np.all(energy[~inside] == 0) and energy[inside].max() > 0
    # the same units by their coordinates give the same maps
    units = [tuple(int(v) for v in np.unravel_index(np.argmax(a), a.shape)) for a in act]
    np.testing.assert_allclose(reconstruct(vgg16_random, photos64, "block2_conv1:5", position=units), rec, rtol=0, atol=0)
    # a unit near a corner: support clipped to the image
    corner = reconstruct(vgg16_random, photos64[:1], "block2_conv1:5", "gradient", position=(0, 31))[0]
    inside = np.zeros((64, 64), bool)
    inside[rf_box(0, 31)] = True
    assert np.all(corner[~inside] == 0)
    # the whole map spreads over the image
    whole = reconstruct(vgg16_random, photos64[:1], "block2_conv1:5", position=None)[0]
    assert np.count_nonzero(np.abs(whole).sum(-1)) > 4 * inside.sum()


def test_per_image_channels_and_positions(vgg16_random, photos64):
    images = np.concatenate([photos64, photos64[:1]])
    targets = ["block2_conv2:5", "block2_conv2:9", "block2_conv2:1"]
    positions = ["max", (3, 4), None]
    for method in ("deconvnet", "guided"):
        batched = reconstruct(vgg16_random, images, targets, method, position=positions, batch_size=2)
        for i in range(3):
            alone = reconstruct(vgg16_random, images[i : i + 1], targets[i], method, position=positions[i])
            np.testing.assert_allclose(batched[i : i + 1], alone, rtol=0, atol=AGREE * np.abs(alone).max())
    single = reconstruct(vgg16_random, images[0], "block2_conv2:5")  # one image in, one image out
    assert single.shape == images[0].shape and single.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Other models: grayscale, fused activations, branches
# ---------------------------------------------------------------------------------------------


def test_grayscale_fused_activations():
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c2"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    images = np.random.default_rng(1).uniform(0, 1, (3, 16, 16, 1)).astype(np.float32)
    for method in deconv.METHODS:
        for target in ("c2:2", "out:1"):
            rec = assert_agree(model, images, target, method)
            assert rec.shape == images.shape
    # the rewrite sees later weight changes made to the user's model
    before = reconstruct(model, images, "out:1", "guided")
    model.get_layer("out").set_weights([w * 2 for w in model.get_layer("out").get_weights()])
    after = reconstruct(model, images, "out:1", "guided")
    np.testing.assert_allclose(after, 4 * before, rtol=1e-5, atol=1e-7)  # top signal and path both doubled


def test_chain_with_other_layers_agrees():
    """Dilated and strided convs, BatchNorm, Dropout, padding, average pooling, ReLU6, fused ReLU."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", name="c1"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(max_value=6.0, name="c1_relu6"),
            keras.layers.Dropout(0.5),
            keras.layers.ZeroPadding2D(1),
            keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c2"),
            keras.layers.Activation("relu", name="c2_relu"),
            keras.layers.AveragePooling2D(2),
            keras.layers.MaxPooling2D(2, padding="same"),
            keras.layers.Conv2D(5, 1, activation="relu", name="c3"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, name="out"),
        ]
    )
    model.get_layer("bn").set_weights(
        [
            np.array([1.5, 0.5, 2.0, 1.0], np.float32),
            np.ones(4, np.float32),
            np.full(4, 0.1, np.float32),
            np.full(4, 0.3, np.float32),
        ]
    )
    images = np.random.default_rng(3).uniform(0, 20, (2, 16, 16, 3)).astype(np.float32)
    for method in deconv.METHODS:
        for target in ("c2:1", "out:0"):
            assert_agree(model, images, target, method)


def test_nested_and_shared_layers():
    """ReLUs inside a nested model get the rule too; layers shared with another model are followed."""
    keras.utils.set_random_seed(8)
    inner_in = keras.Input((12, 12, 3))
    conv, relu = keras.layers.Conv2D(4, 3, padding="same", name="ic"), keras.layers.ReLU(name="ir")
    inner = keras.Model(inner_in, relu(conv(inner_in)), name="inner")
    top = keras.layers.Conv2D(2, 3, name="oc")
    outer_in = keras.Input((12, 12, 3))
    outer = keras.Model(outer_in, top(inner(outer_in)))
    flat_in = keras.Input((12, 12, 3))
    flat = keras.Model(flat_in, top(keras.layers.ReLU()(conv(flat_in))))  # shares conv and top
    images = np.random.default_rng(4).uniform(0, 1, (2, 12, 12, 3)).astype(np.float32)
    for method in deconv.METHODS:
        nested = reconstruct(outer, images, "oc:1", method)
        np.testing.assert_allclose(nested, reconstruct(flat, images, "oc:1", method), atol=1e-7)
        np.testing.assert_allclose(nested, reconstruct_explicit(flat, images, "oc:1", method), atol=1e-7)
        # the prepared model is flat (tfvis.graph.prepared): the explicit pipeline runs through the nested model too
        np.testing.assert_allclose(reconstruct_explicit(outer, images, "oc:1", method), nested, atol=1e-7)
    assert not np.allclose(reconstruct(outer, images, "oc:1", "deconvnet"), reconstruct(outer, images, "oc:1", "gradient"))


def branching_model():
    """Concatenate and Add, a ReLU6 and an Activation('relu'): no chain."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 2))
    a = keras.layers.ReLU(name="a_relu")(keras.layers.Conv2D(3, 3, padding="same", name="a")(inputs))
    b = keras.layers.ReLU(max_value=6.0, name="b_relu6")(keras.layers.Conv2D(3, 1, name="b")(inputs))
    cat = keras.layers.Concatenate(name="cat")([a, b])
    c = keras.layers.Conv2D(6, 3, padding="same", name="c")(cat)
    s = keras.layers.Activation("relu", name="add_relu")(keras.layers.Add(name="add")([c, cat]))
    p = keras.layers.MaxPooling2D(2, name="pool")(s)
    d = keras.layers.Conv2D(4, 3, padding="same", name="d")(p)
    return keras.Model(inputs, d)


def manual_branching(model, images, channel, method):
    """The same network in raw TensorFlow ops with hand-written custom-gradient rectifiers."""

    def rectifier(cap):
        @tf.custom_gradient
        def op(z):
            y = tf.nn.relu(z) if cap is None else tf.clip_by_value(z, 0.0, cap)

            def grad(g):
                on = z > 0 if cap is None else (z > 0) & (z < cap)
                if method == "deconvnet":
                    return tf.nn.relu(g)
                if method == "guided":
                    g = tf.nn.relu(g)
                return tf.where(on, g, 0.0)

            return y, grad

        return op

    def conv(name, x):
        kernel, bias = model.get_layer(name).get_weights()
        return tf.nn.conv2d(x, kernel, 1, "SAME") + bias

    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        a = rectifier(None)(conv("a", x))
        b = rectifier(6.0)(conv("b", x))
        cat = tf.concat([a, b], -1)
        s = rectifier(None)(conv("c", cat) + cat)
        d = conv("d", tf.nn.max_pool2d(s, 2, 2, "VALID"))
    values = d.numpy()[..., channel]
    mask = np.zeros(d.shape, np.float32)
    for i in range(len(values)):
        y, x_ = np.unravel_index(np.argmax(values[i]), values[i].shape)
        mask[i, y, x_, channel] = 1.0
    return tape.gradient(d, x, output_gradients=mask * d.numpy()).numpy()


def test_branching_model_matches_hand_written_rules():
    model = branching_model()
    images = np.random.default_rng(2).uniform(0, 255, (3, 8, 8, 2)).astype(np.float32)
    assert np.asarray(model.get_layer("b")(images)).max() > 6  # ReLU6's cap is reached
    for method in deconv.METHODS:
        rec = reconstruct(model, images, "d:1", method)
        expected = manual_branching(model, images, 1, method)
        np.testing.assert_allclose(rec, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(NotImplementedError, match="'add'.*reconstruct_generic"):
        reconstruct_explicit(model, images, "d:1")
    # the rewrite shares the model's layer objects: no copies of weights
    rewritten = tfvis.graph.feature_net(model, "d", tfvis.rules.for_input_gradients("deconvnet"))
    shared = {id(variable) for variable in model.weights}
    assert rewritten.weights and all(id(variable) in shared for variable in rewritten.weights)


def test_inceptionv1_gradient_equals_tape(inceptionv1_random):
    model = inceptionv1_random
    images = sample(2, 48)
    target, channel = "mixed3a", 5
    rec = reconstruct(model, images, f"{target}:{channel}", "gradient")
    features = tfvis.feature_model(model, [target])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        act = features(x)
        act = act[0] if isinstance(act, (list, tuple)) else act
        values = act.numpy()[..., channel]
        mask = np.zeros(act.shape, np.float32)
        for i in range(len(values)):
            y, x_ = np.unravel_index(np.argmax(values[i]), values[i].shape)
            mask[i, y, x_, channel] = 1.0
        objective = tf.reduce_sum(act * tf.stop_gradient(mask * act))
    expected = tape.gradient(objective, x).numpy()
    # the same graph, its stride-1 convs backpropagated by forward convolutions (tfvis.rules.fast_conv)
    np.testing.assert_allclose(rec, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    deconvnet = reconstruct(model, images, f"{target}:{channel}", "deconvnet")
    assert np.isfinite(deconvnet).all() and np.abs(deconvnet).max() > 0
    assert not np.allclose(deconvnet, rec)


# ---------------------------------------------------------------------------------------------
# Display and errors
# ---------------------------------------------------------------------------------------------


def test_to_image():
    rec = np.random.default_rng(0).normal(size=(3, 5, 5, 3)).astype(np.float32)
    rec[1] = 0.0
    shown = to_image(rec)
    assert shown.shape == rec.shape and shown.dtype == np.float32
    assert np.isfinite(shown).all() and shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_array_equal(shown[1], 0.5)
    for i in (0, 2):  # centred at 0.5, the largest magnitude at 0 or 1
        np.testing.assert_allclose(shown[i] - 0.5, 0.5 * rec[i] / np.abs(rec[i]).max(), atol=1e-6)
    np.testing.assert_array_equal(to_image(np.zeros((4, 4))), 0.5)
    assert to_image(rec[0], percentile=90).max() == 1.0


def test_errors(alexnet_random):
    images = sample(1, 99)
    with pytest.raises(ValueError, match="no layer 'conv9'.*conv1, conv2"):
        reconstruct(alexnet_random, images, "conv9:0")
    with pytest.raises(ValueError, match=r"channels 0\.\.255; got 256"):
        reconstruct(alexnet_random, images, "conv2:256")
    with pytest.raises(ValueError, match="deconvnet, guided, gradient"):
        reconstruct(alexnet_random, images, "conv2:0", method="backprop")
    with pytest.raises(ValueError, match="shape"):
        reconstruct(alexnet_random, images[0, :, :, 0], "conv2:0")
    with pytest.raises(ValueError, match="layer:channel"):
        reconstruct(alexnet_random, images, "conv2")
    with pytest.raises(ValueError, match="outside layer 'conv2'"):
        reconstruct(alexnet_random, images, "conv2:0", position=(40, 0))
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        reconstruct(alexnet_random, images, ["conv2:0", "conv2:1"])


@pytest.mark.parametrize("name, size, layer", [("vgg16", 48, "block3_conv1"), ("inceptionv1", 48, "mixed3a")])
def test_reconstruct_units_shares_forward_and_matches(name, size, layer, zoo_model):
    """Units of few images, several methods: the shared pipeline equals one reconstruct call per method."""
    model = zoo_model(name)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    image_index = [1, 0, 1, 1]
    targets = [f"{layer}:3", f"{layer}:3", f"{layer}:9", f"{layer}:20"]
    positions = [(1, 2), "max", (3, 3), None]
    maps = deconv.reconstruct_units(model, images, image_index, targets, positions, methods=("deconvnet", "guided"), batch_size=3)
    for method in ("deconvnet", "guided"):
        expected = deconv.reconstruct(model, images[image_index], targets, method=method, position=positions)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(maps[method], expected, atol=1e-5 * scale, err_msg=method)
    with pytest.raises(ValueError, match="one layer"):
        deconv.reconstruct_units(
            model, images, [0, 1], [f"{layer}:1", "conv2d0:1" if name == "inceptionv1" else "block1_conv1:1"], "max"
        )
