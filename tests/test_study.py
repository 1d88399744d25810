"""Studies of N models: CKA from per-model Gram units, re-initialisation in the spec, the study command.

The reference for CKA is one pass over the same minibatches written out in NumPy: float64
activations, per-minibatch Gram matrices and Song et al.'s unbiased HSIC_1 as traces and sums;
for two models also :func:`tfvis.compare.model_cka`. Runs killed with SIGKILL and runs on Ray are
checked against a fresh local run.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from browser import check_pages

import tfvis
from tfvis import cli, fileio
from tfvis.compare import model_cka
from tfvis.compare.study import StudyCKA, hsic_unbiased_all_pairs
from tfvis.images import SampleSource
from tfvis.models import ModelSpec
from tfvis.pipeline import LocalEngine, Store
from tfvis.pipeline.context import Context
from tfvis.pipeline.study_units import gram_units, study_cka


def hsic1(k, l):
    """Song et al.'s unbiased HSIC_1 of two Gram matrices, as written in their paper (traces and sums)."""
    n = len(k)
    kt, lt = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    ones = np.ones(n)
    value = (
        np.trace(kt @ lt)
        + (ones @ kt @ ones) * (ones @ lt @ ones) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (ones @ kt @ lt @ ones)
    )
    return value / (n * (n - 3))


def test_all_pairs_hsic_equals_the_paper_formula():
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(9, d)) for d in (2, 5, 3, 7)]
    grams = np.stack([x @ x.T for x in features])
    expected = np.array([[hsic1(k, l) for l in grams] for k in grams])
    np.testing.assert_allclose(hsic_unbiased_all_pairs(grams), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="at least 4 examples"):
        hsic_unbiased_all_pairs(grams[:, :3, :3])


LAYERS = {
    "hed": ["block1_conv2", "block2_conv1", "block3_conv1"],
    "r0": ["block1_conv2", "block2_conv2"],
    "r1": ["block1_conv2", "block2_conv2"],
}


@pytest.fixture(scope="module")
def three_models(zoo_model):
    """Three shared VGG16s (read-only) in a Context, by name, on 22 sample images at 32 px."""
    specs = {"hed": ModelSpec("vgg16", "hed"), "r0": ModelSpec("vgg16", "random"), "r1": ModelSpec("vgg16", "random", seed=1)}
    models = {"hed": zoo_model("vgg16", "hed"), "r0": zoo_model("vgg16"), "r1": zoo_model("vgg16", seed=1)}
    return Context(specs["hed"], SampleSource(22, size=32, seed=3), specs=specs, models=models)


def one_pass_reference(context, layers, batch_size):
    """Every (model, layer) pair's CKA over the minibatches of ``batch_size`` (those of 4 or more images), in NumPy."""
    sums, entries = {}, [(name, layer) for name, names in layers.items() for layer in names]
    for batch in context.source.batches(0, None, batch_size):
        if len(batch.ids) < 4:
            continue
        grams = {}
        for name, names in layers.items():
            acts = tfvis.activations(context.model_named(name), names, batch.images)
            for layer in names:
                x = acts[layer].reshape(len(batch.ids), -1).astype(np.float64)
                grams[name, layer] = x @ x.T  # HSIC_1 of a linear kernel does not depend on centring
        for a in entries:
            for b in entries:
                sums[a, b] = sums.get((a, b), 0.0) + hsic1(grams[a], grams[b])
    return {(a, b): sums[a, b] / np.sqrt(sums[a, a] * sums[b, b]) for a in entries for b in entries}


