"""Gradient x Input, occlusion and RISE against the formulas written out here with plain NumPy / TF."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvis.saliency import perturbation
from tfvis.saliency.gradient import setup
from tfvis.saliency.perturbation import gradient_x_input, occlusion, rise, rise_masks

SIZE = 8
CLASSES = 3


def _conv_net(seed=0):
    """Conv2D -> ReLU -> GlobalAveragePooling -> Dense logits, with non-zero biases."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x), name="tiny_conv")
    rng = np.random.default_rng(seed)
    for name in ("conv", "logits"):
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel, rng.uniform(-0.2, 0.2, bias.shape).astype(np.float32)])
    return model


def _linear_net(seed=0):
    """Flatten -> Dense logits: ``S_k(x) = w_k . x + b_k``."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(keras.layers.Flatten()(inputs)), name="linear")
    kernel, _ = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel, np.array([0.1, -0.2, 0.3], np.float32)])
    return model


@pytest.fixture(scope="module")
def conv_net():
    return _conv_net()


@pytest.fixture(scope="module")
def linear_net():
    return _linear_net()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)


def _linear_weights(model, cls):
    """The weights ``w_cls`` of :func:`_linear_net`, shaped like an image."""
    return model.get_layer("logits").get_weights()[0][:, cls].reshape(SIZE, SIZE, 3)


def _model_scores(model, batch, cls):
    """Class ``cls``'s logit of each image of ``batch``, straight from the Keras model."""
    return np.asarray(model(tf.constant(batch, tf.float32), training=False))[:, cls].astype(np.float64)


# --------------------------------------------------------------------------------------------
# Gradient x Input
# --------------------------------------------------------------------------------------------


