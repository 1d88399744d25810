"""Saliency maps, Integrated Gradients, Grad-CAM and class models on tiny models."""

import keras
import matplotlib.figure
import numpy as np
import pytest
import tensorflow as tf

from tfvis import saliency
from tfvis.deconv import reconstruct


def _tiny_tanh_net(seed=0):
    """6x6x2 -> Conv2D(3, 3x3, tanh) -> Flatten -> Dense(4, logits) -> Softmax."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, activation="tanh", name="conv")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4, name="logits")(x)
    x = keras.layers.Softmax(name="probs")(x)
    return keras.Model(inputs, x, name="tiny_tanh")


def _numpy_logits(model, image):
    """Float64 forward pass of :func:`_tiny_tanh_net`, written out independently."""
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer("conv").get_weights())
    dense_w, dense_b = (np.asarray(w, np.float64) for w in model.get_layer("logits").get_weights())
    out = np.zeros((4, 4, 3))
    for y in range(4):
        for x in range(4):
            out[y, x] = np.tensordot(image[y : y + 3, x : x + 3, :], kernel, axes=3) + bias
    return np.tanh(out).reshape(-1) @ dense_w + dense_b


def _relu_cnn(seed=0, size=12, fused_softmax=False):
    """A small random ReLU CNN with a Dense logit head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if fused_softmax:
        x = keras.layers.Dense(5, activation="softmax", name="head")(x)
    else:
        x = keras.layers.Dense(5, name="head")(x)
        x = keras.layers.Activation("softmax", name="head_softmax")(x)
    return keras.Model(inputs, x, name="relu_cnn")


@pytest.fixture(scope="module")
def tanh_net():
    return _tiny_tanh_net()


@pytest.fixture(scope="module")
def relu_cnn():
    return _relu_cnn()


