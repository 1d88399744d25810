"""Hostile weight and model files: they never run code and never inflate past a limit.

The pickled ``bvlc_alexnet.npy`` is read by a restricted unpickler: files of the published layout
(written by today's NumPy and, byte for byte, as Python 2's NumPy wrote them) load with equal
arrays; files whose pickle names os.system, exec, subprocess or anything else are refused by that
name, and a marker file shows that nothing ran. Zip archives (``.keras``, ``.npz``), HDF5 files and
GraphDefs are refused from what they declare, before their data is read. The command-line cases run
as a user runs them, in subprocesses, and end in one ``error:`` line with status 2.
"""

import builtins
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile

import h5py
import keras
import numpy as np
import pytest

from tfvis.cli.common import UsageError, load_model_spec
from tfvis.models import alexnet, inceptionv1, load_model, safeload, vgg16, weights
from tfvis.models.weights import WeightsFormatError, WeightsHashError, WeightsTooLargeError, WeightsUnsafeError

MB = 1 << 20


# --- Files of the published layout ------------------------------------------------------------


def layer_arrays(seed=0):
    """Seeded float32 ``{layer: [W, b]}`` for conv1 and conv2 in bvlc_alexnet.npy's shapes."""
    rng = np.random.default_rng(seed)
    return {
        "conv1": [rng.standard_normal((11, 11, 3, 96), dtype=np.float32), rng.standard_normal(96, dtype=np.float32)],
        "conv2": [rng.standard_normal((5, 5, 48, 256), dtype=np.float32), rng.standard_normal(256, dtype=np.float32)],
    }


def save_npy(path, obj):
    """What Guerzhoy did, in today's NumPy: ``np.save`` of a dict (a pickled 0-d object array)."""
    np.save(path, obj, allow_pickle=True)
    return path


class Python2Pickler(pickle._Pickler):
    """Writes a pickle as Python 2's NumPy did: every string a BINSTRING, ``numpy.core`` names."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_python2_string
    dispatch[bytes] = save_python2_string

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[types.FunctionType] = save_global


def save_python2_npy(path, obj):
    """A ``.npy`` file as Python 2's ``np.save`` wrote it: header 1.0, then a protocol-2 pickle."""
    holder = np.empty((), dtype=object)
    holder[()] = obj
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        Python2Pickler(f, protocol=2).dump(holder)
    return path


def assert_same_arrays(actual, expected):
    assert sorted(actual) == sorted(expected)
    for name, (w, b) in expected.items():
        assert actual[name][0].dtype == w.dtype and actual[name][0].shape == w.shape
        np.testing.assert_array_equal(actual[name][0], w)
        np.testing.assert_array_equal(actual[name][1], b)
        assert actual[name][0].flags.writeable


def test_published_layout_loads_with_equal_arrays(tmp_path):
    arrays = layer_arrays()
    path = save_npy(tmp_path / "bvlc_alexnet.npy", arrays)
    assert_same_arrays(alexnet.read_weights(path), arrays)


def test_python2_pickle_loads_with_equal_arrays(tmp_path):
    arrays = layer_arrays(1)
    arrays["conv1"][0] = np.asfortranarray(arrays["conv1"][0])  # a Fortran-ordered array, too
    arrays["conv2"][1] = arrays["conv2"][1].astype(">f4")  # and a big-endian one
    path = save_python2_npy(tmp_path / "bvlc_alexnet.npy", arrays)
    raw = path.read_bytes()
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"U\x05conv1" in raw  # really Python 2's opcodes
    loaded = alexnet.read_weights(path)
    assert_same_arrays(loaded, arrays)
    assert loaded["conv2"][1].dtype == np.dtype(">f4")


