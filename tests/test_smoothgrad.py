"""SmoothGrad over every gradient method, against averages over noise drawn here with the documented formula."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvis import saliency
from tfvis.models.info import ModelInfo, attach

SIZE = 10


def _net(seed=0):
    """Rescaling -> Conv2D(relu) -> MaxPooling -> Conv2D(relu) -> GlobalAveragePooling -> Dense logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(x), name="smooth_net")
    rng = np.random.default_rng(seed)
    for name in ("c1", "c2", "head"):  # non-zero biases: ReLUs that are off as well as on
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel, rng.uniform(-0.2, 0.2, bias.shape).astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def net():
    return _net()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)


def _noise(shape, samples, sigma, seed, index):
    """The documented noise: ``sigma * stateless_normal((samples, *shape), seed=(seed, index))``."""
    return sigma * tf.random.stateless_normal((samples, *shape), seed=(seed, index)).numpy()


@tf.custom_gradient
def _guided_relu(x):
    def grad(g):
        return tf.nn.relu(g) * tf.cast(x > 0, g.dtype)

    return tf.nn.relu(x), grad


def _guided_gradients(model, images, cls):
    """Guided backpropagation of class ``cls`` through :func:`_net`, written out with the model's weights."""
    k1, b1 = model.get_layer("c1").get_weights()
    k2, b2 = model.get_layer("c2").get_weights()
    w, b = model.get_layer("head").get_weights()
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        h = _guided_relu(tf.nn.conv2d(x * np.float32(1 / 255.0), k1, 1, "SAME") + b1)
        h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        h = _guided_relu(tf.nn.conv2d(h, k2, 1, "SAME") + b2)
        logits = tf.reduce_mean(h, axis=[1, 2]) @ w + b
        score = tf.reduce_sum(logits[:, cls])
    return tape.gradient(score, x).numpy()


