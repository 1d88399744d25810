"""Deletion, insertion and MuFidelity against references written here with NumPy and the Keras model's own forward."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter
from scipy.stats import rankdata, spearmanr

import tfvis.saliency as saliency
from tfvis.saliency import faithfulness as faith
from tfvis.saliency.faithfulness import (
    deletion_auc,
    faithfulness_table,
    gaussian_blur,
    grid_cells,
    insertion_auc,
    mu_fidelity,
    random_subsets,
    step_counts,
    trapezoid_auc,
)
from tfvis.saliency.perturbation import gradient_x_input

SIZE = 8
CLASSES = 3


def _linear_net(seed=0):
    """Flatten -> Dense logits: ``S_k(x) = w_k . x + b_k``, weights small enough that softmax is not saturated."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(keras.layers.Flatten()(inputs)), name="linear")
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.002, (SIZE * SIZE * 3, CLASSES)).astype(np.float32)
    model.get_layer("logits").set_weights([kernel, np.array([0.1, -0.2, 0.3], np.float32)])
    return model


def _conv_net(seed=0, softmax=False):
    """Conv2D -> ReLU -> GlobalAveragePooling -> Dense (logits, or a fused softmax)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax" if softmax else None, name="logits")(x)
    model = keras.Model(inputs, outputs, name="tiny_conv")
    rng = np.random.default_rng(seed)
    for name, scale in (("conv", 0.02), ("logits", 1.0)):
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([kernel * scale, rng.uniform(-0.2, 0.2, bias.shape).astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def linear_net():
    return _linear_net()


@pytest.fixture(scope="module")
def conv_net():
    return _conv_net()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def maps():
    return np.random.default_rng(2).normal(size=(3, SIZE, SIZE)).astype(np.float32)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _keras_scores(model, batch, cls, probability):
    """Class ``cls``'s logit or softmax probability of each image of ``batch``, from the Keras model itself (logit output)."""
    logits = np.asarray(model(tf.constant(batch, tf.float32), training=False), np.float64)
    return (_softmax(logits) if probability else logits)[:, cls]


def _reference_curves(score_of, images, maps, fill, steps, insertion):
    """Deletion (or insertion) curves built pixel by pixel in NumPy: ``score_of(copies)`` per image."""
    n, height, width, _ = images.shape
    pixels = height * width
    counts = [int(np.floor(k * pixels / steps + 0.5)) for k in range(steps + 1)]
    curves = []
    for i in range(n):
        order = np.argsort(-maps[i].reshape(-1), kind="stable")
        copies = []
        for count in counts:
            changed = np.zeros(pixels, bool)
            changed[order[:count]] = True
            changed = changed.reshape(height, width, 1)
            start, end = (fill[i], images[i]) if insertion else (images[i], fill[i])
            copies.append(np.where(changed, end, start))
        curves.append(score_of(i, np.stack(copies)))
    fractions = np.array(counts) / pixels
    curves = np.array(curves)
    return fractions, curves, np.array([np.trapezoid(c, fractions) for c in curves])


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def test_trapezoid_auc_of_known_curves():
    x = np.linspace(0, 1, 11)
    assert trapezoid_auc(x, x) == pytest.approx(0.5)
    assert trapezoid_auc(x, 1 - x) == pytest.approx(0.5)
    assert trapezoid_auc(x, np.ones_like(x)) == pytest.approx(1.0)
    # x^2 on a coarse grid: the trapezoid rule's own value, not the integral 1/3
    assert trapezoid_auc(x, x**2) == pytest.approx(np.sum((x[1:] ** 2 + x[:-1] ** 2) / 2 * 0.1))
    uneven = np.array([0.0, 0.3, 1.0])
    assert trapezoid_auc(uneven, [1.0, 1.0, 0.0]) == pytest.approx(0.3 + 0.35)


def test_step_counts_are_equal_steps_ending_at_every_pixel():
    assert step_counts(64, 8).tolist() == list(range(0, 65, 8))
    counts = step_counts(100, 7)
    assert counts[0] == 0 and counts[-1] == 100
    assert counts.tolist() == [int(np.floor(k * 100 / 7 + 0.5)) for k in range(8)]


