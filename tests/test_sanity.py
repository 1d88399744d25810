"""Adebayo et al.'s sanity checks (tfvis.saliency.sanity): the similarities, the steps, the known answers.

Oracles written here: scipy.stats.spearmanr for the rank correlations, a NumPy SSIM over every
7 x 7 window for the structural similarity, and a model whose answer is known: the target is
the channel of a conv layer below the classifier, so no map of it can depend on the classifier's
weights (randomizing them must leave every map exactly as it was), while randomizing the target's
own layer must change the gradient.
"""

import keras
import numpy as np
import pytest
from helpers import tiny_classifier
from scipy.stats import spearmanr

from tfvis.models.spec import reinitialise_layers
from tfvis.saliency import sanity
from tfvis.saliency.sanity import RandomizedCopy, randomization_steps, sanity_check

SIZE = 16
TARGET = "c2:1"


def _model(seed=5):
    """Rescaling -> c1 (relu) -> pool -> c2 (relu) -> global average -> head; initialised with ``seed``."""
    return tiny_classifier(SIZE, seed=seed)


def _images(count=3):
    return np.random.default_rng(3).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def checked():
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    result = sanity_check(model, _images(), TARGET, methods=("vanilla", "guided", "grad_cam"), progress=False)
    return model, before, result


def test_rank_correlation_is_scipys_spearman_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (4, 6, 6)).astype(float)  # many ties
    b = a + rng.normal(0, 2, a.shape)
    b[1] = rng.integers(0, 3, (6, 6))
    got = sanity.rank_correlation(a, b)
    for i in range(4):
        assert got[i] == pytest.approx(spearmanr(a[i].ravel(), b[i].ravel()).statistic, abs=1e-12)
    constant = np.ones((2, 6, 6))  # no ranking: 0 against a map that has one, 1 against another constant map
    np.testing.assert_array_equal(sanity.rank_correlation(constant, np.stack([b[0], constant[0]])), [0.0, 1.0])


def _ssim_reference(x, y, window=7):
    """Mean over every window fully inside the picture of Wang et al.'s SSIM, sample (co)variances, data range 1."""
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(x.shape[0] - window + 1):
        for j in range(x.shape[1] - window + 1):
            a, b = x[i : i + window, j : j + window].ravel(), y[i : i + window, j : j + window].ravel()
            ma, mb = a.mean(), b.mean()
            va, vb = a.var(ddof=1), b.var(ddof=1)
            cov = ((a - ma) * (b - mb)).sum() / (a.size - 1)
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_of_scaled_maps_is_a_numpy_reference():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (2, 12, 14))
    b = a + rng.normal(0, 0.7, a.shape)
    sa, sb = sanity.scaled(a), sanity.scaled(b)
    top = np.percentile(np.abs(a[0]), 99)
    np.testing.assert_allclose(sa[0], np.clip(np.abs(a[0]) / top, 0, 1))
    assert sa.min() >= 0 and sa.max() == 1
    got = sanity.structural_similarities(sa, sb)
    for i in range(2):
        assert got[i] == pytest.approx(_ssim_reference(sa[i], sb[i]), abs=1e-9)
    assert sanity.structural_similarities(sa, sa) == pytest.approx(1.0)
    np.testing.assert_array_equal(sanity.scaled(np.zeros((1, 8, 8))), 0)


def test_steps_cascade_from_the_top_and_randomize_one_layer_independently(checked):
    _, _, result = checked
    layers = ["c1", "c2", "head"]  # the weighted layers, input side first
    assert sanity.weighted_layers(_model()) == layers
    cascading = [s for s in result.steps if s.mode == "cascading"]
    independent = [s for s in result.steps if s.mode == "independent"]
    assert [s.randomized for s in cascading] == [("head",), ("head", "c2"), ("head", "c2", "c1")]
    assert [s.randomized for s in independent] == [("head",), ("c2",), ("c1",)]
    assert [s.layer for s in cascading] == [s.layer for s in independent] == ["head", "c2", "c1"]
    assert result.names == ["vanilla", "guided", "grad_cam", sanity.RECONSTRUCTION]
    assert len(result.rows) == 6 * 4 * 3