@pytest.mark.slow
def test_any_sharding_gives_the_one_pass_cka_and_model_cka(three_models, tmp_path):
    """1, 3 and 6 shards per model (the last minibatch, of 2 images, left out) against NumPy and model_cka."""
    results = {}
    for shard_images in (None, 8, 4):
        shards = gram_units(three_models, LAYERS, batch_size=4, shard_images=shard_images)
        assert len(shards) == {None: 1, 8: 3, 4: 6}[shard_images] and all(len(s) == 3 for s in shards)
        with pytest.warns(UserWarning, match="left out 2 image"):
            results[shard_images] = study_cka(
                LocalEngine(progress=False), three_models, Store(tmp_path / str(shard_images)), LAYERS, 4, shard_images
            )
    assert results[None].n_examples == 20 and results[None].n_batches == 5
    for shard_images in (8, 4):
        np.testing.assert_allclose(results[shard_images].sums, results[None].sums, rtol=1e-12, atol=0)
    reference = one_pass_reference(three_models, LAYERS, 4)
    study = results[4]
    for a in LAYERS:
        for b in LAYERS:
            matrix = study.matrix(a, b)
            expected = np.array([[reference[(a, la), (b, lb)] for lb in LAYERS[b]] for la in LAYERS[a]])
            np.testing.assert_allclose(matrix, expected, atol=2e-5)
    for a, b in (("hed", "r0"), ("r0", "r1")):
        with pytest.warns(UserWarning, match="left out the last 2"):
            pair = model_cka(
                three_models.model_named(a),
                three_models.model_named(b),
                three_models.source,
                LAYERS[a],
                LAYERS[b],
                batch_size=4,
                progress=False,
            )
        np.testing.assert_allclose(study.matrix(a, b), pair.matrix, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(study.same_layer("block1_conv2"), study.same_layer("block1_conv2").T, rtol=1e-12)
    np.testing.assert_allclose(np.diag(study.same_layer("block2_conv2", ["r0", "r1"])), 1.0, rtol=1e-12)


def test_study_cka_refuses_mismatched_minibatches():
    study = StudyCKA({"a": ["x"], "b": ["x", "y"]})
    with pytest.raises(ValueError, match=r"grams\['b'\] must have shape \(2, n, n\)"):
        study.update({"a": np.eye(5)[None], "b": np.eye(5)[None]})
    with pytest.raises(ValueError, match="no Gram matrices of model"):
        study.update({"a": np.eye(5)[None]})
    with pytest.raises(ValueError, match="not among the CKA layers of model"):
        study.same_layer("y")


def _environment(tmp_path):
    """A subprocess's environment: offline, its own weights folder, this checkout's tfvis whatever the folder it runs in."""
    checkout = str(Path(tfvis.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"), PYTHONPATH=path)


# ---------------------------------------------------------------------------------------------
# Re-initialisation in the spec
# ---------------------------------------------------------------------------------------------

REINIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from tfvis.models import ModelSpec
    model = ModelSpec("vgg16", "random", seed=0, reinit=("block2",)).load()
    np.savez(sys.argv[1], **{w.path.replace("/", "_"): w.numpy() for w in model.weights})
    """
)


@pytest.mark.slow
def test_reinit_in_the_spec_rebuilds_the_same_weights_in_another_process(tmp_path, vgg16_random):
    spec = ModelSpec("vgg16", "random", seed=0, reinit="block2")
    assert spec.reinit == ("block2",) and spec.describe()["reinit"] == ["block2"] and spec.describe()["reinit_seed"] == 1
    assert spec.describe() != ModelSpec("vgg16", "random", reinit="block2", reinit_seed=5).describe()
    done = subprocess.run(
        [sys.executable, "-c", REINIT_SCRIPT, str(tmp_path / "w.npz")],
        env=_environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    here = spec.load()
    with np.load(tmp_path / "w.npz") as there:
        assert len(there.files) == len(here.weights)
        for weight in here.weights:
            np.testing.assert_array_equal(weight.numpy(), there[weight.path.replace("/", "_")], err_msg=weight.path)
    for layer in ("block1_conv1", "block2_conv1", "block3_conv1"):  # block2 re-initialised (other values), the rest as built
        changed = not np.array_equal(here.get_layer(layer).kernel.numpy(), vgg16_random.get_layer(layer).kernel.numpy())
        assert changed == layer.startswith("block2"), layer
    by_hand = tfvis.load_model("vgg16", weights="random", seed=0)
    assert cli.reinitialise(by_hand, ["block2"], seed=1) == ["block2_conv1", "block2_conv2"]  # the public API, the same code
    for weight, expected in zip(by_hand.weights, here.weights):
        np.testing.assert_array_equal(weight.numpy(), expected.numpy())


def test_reinit_matching_no_layer_is_refused(vgg16_random, monkeypatch):
    from tfvis.models.spec import ReinitError

    monkeypatch.setattr(tfvis, "load_model", lambda *a, **k: vgg16_random)  # nothing is changed: no layer matches
    with pytest.raises(ReinitError, match="no weighted layer of vgg16 starts with block9"):
        ModelSpec("vgg16", "random", reinit="block9").load()


# ---------------------------------------------------------------------------------------------
# The study command
# ---------------------------------------------------------------------------------------------

#: What every small run below shares: 32-px images, 4 steps, minibatches of 4 (CKA needs at least 4).
SMALL_RUN = "--size 32 --steps 4 --fv-size 32 --fv-batch 2 --batch-size 4 --shard-images 4 --quiet".split()
STUDY = [
    "--models",
    "vgg16:hed,vgg16:hed@reinit=block2,vgg16:random",
    "--layers",
    "block2_conv2",
    "--channels",
    "2",
    "--cka-layers",
    "block1_conv1,block1_conv2,block2_conv1,block2_conv2",
    "--num-images",
    "16",
] + SMALL_RUN
PAIR = [
    "--a",
    "vgg16:hed",
    "--b",
    "vgg16:hed",
    "--reinit-b",
    "block2",
    "--layers",
    "block2_conv2",
    "--channels",
    "2",
    "--cka-layers",
    "block1_conv2,block2_conv1",
    "--num-images",
    "12",
] + SMALL_RUN


def _run(args):
    with pytest.raises(SystemExit) as done:
        cli.compare_main(args)
    return done.value.code


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "local"
    assert _run(STUDY + ["--out", str(out)]) == 0
    return out


def _matrices(out):
    saved = fileio.read_json(out / "study.json")
    return {layer: np.asarray(m) for layer, m in saved["same_layer"].items()}


@pytest.mark.slow
def test_study_cka_shows_the_ablation(study_dir):
    saved = fileio.read_json(study_dir / "study.json")
    names = [m["name"] for m in saved["models"]]
    assert names == ["vgg16-hed", "vgg16-hed+reinit-block2", "vgg16-random"] and saved["base"] == names[0]
    assert saved["images"] == 16
    for layer, matrix in _matrices(study_dir).items():
        assert matrix.shape == (3, 3)
        np.testing.assert_allclose(matrix, matrix.T, rtol=1e-12)
        np.testing.assert_allclose(np.diag(matrix), 1.0, rtol=1e-12)
    against = saved["against_base"]
    np.testing.assert_allclose(against[names[1]][:2], 1.0, atol=1e-5)  # block1 untouched
    assert max(against[names[1]][2:]) < 0.99  # block2 re-initialised
    np.testing.assert_allclose(against[names[0]], 1.0, rtol=1e-12)
    rows = (study_dir / "dead_channels.csv").read_text().splitlines()
    assert rows[0] == "name,score,dead" and len(rows) == 1 + 3 * 2
    assert (study_dir / "assets" / "cka_vs_base.png").is_file() and len(list((study_dir / "assets" / "cka").glob("*.png"))) == 4


@pytest.mark.slow
def test_a_study_killed_with_sigkill_resumes_to_the_fresh_result(study_dir, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "tfvis.compare", *STUDY, "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(tmp_path),
        cwd=tmp_path,
    )
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not list((out / "store" / "grams").glob("*.npz")):
        time.sleep(0.02)  # until the first Gram unit is stored: the run is then midway
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    stored = len(list((out / "store" / "grams").glob("*.npz")))
    assert process.returncode == -signal.SIGKILL, stderr
    assert 1 <= stored < 12 and not (out / "study.json").exists()
    assert _run(STUDY + ["--out", str(out)]) == 0
    assert len(list((out / "store" / "grams").glob("*.npz"))) == 12 and not list(out.rglob("*.tmp"))
    fresh, resumed = _matrices(study_dir), _matrices(out)
    assert fresh.keys() == resumed.keys()
    for layer in fresh:
        np.testing.assert_allclose(resumed[layer], fresh[layer], rtol=1e-12, err_msg=layer)


@pytest.mark.slow
def test_a_rerun_computes_nothing_and_force_recomputes(study_dir, monkeypatch):
    from tfvis.pipeline import work

    calls = []
    for kind in ("grams", "featurevis"):
        real = work.COMPUTE[kind]
        monkeypatch.setitem(
            work.COMPUTE,
            kind,
            lambda ctx, params, progress=False, real=real: calls.append(params["model_name"]) or real(ctx, params, progress),
        )
    assert _run(STUDY + ["--out", str(study_dir)]) == 0
    assert calls == []
    before = _matrices(study_dir)
    assert _run(STUDY + ["--out", str(study_dir), "--force"]) == 0
    assert len(calls) == 3 * 4 + 3  # every Gram shard and every render, once
    for layer, matrix in _matrices(study_dir).items():
        np.testing.assert_allclose(matrix, before[layer], rtol=1e-12)


@pytest.mark.browser
@pytest.mark.slow
def test_study_pages_open_in_chromium_with_no_broken_image(study_dir):
    results = check_pages(study_dir / "index.html")
    assert len(results) == 2  # the index and the layer page
    for url, (widths, errors, _) in results.items():
        assert not errors and widths and all(w > 0 for w in widths), url
    index = next(r for u, r in results.items() if u.endswith("index.html"))
    assert len(index[0]) == 1 + 4  # the line plot and a heatmap per CKA layer
    layer = next(r for u, r in results.items() if u.endswith("block2_conv2.html"))
    assert len(layer[0]) == 2 * 3  # each channel in every model


@pytest.mark.slow
def test_ray_engine_gives_the_local_study_and_comparison(study_dir, tmp_path):
    """One local Ray cluster (2 workers) for a 3-model study and a 2-model comparison, each against the local engine."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        assert _run(STUDY + ["--out", str(tmp_path / "study_ray"), "--engine", "ray", "--workers", "2"]) == 0
        assert _run(PAIR + ["--out", str(tmp_path / "pair_ray"), "--engine", "ray", "--workers", "2"]) == 0
    finally:
        ray.shutdown()
    assert _run(PAIR + ["--out", str(tmp_path / "pair_local")]) == 0
    local, remote = _matrices(study_dir), _matrices(tmp_path / "study_ray")
    for layer in local:
        np.testing.assert_allclose(remote[layer], local[layer], rtol=1e-6, err_msg=layer)
    pair_local, pair_ray = (fileio.read_json(tmp_path / name / "cka.json") for name in ("pair_local", "pair_ray"))
    assert pair_local["layers_a"] == pair_ray["layers_a"] == ["block1_conv2", "block2_conv1"]
    np.testing.assert_allclose(pair_ray["matrix"], pair_local["matrix"], rtol=1e-6)
    names = sorted(p.name for p in (tmp_path / "pair_local" / "assets" / "block2_conv2").glob("*.npy"))
    assert len(names) == 2 * 2 and names == sorted(
        p.name for p in (tmp_path / "pair_ray" / "assets" / "block2_conv2").glob("*.npy")
    )
    for name in names:  # visualizations rendered by the workers, to uint8 rounding
        pictures = [np.load(tmp_path / run / "assets" / "block2_conv2" / name) for run in ("pair_local", "pair_ray")]
        np.testing.assert_allclose(pictures[1], pictures[0], atol=1.01 / 255, err_msg=name)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "vgg16:hed"], "give at least two comma-separated models"),
        (["--models", "vgg16:hed,vgg16:hed@seed=3"], "after '@' give reinit=PREFIX+PREFIX"),
        (["--models", "vgg16:hed,vgg16:hed", "--base", "alexnet"], "--base alexnet: not one of --models"),
        (["--models", "vgg16:hed,vgg16:hed", "--inputs", "torch"], "1 convention(s) for 2 models"),
        (["--models", "vgg16:hed,vgg16:hed", "--a", "vgg16:hed"], "give either --models or --a and --b"),
        (["--a", "vgg16:hed"], "give the two models with --a and --b"),
        (["--models", "vgg16:hed,nonet"], "--models nonet: not a zoo model"),
    ],
)
def test_bad_study_options_exit_2_with_one_line(args, message, tmp_path, capsys):
    rest = ["--layers", "block1_conv1", "--num-images", "8", "--size", "32", "--quiet", "--out", str(tmp_path)]
    assert _run(args + rest) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "index.html").exists()