def test_gaussian_blur_matches_scipy_and_keeps_flat_images():
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 9, 3))
    for sigma in (1.0, 2.5, 5.0):
        radius = int(np.ceil(sigma))
        expected = gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="mirror", truncate=radius / sigma)
        np.testing.assert_allclose(gaussian_blur(x, sigma), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(gaussian_blur(np.full((1, 5, 5, 3), 3.0), 5.0), 3.0, rtol=1e-6)


def test_random_subsets_are_seeded_and_of_the_right_size():
    a, b = random_subsets(5, 0.2, 50, seed=3), random_subsets(5, 0.2, 50, seed=3)
    assert a.shape == (50, 25) and (a.sum(axis=1) == 5).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_subsets(5, 0.2, 50, seed=4))
    # every cell is chosen about equally often
    counts = random_subsets(4, 0.25, 4000, seed=0).mean(axis=0)
    np.testing.assert_allclose(counts, 0.25, atol=0.04)


def test_grid_cells_tile_the_image():
    cells = grid_cells((8, 8), 4)
    np.testing.assert_array_equal(cells, np.kron(np.arange(16).reshape(4, 4), np.ones((2, 2), int)))
    assert sorted(np.unique(grid_cells((7, 10), 3)).tolist()) == list(range(9))


# --------------------------------------------------------------------------------------------
# Deletion and insertion
# --------------------------------------------------------------------------------------------


