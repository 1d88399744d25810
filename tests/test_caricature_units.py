"""Caricatures as work units: planned keys, a unit against a direct caricature, resume after kill -9, Ray against local."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_feature_cnn

import tfvis
from tfvis.cli import caricature as cli
from tfvis.images import FileSource, SampleSource
from tfvis.models import ModelSpec
from tfvis.pipeline import LocalEngine, Store, caricature_units
from tfvis.pipeline.context import Context

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny free-size CNN saved as a .keras file (what workers rebuild from its path)."""
    path = tmp_path_factory.mktemp("caricature_model") / "tiny.keras"
    tiny_feature_cnn().save(path)
    return path


def _context(model_file, source):
    spec = ModelSpec(str(model_file))
    return Context(spec, source, specs={"tiny": spec}, models={"tiny": spec.load()})


def test_a_unit_is_the_caricature_of_its_images_and_its_key_names_everything(model_file, tmp_path):
    context = _context(model_file, SampleSource(3, size=32))
    units = caricature_units.plan(context, ["tiny"], ["c2"], [0, 1, 2], 32, 4, 4.0, 0, batch_images=2)
    assert [u.params["indices"] for u in units] == [[0, 1], [2]]
    store = Store(tmp_path)
    LocalEngine(progress=False).run(units[:1], context, store)
    result = store.load(units[0])
    found = tfvis.images.sample_images(size=32)  # an independent read of the same photos
    photos = np.stack([found[name] for name in result["meta"]["ids"]])
    direct = tfvis.featurevis.caricature(context.model_named("tiny"), photos, "c2", steps=4, size=32, progress=False)
    np.testing.assert_array_equal(result["images"], np.asarray(direct))
    np.testing.assert_array_equal(result["values"], direct.values)
    assert result["meta"]["ids"] == list(found)[:2]
    # every setting, the model's file and the images are in the key; the label is not
    keys = {u.key for u in units}
    for changed in ({"size": 40}, {"steps": 5}, {"power": 2.0}, {"seed": 1}, {"layers": ["c3"]}):
        args = {"layers": ["c2"], "size": 32, "steps": 4, "power": 4.0, "seed": 0} | changed
        other = caricature_units.plan(context, ["tiny"], args.pop("layers"), [0, 1, 2], batch_images=2, **args)
        assert not keys & {u.key for u in other}, changed
    other_images = _context(model_file, SampleSource(3, size=32, seed=5))
    assert not keys & {u.key for u in caricature_units.plan(other_images, ["tiny"], ["c2"], [0, 1, 2], 32, 4, 4.0, 0, 2)}


def test_files_are_keyed_by_their_size_and_time(model_file, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    from PIL import Image

    for i in range(2):
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(folder / f"p{i}.png")
    context = _context(model_file, FileSource(folder, 16))
    before = caricature_units.plan(context, ["tiny"], ["c2"], [0, 1], 16, 2, 4.0, 0)
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(folder / "p1.png")
    os.utime(folder / "p1.png", (time.time() + 5, time.time() + 5))
    after = caricature_units.plan(_context(model_file, FileSource(folder, 16)), ["tiny"], ["c2"], [0, 1], 16, 2, 4.0, 0)
    assert before[0].key != after[0].key


def _args(model_file, out, steps, *extra):
    return [
        "--model",
        str(model_file),
        "--layers",
        "c1,c2,c3",
        "--num-images",
        "2",
        "--size",
        "32",
        "--steps",
        str(steps),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def _main(args):
    with pytest.raises(SystemExit) as done:
        cli.caricature_main(args)
    assert done.value.code == 0


def _arrays(out):
    return {p.name: np.load(p) for p in sorted(out.glob("*.npy"))}


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_where_it_stopped_and_equals_a_fresh_run(model_file, tmp_path):
    """kill -9 of ``python -m tfvis.caricature`` after its first unit: the rerun computes only the others."""
    out, steps = tmp_path / "killed", 1500
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "tfvis.caricature", *_args(model_file, out, steps)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored = out / "store" / "caricature"
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline and not list(stored.glob("*.npz")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = {p.name: p.stat().st_mtime_ns for p in stored.glob("*.npz")}
    assert 1 <= len(first) < 3, "the run was not killed between its units"
    assert not (out / "index.html").exists()

    _main(_args(model_file, out, steps))
    after = {p.name: p.stat().st_mtime_ns for p in stored.glob("*.npz")}
    assert len(after) == 3 and all(after[name] == stamp for name, stamp in first.items())  # finished units kept as they were
    _main(_args(model_file, tmp_path / "fresh", steps))
    resumed, fresh = _arrays(out), _arrays(tmp_path / "fresh")
    assert sorted(resumed) == sorted(fresh) and len(fresh) == 6
    for name in fresh:
        np.testing.assert_array_equal(resumed[name], fresh[name], err_msg=name)


@pytest.mark.slow
def test_ray_engine_gives_the_local_caricatures(model_file, tmp_path):
    """A local Ray cluster, one worker rebuilding the model from its file: the local engine's arrays bit for bit."""
    pytest.importorskip("ray")
    _main(_args(model_file, tmp_path / "local", 20))
    _main(_args(model_file, tmp_path / "ray", 20, "--engine", "ray", "--workers", "1"))
    local, remote = _arrays(tmp_path / "local"), _arrays(tmp_path / "ray")
    assert sorted(local) == sorted(remote) and len(local) == 6
    for name in local:
        np.testing.assert_array_equal(local[name], remote[name], err_msg=name)