def test_study_of_model_files_with_inputs_and_reinit(tmp_path):
    """Saved Keras files with their input conventions (--inputs) and a re-initialised copy (@reinit=) in one study."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    keras.Model(inputs, keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(x)).save(tmp_path / "tiny.keras")
    path = str(tmp_path / "tiny.keras")
    args = [
        "--models",
        f"{path},{path}@reinit=c2,{path}",
        "--inputs",
        "0-1;0-1;caffe",
        "--layers",
        "c2",
        "--channels",
        "2",
        "--cka-layers",
        "c1,c2",
        "--num-images",
        "8",
        "--size",
        "16",
        "--steps",
        "2",
        "--fv-size",
        "16",
        "--batch-size",
        "4",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    ]
    assert _run(args) == 0
    saved = fileio.read_json(tmp_path / "out" / "study.json")
    assert [m["name"] for m in saved["models"]] == ["tiny", "tiny+reinit-c2", "tiny-2"]
    against = saved["against_base"]
    np.testing.assert_allclose(against["tiny+reinit-c2"][0], 1.0, rtol=1e-9)  # c1 untouched, the same input convention
    assert against["tiny+reinit-c2"][1] < 0.999  # c2 re-initialised
    assert against["tiny-2"][0] < 0.999  # the same weights fed other pixels (caffe: BGR minus the ImageNet mean)