def test_python2_file_loads_into_the_model(tmp_path):
    """The restricted reader feeds load_model: conv1 ends up holding the file's kernel."""
    arrays = layer_arrays(2)
    path = save_python2_npy(tmp_path / "weights.npy", arrays)
    with pytest.raises(WeightsFormatError, match="conv3"):  # a conv-only file must hold conv1 ... conv5
        load_model("alexnet", weights=str(path), include_top=False)
    full = {
        **arrays,
        **{
            name: [np.zeros(w, np.float32), np.zeros(b, np.float32)]
            for name, (w, b) in {
                "conv3": ((3, 3, 256, 384), 384),
                "conv4": ((3, 3, 192, 384), 384),
                "conv5": ((3, 3, 192, 256), 256),
            }.items()
        },
    }
    save_python2_npy(path, full)
    model = load_model("alexnet", weights=str(path), include_top=False)
    np.testing.assert_array_equal(model.get_layer("conv1").get_weights()[0], arrays["conv1"][0])
    np.testing.assert_array_equal(model.get_layer("conv2").get_weights()[1], arrays["conv2"][1])


# --- Files that try to run code -----------------------------------------------------------------


class Payload:
    """Unpickling calls ``function(*args)``: each writes the marker file if it ever runs."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def evil_payloads(marker):
    return {
        "posix.system": Payload(os.system, f"touch {marker}"),
        "builtins.exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.eval": Payload(builtins.eval, f"open({str(marker)!r}, 'w')"),
    }


@pytest.mark.parametrize("refused", ["posix.system", "builtins.exec", "subprocess.call", "builtins.eval"])
@pytest.mark.parametrize("where", ["top", "nested"])
def test_pickled_code_is_refused_by_name_and_never_runs(tmp_path, refused, where):
    marker = tmp_path / "ran"
    payload = evil_payloads(marker)[refused]
    arrays = layer_arrays()
    if where == "top":
        content = payload
    else:  # inside the [W, b] list of a real layer, after genuine arrays
        content = {**arrays, "conv3": [arrays["conv1"][0], {"x": (1, [payload])}]}
    for writer in (save_npy, save_python2_npy):
        path = writer(tmp_path / f"evil_{where}.npy", content)
        with pytest.raises(WeightsUnsafeError) as info:
            alexnet.read_weights(path)
        message = str(info.value)
        assert str(path) in message and f"refuses to load {refused}" in message
        assert not marker.exists()


def test_pickle_with_any_other_global_is_refused(tmp_path):
    marker = tmp_path / "ran"
    cases = {
        "collections.OrderedDict": {"conv1": __import__("collections").OrderedDict()},
        "builtins.getattr": Payload(getattr, "text", "upper"),
        "numpy.frombuffer": Payload(np.frombuffer, b"\0" * 8),
        "pathlib.Path": Payload(__import__("pathlib").Path, str(marker)),
    }
    for name, content in cases.items():
        path = save_npy(tmp_path / "other.npy", content)
        with pytest.raises(WeightsUnsafeError, match=f"refuses to load {name}"):
            alexnet.read_weights(path)
    assert not marker.exists()


class CraftedArray:
    """Pickles as NumPy's array reconstruction, with an array state of our choosing."""

    def __init__(self, shape, dtype, data):
        self.state = (1, shape, np.dtype(dtype), False, data)

    def __reduce__(self):
        reconstruct = np.zeros(1).__reduce__()[0]
        return reconstruct, (np.ndarray, (0,), b"b"), self.state