def test_maps_below_the_randomized_layers_stay_and_the_target_layer_changes_them(checked):
    """The target is a channel of c2: the head's weights cannot reach its maps; c2's own weights must."""
    _, _, result = checked
    for mode in sanity.MODES:
        for name in result.names:
            for metric in result.metrics:
                assert result.value(mode, "head", name, metric) == pytest.approx(1.0), (mode, name, metric)
        assert result.value(mode, "c2", "vanilla", "spearman_abs") < 0.9
        assert result.value(mode, "c2", "grad_cam", "ssim") < 0.9  # Grad-CAM at c2 is the channel's own map
    np.testing.assert_array_equal(result.examples["vanilla"]["trained"], result.examples["vanilla"][("cascading", "head")])


def test_the_randomized_model_is_reinitialise_layers_and_the_users_model_is_unchanged(checked):
    model, before, _ = checked
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    copy = RandomizedCopy(model, ["c1", "c2", "head"], seed=7)
    randomized = copy.randomize(("head", "c2"))
    expected = keras.models.clone_model(model)
    expected.set_weights(model.get_weights())
    assert reinitialise_layers(expected, ["head", "c2"], seed=7) == ["c2", "head"]
    for layer in ("c1", "c2", "head"):
        for got, want in zip(randomized.get_layer(layer).get_weights(), expected.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(got, want, err_msg=layer)
    trained = copy.randomize(())  # back to the trained weights
    for got, want in zip(trained.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_results_are_fixed_by_the_seed(checked, tmp_path):
    model, _, result = checked
    again = sanity_check(model, _images(), TARGET, methods=("vanilla", "guided", "grad_cam"), progress=False)
    assert again.csv_text() == result.csv_text()
    other = sanity_check(
        model, _images(), TARGET, methods=("vanilla",), modes="cascading", seed=11, reconstructions=False, progress=False
    )
    assert other.value("cascading", "c2", "vanilla", "spearman") != result.value("cascading", "c2", "vanilla", "spearman")
    path = result.to_csv(tmp_path / "sanity.csv")
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == ["mode", "layer", "randomized", "method", "metric", "mean", "image_0", "image_1", "image_2"]
    assert len(lines) == 1 + len(result.rows)
    result.plot(tmp_path / "sanity.png")
    assert (tmp_path / "sanity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    read = sanity.read_csv(path)  # the table again, to plot it without recomputing
    assert read.csv_text() == result.csv_text() and read.steps == result.steps


def test_every_default_method_and_the_feature_visualizations_are_compared():
    model = _model()
    result = sanity_check(
        model,
        _images(2),
        TARGET,
        layers=["c2"],
        modes=["independent"],
        visualizations=True,
        visualization_size=16,
        visualization_steps=4,
        options={"steps": 4, "samples": 2},
        progress=False,
    )
    assert result.names == list(sanity.DEFAULT_METHODS) + [sanity.RECONSTRUCTION, sanity.VISUALIZATION]
    vis = {row["metric"] for row in result.rows if row["method"] == sanity.VISUALIZATION}
    assert vis == set(sanity.VISUALIZATION_METRICS)
    assert result.examples[sanity.VISUALIZATION]["trained"].shape == (2, 16, 16, 3)
    assert all(np.isfinite(row["mean"]) for row in result.rows)


def test_signed_maps_of_the_gradient_are_the_channel_sums():
    from tfvis.saliency import gradients, vanilla

    model, images = _model(), _images(2)
    found = sanity.explanations(model, images, TARGET, methods=("vanilla",), reconstructions=False)
    raw = gradients(model, images, TARGET)
    np.testing.assert_allclose(found["vanilla"][0], vanilla(model, images, TARGET))
    np.testing.assert_allclose(found["vanilla"][1], raw.sum(axis=-1), rtol=1e-6)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"methods": ("vanilla", "nope")}, "unknown saliency method 'nope'; choose one of: vanilla"),
        ({"modes": ("sideways",)}, "choose one or both of: cascading, independent"),
        ({"layers": ["pool"]}, "choose from: c1, c2, head"),
    ],
)
def test_bad_inputs_name_the_choices(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        sanity_check(_model(), _images(1), TARGET, progress=False, **options)


def test_a_seed_that_draws_the_trained_weights_again_is_refused():
    with pytest.raises(ValueError, match="seed=0 draws the trained weights of c1, c2, head again"):
        sanity_check(_model(seed=0), _images(1), TARGET, seed=0, progress=False)


def test_randomization_steps_of_one_mode_given_as_text():
    assert [s.randomized for s in randomization_steps(["a", "b"], "cascading")] == [("b",), ("b", "a")]


# --------------------------------------------------------------------------------------------
# The report's page (--methods sanity), planned as units on the report's engine
# --------------------------------------------------------------------------------------------

PAGE_ARGS = ["--size", "16", "--num-images", "6", "--methods", "sanity", "--page-images", "2", "--quiet"]
PAGE_OPTIONS = ["--sanity-methods", "vanilla,grad_cam", "--sanity-modes", "cascading", "--layers", "c1,c2"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_classifier(seed=5).save(path)  # the model of _model, any size (the report probes other sizes)
    return path


def _report(model_file, out, *extra):
    from tfvis import cli

    return cli.run(None, "report", ["--model", str(model_file), "--out", str(out)] + PAGE_ARGS + PAGE_OPTIONS + list(extra))


def _csv_rows(path):
    lines = path.read_text().splitlines()
    return [line.split(",") for line in lines[1:]]


@pytest.mark.browser
@pytest.mark.slow
def test_report_page_is_the_library_on_the_page_images_and_opens(model_file, tmp_path):
    """The page's units rebuild each randomized model from its ModelSpec: the library's numbers on the same images."""
    from browser import check_pages

    from tfvis import images as tfvis_images
    from tfvis.models import ModelSpec

    out = tmp_path / "report"
    assert _report(model_file, out) == 0
    index = (out / "index.html").read_text()
    assert 'href="sanity.html"' in index
    _, photos = tfvis_images.sample_dataset(6, size=16, seed=0)
    model = ModelSpec(str(model_file)).load()
    targets = sanity.strongest_channel_targets(model, photos[:2], "c2")
    expected = sanity_check(
        model, photos[:2], targets, methods=("vanilla", "grad_cam"), modes="cascading", seed=1, progress=False
    )  # the report's seed 0 + 1, as ModelSpec's reinit_seed
    got = _csv_rows(out / "assets" / "sanity" / "sanity.csv")
    want = [line.split(",") for line in expected.csv_text().splitlines()[1:]]
    assert [row[:5] for row in got] == [row[:5] for row in want] and len(got) == 3 * 3 * 3  # steps x names x metrics
    np.testing.assert_allclose(np.array([r[5:] for r in got], float), np.array([r[5:] for r in want], float), atol=1e-5)
    page = (out / "sanity.html").read_text()
    assert "c2:" in page and "Grad-CAM" in page and "assets/sanity/sanity.png" in page
    results = check_pages(out / "index.html")
    widths, errors, _ = results[(out / "sanity.html").resolve().as_uri()]
    assert not errors and all(w > 0 for w in widths)
    assert len(widths) == 1 + 2 * (1 + 4 * 3)  # the plot; per image its input and (trained + 3 steps) x 3 pictures


@pytest.mark.slow
def test_ray_engine_gives_the_local_page(model_file, tmp_path):
    """A local Ray cluster, 2 workers rebuilding the randomized models from their specs: the local table exactly."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        assert _report(model_file, tmp_path / "local") == 0
        assert _report(model_file, tmp_path / "ray", "--engine", "ray", "--workers", "2") == 0
    finally:
        ray.shutdown()
    local = (tmp_path / "local" / "assets" / "sanity" / "sanity.csv").read_text()
    assert (tmp_path / "ray" / "assets" / "sanity" / "sanity.csv").read_text() == local


@pytest.mark.parametrize(
    "options, message",
    [
        (["--sanity-modes", "sideways"], "--sanity-modes sideways: choose one or both of: cascading, independent"),
        (["--sanity-layers", "pool"], "--sanity-layers: pool hold no weights; choose from: c1, c2, head"),
        (["--sanity-methods", "nope"], "--sanity-methods: unknown nope; choose from: vanilla"),
    ],
)
def test_bad_page_options_name_the_choices(model_file, tmp_path, capsys, options, message):
    assert _report(model_file, tmp_path / "bad", *options) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1], err