def test_gradient_x_input_of_linear_model_is_weights_times_input(linear_net, images):
    weights = _linear_weights(linear_net, 2)
    expected = weights * images
    np.testing.assert_allclose(gradient_x_input(linear_net, images, 2, reduce=None), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gradient_x_input(linear_net, images, 2), expected.sum(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        gradient_x_input(linear_net, images, 2, reduce="max"), np.abs(expected).max(-1), rtol=1e-5, atol=1e-7
    )
    # a linear score without bias is the sum of its attributions
    total = gradient_x_input(linear_net, images, 2, reduce=None).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(total, _model_scores(linear_net, images, 2) - 0.3, rtol=1e-4, atol=1e-5)


def test_gradient_x_input_against_tape(conv_net, images):
    targets = [0, 2]
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = conv_net(x, training=False)
        total = tf.reduce_sum(tf.gather(logits, targets, axis=1, batch_dims=1))
    expected = images * tape.gradient(total, x).numpy()
    got = gradient_x_input(conv_net, images, targets, batch_size=1, reduce=None)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    single = gradient_x_input(conv_net, images[1], 2)
    assert single.shape == (SIZE, SIZE)
    np.testing.assert_allclose(single, expected[1].sum(-1), rtol=1e-5, atol=1e-6)


def test_gradient_x_input_attribution_builder(conv_net, images):
    """The builder SmoothGrad calls gives the same attributions as the function."""
    batch, _, net, rows = setup(conv_net, images, 1, 16)
    attribution = perturbation.input_gradient_attribution(conv_net, net, rows.target)
    got = attribution.build()(tf.constant(batch), tf.constant(batch), *rows.tensors())
    np.testing.assert_allclose(got.numpy(), gradient_x_input(conv_net, images, 1, reduce=None), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Occlusion
# --------------------------------------------------------------------------------------------


def _occlusion_loop(scores_of, image, patch, stride, baseline):
    """Occlusion by the definition: one patch at a time, each pixel the mean drop of the patches covering it."""
    (ph, pw), (sh, sw) = patch, stride
    clean = scores_of(image[None])[0]
    total, count = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
    for top in range(0, SIZE - ph + 1, sh):
        for left in range(0, SIZE - pw + 1, sw):
            copy = image.copy()
            copy[top : top + ph, left : left + pw] = baseline[top : top + ph, left : left + pw]
            total[top : top + ph, left : left + pw] += clean - scores_of(copy[None])[0]
            count[top : top + ph, left : left + pw] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def test_occlusion_of_linear_model_is_patch_contributions(linear_net, images):
    weights = _linear_weights(linear_net, 1)
    contributions = (weights * images).sum(-1)  # baseline 0: a patch's drop is the sum of w x under it
    patch, stride = 3, 2
    expected = np.zeros((2, SIZE, SIZE))
    count = np.zeros((SIZE, SIZE))
    for top in range(0, SIZE - patch + 1, stride):
        for left in range(0, SIZE - patch + 1, stride):
            window = np.s_[top : top + patch, left : left + patch]
            expected[(slice(None),) + window] += contributions[(slice(None),) + window].sum(axis=(1, 2))[:, None, None]
            count[window] += 1
    expected = np.divide(expected, count, out=np.zeros_like(expected), where=count > 0)
    assert (count[-1] == 0).all() and (count[:, -1] == 0).all()  # positions 0, 2, 4 reach row 6 only
    got = occlusion(linear_net, images, 1, patch=patch, stride=stride, batch_size=5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert (got[:, -1] == 0).all()


@pytest.mark.parametrize(
    ("patch", "stride", "baseline", "batch_size"),
    [(4, 2, 0.0, 16), ((2, 3), (3, 1), 0.5, 7), (3, 3, "mean", 1), (SIZE, 1, 0.25, 4)],
)
def test_occlusion_against_loop(conv_net, images, patch, stride, baseline, batch_size):
    patch_pair, stride_pair = np.broadcast_to(patch, (2,)), np.broadcast_to(stride, (2,))
    got = occlusion(conv_net, images, [0, 2], patch=patch, stride=stride, baseline=baseline, batch_size=batch_size)
    assert got.shape == (2, SIZE, SIZE) and got.dtype == np.float32
    for index, cls in enumerate([0, 2]):
        image = images[index]
        fill = image.mean(axis=(0, 1)) if baseline == "mean" else baseline
        expected = _occlusion_loop(
            lambda batch, cls=cls: _model_scores(conv_net, batch, cls),
            image,
            patch_pair,
            stride_pair,
            np.broadcast_to(fill, image.shape),
        )
        np.testing.assert_allclose(got[index], expected, rtol=1e-4, atol=1e-5)


def test_occlusion_of_channel_target(conv_net, images):
    """A ``layer:channel`` target: the drop of the channel's mean activation."""
    probe = keras.Model(conv_net.inputs, conv_net.get_layer("relu").output)

    def scores_of(batch):
        return np.asarray(probe(tf.constant(batch)))[..., 3].mean(axis=(1, 2)).astype(np.float64)

    expected = _occlusion_loop(scores_of, images[0], (3, 3), (1, 1), np.zeros_like(images[0]))
    got = occlusion(conv_net, images[0], "relu:3", patch=3, stride=1, batch_size=9)
    assert got.shape == (SIZE, SIZE)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------
# RISE
# --------------------------------------------------------------------------------------------


def _masks_by_hand(size, count, cell, p, seed):
    """The documented masks: grids and shifts from two spawned streams, ``tf.image.resize`` bilinear, cropped."""
    grid_stream, shift_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    height, width = size
    cell_h, cell_w = -(-height // cell), -(-width // cell)
    out = []
    for _ in range(count):
        grid = (grid_stream.random((cell, cell)) < p).astype(np.float32)
        dy, dx = np.floor(shift_stream.random(2) * [cell_h, cell_w]).astype(int)
        big = tf.image.resize(grid[..., None], ((cell + 1) * cell_h, (cell + 1) * cell_w), method="bilinear")
        out.append(big.numpy()[dy : dy + height, dx : dx + width, 0])
    return np.stack(out)


@pytest.mark.parametrize(("size", "cell"), [((SIZE, SIZE), 3), ((7, 10), 4), ((8, 8), 1)])
def test_rise_masks_follow_the_procedure(size, cell):
    masks = rise_masks(size, masks=13, cell=cell, p=0.3, seed=5)
    assert masks.shape == (13, *size) and masks.dtype == np.float32
    np.testing.assert_allclose(masks, _masks_by_hand(size, 13, cell, 0.3, 5), atol=1e-6)
    assert masks.min() >= 0 and masks.max() <= 1


def test_rise_masks_do_not_depend_on_chunks():
    whole = rise_masks((SIZE, SIZE), masks=50, cell=3, p=0.5, seed=2)
    for chunk in (1, 7, 50, 64):
        parts = list(perturbation.rise_mask_chunks((SIZE, SIZE), 50, 3, 0.5, 2, chunk=chunk))
        assert [len(part) for part in parts][:-1] == [chunk] * (len(parts) - 1)
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(rise_masks((SIZE, SIZE), masks=50, cell=3, p=0.5, seed=3), whole)
    mean = rise_masks((SIZE, SIZE), masks=4000, cell=3, p=0.3, seed=0).mean()
    assert abs(mean - 0.3) < 0.02


def test_rise_against_loop(conv_net, images):
    count, cell, p, seed = 40, 3, 0.4, 7
    masks = rise_masks((SIZE, SIZE), masks=count, cell=cell, p=p, seed=seed)
    got = rise(conv_net, images, [1, 0], masks=count, cell=cell, p=p, seed=seed, batch_size=16)
    assert got.shape == (2, SIZE, SIZE) and got.dtype == np.float32
    for index, cls in enumerate([1, 0]):
        expected = np.zeros((SIZE, SIZE))
        for mask in masks:
            expected += _model_scores(conv_net, (images[index] * mask[..., None])[None], cls)[0] * mask
        np.testing.assert_allclose(got[index], expected / (count * p), rtol=1e-4, atol=1e-6)


def test_rise_does_not_depend_on_batch_size_or_chunks(conv_net, images, monkeypatch):
    options = dict(masks=30, cell=3, p=0.5, seed=1)
    reference = rise(conv_net, images, 2, batch_size=16, **options)
    for batch_size in (1, 7, 64):
        np.testing.assert_allclose(rise(conv_net, images, 2, batch_size=batch_size, **options), reference, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(perturbation, "RISE_CHUNK", 4)
    np.testing.assert_allclose(rise(conv_net, images, 2, batch_size=3, **options), reference, rtol=1e-5, atol=1e-6)
    single = rise(conv_net, images[1], 2, batch_size=5, **options)
    np.testing.assert_allclose(single, reference[1], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Bad options
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "options", "name"),
    [
        (occlusion, {"patch": SIZE + 1}, "patch"),
        (occlusion, {"patch": (2, SIZE + 1)}, "patch"),
        (occlusion, {"patch": 0}, "patch"),
        (occlusion, {"patch": (1, 2, 3)}, "patch"),
        (occlusion, {"patch": 2, "stride": 0}, "stride"),
        (occlusion, {"patch": 2, "stride": 1.5}, "stride"),
        (occlusion, {"patch": 2, "baseline": "median"}, "baseline"),
        (occlusion, {"patch": 2, "baseline": np.zeros((3, 3))}, "baseline"),
        (rise, {"p": 0.0}, "p "),
        (rise, {"p": 1.0}, "p "),
        (rise, {"p": 1.5}, "p "),
        (rise, {"masks": 0}, "masks"),
        (rise, {"cell": 0}, "cell"),
        (gradient_x_input, {"reduce": "mean"}, "reduce"),
        (gradient_x_input, {"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options_name_the_option(conv_net, images, function, options, name):
    with pytest.raises(ValueError, match=name):
        function(conv_net, images, 0, **options)


def test_bad_target_is_reported(conv_net, images):
    with pytest.raises(ValueError):
        occlusion(conv_net, images, CLASSES + 5, patch=4, stride=4)