def test_inconsistent_array_states_are_refused_without_crashing(tmp_path):
    """NumPy trusts an object array's state (a short list crashes it); the reader checks it first."""
    cases = [
        ((1000,), object, [1]),  # fewer elements than the shape: NumPy itself reads past the list
        ((10**9,), object, []),
        ((4,), np.float32, b"\0" * 8),  # fewer bytes than the shape
        ((2,), np.float32, [1.0, 2.0]),  # a list for a numeric array
    ]
    for i, (shape, dtype, data) in enumerate(cases):
        path = save_npy(tmp_path / f"state{i}.npy", {"conv1": [CraftedArray(shape, dtype, data), np.zeros(96)]})
        done = subprocess.run(
            [sys.executable, "-c", f"from tfvis.models import alexnet; alexnet.read_weights({str(path)!r})"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, (shape, dtype, done.returncode, done.stderr[-2000:])  # an exception, not a crash
        assert "WeightsFormatError" in done.stderr or "WeightsTooLargeError" in done.stderr, done.stderr[-2000:]


def test_structured_and_void_dtypes_are_refused(tmp_path):
    path = save_npy(tmp_path / "void.npy", {"conv1": [np.zeros(3, dtype=[("a", "f4"), ("b", "O")]), np.zeros(96)]})
    with pytest.raises(WeightsFormatError) as info:
        alexnet.read_weights(path)
    assert str(path) in str(info.value)


# --- Bombs --------------------------------------------------------------------------------------


def zeros_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """A zip archive whose members are runs of zeros: ``{name: size}``; written 1 MiB at a time."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, size in members.items():
            with archive.open(name, "w", force_zip64=size > 1 << 30) as member:
                for start in range(0, size, MB):
                    member.write(bytes(min(MB, size - start)))
    return path


def small_keras_file(tmp_path):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="dense")(inputs))
    path = tmp_path / "small.keras"
    model.save(path)
    return model, path


def test_keras_archive_over_the_limit_is_refused_before_inflating(tmp_path, monkeypatch):
    model, good = small_keras_file(tmp_path)
    arrays = weights.read_keras_weights(good)  # a genuine archive is read
    np.testing.assert_array_equal(arrays["dense"][0], model.get_layer("dense").get_weights()[0])
    bomb = zeros_zip(tmp_path / "bomb.keras", {"model.weights.h5": 5 * MB})
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(2 * MB))
    with pytest.raises(WeightsTooLargeError) as info:
        weights.read_keras_weights(bomb)
    message = str(info.value)
    assert str(bomb) in message and f"{5 * MB:,} bytes" in message and f"{2 * MB:,} bytes" in message
    assert "TFVIS_MAX_WEIGHT_BYTES" in message
    with pytest.raises(WeightsTooLargeError):
        load_model("vgg16", weights=str(bomb), include_top=False)


def test_highly_compressed_member_is_refused_whatever_the_total_limit(tmp_path, monkeypatch):
    bomb = zeros_zip(tmp_path / "bomb.keras", {"model.weights.h5": 4 * MB})
    monkeypatch.setattr(safeload, "COMPRESSION_CHECK_MIN_BYTES", MB)
    with pytest.raises(WeightsTooLargeError, match="decompression bomb") as info:
        weights.read_keras_weights(bomb)
    assert "'model.weights.h5'" in str(info.value) and str(bomb) in str(info.value)
    stored = zeros_zip(tmp_path / "stored.keras", {"model.weights.h5": 4 * MB}, compression=zipfile.ZIP_STORED)
    with pytest.raises(WeightsFormatError) as info:  # not a bomb (stored), just not an HDF5 file
        weights.read_keras_weights(stored)
    assert not isinstance(info.value, WeightsTooLargeError)


def test_zoo_limits_follow_parameter_counts(monkeypatch):
    monkeypatch.delenv("TFVIS_MAX_WEIGHT_BYTES", raising=False)
    for module in (alexnet, vgg16, inceptionv1):
        limit = safeload.max_weight_bytes(module.PARAMS)
        assert module.PARAMS * 4 < limit <= safeload.ZOO_SIZE_FACTOR * module.PARAMS * 4 + safeload.ZOO_SLACK_BYTES
    assert safeload.max_weight_bytes() == safeload.MAX_WEIGHT_BYTES
    assert safeload.max_weight_bytes(inceptionv1.PARAMS) < 512 * MB  # a 2 GB file cannot pass for InceptionV1
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", "123")
    assert safeload.max_weight_bytes(vgg16.PARAMS) == 123
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", "lots")
    with pytest.raises(weights.WeightsError, match="TFVIS_MAX_WEIGHT_BYTES"):
        safeload.max_weight_bytes()


def test_npz_bombs_are_refused(tmp_path, monkeypatch):
    good = tmp_path / "vgg16_weights.npz"
    kernel = np.random.default_rng(0).standard_normal((3, 3, 3, 64), dtype=np.float32)
    np.savez(good, conv1_1_W=kernel, conv1_1_b=np.ones(64, np.float32))
    np.testing.assert_array_equal(vgg16.read_weights(good)["block1_conv1"][0], kernel[:, :, ::-1, :])
    # A member of zeros far past the limit.
    bomb = zeros_zip(tmp_path / "bomb.npz", {"conv1_1_W.npy": 6 * MB})
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(MB))
    with pytest.raises(WeightsTooLargeError, match="over the limit"):
        vgg16.read_weights(bomb)
    monkeypatch.delenv("TFVIS_MAX_WEIGHT_BYTES")
    # A member whose array header declares 40 GB over 100 bytes of data.
    liar = tmp_path / "liar.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**10,)})
    with zipfile.ZipFile(liar, "w") as archive:
        archive.writestr("conv1_1_W.npy", header.getvalue() + bytes(100))
    with pytest.raises(WeightsTooLargeError, match=r"shape \(10000000000,\)"):
        vgg16.read_weights(liar)
    # The same lie in a plain .npy file under an .npz name.
    plain = tmp_path / "plain.npz"
    plain.write_bytes(header.getvalue() + bytes(100))
    with pytest.raises(WeightsTooLargeError, match=r"shape \(10000000000,\)"):
        vgg16.read_weights(plain)
    # A pickled member.
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, conv1_1_W=np.array([Payload(os.system, "true")], dtype=object))
    with pytest.raises(WeightsFormatError, match="pickle"):
        vgg16.read_weights(pickled)


def test_h5_datasets_over_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.weights.h5"
    with h5py.File(path, "w") as f:  # 64 MB of zeros, gzip-compressed to a few kB
        vars_group = f.create_group("layers/dense/vars")
        vars_group.attrs["name"] = "dense"
        vars_group.create_dataset("0", shape=(4096, 4096), dtype="f4", chunks=(512, 512), compression="gzip", fillvalue=0)
        vars_group["0"][:512] = 0  # written chunks too, not only the fill value
    assert path.stat().st_size < MB
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(16 * MB))
    with pytest.raises(WeightsTooLargeError) as info:
        weights.read_keras_weights(path)
    assert str(path) in str(info.value) and "'layers/dense/vars/0'" in str(info.value) and f"{64 * MB:,} bytes" in str(info.value)
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(128 * MB))
    assert weights.read_keras_weights(path)["dense"][0].shape == (4096, 4096)


def test_h5_data_from_other_files_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(16, dtype=np.float32).tobytes())
    external = tmp_path / "external.weights.h5"
    with h5py.File(external, "w") as f:
        vars_group = f.create_group("layers/dense/vars")
        vars_group.attrs["name"] = "dense"
        vars_group.create_dataset("0", shape=(16,), dtype="f4", external=[(str(secret), 0, 64)])
    linked = tmp_path / "linked.weights.h5"
    with h5py.File(linked, "w") as f:
        f["layers"] = h5py.ExternalLink(str(external), "/layers")
    for path in (external, linked):
        with pytest.raises(WeightsUnsafeError, match="other file"):
            weights.read_keras_weights(path)


def test_graph_constant_declaring_a_huge_shape_is_refused(tmp_path):
    import tensorflow as tf

    graph = tf.compat.v1.GraphDef()
    node = graph.node.add(name="conv2d0_w", op="Const")
    tensor = node.attr["value"].tensor
    tensor.dtype = tf.float32.as_datatype_enum
    for size in (7, 7, 3, 10**8):  # 59 GB from one float: make_ndarray would fill it
        tensor.tensor_shape.dim.add(size=size)
    tensor.float_val.append(0.0)
    path = tmp_path / "InceptionV1.pb"
    path.write_bytes(graph.SerializeToString())
    assert path.stat().st_size < 1000
    with pytest.raises(WeightsTooLargeError, match="conv2d0_w"):
        inceptionv1.read_weights(path)


def test_oversized_npy_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = save_npy(tmp_path / "bvlc_alexnet.npy", layer_arrays())
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(MB))
    with pytest.raises(WeightsTooLargeError, match=f"{path.stat().st_size:,} bytes"):
        alexnet.read_weights(path)


# --- Model files given on the command line, through load_model_spec ---------------------------


def test_model_file_bomb_is_a_usage_error(tmp_path, monkeypatch):
    model, good = small_keras_file(tmp_path)
    loaded, label = load_model_spec(str(good))
    assert label == "small"
    np.testing.assert_array_equal(loaded.get_layer("dense").get_weights()[0], model.get_layer("dense").get_weights()[0])
    bomb = zeros_zip(tmp_path / "bomb.keras", {"config.json": 3 * MB, "model.weights.h5": 3 * MB})
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(4 * MB))
    with pytest.raises(UsageError, match=f"--model {bomb}: .*over the limit"):
        load_model_spec(str(bomb))


def test_model_file_weights_member_with_huge_datasets_is_refused(tmp_path, monkeypatch):
    """The HDF5 file inside a .keras archive is checked too (in place, for Keras' stored members)."""
    _, good = small_keras_file(tmp_path)
    h5 = tmp_path / "inner.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(4096, 4096), dtype="f4", chunks=(512, 512), compression="gzip")
    bomb = tmp_path / "inner.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, h5.read_bytes() if info.filename == "model.weights.h5" else src.read(info))
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(16 * MB))
    with pytest.raises(UsageError, match="'model.weights.h5'.*'layers/dense/vars/0'"):
        load_model_spec(str(bomb))


# --- Hashes and downloads -----------------------------------------------------------------------


def test_hash_table_pins_keras_files_and_checks_sha256(tmp_path):
    assert alexnet.BVLC_NPY.url.startswith("https://www.cs.toronto.edu/")
    table = weights.PINNED_HASHES
    assert table["vgg16_weights_tf_dim_ordering_tf_kernels.h5"]["md5"] == "64373286793e3c8b2b4e3219cbf3544b"
    assert table["vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"]["md5"] == "6d6bbae143d832006294945121d1f1fc"
    assert vgg16.KERAS_IMAGENET.hashes == {"md5": "64373286793e3c8b2b4e3219cbf3544b"}
    assert alexnet.BVLC_NPY.hashes == {}  # accepted, shapes checked, until a user reports its hash
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    weights.check_hash(path, weights.WeightFile("w.bin", "https://x/w.bin", None, "t", 1, sha256=sha))
    wrong = weights.WeightFile("w.bin", "https://x/w.bin", None, "t", 1, sha256="0" * 64)
    with pytest.raises(WeightsHashError, match=f"sha256 {sha}, expected {'0' * 64}"):
        weights.check_hash(path, wrong)
    table_entry = weights.WeightFile("bvlc_alexnet.npy", "https://x/a.npy", None, "t", 1)
    table["bvlc_alexnet.npy"]["sha256"] = "1" * 64  # what pinning it will look like
    try:
        assert table_entry.hashes == {"sha256": "1" * 64}
        with pytest.raises(WeightsHashError, match="sha256"):
            weights.check_hash(path, table_entry)
    finally:
        del table["bvlc_alexnet.npy"]["sha256"]


def test_download_past_the_stated_size_is_abandoned(tmp_path, private_weights_dir, monkeypatch):
    import http.server
    import threading
    from functools import partial

    root = tmp_path / "served"
    root.mkdir()
    (root / "w.bin").write_bytes(bytes(20 * MB))  # the file says "about 1 MB"
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.delenv("TFVIS_OFFLINE")
    try:
        wf = weights.WeightFile("w.bin", f"http://127.0.0.1:{httpd.server_address[1]}/w.bin", None, "t", 1)
        with pytest.raises(weights.WeightsUnavailableError, match="far more than expected"):
            weights.locate(wf)
    finally:
        httpd.shutdown()
    assert not any(private_weights_dir.iterdir())


# --- The commands, as a user runs them ----------------------------------------------------------


def _run(module, args, tmp_path, timeout=300, env=None):
    environment = dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=environment, cwd=tmp_path
    )


def _assert_one_error_line(done, prog, *parts):
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"python -m {prog}: error: "), done.stderr[-3000:]
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert "Traceback" not in done.stderr


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_cli_evil_npy_never_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = save_npy(tmp_path / "EVIL.npy", {**layer_arrays(), "conv3": [Payload(os.system, f"touch {marker}")]})
    (tmp_path / "weights").mkdir()
    save_python2_npy(tmp_path / "weights" / "bvlc_alexnet.npy", Payload(os.system, f"touch {marker}"))
    out = tmp_path / "out"
    done = _run("tfvis.alex", ["--weights", str(evil), "--out", str(out), "--quiet"], tmp_path)
    _assert_one_error_line(done, "tfvis.alex", str(evil), "refuses to load posix.system")
    done = _run("tfvis.alex", ["--out", str(out), "--quiet"], tmp_path)  # the default: weights/bvlc_alexnet.npy
    _assert_one_error_line(done, "tfvis.alex", str(tmp_path / "weights" / "bvlc_alexnet.npy"), "refuses to load posix.system")
    assert not marker.exists()
    assert _files(out) == [] and _files(tmp_path / "weights") == [
        tmp_path.joinpath("weights/bvlc_alexnet.npy").relative_to(tmp_path / "weights")
    ]


