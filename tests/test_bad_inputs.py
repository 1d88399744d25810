"""Bad inputs: each ends in one clear line (or a handled skip) and leaves no half-written file.

The commands run as a user runs them, in subprocesses; each case asserts the exit status, the
message and the files left behind. Library calls with bad values follow. Hostile input has a file
per kind beside this one: weight and model files that run code or inflate
(``test_bad_inputs_weights.py``), image bombs and link loops (``test_bad_inputs_images.py``),
colliding, overlong and hostile names (``test_bad_inputs_names.py``), and unwritable output
folders, full disks, options, unreachable clusters and non-finite features
(``test_bad_inputs_options.py``).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import tfvis
from tfvis import compare, deconv, featurevis, saliency

pytestmark = pytest.mark.slow

SMALL = ["--weights", "random", "--layers", "block1_conv1", "--channels", "2", "--size", "32", "--num-images", "6", "--quiet"]


def _run(module, args, tmp_path, timeout=300, env=None):
    environment = dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=environment, cwd=tmp_path
    )


def _error_lines(done):
    return [line for line in done.stderr.splitlines() if "error:" in line]


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def _no_temporaries(folder):
    return not list(Path(folder).rglob("*.tmp"))


@pytest.fixture
def junk_folder(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.jpg").write_text("not an image")
    (folder / "notes.png").write_bytes(b"\x89PNG broken")
    return folder


def test_images_folder_bad_cases(tmp_path, junk_folder):
    """An empty folder, a folder of unreadable files, an --out that is a file: one line each, nothing written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    taken = tmp_path / "taken"
    taken.write_text("mine")
    cases = [
        (["--images", str(empty), "--out", str(tmp_path / "o1")], f"{empty}: no images (the folder holds no files)", "o1"),
        (
            ["--images", str(junk_folder), "--out", str(tmp_path / "o2")],
            f"{junk_folder}: no readable images: all 2 file(s) skipped as unreadable (first: {junk_folder / 'a.jpg'}",
            "o2",
        ),
        (["--out", str(taken)], f"--out {taken}: exists and is not a folder", None),
    ]
    for args, message, out in cases:
        done = _run("tfvis.vgg", SMALL + args, tmp_path)
        assert done.returncode == 2, done.stderr
        assert len(_error_lines(done)) == 1 and message in _error_lines(done)[0], done.stderr
        assert "Traceback" not in done.stderr
        if out:
            assert not (tmp_path / out).exists()
    assert taken.read_text() == "mine"


#: Runs several command lines in one subprocess (one TensorFlow start instead of one per case):
#: ``tfvis.cli.report.main`` as ``python -m tfvis.vgg`` calls it, its exit status and standard error per case.
BATCH_RUNNER = """
import contextlib, io, json, sys
from tfvis.cli.report import main
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["python -m tfvis.vgg"] + argv
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main("vgg16", "vgg")
            status = 0
        except SystemExit as stop:
            status = stop.code
    results.append({"status": status, "stderr": err.getvalue()})
print(json.dumps(results))
"""


def _run_many(argvs, tmp_path):
    import json

    environment = dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"))
    done = subprocess.run(
        [sys.executable, "-c", BATCH_RUNNER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_model_option_bad_cases(tmp_path):
    """Unknown layers, channels out of range, garbage and wrong-architecture weight files, offline weights."""
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"\x00\x01 this is not HDF5")
    other = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="conv")]).save_weights(other)
    cases = [
        (["--layers", "block9_conv1"], "has no layer block9_conv1; choose from: block1_conv1"),
        (["--layers", "block1_conv1", "--channels", "70-71"], "layer block1_conv1 has channels 0-63; got [70, 71]"),
        (["--weights", str(garbage)], str(garbage)),
        (["--weights", str(other)], str(other)),
        (["--weights", "imagenet"], "https://"),
    ]
    results = _run_many([SMALL + ["--out", str(tmp_path / "out")] + args for args, _ in cases], tmp_path)
    for (args, message), result in zip(cases, results):
        assert result["status"] == 2, (args, result["stderr"])
        lines = [line for line in result["stderr"].splitlines() if "error:" in line]
        assert len(lines) == 1 and message in lines[0], (args, result["stderr"])
        assert "Traceback" not in result["stderr"]
    assert _no_temporaries(tmp_path)


