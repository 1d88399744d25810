"""Caricatures keep their photo (issue 13): the stacked objective, its parts, and the command's settings-keyed units."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvis
from tfvis import featurevis
from tfvis.cli import caricature as cli
from tfvis.compare import layout_correlation
from tfvis.featurevis import objectives as obj
from tfvis.featurevis import transforms
from tfvis.featurevis.caricatures import activated_layer, blur_penalty


@pytest.fixture(scope="module")
def photos():
    found = tfvis.images.sample_images(["chelsea", "coffee"], size=64)
    return np.stack([found["chelsea"], found["coffee"]]).astype(np.float32)


@pytest.mark.slow
def test_block2_conv2_caricature_keeps_its_photos_layout(vgg16_hed, photos):
    """Each caricature's edges lie where its own photo's are, not where the other photo's are.

    Measured at 64 px, 48 steps: correlation 0.89 with its own photo's edge layout, 0.09 with the
    other's (three sample photos). The method before issue 13 (pre-ReLU target at fixed position,
    cosine squared, the standard transforms) gave the same, near 0, for both.
    """
    result = featurevis.caricature(vgg16_hed, photos, "block2_conv2", steps=48, progress=False)
    assert result.shape == (2, 64, 64, 3) and not result.failed
    p = photos / 255.0
    own = [layout_correlation(result[i], p[i]) for i in range(2)]
    other = [layout_correlation(result[i], p[1 - i]) for i in range(2)]
    for i in range(2):
        assert own[i] > 0.6 and own[i] > other[i] + 0.4, (own, other)

    # Independently of pixels: at the layer the caricature's activations point the way its photo's do.
    net = featurevis.FeatureNet(vgg16_hed, ["block2_conv2_relu"])
    acts = net(tf.constant(np.concatenate([result * 255.0, photos])))["block2_conv2_relu"].numpy().reshape(4, -1)
    unit = acts / np.linalg.norm(acts, axis=1, keepdims=True)
    cos = unit @ unit.T
    for i in range(2):
        assert cos[i, 2 + i] > cos[i, 3 - i] + 0.2, cos

    # The plain channel render and the old fixed-target, pre-ReLU objective do not know the photo.
    target = featurevis.reference_activations(vgg16_hed, photos, "block2_conv2", 64)
    old = featurevis.render(
        vgg16_hed, obj.caricature("block2_conv2", target, power=2.0), size=64, steps=48, batch=2, progress=False
    )
    old_own = [layout_correlation(old[i], p[i]) for i in range(2)]
    assert max(old_own) < min(own) - 0.3, (old_own, own)


def test_stacked_objective_matches_numpy_and_holds_the_photos_fixed():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(4, 3, 3, 5)).astype(np.float32)
    x, a = acts[:2].reshape(2, -1), acts[2:].reshape(2, -1)
    dot = (x * a).sum(1)
    cos = dot / np.linalg.norm(x, axis=1) / np.linalg.norm(a, axis=1)
    for normalize, scale in ((False, 1.0), (True, (a * a).sum(1))):
        want = (dot / scale * np.maximum(cos, 0.1) ** 3).mean()
        got = float(obj.caricature("c", power=3, normalize=normalize)({"c": tf.constant(acts)}))
        assert got == pytest.approx(want, rel=1e-4)
    t = tf.Variable(acts)
    with tf.GradientTape() as tape:
        value = obj.caricature("c", power=2)({"c": t})
    grad = tape.gradient(value, t).numpy()
    assert np.abs(grad[2:]).max() == 0.0 and np.abs(grad[:2]).max() > 0.0
    with pytest.raises(ValueError, match="drop batch"):
        obj.caricature("c", batch=0)


def test_normalized_fixed_target_is_one_at_the_target():
    a = np.random.default_rng(1).uniform(0, 2, (2, 4, 4, 3)).astype(np.float32)
    assert float(obj.caricature("c", a, power=4, normalize=True)({"c": tf.constant(a)})) == pytest.approx(1.0, rel=1e-5)


def test_blur_penalty_matches_numpy():
    x = np.random.default_rng(2).uniform(0, 1, (2, 5, 6, 3)).astype(np.float32)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    blurred = sum(k[i, j] * padded[:, i : i + 5, j : j + 6] for i in range(3) for j in range(3))
    want = ((x - blurred) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(blur_penalty(tf.constant(x)).numpy(), want, rtol=1e-5)
    t = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(blur_penalty(t))
    np.testing.assert_allclose(tape.gradient(value, t).numpy(), 2 * (x - blurred) / x[0].size, rtol=1e-4, atol=1e-7)


def test_activated_layer_finds_the_relu_after_a_layer(vgg16_hed):
    assert activated_layer(vgg16_hed, "block2_conv2") == "block2_conv2_relu"
    assert activated_layer(vgg16_hed, "block2_conv2_relu") == "block2_conv2_relu"
    assert activated_layer(vgg16_hed, "block2_pool") == "block2_pool"
    fused = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="tanh", name="c"), keras.layers.Conv2D(2, 3, name="d")]
    )
    assert activated_layer(fused, "c") == "c_tanh" and activated_layer(fused, "d") == "d"
    with pytest.raises(ValueError, match="no layer 'e'"):
        activated_layer(fused, "e")


def test_caricature_transforms_move_renders_and_photos_alike():
    """Stacking relies on one draw of the transforms for the whole batch: equal halves stay equal."""
    half = np.random.default_rng(3).uniform(0, 1, (2, 40, 40, 3)).astype(np.float32)
    for name in ("caricature", "standard"):
        moved = transforms.get(name)(tf.constant(np.concatenate([half, half])), tf.constant([5, 9])).numpy()
        np.testing.assert_array_equal(moved[:2], moved[2:])
    assert transforms.output_size(transforms.get("caricature"), 64) == (70, 70)


def test_caricature_refuses_unknown_keywords(vgg16_hed, photos):
    with pytest.raises(TypeError, match="batch"):
        featurevis.caricature(vgg16_hed, photos, "block1_conv1", steps=1, batch=2)


def _run(out, *extra):
    args = [
        "--model",
        "vgg16:random",
        "--layers",
        "block1_conv1",
        "--num-images",
        "2",
        "--size",
        "32",
        "--steps",
        "2",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    with pytest.raises(SystemExit) as done:
        cli.caricature_main(args)
    assert done.value.code == 0


def _option(args, name, default):
    return args[args.index(name) + 1] if name in args else default


def _stored(out):
    return {p.name: p.stat().st_mtime_ns for p in (out / "store" / "caricature").glob("*.npz")}


@pytest.mark.slow
def test_cli_recomputes_when_a_setting_changes_and_resumes_when_none_does(tmp_path):
    out = tmp_path / "car"
    stem = out / "vgg16-random_block1_conv1_coffee"

    def stamp():
        return stem.with_suffix(".npy").stat().st_mtime_ns

    _run(out)
    first, first_array, first_units = stamp(), np.load(stem.with_suffix(".npy")), _stored(out)
    assert len(first_units) == 1 and not list(out.glob("vgg16-*.json"))  # one unit (1 model x 1 layer x 2 images), no sidecars
    _run(out)
    assert stamp() == first and _stored(out) == first_units  # same settings: resumed

    for extra in (["--steps", "3"], ["--size", "40"], ["--power", "2"], ["--seed", "1"]):
        before, units = stamp(), _stored(out)
        _run(out, *extra)
        assert stamp() != before and len(_stored(out)) == len(units) + 1, extra  # a new unit, the others kept
        size = int(_option(extra, "--size", 32))
        assert np.load(stem.with_suffix(".npy")).shape == (size, size, 3)
        page = (out / "index.html").read_text()
        assert f"{_option(extra, '--steps', 2)} steps at {size} px" in page

    units = _stored(out)
    _run(out)  # back to the first settings: the stored unit's arrays, written again, nothing computed
    np.testing.assert_array_equal(np.load(stem.with_suffix(".npy")), first_array)
    assert _stored(out) == units
    _run(out, "--force")  # recomputed: the same arrays
    assert _stored(out)[next(iter(first_units))] != first_units[next(iter(first_units))]
    np.testing.assert_array_equal(np.load(stem.with_suffix(".npy")), first_array)