def test_vanilla_matches_finite_differences(tanh_net):
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (6, 6, 2))
    grads = saliency.gradients(tanh_net, image.astype(np.float32), 2)
    maps = saliency.vanilla(tanh_net, image.astype(np.float32), 2)
    assert grads.shape == (6, 6, 2) and maps.shape == (6, 6)
    eps = 1e-5
    for y, x in [(0, 0), (2, 3), (5, 5), (3, 1)]:
        fd = np.zeros(2)
        for c in range(2):
            plus, minus = image.copy(), image.copy()
            plus[y, x, c] += eps
            minus[y, x, c] -= eps
            fd[c] = (_numpy_logits(tanh_net, plus)[2] - _numpy_logits(tanh_net, minus)[2]) / (2 * eps)
        np.testing.assert_allclose(grads[y, x], fd, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(maps[y, x], np.abs(fd).max(), rtol=1e-3, atol=1e-5)


def test_vanilla_matches_gradient_tape(relu_cnn):
    images = np.random.default_rng(2).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    logits = keras.Model(relu_cnn.inputs[0], relu_cnn.get_layer("head").output)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(logits(x)[:, 3])
    expected = tape.gradient(s, x).numpy()
    np.testing.assert_allclose(saliency.gradients(relu_cnn, images, 3, batch_size=2), expected, atol=1e-5)
    np.testing.assert_allclose(saliency.vanilla(relu_cnn, images, 3), np.abs(expected).max(-1), atol=1e-5)
    np.testing.assert_allclose(saliency.score(relu_cnn, images, 3), logits(x).numpy()[:, 3], rtol=1e-5, atol=1e-6)


def test_fused_softmax_uses_pre_activation():
    model = _relu_cnn(seed=3, fused_softmax=True)
    images = np.random.default_rng(3).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    features = keras.Model(model.inputs[0], model.get_layer("head").input)(images).numpy()
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(saliency.score(model, images, 1), features @ kernel[:, 1] + bias[1], rtol=1e-5, atol=1e-6)


def test_channel_and_unit_targets(relu_cnn):
    images = np.random.default_rng(4).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    # "c1" is the pre-activation of the fused conv (split as in tfvis.deconv)
    pre = keras.Model(relu_cnn.inputs[0], relu_cnn.get_layer("c1").input)(images)
    kernel, bias = relu_cnn.get_layer("c1").get_weights()
    act = tf.nn.conv2d(pre, kernel, 1, "SAME").numpy() + bias
    np.testing.assert_allclose(saliency.score(relu_cnn, images, "c1:2"), act[..., 2].mean(axis=(1, 2)), rtol=1e-4)
    np.testing.assert_allclose(saliency.score(relu_cnn, images, "c1:2@3,5"), act[:, 3, 5, 2], rtol=1e-4, atol=1e-5)
    unit = saliency.gradients(relu_cnn, images, "c1:2@3,5")
    outside = np.ones((12, 12), bool)
    outside[2:5, 4:7] = False  # the 3x3 receptive field
    assert np.all(unit[:, outside] == 0) and np.any(unit[:, ~outside] != 0)


def test_smoothgrad(relu_cnn):
    images = np.random.default_rng(5).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    base = saliency.vanilla(relu_cnn, images, 1)
    assert np.array_equal(saliency.smoothgrad(relu_cnn, images, 1, noise=0), base)
    a = saliency.smoothgrad(relu_cnn, images, 1, noise=0.2, samples=5, batch_size=10, seed=7)
    b = saliency.smoothgrad(relu_cnn, images, 1, noise=0.2, samples=5, batch_size=3, seed=7)
    c = saliency.smoothgrad(relu_cnn, images, 1, noise=0.2, samples=5, batch_size=10, seed=8)
    assert a.shape == (3, 12, 12)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(a, c)
    signed = saliency.smoothgrad(relu_cnn, images[0], 1, noise=0.2, samples=5, seed=7, magnitude=False)
    assert signed.shape == (12, 12) and np.all(signed <= a[0] + 1e-6)


@pytest.mark.parametrize("rule", saliency.RULES)
def test_integrated_gradients_completeness(relu_cnn, rule):
    images = np.random.default_rng(6).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    raw = saliency.integrated_gradients(relu_cnn, images, 4, steps=64, reduce=None, rule=rule, batch_size=200)
    assert raw.shape == images.shape
    gap = saliency.score(relu_cnn, images, 4) - saliency.score(relu_cnn, np.zeros_like(images), 4)
    np.testing.assert_allclose(raw.sum(axis=(1, 2, 3)), gap, rtol=0.01)
    summed = saliency.integrated_gradients(relu_cnn, images, 4, steps=64, reduce="sum", rule=rule, batch_size=32)
    np.testing.assert_allclose(summed, raw.sum(-1), rtol=1e-5, atol=1e-6)
    assert saliency.integrated_gradients(relu_cnn, images[0], 4, steps=4).shape == (12, 12)
    # the grouping of paths into calls does not change the result
    small = saliency.integrated_gradients(relu_cnn, images, 4, steps=64, reduce=None, rule=rule, batch_size=7)
    np.testing.assert_allclose(small, raw, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_vgg16_channel(zoo_model):

    model = zoo_model("vgg16", input_shape=(64, 64, 3))
    images = np.random.default_rng(7).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    baseline = saliency.mean_image(model)
    target = "block2_conv1:5"
    raw = saliency.integrated_gradients(model, images, target, baseline=baseline, steps=64, reduce=None, batch_size=65)
    gap = saliency.score(model, images, target) - saliency.score(model, baseline[None], target)
    np.testing.assert_allclose(raw.sum(axis=(1, 2, 3)), gap, rtol=0.01)


def _cam_model(stride=1):
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 1, strides=stride, use_bias=False, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    x = keras.layers.Softmax(name="probs")(x)
    model = keras.Model(inputs, x)
    model.get_layer("conv").set_weights([np.array([1.0, 2.0], np.float32).reshape(1, 1, 1, 2)])
    model.get_layer("logits").set_weights([np.array([[1.0, -1.0], [0.5, 3.0]], np.float32), np.array([0.3, -0.2], np.float32)])
    return model


def test_grad_cam_hand_worked():
    model = _cam_model()
    image = np.arange(-8, 8, dtype=np.float32).reshape(4, 4, 1)
    # A_0 = x, A_1 = 2x; dS_c/dA_k = W[k, c] / 16; class 0: (1 + 0.5 * 2) / 16 = 1/8, class 1: (-1 + 3 * 2) / 16 = 5/16
    np.testing.assert_allclose(saliency.grad_cam(model, image, 0, "conv"), np.maximum(image[..., 0] / 8, 0), rtol=1e-6)
    np.testing.assert_allclose(
        saliency.grad_cam(model, image[None], 1, "conv")[0], np.maximum(5 * image[..., 0] / 16, 0), rtol=1e-6
    )
    strided = _cam_model(stride=2)
    cam = saliency.grad_cam(strided, np.ones((2, 4, 4, 1), np.float32), 0, "conv")
    # constant map (1/4 * (1 + 0.5 * 2) = 0.5) upsampled stays constant
    np.testing.assert_allclose(cam, np.full((2, 4, 4), 0.5), rtol=1e-6)


def test_grad_cam_errors(relu_cnn):
    image = np.zeros((12, 12, 3), np.float32)
    with pytest.raises(ValueError, match="spatial map"):
        saliency.grad_cam(relu_cnn, image, 0, "head")
    with pytest.raises(ValueError, match="does not depend"):
        saliency.grad_cam(relu_cnn, image, "c1:0", "c2")
    assert saliency.grad_cam(relu_cnn, image + 100, 0, "c2").shape == (12, 12)


def test_guided_and_deconvnet(relu_cnn):
    images = np.random.default_rng(8).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    g = saliency.guided(relu_cnn, images, 2)
    d = saliency.deconvnet(relu_cnn, images, 2)
    assert g.shape == d.shape == (2, 12, 12) and np.all(g >= 0) and np.all(d >= 0)
    # a unit target: reconstruct feeds back the activation itself, saliency feeds back 1
    act = saliency.score(relu_cnn, images, "c2:1@2,3")
    rec = reconstruct(relu_cnn, images, "c2:1", "guided", position=(2, 3))
    unit = saliency.guided(relu_cnn, images, "c2:1@2,3")
    for i in range(2):
        if act[i] > 0:
            np.testing.assert_allclose(np.abs(rec[i]).max(-1), act[i] * unit[i], rtol=1e-4, atol=1e-6)
    # no ReLU on the way: guided backpropagation is the gradient
    tanh = _tiny_tanh_net()
    x = np.random.default_rng(9).uniform(-1, 1, (2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(saliency.guided(tanh, x, 1), saliency.vanilla(tanh, x, 1), rtol=1e-6)


def test_class_model_raises_score():
    model = _relu_cnn(seed=10, size=8)
    rng = np.random.default_rng(10)
    for name in ("c1", "c2", "head"):  # trained nets have biases; all-zero ones leave the zero image dead
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel, rng.uniform(-0.1, 0.1, bias.shape).astype(np.float32)])
    start = saliency.mean_image(model)
    image = saliency.class_model(model, 2, steps=30, learning_rate=5.0)
    assert image.shape == (8, 8, 3) and image.min() >= 0 and image.max() <= 255
    before, after = saliency.score(model, start, 2), saliency.score(model, image, 2)
    assert after > before + 1e-3, (before, after)


def test_mean_image_reads_preprocess(zoo_model):

    model = zoo_model("vgg16", input_shape=(32, 32, 3))
    mean = saliency.mean_image(model)
    pre = model.get_layer("preprocess")
    np.testing.assert_allclose(pre(tf.constant(mean[None])).numpy(), 0, atol=1e-4)
    assert saliency.default_layer(model) == "block5_conv3_relu"  # back over block5_pool


def test_errors(relu_cnn):
    image = np.zeros((12, 12, 3), np.float32)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        saliency.vanilla(relu_cnn, image, 5)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        saliency.vanilla(relu_cnn, image, -1)
    with pytest.raises(ValueError, match="shape"):
        saliency.vanilla(relu_cnn, np.zeros((12, 3), np.float32), 0)
    with pytest.raises(ValueError, match="channels 0..3"):
        saliency.vanilla(relu_cnn, image, "c1:4")
    with pytest.raises(ValueError, match="no spatial map"):
        saliency.vanilla(relu_cnn, image, "head:1@0,0")
    headless = keras.Model(relu_cnn.inputs[0], relu_cnn.get_layer("c2").output)
    with pytest.raises(ValueError, match="no class output"):
        saliency.vanilla(headless, image, 0)
    with pytest.raises(ValueError, match="reduce"):
        saliency.integrated_gradients(relu_cnn, image, 0, reduce="mean")


def test_overlay_and_figure():
    rng = np.random.default_rng(11)
    image = rng.uniform(0, 255, (8, 10, 3))
    sal = rng.uniform(0, 3, (8, 10))
    out = saliency.overlay(image, sal)
    assert out.shape == (8, 10, 3) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(saliency.overlay(image, sal, alpha=0.0), image / 255, rtol=1e-5)
    assert saliency.overlay(image[..., 0], sal[::2, ::2], cmap="viridis").shape == (8, 10, 3)
    fig = saliency.figure(image[None].repeat(2, 0), sal[None].repeat(2, 0), titles=["a", "b"])
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 4
    with pytest.raises(ValueError):
        saliency.overlay(image, sal[None])
    with pytest.raises(ValueError):
        saliency.figure([image], [sal, sal])


@pytest.mark.slow
def test_vgg16_with_top_class_score(vgg16_random_top):
    model = vgg16_random_top
    image = np.random.default_rng(12).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    logits = keras.Model(model.inputs[0], model.get_layer("predictions").output)
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = logits(x)[:, 281]
    expected = np.abs(tape.gradient(s, x).numpy()).max(-1)
    np.testing.assert_allclose(saliency.vanilla(model, image, 281), expected, rtol=1e-4, atol=1e-10)
    with pytest.raises(ValueError, match=r"0\.\.999"):
        saliency.vanilla(model, image, 1000)
    assert saliency.grad_cam(model, image[0], 281, "block5_conv3_relu").shape == (224, 224)
    assert saliency.default_layer(model) == "block5_conv3_relu"


def test_per_image_targets_equal_separate_calls(relu_cnn):
    images = np.random.default_rng(11).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    targets = ["c1:0", "c1:2", "c1:1"]
    together = saliency.gradients(relu_cnn, images, targets)
    for i, target in enumerate(targets):
        np.testing.assert_allclose(together[i], saliency.gradients(relu_cnn, images[i], target), rtol=1e-5, atol=1e-7)
    units = ["c1:1@4,4", "c1:2@0,11", "c1:0@7,3"]
    np.testing.assert_allclose(
        saliency.score(relu_cnn, images, units),
        [saliency.score(relu_cnn, images[i], t) for i, t in enumerate(units)],
        rtol=1e-5,
    )
    cams = saliency.grad_cam(relu_cnn, images, [1, 3, 0], "c1")
    np.testing.assert_allclose(cams[1], saliency.grad_cam(relu_cnn, images[1], 3, "c1"), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="differ in layer or kind"):
        saliency.gradients(relu_cnn, images, ["c1:0", "c1:0@1,1", 2])
    with pytest.raises(ValueError, match="2 targets for 3 images"):
        saliency.vanilla(relu_cnn, images, [1, 2])


def test_smoothgrad_equals_mean_of_gradients_at_its_noise(relu_cnn):
    """A second implementation: draw the documented noise here, average plain gradients."""
    images = np.random.default_rng(12).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    sigma = 0.2 * 255.0
    expected = []
    for i, image in enumerate(images):
        # the documented formula: sigma * stateless_normal((samples, *shape), seed=(seed, image index))
        noise = sigma * tf.random.stateless_normal((6, *image.shape), seed=(3, i)).numpy()
        grads = saliency.gradients(relu_cnn, image[None] + noise, [2, 0][i])
        expected.append(np.abs(np.abs(grads).mean(axis=0)).max(axis=-1))
    got = saliency.smoothgrad(relu_cnn, images, [2, 0], noise=0.2, samples=6, seed=3, batch_size=4)
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4, atol=1e-7)


def test_maps_display_inline(relu_cnn):
    from tfvis.display import Maps

    images = np.random.default_rng(13).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    maps = {
        "vanilla": saliency.vanilla(relu_cnn, images, 1),
        "guided": saliency.guided(relu_cnn, images, 1),
        "deconvnet": saliency.deconvnet(relu_cnn, images, 1),
        "smoothgrad": saliency.smoothgrad(relu_cnn, images, 1, samples=2),
        "integrated": saliency.integrated_gradients(relu_cnn, images, 1, steps=2),
        "grad_cam": saliency.grad_cam(relu_cnn, images, 1),
        "grad_cam_pp": saliency.grad_cam_plus_plus(relu_cnn, images, 1),
        "layer_cam": saliency.layer_cam(relu_cnn, images, 1),
        "score_cam": saliency.score_cam(relu_cnn, images, 1),
        "gradient_x_input": saliency.gradient_x_input(relu_cnn, images, 1),
        "occlusion": saliency.occlusion(relu_cnn, images, 1, patch=4, stride=2),
        "rise": saliency.rise(relu_cnn, images, 1, seed=4),
    }
    for name, values in maps.items():
        assert isinstance(values, Maps) and isinstance(values, np.ndarray) and values.shape == (2, 12, 12), name
        assert values._repr_html_().count("<img") == 2, name
    raw = saliency.integrated_gradients(relu_cnn, images, 1, steps=2, reduce=None)
    assert not isinstance(raw, Maps) and raw.shape == images.shape
    assert not isinstance(saliency.gradients(relu_cnn, images, 1), Maps)


# --------------------------------------------------------------------------------------------
# Grad-CAM's default layer
# --------------------------------------------------------------------------------------------


def _relu_layers_net():
    """conv -> ReLU -> conv -> ReLU -> global average pooling -> Dense, every ReLU a layer."""
    keras.utils.set_random_seed(14)
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="relu_layers")


