"""Bad option values, an output folder that cannot be written, an unreachable cluster, non-finite features.

Each command line ends in one ``error:`` line and exit status 2 (or runs, with a notice), with no
traceback and no half-written file; the commands run as a user runs them, in subprocesses (several
command lines share one, :data:`BATCH_RUNNER`). Library calls with bad values follow.
"""

import errno
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import tfvis
from tfvis import compare, fileio
from tfvis.cli import report as report_cli

SMALL = ["--weights", "random", "--layers", "block1_conv1", "--channels", "2", "--size", "32", "--num-images", "6", "--quiet"]


def _environment(tmp_path):
    return dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"))


def _run(module, args, tmp_path, timeout=300, preexec_fn=None):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(tmp_path),
        cwd=tmp_path,
        preexec_fn=preexec_fn,
    )


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if "error:" in line]


def _files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def _assert_one_error(status, stderr, message):
    assert status == 2, stderr
    lines = _error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("python -m tfvis.vgg: error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr


#: Runs several command lines in one subprocess (one TensorFlow start instead of one per case):
#: ``tfvis.cli.report.main`` as ``python -m tfvis.vgg`` calls it; per case its exit status, its
#: standard error and the seconds it took.
BATCH_RUNNER = """
import contextlib, io, json, sys, time
from tfvis.cli.report import main
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["python -m tfvis.vgg"] + argv
    err = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main("vgg16", "vgg")
            status = 0
        except SystemExit as stop:
            status = stop.code
    results.append({"status": status, "stderr": err.getvalue(), "seconds": time.perf_counter() - started})
print(json.dumps(results))
"""


def _run_many(argvs, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", BATCH_RUNNER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_environment(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Options and the output folder, one subprocess
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_option_bad_cases(tmp_path):
    """--out below a file, --layers with nothing or twice, empty --channels, --top-k beyond the images, no cluster."""
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    refused = [
        (["--out", str(a_file / "sub")], f"--out {a_file / 'sub'}: cannot write there: {a_file} is a file, not a folder"),
        (["--layers", ","], "--layers ',': names no layer"),
        (["--layers", ""], "--layers '': names no layer"),
        (["--channels", "5-2"], "--channels '5-2': 5-2 is an empty range; write 2-5"),
        (["--channels", "0"], "--channels 0: names no channel"),
        (["--channels", ","], "--channels ',': names no channel"),
        (["--invert-layers", ",", "--methods", "inversion"], "--invert-layers ',': names no layer"),
        (["--engine", "ray", "--address", "127.0.0.1:1"], "--engine ray: nothing answers at 127.0.0.1:1 (Connection refused)"),
        (["--engine", "ray", "--address", "no-port"], "--engine ray: address 'no-port' is not HOST:PORT"),
    ]
    ran = [
        ["--layers", "block1_conv1,block1_conv1,", "--out", str(tmp_path / "twice")],
        ["--top-k", "1000000", "--out", str(tmp_path / "all")],
    ]
    argvs = [
        SMALL + args + ([] if "--out" in args else ["--out", str(tmp_path / f"refused{i}")])
        for i, (args, _) in enumerate(refused)
    ]
    results = _run_many(argvs + [SMALL + args for args in ran], tmp_path)
    for i, ((args, message), result) in enumerate(zip(refused, results)):
        _assert_one_error(result["status"], result["stderr"], message)
        assert not (tmp_path / f"refused{i}").exists(), args  # refused before the first file
    assert results[len(refused) - 2]["seconds"] < 30  # an unreachable cluster is not waited for
    assert a_file.read_text() == "mine" and not list(tmp_path.rglob(".probe.*"))

    twice, everything = results[len(refused) :]
    assert twice["status"] == 0, twice["stderr"]
    index = (tmp_path / "twice" / "index.html").read_text()
    assert index.count('href="block1_conv1.html"') == 1, index
    assert everything["status"] == 0, everything["stderr"]
    assert "tfvis: --top-k 1000000 is more than the 6 images; keeping all 6 per channel" in everything["stderr"]
    assert fileio.read_json(tmp_path / "all" / "run.json")["settings"]["top-k"] == 6


@pytest.mark.slow
def test_size_beyond_the_address_space_limit_is_refused_with_figures(tmp_path):
    """--size 4096 under ``ulimit -v 8000000`` died of SIGSEGV with no message; it is refused before any forward pass."""
    limit = 8_000_000 * 1024  # ulimit -v counts KiB

    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out = tmp_path / "big"
    done = _run(
        "tfvis.vgg", SMALL + ["--size", "4096", "--batch-size", "16", "--out", str(out)], tmp_path, preexec_fn=limit_address_space
    )
    _assert_one_error(done.returncode, done.stderr, "--size 4096 with batches of 6 images needs about 53 GiB of memory; ")
    assert "allows 7.6 GiB: lower --size or --batch-size" in done.stderr or "this machine allows" in done.stderr, done.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# A file system that refuses writes: real mounts where permitted, a simulated full disk everywhere
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(name, options)``: a tmpfs mounted at ``tmp_path / name`` (unmounted afterwards); skips where mounting is not permitted."""
    mounted = []

    def mount(name, options):
        folder = tmp_path / name
        folder.mkdir()
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True, timeout=30
            )
        except FileNotFoundError:
            pytest.skip("no mount command here")
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here (mount: {done.stderr.strip()})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)


def _assert_complete(files):
    """Every file can be read whole: no half-written PNG, JSON or npz is left."""
    for path in files:
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                [arrays[key] for key in arrays.files]


@pytest.mark.slow
def test_read_only_and_full_file_systems(tmp_path, tmpfs):
    """--out on a read-only tmpfs is refused before any work; on a 64 KiB tmpfs the run stops at the first file that does not fit."""
    read_only = tmpfs("ro", "ro")
    full = tmpfs("full", "size=64k")
    results = _run_many([SMALL + ["--out", str(read_only / "x")], SMALL + ["--out", str(full / "x")]], tmp_path)
    _assert_one_error(
        results[0]["status"], results[0]["stderr"], f"--out {read_only / 'x'}: cannot write there: Read-only file system"
    )
    _assert_one_error(results[1]["status"], results[1]["stderr"], f"--out {full / 'x'}: cannot write {full / 'x'}/")
    assert "No space left on device; free some space and run the same command again to resume" in results[1]["stderr"]
    _assert_complete(_files(full))
    assert _files(full) and not list(full.rglob("*.tmp"))


@pytest.mark.slow
def test_a_full_disk_midway_ends_in_one_line_and_resumes(tmp_path, monkeypatch, capsys):
    """Simulated (runs everywhere): the sixth file written meets ENOSPC after half its bytes."""
    real_fdopen = os.fdopen
    opened = []

    class HalfWritten:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def filling_fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        opened.append(fd)
        return HalfWritten(file) if len(opened) >= 6 else file

    out = tmp_path / "out"
    monkeypatch.setenv("TFVIS_OFFLINE", "1")
    monkeypatch.setenv("TFVIS_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(fileio.os, "fdopen", filling_fdopen)
    status = report_cli.run("vgg16", "vgg", SMALL + ["--out", str(out)])
    monkeypatch.setattr(fileio.os, "fdopen", real_fdopen)
    stderr = capsys.readouterr().err
    _assert_one_error(status, stderr, f"--out {out}: cannot write {out}/")
    assert "No space left on device" in stderr
    failed = Path(_error_lines(stderr)[0].split("cannot write ", 1)[1].split(": No space")[0])
    assert len(opened) == 6 and not failed.exists(), stderr  # the file that met the full disk is not there, nor its temporary
    _assert_complete(_files(out))
    assert report_cli.run("vgg16", "vgg", SMALL + ["--out", str(out)]) == 0  # space again: the same command completes
    assert (out / "index.html").exists() and not list(out.rglob("*.tmp"))


def test_write_bytes_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    def no_space(fd, *args, **kwargs):
        os.close(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fdopen", no_space)
    with pytest.raises(OSError, match="No space left on device") as caught:
        fileio.write_text(tmp_path / "page.html", "<html>")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "page.html")
    assert not list(tmp_path.iterdir())


def test_write_error_lines_name_the_folder_only_for_its_files(tmp_path):
    from tfvis.cli.common import write_error_text

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "assets" / "a.png"))
    assert write_error_text(full, tmp_path / "out") == (
        f"--out {tmp_path / 'out'}: cannot write {tmp_path / 'out' / 'assets' / 'a.png'}: No space left on device; "
        "free some space and run the same command again to resume"
    )
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "photos" / "a.jpg"))
    assert write_error_text(denied, tmp_path / "out") == f"{tmp_path / 'photos' / 'a.jpg'}: Permission denied"


def test_out_folder_checks_leave_nothing(tmp_path):
    from tfvis.cli.common import UsageError, check_out

    check_out(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # the probe and the folders made for it are gone
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(UsageError, match=r"cannot write there: .*a_file is a file, not a folder"):
        check_out(tmp_path / "a_file" / "sub" / "deeper")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        check_out(tmp_path / "a_file")


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", name="c")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, name="d")(keras.layers.ReLU(name="c_relu")(x)))


@pytest.fixture(scope="module")
def four_images():
    return np.random.default_rng(0).uniform(0, 255, (4, 12, 12, 3)).astype(np.float32)


def test_top_k_beyond_the_images_allocates_nothing_for_the_rest(tiny, four_images):
    """k = 10**9 would need tens of GB if ranks were allocated up front; every image is kept instead."""
    with pytest.warns(UserWarning, match=r"k=1000000000 is more than the 4 images read; each channel keeps 4"):
        result = tfvis.top_k(tiny, four_images, "c", k=10**9, progress=False)
    assert result.k == 4 and result.values.shape == (3, 4) and result.patches.shape[:2] == (3, 4)
    assert np.isfinite(result.values).all() and all(result.image_ids.ravel())
    assert sorted(result.image_index[0].tolist()) == [0, 1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # k within the images: no warning
        assert tfvis.top_k(tiny, four_images, "c", k=4, methods=(), progress=False).k == 4


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_top_k_refuses_k_below_one_naming_it(tiny, four_images, k):
    with pytest.raises(ValueError, match=r"^k \(activations kept per channel\) must be an integer of at least 1; got "):
        tfvis.top_k(tiny, four_images, "c", k=k, progress=False)


def test_top_k_and_activations_refuse_a_batch_size_below_one(tiny, four_images):
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 1; got 0"):
        tfvis.top_k(tiny, four_images, "c", batch_size=0, progress=False)
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 1; got 0"):
        tfvis.activations(tiny, "c", four_images, batch_size=0)


def test_activations_of_an_empty_batch_name_the_argument(tiny):
    with pytest.raises(ValueError, match=r"images is an empty batch \(shape \(0, 12, 12, 3\)\); give at least one image, N >= 1"):
        tfvis.activations(tiny, ["c"], np.zeros((0, 12, 12, 3), np.float32))


def test_non_finite_features_in_cka_are_refused_naming_them():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5))
    y = x @ rng.normal(size=(5, 4))
    y[1, 2], y[6, 0] = np.nan, np.inf
    calls = [
        ("y", lambda: compare.cka(x, y)),
        ("y", lambda: compare.cka(x, y, kernel="rbf")),
        ("y", lambda: compare.cka(x, y, debiased=True, method="feature")),
        ("x", lambda: compare.cka(y, x)),
        ("y", lambda: compare.MinibatchCKA().update(x, y)),
        (r"acts_b\[1\]", lambda: compare.LayerPairsCKA().update([x], [x, y])),
        ("x", lambda: compare.gram_linear(y)),
    ]
    for name, call in calls:
        with pytest.raises(ValueError, match=rf"^{name} holds 2 NaN or inf value\(s\) \(of 32\); CKA needs finite activations"):
            call()
    gram = compare.gram_linear(x)
    with pytest.raises(ValueError, match=r"^l holds 64 NaN or inf value\(s\) \(of 64\)"):
        compare.hsic(gram, np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match=r"^grams_b holds 1 NaN or inf value\(s\)"):
        bad = gram.copy()
        bad[0, 0] = np.inf
        compare.LayerPairsCKA().update_grams(gram[None], bad[None])


def test_check_reachable_fails_at_once_naming_the_address():
    from tfvis.pipeline.engines import EngineError, check_reachable

    started = time.perf_counter()
    with pytest.raises(EngineError, match=r"^nothing answers at 127\.0\.0\.1:1 \(Connection refused\): start a cluster there"):
        check_reachable("127.0.0.1:1")
    with pytest.raises(EngineError, match=r"^nothing answers at ray://127\.0\.0\.1:1 "):
        check_reachable("ray://127.0.0.1:1")
    with pytest.raises(EngineError, match=r"address '127\.0\.0\.1' is not HOST:PORT"):
        check_reachable("127.0.0.1")
    assert time.perf_counter() - started < 5
