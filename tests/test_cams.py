"""Grad-CAM++ and LayerCAM against the papers' formulas written here with GradientTape and NumPy, on a tiny CNN."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvis import saliency

SIZE = 10


def _net(seed=0):
    """Rescaling -> Conv2D -> ReLU -> Conv2D -> ReLU -> GlobalAveragePooling -> Dense logits, non-zero biases."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(x), name="cam_net")
    rng = np.random.default_rng(seed)
    for name in ("c1", "c2", "head"):  # ReLUs that are off as well as on
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel, rng.uniform(-0.2, 0.2, bias.shape).astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def net():
    return _net()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)


def _forward(model, x):
    """``(relu1, relu2, logits)`` of :func:`_net`, written out with the model's weights."""
    k1, b1 = model.get_layer("c1").get_weights()
    k2, b2 = model.get_layer("c2").get_weights()
    w, b = model.get_layer("head").get_weights()
    relu1 = tf.nn.relu(tf.nn.conv2d(x * np.float32(1 / 255.0), k1, 1, "SAME") + b1)
    relu2 = tf.nn.relu(tf.nn.conv2d(relu1, k2, 2, "SAME") + b2)
    return relu1, relu2, tf.reduce_mean(relu2, axis=[1, 2]) @ w + b


def _activations_and_gradients(model, images, classes, layer):
    """``A`` at ``layer`` ("relu1" or "relu2") and ``dS/dA`` of each image's class logit, as NumPy arrays."""
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)  # the weights are constants: connect the activations through the input
        relu1, relu2, logits = _forward(model, x)
        scores = tf.gather(logits, classes, axis=1, batch_dims=1)
    activations = {"relu1": relu1, "relu2": relu2}[layer]
    return activations.numpy(), tape.gradient(scores, activations).numpy(), scores.numpy()


def _grad_cam_pp_reference(model, images, classes, layer):
    """Eq. 19 of Chattopadhay et al. for ``Y = exp(S)``, derivatives written as powers, divided by ``exp(S)`` at the end."""
    a, g, s = _activations_and_gradients(model, images, classes, layer)
    y = np.exp(s.astype(np.float64))[:, None, None, None]
    first, second, third = y * g, y * g**2, y * g**3  # dY/dA, d2Y/dA2, d3Y/dA3
    denominator = 2 * second + a.sum(axis=(1, 2), keepdims=True) * third
    alpha = np.divide(second, denominator, out=np.zeros_like(second), where=denominator != 0)
    norm = alpha.sum(axis=(1, 2), keepdims=True)
    alpha = np.divide(alpha, norm, out=alpha.copy(), where=norm != 0)
    weights = (alpha * np.maximum(first, 0)).sum(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * a).sum(axis=-1, keepdims=True), 0) / y[..., 0:1]
    return tf.image.resize(cam.astype(np.float32), (SIZE, SIZE), method="bilinear")[..., 0].numpy()


def _layer_cam_reference(model, images, classes, layer):
    a, g, _ = _activations_and_gradients(model, images, classes, layer)
    cam = np.maximum((np.maximum(g, 0) * a).sum(axis=-1, keepdims=True), 0)
    return tf.image.resize(cam, (SIZE, SIZE), method="bilinear")[..., 0].numpy()


REFERENCES = {"grad_cam_pp": _grad_cam_pp_reference, "layer_cam": _layer_cam_reference}
FUNCTIONS = {"grad_cam_pp": "grad_cam_plus_plus", "layer_cam": "layer_cam"}


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("layer", ["relu1", "relu2", None])
def test_maps_match_the_papers_formulas(net, images, name, layer):
    classes = [1, 4, 0]
    function = getattr(saliency, FUNCTIONS[name])
    expected = REFERENCES[name](net, images, classes, layer or "relu2")  # the default: the last map
    got = function(net, images, classes, layer, batch_size=2)
    assert got.shape == (3, SIZE, SIZE) and got.dtype == np.float32
    assert got.max() > 0 and (got >= 0).all()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.max())
    np.testing.assert_allclose(function(net, images[1], 4, layer), got[1], rtol=1e-5, atol=1e-7)  # one image