def test_deletion_on_linear_model_matches_numpy(linear_net, images, maps):
    kernel, bias = (w.astype(np.float64) for w in linear_net.get_layer("logits").get_weights())
    fill = np.full_like(images, 40.0)

    def logit(i, copies):
        return copies.reshape(len(copies), -1).astype(np.float64) @ kernel[:, 2] + bias[2]

    fractions, expected, auc = _reference_curves(logit, images, maps, fill, 10, insertion=False)
    curves = deletion_auc(linear_net, images, maps, 2, steps=10, baseline=40.0, score="logit")
    np.testing.assert_allclose(curves.fractions, fractions)
    np.testing.assert_allclose(curves.scores, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(curves.values, auc, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(curves.auc, curves.values)


def test_deletion_default_baseline_is_zero_without_preprocessing(linear_net, images, maps):
    explicit = deletion_auc(linear_net, images, maps, 0, steps=4, baseline=0.0)
    default = deletion_auc(linear_net, images, maps, 0, steps=4)
    np.testing.assert_array_equal(default.scores, explicit.scores)


def test_insertion_with_probability_on_conv_net_matches_keras(conv_net, images, maps):
    fill = gaussian_filter(images.astype(np.float64), sigma=(0, 5, 5, 0), mode="mirror", truncate=1.0)

    def probability(i, copies):
        return _keras_scores(conv_net, copies, 1, probability=True)

    fractions, expected, auc = _reference_curves(probability, images, maps, fill, 16, insertion=True)
    curves = insertion_auc(conv_net, images, maps, 1, steps=16)
    assert curves.metric == "insertion"
    np.testing.assert_allclose(curves.scores, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(curves.values, auc, rtol=1e-4, atol=1e-5)
    # the last step is the image itself, the first the blurred image
    np.testing.assert_allclose(curves.scores[:, -1], _keras_scores(conv_net, images, 1, True), rtol=1e-5)


def test_per_image_targets_and_channel_targets_are_scored_raw(conv_net, images, maps):
    targets = [0, 2, 1]
    curves = deletion_auc(conv_net, images, maps, targets, steps=4, baseline="mean", score="logit")
    logits = np.asarray(conv_net(images), np.float64)
    np.testing.assert_allclose(curves.scores[:, 0], logits[np.arange(3), targets], rtol=1e-5)
    # a channel's mean activation, whatever ``score`` says
    relu = keras.Model(conv_net.inputs[0], conv_net.get_layer("relu").output)
    means = np.asarray(relu(images)).mean(axis=(1, 2))[:, 3]
    for score in ("probability", "logit"):
        channel = deletion_auc(conv_net, images, maps, "relu:3", steps=4, score=score)
        np.testing.assert_allclose(channel.scores[:, 0], means, rtol=1e-5)
        assert np.all(np.isclose(channel.scores[:, -1], channel.scores[0, -1]))  # every pixel is the baseline


def test_probability_of_a_fused_softmax_is_the_models_output(images, maps):
    model = _conv_net(softmax=True)
    curves = deletion_auc(model, images, maps, 2, steps=2)
    np.testing.assert_allclose(curves.scores[:, 0], np.asarray(model(images))[:, 2], rtol=1e-5)
    logits = deletion_auc(model, images, maps, 2, steps=2, score="logit")
    assert not np.allclose(logits.scores, curves.scores)


def test_a_faithful_map_beats_its_reverse(linear_net, images):
    exact = np.asarray(gradient_x_input(linear_net, images, 0))
    good, bad = (deletion_auc(linear_net, images, m, 0, steps=16, score="logit").values for m in (exact, -exact))
    assert np.all(good < bad)
    good, bad = (insertion_auc(linear_net, images, m, 0, steps=16, baseline=0.0, score="logit").values for m in (exact, -exact))
    assert np.all(good > bad)


def test_batched_equals_unbatched(conv_net, images, maps):
    one = deletion_auc(conv_net, images, maps, 1, steps=6, batch_size=1)
    for batch_size in (5, 64):
        np.testing.assert_allclose(
            deletion_auc(conv_net, images, maps, 1, steps=6, batch_size=batch_size).scores, one.scores, rtol=1e-5
        )
    single = insertion_auc(conv_net, images[1], maps[1], 1, steps=6)
    np.testing.assert_allclose(single.scores[0], insertion_auc(conv_net, images, maps, 1, steps=6).scores[1], rtol=1e-5)
    fidelity = [mu_fidelity(conv_net, images, maps, 1, grid=4, samples=12, batch_size=b).values for b in (1, 7, 100)]
    np.testing.assert_allclose(fidelity[0], fidelity[1], rtol=1e-5)
    np.testing.assert_allclose(fidelity[0], fidelity[2], rtol=1e-5)


# --------------------------------------------------------------------------------------------
# MuFidelity
# --------------------------------------------------------------------------------------------


def test_mu_fidelity_is_one_for_the_exact_attribution_of_a_linear_model(linear_net, images):
    exact = np.asarray(gradient_x_input(linear_net, images, 1))  # w * x summed over colours
    fidelity = mu_fidelity(linear_net, images, exact, 1, grid=4, samples=20, baseline=0.0, score="logit")
    np.testing.assert_allclose(fidelity.values, 1.0, atol=1e-5)
    np.testing.assert_allclose(fidelity.attributions, fidelity.drops, rtol=1e-3, atol=1e-3)
    noisy = exact + np.random.default_rng(0).normal(0, exact.std(), exact.shape)
    assert np.all(mu_fidelity(linear_net, images, noisy, 1, grid=4, samples=20, baseline=0.0, score="logit").values < 0.999)


def test_mu_fidelity_matches_numpy(conv_net, images, maps):
    grid, samples, fraction = 4, 15, 0.3
    chosen = random_subsets(grid, fraction, samples, seed=5)
    cell_pixels = np.kron(chosen.reshape(samples, grid, grid), np.ones((1, 2, 2))).astype(bool)  # 2x2 pixels per cell
    expected, sums, drop = [], [], []
    for i in range(len(images)):
        copies = np.where(cell_pixels[..., None], 0.0, images[i])
        drops = _keras_scores(conv_net, images[i : i + 1], 0, True)[0] - _keras_scores(conv_net, copies, 0, True)
        attributions = (maps[i][None] * cell_pixels).sum(axis=(1, 2))
        expected.append(np.corrcoef(attributions, drops)[0, 1])
        sums.append(attributions)
        drop.append(drops)
    fidelity = mu_fidelity(conv_net, images, maps, 0, grid=grid, subset_fraction=fraction, samples=samples, seed=5)
    np.testing.assert_allclose(fidelity.attributions, sums, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fidelity.drops, drop, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(fidelity.values, expected, rtol=1e-3, atol=1e-4)
    spearman = mu_fidelity(conv_net, images, maps, 0, grid, fraction, samples, seed=5, correlation="spearman")
    np.testing.assert_allclose(spearman.values, [spearmanr(a, d)[0] for a, d in zip(sums, drop)], rtol=1e-3, atol=1e-4)


def test_average_ranks_match_scipy():
    values = np.random.default_rng(0).integers(0, 4, (5, 12)).astype(float)  # many ties
    np.testing.assert_array_equal(faith.average_ranks(values), rankdata(values, axis=-1))


def test_mu_fidelity_is_seeded(conv_net, images, maps):
    a = mu_fidelity(conv_net, images, maps, 0, grid=4, samples=10, seed=1)
    b = mu_fidelity(conv_net, images, maps, 0, grid=4, samples=10, seed=1)
    np.testing.assert_array_equal(a.values, b.values)
    c = mu_fidelity(conv_net, images, maps, 0, grid=4, samples=10, seed=2)
    assert not np.allclose(a.attributions, c.attributions)


def test_a_constant_map_has_no_correlation(linear_net, images):
    # every subset holds the same number of cells of equal sums: the attributions are constant
    fidelity = mu_fidelity(linear_net, images, np.ones(images.shape[:3]), 0, grid=4, samples=6)
    assert np.isnan(fidelity.values).all()


# --------------------------------------------------------------------------------------------
# The table of methods
# --------------------------------------------------------------------------------------------


def test_faithfulness_table_rows_equal_the_metrics(conv_net, images, maps):
    options = {"steps": 4, "grid": 4, "samples": 8, "seed": 3}
    rows = faithfulness_table(
        conv_net, images, 1, ["vanilla", "random"], ["insertion", "mu_fidelity"], maps={"random": maps}, **options
    )
    assert [(r.method, r.metric) for r in rows] == [
        ("vanilla", "insertion"),
        ("vanilla", "mu_fidelity"),
        ("random", "insertion"),
        ("random", "mu_fidelity"),
    ]
    vanilla = np.asarray(saliency.vanilla(conv_net, images, 1))
    np.testing.assert_allclose(rows[0].values, insertion_auc(conv_net, images, vanilla, 1, steps=4).values, rtol=1e-6)
    expected = mu_fidelity(conv_net, images, maps, 1, grid=4, samples=8, seed=3).values
    np.testing.assert_allclose(rows[3].values, expected, rtol=1e-6)
    assert rows[3].mean == pytest.approx(np.nanmean(expected))
    assert "vanilla" in faith.table_text(rows) and "mu_fidelity" in faith.table_text(rows)


def test_lazy_exports():
    assert saliency.deletion_auc is deletion_auc and saliency.faithfulness_table is faithfulness_table
    assert saliency.FAITHFULNESS_METRICS == ("deletion", "insertion", "mu_fidelity")


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(conv_net, images, maps):
    with pytest.raises(ValueError, match=r"maps of shape \(3, 8, 7\) do not fit images of shape \(3, 8, 8, 3\)"):
        deletion_auc(conv_net, images, maps[:, :, :7], 0)
    with pytest.raises(ValueError, match=r"maps of shape \(2, 8, 8\)"):
        mu_fidelity(conv_net, images, maps[:2], 0, grid=4)
    with pytest.raises(ValueError, match="NaN or inf"):
        deletion_auc(conv_net, images, np.where(maps > 2, np.nan, maps), 0)
    with pytest.raises(ValueError, match="unknown metric 'auc'; choose from: deletion, insertion, mu_fidelity, all"):
        faithfulness_table(conv_net, images, 0, ["vanilla"], ["auc"])
    with pytest.raises(ValueError, match="unknown saliency method 'nope'; choose one of: vanilla, smoothgrad"):
        faithfulness_table(conv_net, images, 0, ["nope"], ["deletion"])
    with pytest.raises(ValueError, match="baseline='grey'; use one of 'zero', 'black', 'mean', 'blur'"):
        insertion_auc(conv_net, images, maps, 0, baseline="grey")
    with pytest.raises(ValueError, match="baseline of shape"):
        deletion_auc(conv_net, images, maps, 0, baseline=np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="score='softmax'; choose one of: probability, logit"):
        deletion_auc(conv_net, images, maps, 0, score="softmax")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        deletion_auc(conv_net, images, maps, 0, steps=0)
    with pytest.raises(ValueError, match="grid must be an int from 1 to the image's side 8"):
        mu_fidelity(conv_net, images, maps, 0, grid=9)
    with pytest.raises(ValueError, match="subset_fraction must be in the open interval"):
        mu_fidelity(conv_net, images, maps, 0, grid=4, subset_fraction=1.0)
    with pytest.raises(ValueError, match="samples must be an int of at least 2"):
        mu_fidelity(conv_net, images, maps, 0, grid=4, samples=1)
    with pytest.raises(ValueError, match="correlation='kendall'; choose one of: pearson, spearman"):
        mu_fidelity(conv_net, images, maps, 0, grid=4, correlation="kendall")
    with pytest.raises(ValueError, match="class index 5 out of range"):
        deletion_auc(conv_net, images, maps, 5)


# --------------------------------------------------------------------------------------------
# python -m tfvis.saliency --faithfulness
# --------------------------------------------------------------------------------------------


def test_saliency_cli_faithfulness_table_and_csv(tmp_path, monkeypatch, vgg16_random):
    import csv

    from tfvis import cli, images
    from tfvis.pipeline import image_units, work

    out = tmp_path / "sal"
    args = ["--model", "vgg16", "--weights", "random", "--target", "block2_conv1:3", "--size", "32"]
    args += ["--num-images", "2", "--methods", "vanilla,grad_cam", "--faithfulness", "all"]
    args += ["--faithfulness-steps", "6", "--faithfulness-samples", "8", "--out", str(out), "--quiet"]
    calls, made = [], []
    real = work.COMPUTE["saliency_faithfulness"]
    monkeypatch.setitem(
        work.COMPUTE,
        "saliency_faithfulness",
        lambda context, params, progress=False: calls.append(params["methods"][0]) or real(context, params, progress),
    )
    real_maps = image_units._maps
    monkeypatch.setattr(
        image_units,
        "_maps",
        lambda model, images, targets, params, cam: (
            made.append(params["methods"][0]) or real_maps(model, images, targets, params, cam)
        ),
    )
    with pytest.raises(SystemExit) as done:
        cli.saliency_main(args)
    assert done.value.code == 0 and sorted(calls) == ["grad_cam", "vanilla"]
    assert sorted(made) == ["grad_cam", "vanilla"]  # the metrics read the maps' results: each map is computed once
    with open(out / "faithfulness.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["target", "method", "metric", "mean", "chelsea", "coffee"]
    assert [row[1:3] for row in table[1:]] == [[m, metric] for m in ("vanilla", "grad_cam") for metric in faith.METRICS]
    # the CSV's values are the metrics of the maps the command saved
    photos = np.stack([images.sample_images([name], size=32)[name] for name in ("chelsea", "coffee")])
    saved = np.stack(
        [np.load(next((out / "assets" / "saliency").glob(f"*_{name}_vanilla.npy"))) for name in ("chelsea", "coffee")]
    )
    deletion = deletion_auc(vgg16_random, photos, saved, "block2_conv1:3", steps=6).values
    np.testing.assert_allclose([float(v) for v in table[1][4:]], deletion, rtol=1e-3)
    assert float(table[1][3]) == pytest.approx(deletion.mean(), rel=1e-3)
    page = (out / "index.html").read_text()
    assert "Target block2_conv1:3: faithfulness" in page and "8 x 8 grid" in page  # 4-px cells of the 32-px images
    calls.clear()
    with pytest.raises(SystemExit):
        cli.saliency_main(args)  # a rerun reads the stored metrics
    assert calls == []


def test_saliency_cli_bad_faithfulness(tmp_path, capsys):
    from tfvis import cli

    args = ["--weights", "random", "--size", "32", "--num-images", "1", "--out", str(tmp_path), "--quiet"]
    with pytest.raises(SystemExit) as done:
        cli.saliency_main(args + ["--target", "block1_conv1:0", "--faithfulness", "deletion,auc"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--faithfulness: unknown auc; choose from: deletion, insertion, mu_fidelity, all" in err[0]