def test_every_pil_mode_is_read_and_unreadable_files_are_skipped(tmp_path, junk_folder):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    for mode in ("1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"):
        image = rgb.convert(mode) if mode not in ("I;16", "I", "F") else rgb.convert("L").convert(mode)
        image.save(junk_folder / f"mode_{mode.replace(';', '_')}.{'tiff' if mode in ('I;16', 'I', 'F', 'CMYK') else 'png'}")
    out = tmp_path / "out"
    done = _run("tfvis.vgg", SMALL + ["--images", str(junk_folder), "--out", str(out), "--num-images", "20"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped 2 unreadable file(s) of 12" in done.stderr
    page = (out / "block1_conv1.html").read_text()
    assert "mode_CMYK" in page or "mode_" in page
    assert _no_temporaries(out)


RESUME_ARGS = [
    "--weights",
    "random",
    "--layers",
    "block1_conv1,block1_conv2,block2_conv1,block2_conv2",
    "--channels",
    "3",
    "--size",
    "48",
    "--num-images",
    "12",
    "--quiet",
]


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory):
    """The report of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    assert _run("tfvis.vgg", RESUME_ARGS + ["--out", str(folder / "report")], folder).returncode == 0
    return folder / "report"


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_a_run_stopped_midway_resumes_to_the_same_report(tmp_path, how, reference_report):
    """Ctrl-C (SIGINT) or kill -9 in the middle of a run; the rerun completes with the same arrays."""
    args, reference = RESUME_ARGS, reference_report
    out = tmp_path / "stopped"
    environment = dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"))
    process = subprocess.Popen(
        [sys.executable, "-m", "tfvis.vgg", *args, "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and list((out / "state").rglob("ch*.json"))):
        time.sleep(0.05)  # until the first channel is finished: the run is then midway
    process.send_signal(signal.SIGINT if how == "interrupt" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    if how == "interrupt" and process.returncode != 0:
        assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    resumed = _run("tfvis.vgg", args + ["--out", str(out)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _no_temporaries(out)
    arrays = [f for f in _files(reference) if f.endswith(".npz") and not f.startswith("store/")]
    assert arrays and arrays == [f for f in _files(out) if f.endswith(".npz") and not f.startswith("store/")]
    for name in arrays:
        with np.load(out / name) as got, np.load(reference / name) as want:
            assert got.files == want.files
            for key in want.files:
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}:{key}")


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", name="c")(inputs)
    x = keras.layers.ReLU(name="c_relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, name="d")(x))


def test_non_finite_images_are_refused_naming_them(tiny):
    images = np.random.default_rng(0).uniform(0, 255, (4, 12, 12, 3)).astype(np.float32)
    images[1, 2, 3, 0] = np.nan
    images[3, 0, 0, 2] = np.inf
    calls = [
        lambda: deconv.reconstruct(tiny, images, "d:0"),
        lambda: saliency.vanilla(tiny, images, "d:1"),
        lambda: saliency.smoothgrad(tiny, images, "d:1", samples=2),
        lambda: saliency.grad_cam(tiny, images, "d:1", "c_relu"),
        lambda: featurevis.caricature(tiny, images, "c", steps=1, size=16, progress=False),
        lambda: tfvis.inversion.invert(tiny, images, "c", steps=1),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"images? 1, 3 \(of 4\) hold NaN or inf"):
            call()


def test_constant_features_in_cka_warn():
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(compare.cka(np.zeros((8, 3)), np.random.default_rng(1).normal(size=(8, 3))))