def _linear_head_net():
    """Conv2D(2 channels, 1x1, identity kernel) -> ReLU -> GlobalAveragePooling -> Dense(2), set by hand."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(2, 1, name="conv", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.get_layer("conv").set_weights([np.eye(2, dtype=np.float32)[None, None], np.zeros(2, np.float32)])
    model.get_layer("head").set_weights([np.array([[2.0, 1.0], [3.0, -4.0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_hand_worked_linear_head():
    """With a linear head on a global average pool, ``dS/dA_k = w_k / hw`` at every position.

    Grad-CAM++'s alphas are then uniform and its weights ``relu(w_k / hw)``, LayerCAM's the same
    at each position: for class 0 (weights 2 and 3, both positive) both equal Grad-CAM,
    ``relu(2 A_0 + 3 A_1) / 16``; for class 1 (weights 1 and -4) both keep only channel 0,
    ``A_0 / 16``, where Grad-CAM gives ``relu(A_0 - 4 A_1) / 16``.
    """
    model = _linear_head_net()
    image = np.random.default_rng(0).uniform(-100, 100, (4, 4, 2)).astype(np.float32)
    a = np.maximum(image, 0)
    for function in (saliency.grad_cam_plus_plus, saliency.layer_cam):
        np.testing.assert_allclose(function(model, image, 0, "conv_relu"), (2 * a[..., 0] + 3 * a[..., 1]) / 16, rtol=1e-5)
        np.testing.assert_allclose(function(model, image, 0), saliency.grad_cam(model, image, 0), rtol=1e-5)
        np.testing.assert_allclose(function(model, image, 1, "conv_relu"), a[..., 0] / 16, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(saliency.grad_cam(model, image, 1), np.maximum(a[..., 0] - 4 * a[..., 1], 0) / 16, atol=1e-7)


def test_channel_and_unit_targets_and_errors(net, images):
    """The targets of Grad-CAM: a channel's mean and one unit; a layer without a map and an unrelated target fail."""
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        relu1, relu2, _ = _forward(net, x)
        score = tf.reduce_sum(relu2[:, 2, 3, 5])
    g = tape.gradient(score, relu1).numpy()
    cam = np.maximum((np.maximum(g, 0) * relu1.numpy()).sum(-1), 0)
    np.testing.assert_allclose(saliency.layer_cam(net, images, "relu2:5@2,3", "relu1"), cam, rtol=1e-4, atol=1e-7)
    assert saliency.grad_cam_plus_plus(net, images, "relu2:1", "relu1").shape == (3, SIZE, SIZE)
    for function in (saliency.grad_cam_plus_plus, saliency.layer_cam):
        with pytest.raises(ValueError, match="not a spatial map"):
            function(net, images, 0, "head")
        with pytest.raises(ValueError, match="does not depend on layer"):
            function(net, images, "relu1:0", "relu2")


def _noise(shape, samples, sigma, seed, index):
    """SmoothGrad's documented noise: ``sigma * stateless_normal((samples, *shape), seed=(seed, index))``."""
    return sigma * tf.random.stateless_normal((samples, *shape), seed=(seed, index)).numpy()


@pytest.mark.parametrize("name", list(REFERENCES))
def test_smoothgrad_is_the_mean_over_noisy_copies(net, images, name):
    samples, noise, seed, value_range = 3, 0.1, 7, 255.0
    classes = [2, 0, 3]
    expected = []
    for i, image in enumerate(images):
        noisy = image[None] + _noise(image.shape, samples, noise * value_range, seed, i)
        expected.append(REFERENCES[name](net, noisy, [classes[i]] * samples, "relu1").mean(axis=0))
    got = saliency.smoothgrad(
        net, images, classes, noise=noise, samples=samples, seed=seed, value_range=(0, 255), method=name, layer="relu1"
    )
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4, atol=1e-6 * got.max())
    function = getattr(saliency, FUNCTIONS[name])
    assert not np.allclose(got, function(net, images, classes, "relu1"), rtol=1e-3)  # the noise mattered


def test_the_table_lists_the_methods(net, images):
    from tfvis.saliency.methods import SMOOTHABLE, method, titles

    names = {"grad_cam_pp": "Grad-CAM++", "layer_cam": "LayerCAM", "score_cam": "Score-CAM"}
    assert titles(list(names)) == names
    assert method("grad_cam_pp").options == ("layer",) and {"grad_cam_pp", "layer_cam"} <= set(SMOOTHABLE)
    assert "score_cam" not in SMOOTHABLE  # its weights come from masked copies, not from a gradient of each copy
    settings = {"layer": "relu1", "max_channels": 2, "samples": 3, "unrelated": 1}
    np.testing.assert_array_equal(
        method("score_cam")(net, images, 1, **settings), saliency.score_cam(net, images, 1, "relu1", max_channels=2)
    )
    np.testing.assert_array_equal(method("layer_cam")(net, images, 1, **settings), saliency.layer_cam(net, images, 1, "relu1"))