def test_guided_reference_is_the_guided_method(net, images):
    reference = _guided_gradients(net, images, 3)
    assert not np.allclose(reference, saliency.gradients(net, images, 3), atol=1e-9)  # the rule matters here
    np.testing.assert_allclose(saliency.gradients(net, images, 3, method="guided"), reference, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(saliency.guided(net, images, 3), np.abs(reference).max(-1), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("magnitude", [True, False])
def test_smoothgrad_over_guided_backprop(net, images, magnitude):
    samples, noise, seed = 5, 0.2, 4
    expected = []
    for i, image in enumerate(images):
        noisy = image[None] + _noise(image.shape, samples, noise * 255.0, seed, i)
        grads = _guided_gradients(net, noisy, 3)
        mean = np.abs(grads).mean(axis=0) if magnitude else grads.mean(axis=0)
        expected.append(np.abs(mean).max(axis=-1))
    got = saliency.smoothgrad(
        net, images, 3, noise=noise, samples=samples, seed=seed, magnitude=magnitude, method="guided", batch_size=3
    )
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4, atol=1e-9)
    assert not np.allclose(got, saliency.smoothgrad(net, images, 3, noise=noise, samples=samples, seed=seed, magnitude=magnitude))


@pytest.mark.parametrize("rule, baseline", [("trapezoid", None), ("midpoint", 100.0)])
def test_smoothgrad_over_integrated_gradients(net, images, rule, baseline):
    samples, noise, seed, steps = 4, 0.1, 2, 8
    targets = [1, 4]
    expected = []
    for i, image in enumerate(images):
        noisy = image[None] + _noise(image.shape, samples, noise * 255.0, seed, i)
        attributions = saliency.integrated_gradients(
            net, noisy, targets[i], baseline=baseline, steps=steps, rule=rule, reduce=None, batch_size=64
        )
        expected.append(np.abs(attributions).mean(axis=0).max(axis=-1))
    options = {"steps": steps, "rule": rule, "baseline": baseline}
    got = saliency.smoothgrad(
        net, images, targets, noise=noise, samples=samples, seed=seed, method="integrated", batch_size=20, **options
    )
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4, atol=1e-7)
    # one copy's path per call, or every copy of both images in one call: the same maps
    small = saliency.smoothgrad(
        net, images, targets, noise=noise, samples=samples, seed=seed, method="integrated", batch_size=1, **options
    )
    large = saliency.smoothgrad(
        net, images, targets, noise=noise, samples=samples, seed=seed, method="integrated", batch_size=500, **options
    )
    np.testing.assert_allclose(small, got, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(large, got, rtol=1e-5, atol=1e-8)


def test_smoothgrad_without_noise_is_the_method(net, images):
    for method, plain in [("vanilla", saliency.vanilla), ("guided", saliency.guided), ("deconvnet", saliency.deconvnet)]:
        assert np.array_equal(saliency.smoothgrad(net, images, 2, noise=0, method=method), plain(net, images, 2)), method
    ig = saliency.integrated_gradients(net, images, 2, steps=4)
    assert np.array_equal(saliency.smoothgrad(net, images, 2, noise=0, method="integrated", steps=4), ig)


def test_smoothgrad_value_range(net, images):
    default = saliency.smoothgrad(net, images, 0, samples=3)  # inferred: RGB in [0, 255]
    np.testing.assert_array_equal(saliency.smoothgrad(net, images, 0, samples=3, value_range=255.0), default)
    np.testing.assert_array_equal(saliency.smoothgrad(net, images, 0, samples=3, value_range=(0.0, 255.0)), default)
    unit = attach(_net(), ModelInfo("unit_range", value_range=(-1.0, 1.0)))
    small = saliency.smoothgrad(unit, images, 0, samples=3)  # noise 0.15 * 2
    np.testing.assert_array_equal(saliency.smoothgrad(unit, images, 0, samples=3, value_range=2.0), small)
    np.testing.assert_allclose(
        saliency.smoothgrad(unit, images, 0, samples=3, noise=0.15 * 2 / 255.0, value_range=255.0), small, rtol=1e-5
    )
    assert not np.allclose(small, default)


def test_smoothgrad_errors(net, images):
    with pytest.raises(ValueError, match="choose one of: vanilla"):
        saliency.smoothgrad(net, images, 0, method="occlusion")
    with pytest.raises(TypeError, match="steps"):
        saliency.smoothgrad(net, images, 0, method="guided", steps=4)
    with pytest.raises(TypeError, match="takes baseline, steps"):
        saliency.smoothgrad(net, images, 0, method="integrated", reduce=None)
    with pytest.raises(ValueError, match="samples"):
        saliency.smoothgrad(net, images, 0, samples=0)
    with pytest.raises(ValueError, match="rule"):
        saliency.smoothgrad(net, images, 0, method="integrated", rule="simpson")


@pytest.mark.parametrize("layer", [None, "c1_relu"])
def test_smoothgrad_over_grad_cam_is_the_mean_of_grad_cam_over_the_noise(net, images, layer):
    """SmoothGrad wraps Grad-CAM too: its map is the mean of Grad-CAM's maps of the noisy copies drawn here."""
    samples, noise, seed = 4, 0.2, 3
    targets = [2, 0]
    expected = []
    for i, image in enumerate(images):
        noisy = image[None] + _noise(image.shape, samples, noise * 255.0, seed, i)
        expected.append(saliency.grad_cam(net, noisy, targets[i], layer, batch_size=samples).mean(axis=0))
    got = saliency.smoothgrad(
        net, images, targets, noise=noise, samples=samples, seed=seed, method="grad_cam", layer=layer, batch_size=3
    )
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-4, atol=1e-6)
    assert not np.allclose(got, saliency.grad_cam(net, images, targets, layer), rtol=1e-3)  # the noise mattered
    assert np.array_equal(
        saliency.smoothgrad(net, images, targets, noise=0, method="grad_cam", layer=layer),
        saliency.grad_cam(net, images, targets, layer),
    )


def test_image_indices_place_the_noise_of_a_larger_call(net, images):
    """The maps of one image given its index in a larger set equal that image's maps in one call on the set."""
    whole = saliency.smoothgrad(net, images, 1, samples=3, seed=5, method="guided")
    second = saliency.smoothgrad(net, images[1:], 1, samples=3, seed=5, method="guided", image_indices=[1])
    np.testing.assert_array_equal(second, whole[1:])


def test_every_smoothable_method_of_the_table_is_smoothed(net, images):
    """SmoothGrad takes every method of the table that has an attribution builder, and only those."""
    from tfvis.saliency import methods

    for name, entry in methods.METHODS.items():
        if entry.attribution is None:
            with pytest.raises(ValueError, match="choose one of"):
                saliency.smoothgrad(net, images, 1, samples=2, method=name)
            continue
        maps = saliency.smoothgrad(net, images, 1, samples=2, method=name, **({"steps": 2} if name == "integrated" else {}))
        assert maps.shape == images.shape[:3] and np.isfinite(maps).all(), name