BOMB_MEMORY = """
import resource, sys
from tfvis.models import alexnet, WeightsError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    alexnet.read_weights(sys.argv[1])
except WeightsError as err:
    print("refused:", err)
print("grew_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.fixture(scope="module")
def real_bomb(tmp_path_factory):
    """A .keras archive whose weights member declares 200 MB of zeros in a few hundred kB."""
    path = zeros_zip(tmp_path_factory.mktemp("bomb") / "BOMB.keras", {"model.weights.h5": 200 * MB})
    assert path.stat().st_size < MB
    return path


@pytest.mark.slow
def test_real_zip_bomb_fails_fast_with_low_memory(tmp_path, real_bomb):
    done = subprocess.run([sys.executable, "-c", BOMB_MEMORY, str(real_bomb)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused:" in done.stdout and "decompression bomb" in done.stdout and str(real_bomb) in done.stdout
    grew_mb = int(done.stdout.split("grew_kb")[1]) / 1024
    assert grew_mb < 50, done.stdout  # inflating it would take 200 MB at least
    out = tmp_path / "out"
    done = _run("tfvis.alex", ["--weights", str(real_bomb), "--out", str(out), "--quiet"], tmp_path)
    _assert_one_error_line(done, "tfvis.alex", str(real_bomb), "decompression bomb", f"{200 * MB:,} bytes")
    assert _files(out) == []


@pytest.mark.slow
def test_real_zip_bomb_as_model_file(tmp_path, real_bomb):
    out = tmp_path / "out"
    done = _run(
        "tfvis.saliency", ["--model", str(real_bomb), "--size", "64", "--num-images", "1", "--out", str(out), "--quiet"], tmp_path
    )
    _assert_one_error_line(done, "tfvis.saliency", f"--model {real_bomb}", "decompression bomb")
    assert _files(out) == []