def test_saliency_command_runs_the_methods(tmp_path):
    from tfvis import cli

    saved = tmp_path / "tiny.keras"
    _net().save(saved)
    out = tmp_path / "maps"
    args = ["--model", str(saved), "--target", "1", "--methods", "grad_cam_pp,layer_cam,score_cam", "--num-images", "2"]
    with pytest.raises(SystemExit) as done:
        cli.saliency_main(args + ["--out", str(out), "--quiet"])
    assert done.value.code == 0
    for name in ("grad_cam_pp", "layer_cam", "score_cam"):
        stored = sorted((out / "assets" / "saliency").glob(f"*_{name}.npy"))
        assert len(stored) == 2 and all(np.load(p).shape == (SIZE, SIZE) for p in stored), name
    page = (out / "index.html").read_text(encoding="utf8")
    assert all(title in page for title in ("Grad-CAM++", "LayerCAM", "Score-CAM"))


def _score_cam_reference(model, images, classes, layer, max_channels=None, rank_by="max"):
    """Wang et al.'s Score-CAM written per image and channel: ``c_k = S(X * H_k) - S(0)``, ``H_k`` A_k scaled to [0, 1]."""
    out = []
    for image, cls in zip(images, classes):
        relu1, relu2, _ = _forward(model, tf.constant(image[None]))
        a = {"relu1": relu1, "relu2": relu2}[layer].numpy()[0]  # (h, w, K)
        channels = range(a.shape[-1])
        if max_channels is not None:
            strength = {"max": lambda k: a[..., k].max(), "std": lambda k: a[..., k].std()}[rank_by]
            channels = sorted(channels, key=lambda k: -strength(k))[:max_channels]
        baseline = _forward(model, tf.zeros((1, SIZE, SIZE, 3)))[2].numpy()[0, cls]
        weights = np.zeros(a.shape[-1])
        for k in channels:
            up = tf.image.resize(a[None, ..., k : k + 1], (SIZE, SIZE), method="bilinear").numpy()[0, ..., 0]
            span = up.max() - up.min()
            mask = (up - up.min()) / span if span > 0 else np.zeros_like(up)
            weights[k] = _forward(model, tf.constant((image * mask[..., None])[None]))[2].numpy()[0, cls] - baseline
        cam = np.maximum(a @ weights, 0).astype(np.float32)
        out.append(tf.image.resize(cam[None, ..., None], (SIZE, SIZE), method="bilinear").numpy()[0, ..., 0])
    return np.stack(out)


@pytest.mark.parametrize("layer", ["relu1", None])
def test_score_cam_matches_the_papers_formula(net, images, layer):
    classes = [1, 4, 0]
    expected = _score_cam_reference(net, images, classes, layer or "relu2")
    got = saliency.score_cam(net, images, classes, layer, batch_size=3)  # masked copies of two images in a call
    assert got.shape == (3, SIZE, SIZE) and got.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * expected.max())
    np.testing.assert_allclose(saliency.score_cam(net, images, classes, layer, batch_size=64), got, rtol=1e-5, atol=1e-7)


def test_score_cam_strongest_channels(net, images):
    """``max_channels`` keeps each image's channels with the largest peak; all of them is the full method."""
    classes = [2, 2, 3]
    expected = _score_cam_reference(net, images, classes, "relu2", max_channels=2)
    got = saliency.score_cam(net, images, classes, max_channels=2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * max(expected.max(), 1e-6))
    np.testing.assert_array_equal(
        saliency.score_cam(net, images, classes, max_channels=6), saliency.score_cam(net, images, classes)
    )
    by_std = _score_cam_reference(net, images, classes, "relu2", max_channels=2, rank_by="std")
    got = saliency.score_cam(net, images, classes, max_channels=2, rank_by="std")
    np.testing.assert_allclose(got, by_std, rtol=1e-4, atol=1e-5 * max(by_std.max(), 1e-6))
    with pytest.raises(ValueError, match="max_channels must be at least 1"):
        saliency.score_cam(net, images, classes, max_channels=0)
    with pytest.raises(ValueError, match="unknown rank_by 'mean'; choose one of: max, std"):
        saliency.score_cam(net, images, classes, max_channels=2, rank_by="mean")
    with pytest.raises(ValueError, match="not a spatial map"):
        saliency.score_cam(net, images, classes, "head")


def test_strongest_channels_by_peak_or_by_spread():
    """A flat bright channel has the largest peak; a varied dim one the largest standard deviation (tf-keras-vis' max_N)."""
    from tfvis.saliency.cams import strongest_channels

    maps = np.zeros((1, 2, 2, 3), np.float32)
    maps[0, ..., 0] = 10.0  # flat: peak 10, std 0
    maps[0, ..., 1] = [[0.0, 5.0], [5.0, 0.0]]  # peak 5, std 2.5
    maps[0, ..., 2] = [[1.0, 2.0], [1.0, 2.0]]  # peak 2, std 0.5
    np.testing.assert_array_equal(strongest_channels(maps, 2, "max"), [[0, 1]])
    np.testing.assert_array_equal(strongest_channels(maps, 2, "std"), [[1, 2]])