def test_default_layer_is_last_map_before_the_classifier(relu_cnn):
    assert saliency.default_layer(_relu_layers_net()) == "relu2"
    # fused ReLUs are split: the post-activation map of the last convolution
    assert saliency.default_layer(relu_cnn) == "c2_relu"
    assert saliency.default_layer(_relu_cnn(fused_softmax=True)) == "c2_relu"
    # back over the pooling in front of Flatten, to the finest map of the last stage
    pooled = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="tanh", name="c1"),
            keras.layers.Conv2D(4, 3, activation="relu", name="c2"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, name="logits"),
        ]
    )
    assert saliency.default_layer(pooled) == "c2_relu"
    assert saliency.default_layer(_tiny_tanh_net()) == "conv_tanh"
    assert saliency.default_layer(_cam_model()) == "conv"
    # residual, activations as layers: the activation after the add, as ResNet50's conv5_block3_out
    inputs = keras.Input((8, 8, 2))
    a = keras.layers.Activation("relu", name="a_out")(keras.layers.Conv2D(2, 3, padding="same", name="a")(inputs))
    b = keras.layers.Conv2D(2, 3, padding="same", name="b")(a)
    out = keras.layers.Activation("relu", name="block_out")(keras.layers.Add(name="add")([a, b]))
    head = keras.layers.Dense(2, name="logits")(keras.layers.GlobalMaxPooling2D()(out))
    assert saliency.default_layer(keras.Model(inputs, head)) == "block_out"
    flat = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no layer with a spatial map"):
        saliency.default_layer(flat)


