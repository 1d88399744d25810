"""Activation atlases: grid cells against NumPy, sampling across shardings, seeded layouts, units on Ray, the command."""

import re
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_feature_cnn

from tfvis.cli import activation_atlas as cli
from tfvis.featurevis import activation_atlas as atlas
from tfvis.images import SampleSource
from tfvis.models import ModelSpec
from tfvis.pipeline import LocalEngine, Store, activation_atlas_units
from tfvis.pipeline.context import Context


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny free-size CNN saved as a .keras file (what Ray workers rebuild from its path)."""
    path = tmp_path_factory.mktemp("atlas_model") / "tiny.keras"
    tiny_feature_cnn().save(path)
    return path


@pytest.fixture(scope="module")
def model(model_file):
    return keras.models.load_model(model_file)


def test_grid_cells_counts_means_and_nearest_match_numpy():
    rng = np.random.default_rng(3)
    points = rng.uniform(size=(200, 2))
    points[:3] = [[1.0, 1.0], [0.0, 0.0], [0.5, 0.25]]  # edges: 1.0 falls in the last cell
    vectors = rng.normal(size=(200, 5)).astype(np.float32)
    grid, min_count = 4, 12
    cells = atlas.grid_cells(points, vectors, grid, min_count, nearest=3)
    expected = []
    for row in range(grid):  # row: y, column: x, both half-open [k/g, (k+1)/g) except the last, closed
        for col in range(grid):
            in_x = (points[:, 0] >= col / grid) & ((points[:, 0] < (col + 1) / grid) | (col == grid - 1))
            in_y = (points[:, 1] >= row / grid) & ((points[:, 1] < (row + 1) / grid) | (row == grid - 1))
            members = np.flatnonzero(in_x & in_y)
            if len(members) >= min_count:
                centre = np.array([(col + 0.5) / grid, (row + 0.5) / grid])
                distance = np.sqrt(((points[members] - centre) ** 2).sum(axis=1))
                expected.append((row, col, len(members), vectors[members].mean(axis=0), members[np.argsort(distance)][:3]))
    assert 0 < len(expected) < grid * grid  # some cells dropped by min_count, some kept
    assert cells.rows.tolist() == [e[0] for e in expected] and cells.cols.tolist() == [e[1] for e in expected]
    assert cells.counts.tolist() == [e[2] for e in expected]
    np.testing.assert_allclose(cells.means, np.stack([e[3] for e in expected]), rtol=1e-5, atol=1e-6)
    assert cells.nearest.tolist() == [e[4].tolist() for e in expected]
    assert sum(cells.counts) <= len(points)
    every = atlas.grid_cells(points, vectors, grid, 1)
    assert every.counts.sum() == len(points)  # every sample in exactly one cell


def test_sample_positions_are_reproducible_and_the_same_for_any_sharding(model):
    photos = SampleSource(10, size=32).read(range(10))[2]
    whole = atlas.sample_activations(model, photos, "c2", samples_per_image=5, seed=7, batch_size=4)
    parts = [
        atlas.sample_activations(model, photos[a:b], "c2", samples_per_image=5, seed=7, indices=range(a, b), batch_size=b - a)
        for a, b in ((0, 3), (3, 4), (4, 10))
    ]
    sharded = atlas.Samples.concatenate(parts)
    for name in ("image_index", "y", "x"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(sharded, name), err_msg=name)
    np.testing.assert_allclose(whole.vectors, sharded.vectors, rtol=1e-5, atol=1e-5)  # other batches: float rounding only
    assert whole.layer == "c2_relu" and whole.map_hw == (16, 16) and len(whole) == 50
    # each image's positions: 5 distinct units of the 16 x 16 map, fixed by (seed, index), others for another seed
    for i in range(10):
        ys, xs = whole.y[whole.image_index == i], whole.x[whole.image_index == i]
        assert len(set(zip(ys.tolist(), xs.tolist()))) == 5
        again = atlas.sample_positions(i, (16, 16), 5, seed=7)
        assert ys.tolist() == again[0].tolist() and xs.tolist() == again[1].tolist()
    assert not np.array_equal(atlas.sample_positions(0, (16, 16), 5, seed=8)[0] * 16 + atlas.sample_positions(0, (16, 16), 5, 8)[1],
                              whole.y[:5] * 16 + whole.x[:5])  # fmt: skip
    # the vectors are the layer's post-ReLU activations at those positions (read by an independent Keras model)
    reference = keras.Model(model.input, model.get_layer("c2").output)(photos).numpy()
    np.testing.assert_allclose(whole.vectors, reference[whole.image_index, whole.y, whole.x], rtol=1e-5, atol=1e-5)


def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(size=(3, 16)) * 4
    labels = np.repeat(np.arange(3), 30)
    return (centres[labels] + rng.normal(scale=0.1, size=(90, 16))).astype(np.float32), labels


@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])  # umap: ~45 s of numba compiling
def test_layout_is_seeded_normalised_and_keeps_clusters_apart(method):
    if method == "umap":
        pytest.importorskip("umap")
    vectors, labels = _clusters()
    first, again = atlas.layout(vectors, method, seed=1), atlas.layout(vectors, method, seed=1)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (90, 2) and first.min() >= 0 and first.max() <= 1 and np.ptp(first, axis=0).min() > 0.9
    centres = np.stack([first[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(first[labels == k] - centres[k], axis=1).mean() for k in range(3))
    apart = min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3))
    assert apart > 2 * spread


def test_layout_method_names_the_choices():
    with pytest.raises(ValueError, match="auto, umap, tsne"):
        atlas.layout_method("pca")


def test_direction_cossim_matches_numpy():
    rng = np.random.default_rng(0)
    act = rng.uniform(size=(2, 5, 5, 4)).astype(np.float32)
    vectors = rng.uniform(size=(2, 4)).astype(np.float32)
    value = float(atlas.direction_cossim("l", vectors, power=3)({"l": tf.constant(act)}))
    centre = act[:, 2, 2, :]
    dot = (centre * vectors).sum(axis=1)
    cos = dot / (np.linalg.norm(centre, axis=1) * np.linalg.norm(vectors, axis=1))
    assert value == pytest.approx(float((dot * np.maximum(cos, 0.1) ** 3).sum()), rel=1e-5)


def test_render_cells_raises_the_objective_and_batches_alike(model):
    vectors = np.abs(np.random.default_rng(1).normal(size=(3, 8))).astype(np.float32)
    icons = atlas.render_cells(model, "c2", vectors, size=24, steps=24, seed=0, batch=2)
    assert icons.shape == (3, 24, 24, 3) and icons.min() >= 0 and icons.max() <= 1
    assert icons.values[-1] > icons.values[0]
    again = atlas.render_cells(model, "c2", vectors, size=24, steps=24, seed=0, batch=2)  # the cached loop gives the same
    np.testing.assert_array_equal(np.asarray(icons), np.asarray(again))


def _context(model_file, count=12):
    spec = ModelSpec(str(model_file))
    return Context(spec, SampleSource(count, size=32), model=spec.load())


def _run(engine, context, store):
    return activation_atlas_units.run_atlas(
        engine,
        context,
        store,
        "c3",
        12,
        samples_per_image=4,
        grid=3,
        min_count=1,
        method="tsne",
        steps=6,
        size=20,
        batch_size=4,
        shard_images=8,
        render_batch=4,
    )


def test_units_keys_follow_their_inputs_and_a_rerun_computes_nothing(model_file, tmp_path):
    context = _context(model_file)
    store = Store(tmp_path)
    result = _run(LocalEngine(progress=False), context, store)
    units = result["units"]
    assert len(units["samples"]) == 2 and len(units["layout"]) == 1 and len(units["renders"]) >= 1
    assert sum(result["layout"]["counts"]) == 48 and len(result["renders"]) == len(result["layout"]["counts"])
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.npz")}
    again = _run(LocalEngine(progress=False), context, store)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.npz")} == stamps
    np.testing.assert_array_equal(again["renders"], result["renders"])
    layout = units["layout"][0]
    assert layout.params["samples"] == [u.key for u in units["samples"]]
    other = activation_atlas_units.plan_samples(context, "c3", 12, 4, seed=1, batch_size=4, shard_images=8)
    assert not {u.key for u in other} & {u.key for u in units["samples"]}
    assert activation_atlas_units.plan_layout(other, "tsne", 0, 3, 1).key != layout.key


def test_bfloat16_icons_get_their_own_units_and_stay_close_to_float32(model_file, tmp_path):
    """``precision`` is resolved on the driver into the render units' keys; bfloat16 icons are rendered in it."""
    context = _context(model_file)
    means = np.random.default_rng(2).uniform(0.0, 1.0, (2, 8)).astype(np.float32)
    plain = activation_atlas_units.plan_renders(context, "c3", means, 16, 4, 0)
    fast = activation_atlas_units.plan_renders(context, "c3", means, 16, 4, 0, precision="bfloat16")
    assert "precision" not in plain[0].params and fast[0].params["precision"] == "bfloat16"
    assert plain[0].key != fast[0].key
    store = Store(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bfloat16 is emulated on CPUs without AVX512_BF16
        LocalEngine(progress=False).run(plain + fast, context, store)
    a, b = (store.load(units[0])["images"].astype(np.float32) for units in (plain, fast))
    assert a.shape == b.shape == (2, 16, 16, 3)
    assert not np.array_equal(a, b)  # rendered in bfloat16 indeed
    assert np.abs(a - b).mean() < 32  # the same optimisation in coarser arithmetic: close (5.5 of 255 measured)


def test_layout_unit_without_its_samples_says_how_to_run_it(model_file):
    unit = activation_atlas_units.plan_layout(
        activation_atlas_units.plan_samples(_context(model_file), "c3", 4, 2, 0), "tsne", 0, 3, 1
    )
    with pytest.raises(RuntimeError, match="run_atlas"):
        activation_atlas_units.atlas_layout(_context(model_file), unit.params)


@pytest.mark.slow
def test_ray_engine_gives_the_local_atlas(model_file, tmp_path):
    """A local Ray cluster with two workers, each rebuilding the model from its file: the local engine's results bit for bit."""
    pytest.importorskip("ray")
    from tfvis.pipeline import make_engine

    context = _context(model_file)
    local = _run(LocalEngine(progress=False), context, Store(tmp_path / "local"))
    engine = make_engine("ray", workers=2, progress=False)
    try:
        remote = _run(engine, context, Store(tmp_path / "ray"))
    finally:
        engine.close()
    for name in ("points", "image_index", "y", "x", "rows", "cols", "counts", "means", "nearest"):
        np.testing.assert_array_equal(local["layout"][name], remote["layout"][name], err_msg=name)
    np.testing.assert_array_equal(local["renders"], remote["renders"])
    assert [u.key for u in local["units"]["renders"]] == [u.key for u in remote["units"]["renders"]]


def _cli(model_file, out, *extra):
    args = ["--model", str(model_file), "--num-images", "12", "--image-size", "32", "--samples-per-image", "4", "--grid", "4"]
    args += ["--min-count", "1", "--layout", "tsne", "--steps", "6", "--size", "20", "--out", str(out), "--quiet", *extra]
    with pytest.raises(SystemExit) as done:
        cli.activation_atlas_main(args)
    return done.value.code


@pytest.mark.slow
def test_command_writes_a_page_whose_images_all_exist_and_resumes(model_file, tmp_path, capsys):
    out = tmp_path / "atlas"
    assert _cli(model_file, out) == 0
    page = (out / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources and all((out / src).is_file() for src in sources)
    assert "c2: activation atlas" in page  # the default layer of a 3-conv model: three quarters of the way up
    assert len(re.findall(r'class="activation-atlas-cell"', page)) == len(re.findall(r'<a role="listitem"', page)) > 1
    stamps = {p: p.stat().st_mtime_ns for p in (out / "store").rglob("*.npz")}
    assert _cli(model_file, out) == 0  # a rerun computes no unit again
    assert {p: p.stat().st_mtime_ns for p in (out / "store").rglob("*.npz")} == stamps
    capsys.readouterr()
    assert _cli(model_file, tmp_path / "bad", "--layer", "nope") == 2
    assert "choose from" in capsys.readouterr().err


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_opens_in_chromium_with_no_broken_image(model_file, tmp_path):
    from browser import check_pages

    out = tmp_path / "atlas"
    assert _cli(model_file, out, "--layer", "c3") == 0
    results = check_pages(out / "index.html")
    widths, errors, _ = results[(out / "index.html").resolve().as_uri()]
    assert widths and all(w > 0 for w in widths) and not errors


def test_command_help_lists_the_options():
    text = cli.build_activation_atlas_parser().format_help()
    options = (
        "--layer",
        "--samples-per-image",
        "--grid",
        "--min-count",
        "--layout",
        "--steps",
        "--size",
        "--precision",
        "--engine",
    )
    for option in options:
        assert option in text
    assert Path(cli.DEFAULT_OUT) == Path("html_out") / "activation_atlas"