def test_grad_cam_default_layer_hand_worked():
    model = _cam_model()
    image = np.arange(-8, 8, dtype=np.float32).reshape(4, 4, 1)
    np.testing.assert_allclose(saliency.grad_cam(model, image, 1), np.maximum(5 * image[..., 0] / 16, 0), rtol=1e-6)
    net = _relu_layers_net()
    images = np.random.default_rng(15).uniform(0, 255, (2, 10, 10, 3)).astype(np.float32)
    # Grad-CAM at relu2 written out: weights are the mean over positions of dS/dA
    maps_net = keras.Model(net.inputs[0], [net.get_layer("relu2").output, net.output])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        maps, logits = maps_net(x)
        s = tf.reduce_sum(logits[:, 2])
    weights = tape.gradient(s, maps).numpy().mean(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwk,nk->nhw", maps.numpy(), weights), 0)  # 10 x 10 map: no resizing
    np.testing.assert_allclose(saliency.grad_cam(net, images, 2), cam, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(saliency.grad_cam(net, images, 2, layer="relu2"), cam, rtol=1e-4, atol=1e-7)


def test_the_method_table_runs_each_public_function(relu_cnn):
    """Each entry of the table calls its public function with the options it takes, and ignores the others."""
    from tfvis.cli.saliency import SALIENCY_METHODS
    from tfvis.saliency.methods import METHODS, method

    images = np.random.default_rng(3).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    settings = {
        "noise": 0.1,
        "samples": 2,
        "seed": 4,
        "steps": 3,
        "layer": None,
        "method": "guided",
        "patch": 4,
        "stride": 2,
        "unrelated": 1,
    }
    direct = {
        "vanilla": saliency.vanilla(relu_cnn, images, 1),
        "smoothgrad": saliency.smoothgrad(relu_cnn, images, 1, noise=0.1, samples=2, seed=4, method="guided"),
        "integrated": saliency.integrated_gradients(relu_cnn, images, 1, steps=3),
        "guided": saliency.guided(relu_cnn, images, 1),
        "deconvnet": saliency.deconvnet(relu_cnn, images, 1),
        "grad_cam": saliency.grad_cam(relu_cnn, images, 1),
        "grad_cam_pp": saliency.grad_cam_plus_plus(relu_cnn, images, 1),
        "layer_cam": saliency.layer_cam(relu_cnn, images, 1),
        "score_cam": saliency.score_cam(relu_cnn, images, 1),
        "gradient_x_input": saliency.gradient_x_input(relu_cnn, images, 1),
        "occlusion": saliency.occlusion(relu_cnn, images, 1, patch=4, stride=2),
        "rise": saliency.rise(relu_cnn, images, 1, seed=4),
    }
    assert list(METHODS) == list(direct) and SALIENCY_METHODS == {name: entry.title for name, entry in METHODS.items()}
    for name, expected in direct.items():
        np.testing.assert_array_equal(method(name)(relu_cnn, images, 1, **settings), expected, err_msg=name)
    with pytest.raises(ValueError, match="choose one of: vanilla, smoothgrad"):
        method("lime")


def test_renamed_tables_keep_their_former_names():
    from tfvis.cli import report
    from tfvis.saliency import gradient, smoothing

    assert report.METHODS is report.REPORT_PARTS and "inversion" in report.REPORT_PARTS
    assert gradient.METHODS is gradient.BACKWARD_RULES and gradient.BACKWARD_RULES["vanilla"] == "gradient"
    assert smoothing.METHODS is smoothing.SMOOTHABLE_METHODS and "grad_cam" in smoothing.SMOOTHABLE_METHODS
