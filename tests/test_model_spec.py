"""Users' own models: one model spec for every command and the library, declared input conventions,
class names from labels files, one rule for image arrays, and the generic report command."""

import json
import pickle
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

import tfvis
from tfvis import cli
from tfvis.images import PixelRangeWarning
from tfvis.models import ModelSpec, input_convention, load_model, model_info, read_labels, weights_label
from tfvis.models.inputs import PRESETS

SIZE = 32


def tiny(name="tiny", rescaling=None):
    """A small classifier on 32 x 32 RGB; ``rescaling`` (a Keras layer) first when given."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = rescaling(inputs) if rescaling is not None else inputs
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)


def pixels(count=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    tiny().save(path)
    return path


def features(model, layer="c2"):
    return keras.Model(model.inputs, model.get_layer(layer).output)


# Spec forms


def test_zoo_spec_behaves_as_before():
    by_name = load_model("vgg16", weights="random", include_top=False, seed=3, input_shape=(64, 64, 3))
    by_spec = load_model("vgg16:random", include_top=False, seed=3, input_shape=(64, 64, 3))
    assert weights_label(by_name) == weights_label(by_spec) == "random (seed 3)"
    for a, b in zip(by_name.weights, by_spec.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert ModelSpec("vgg16:hed") == ModelSpec("vgg16", "hed")
    from tfvis.pipeline.work import ModelSpec as pipeline_spec

    assert pipeline_spec is ModelSpec  # importable where the pipeline had it


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_load_with_their_weights(tmp_path, suffix):
    original = tiny()
    path = tmp_path / f"mine{suffix}"
    original.save(path)
    loaded = load_model(path, input="0-255")
    np.testing.assert_allclose(loaded.predict(pixels(), verbose=0), original.predict(pixels(), verbose=0), rtol=1e-6)
    assert model_info(loaded).input is PRESETS["0-255"]


def test_a_file_holds_its_own_weights_and_shape(tiny_file):
    with pytest.raises(ValueError, match="holds its own weights"):
        load_model(tiny_file, weights="random")
    with pytest.raises(ValueError, match="not a zoo model"):
        load_model(tiny_file.with_name("missing.keras"))
    with pytest.raises(ValueError, match="zoo model"):
        load_model("vgg16", weights="random", include_top=False, input="torch")


def test_onnx_spec_goes_through_the_onnx_loader(tmp_path, monkeypatch):
    calls = []

    def load_onnx(path, name=None):
        calls.append(path)
        return tiny("from_onnx")

    monkeypatch.setattr("tfvis.models.spec.load_onnx", load_onnx)
    path = tmp_path / "net.onnx"
    path.write_bytes(b"not read by the fake loader")
    model = load_model(str(path), input="0-1")
    assert [p.name for p in calls] == ["net.onnx"]
    assert model.get_layer("tfvis_input") and model_info(model).input.name == "0-1"
    np.testing.assert_allclose(
        model.predict(pixels(), verbose=0), tiny().predict(pixels() / 255, verbose=0), rtol=1e-5, atol=1e-7
    )


def test_model_spec_round_trip_in_a_fresh_process(tiny_file, tmp_path):
    spec = ModelSpec(str(tiny_file), input="torch")
    local = spec.load()
    (tmp_path / "spec.pkl").write_bytes(pickle.dumps(spec))
    np.save(tmp_path / "x.npy", pixels(2))
    script = (
        "import pickle, sys, numpy as np, tfvis\n"
        "spec = pickle.load(open(sys.argv[1], 'rb'))\n"
        "model = spec.load()\n"
        "np.savez(sys.argv[2], *model.get_weights(), out=model.predict(np.load(sys.argv[3]), verbose=0))\n"
        "print(repr(spec.describe()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "spec.pkl"), str(tmp_path / "w.npz"), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert eval(done.stdout.strip().splitlines()[-1]) == spec.describe()
    assert spec.describe()["input"] == "torch"
    remote = np.load(tmp_path / "w.npz")
    for i, weight in enumerate(local.get_weights()):
        np.testing.assert_array_equal(remote[f"arr_{i}"], weight)
    np.testing.assert_allclose(remote["out"], local.predict(pixels(2), verbose=0), rtol=1e-6)


# Input conventions


def _by_hand(preset, x):
    """Each preset's preprocessing written out from Keras' and torchvision's documentation."""
    if preset == "caffe":
        return keras.ops.flip(x, axis=-1) - np.array([103.939, 116.779, 123.68], np.float32)
    if preset == "tf":
        return x / 127.5 - 1.0
    if preset == "torch":
        return (x / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    if preset == "0-1":
        return keras.layers.Rescaling(1 / 255.0, name="in_graph")(x)
    if preset == "range=-117,138":  # Lucid's InceptionV1 value range: pixel - 117
        return x - 117.0
    return x


@pytest.mark.parametrize("preset", ["caffe", "tf", "torch", "0-1", "0-255", "range=-117,138"])
def test_declared_input_equals_preprocessing_written_in_the_graph(tiny_file, preset):
    net = keras.models.load_model(tiny_file)
    inputs = keras.Input((SIZE, SIZE, 3))
    twin = keras.Model(inputs, net(_by_hand(preset, inputs)))
    declared = load_model(tiny_file, input=preset)
    x = pixels()
    np.testing.assert_allclose(declared.predict(x, verbose=0), twin.predict(x, verbose=0), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        features(declared).predict(x, verbose=0),
        features(twin.layers[-1]).predict(
            keras.ops.convert_to_numpy(_by_hand(preset, keras.ops.convert_to_tensor(x))), verbose=0
        ),
        rtol=2e-5,
        atol=1e-4,
    )
    info = model_info(declared)
    assert info.value_range == (0.0, 255.0) and info.report_layers == ("c1", "c2") and info.default_size == SIZE
    zero = np.asarray(info.mean_rgb, np.float64)  # the pixel the network sees as zero
    np.testing.assert_allclose(input_convention(preset).preprocess(zero[None]), 0.0, atol=1e-4)  # mean_rgb is float32
    assert [layer.name for layer in declared.layers if layer.weights] == ["c1", "c2", "probs"]


def test_model_trained_on_unit_range_declared_0_1_equals_its_rescaling_twin(tmp_path):
    bare, inside = tiny(), tiny(rescaling=keras.layers.Rescaling(1 / 255.0))
    inside.set_weights(bare.get_weights())
    bare.save(tmp_path / "bare.keras")
    declared = load_model(tmp_path / "bare.keras", input="0-1")
    x = pixels()
    np.testing.assert_allclose(
        tfvis.activations(declared, ["c2"], x)["c2"], tfvis.activations(inside, ["c2"], x)["c2"], rtol=1e-5, atol=1e-5
    )


def test_explicit_conventions_read_alike():
    torch = PRESETS["torch"]
    assert input_convention("scale=1/255 mean=0.485,0.456,0.406 std=0.229,0.224,0.225") == torch
    assert input_convention("scale=1/255, mean=0.485,0.456,0.406, std=0.229,0.224,0.225").name == "torch"
    assert input_convention({"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}).name == "torch"
    assert input_convention("range=-1,1").name == "tf" and input_convention("bgr; mean=103.939,116.779,123.68").name == "caffe"
    custom = input_convention("scale=1/255 mean=0.5 std=0.25")
    assert custom.name is None and input_convention(custom.text) == custom
    for bad, message in (
        ("tensorflow", "unknown input convention"),
        ("scale=x", "not a number"),
        ("gamma=2", "unknown 'gamma'"),
        ("std=0", "must not be 0"),
        ("range=1", "two different numbers"),
    ):
        with pytest.raises(ValueError, match=message):
            input_convention(bad)


def test_undeclared_input_notice_once_per_model_and_never_for_the_zoo(tmp_path, capsys):
    path = tmp_path / "quiet_check.keras"
    tiny("undeclared").save(path)
    load_model(path)
    load_model(path)
    err = capsys.readouterr().err
    assert err.count("has no declared input convention") == 1
    assert (
        "tfvis: model 'undeclared' has no declared input convention; assuming RGB in [0, 255] (give --input caffe|tf|torch|0-1|0-255)"
        in err
    )
    load_model("vgg16", weights="random", include_top=False, input_shape=(32, 32, 3))
    other = tmp_path / "declared.keras"
    tiny("declared").save(other)
    load_model(other, input="tf")
    assert "declared input convention" not in capsys.readouterr().err


# Labels


@pytest.mark.parametrize("form", ["list", "class_indices", "index_to_name", "text"])
def test_labels_files_of_each_form(tmp_path, form):
    names = ["glioma", "meningioma", "notumor", "pituitary"]
    path = tmp_path / ("labels.txt" if form == "text" else "labels.json")
    if form == "list":
        path.write_text(json.dumps(names))
    elif form == "class_indices":
        path.write_text(json.dumps({"notumor": 2, "glioma": 0, "pituitary": 3, "meningioma": 1}))
    elif form == "index_to_name":
        path.write_text(json.dumps({str(i): [f"n{i:08d}", n] for i, n in enumerate(names)}))
    else:
        path.write_text("\n".join(names) + "\n\n")
    assert read_labels(path) == names


def test_bad_labels_files(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a": 0, "b": 0}))
    with pytest.raises(ValueError, match="index 0 has two names"):
        read_labels(path)
    path.write_text(json.dumps({"a": -1}))
    with pytest.raises(ValueError, match="indices are integers from 0"):
        read_labels(path)
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_labels(path)


# One rule for image arrays


def test_activations_and_top_k_read_an_array_alike():
    model = tiny()
    unit = pixels(5, seed=1) / 255.0  # looks like [0, 1] images: used as given, with a warning, in both
    bright = pixels(5, seed=2) * 2.0  # beyond 255: not clipped, in both
    for images in (unit, bright):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            acts = tfvis.activations(model, ["c2"], images)["c2"]
            result = tfvis.top_k(model, images, "c2", k=2, methods=(), progress=False)
        per_image = acts.reshape(len(images), -1, acts.shape[-1]).max(axis=1)
        np.testing.assert_allclose(result.values, -np.sort(-per_image.T, axis=1)[:, :2], rtol=1e-5)
        warned = [w for w in caught if issubclass(w.category, PixelRangeWarning)]
        assert len(warned) == (2 if images is unit else 0)
        if warned:
            assert "looks like [0, 1] images" in str(warned[0].message) and "multiply by 255" in str(warned[0].message)


# The generic report command


def _write_report_inputs(tmp_path):
    model_path = tmp_path / "tiny.keras"
    tiny().save(model_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    return model_path, labels


def test_report_options_fail_in_one_line(tmp_path, capsys):
    model_path, labels = _write_report_inputs(tmp_path)
    bad_labels = tmp_path / "four.txt"
    bad_labels.write_text("a\nb\nc\nd\n")
    cases = [
        (["--model", "vgg16", "--input", "caffe"], "--input caffe: vgg16 is a zoo model"),
        (["--model", str(model_path), "--weights", "random"], "holds its own weights"),
        (["--model", str(model_path), "--input", "tensorflow"], "unknown input convention"),
        (["--model", str(model_path), "--labels", str(bad_labels)], "4 class names, but tiny has 3 classes"),
        (["--model", str(model_path), "--size", "64"], "takes 32 x 32 px images only"),
        (["--model", str(tmp_path / "nope.keras")], "not a zoo model"),
    ]
    for argv, message in cases:
        assert cli.run(None, "report", argv + ["--out", str(tmp_path / "out"), "--quiet"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1], (argv, err)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.browser
def test_report_of_a_model_file_with_input_and_labels(tmp_path, capsys):
    from browser import check_pages

    model_path, labels = _write_report_inputs(tmp_path)
    out = tmp_path / "report"
    argv = [
        "--model",
        str(model_path),
        "--input",
        "0-1",
        "--labels",
        str(labels),
        "--layers",
        "c1",
        "--channels",
        "2",
        "--size",
        "32",
        "--num-images",
        "6",
        "--methods",
        "deconv,saliency",
        "--page-images",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    assert cli.run(None, "report", argv) == 0
    printed = capsys.readouterr()
    assert printed.out.strip().splitlines()[-1] == str((out / "index.html").resolve())
    assert "declared input convention" not in printed.err
    index = (out / "index.html").read_text()
    assert "first layer: 0-1: x / 255" in index and "tiny" in index
    page = next(out.glob("image_*.html")).read_text()
    assert any(f"{name} ({i}), logit" in page for i, name in enumerate(["cat", "dog", "bird"]))
    results = check_pages(out / "index.html")
    assert len(results) >= 4  # index, the layer page, its atlas, image pages
    for url, (widths, errors, _) in results.items():
        assert not errors and all(widths), url


def test_report_command_forms():
    for module in ("tfvis.report", "tfvis.vgg"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--shard-images" in done.stdout, done.stderr
        assert ("--input" in done.stdout) == (module == "tfvis.report") and "--labels" in done.stdout
    from tfvis.cli import entry

    assert entry.COMMANDS["report"] is cli.report_main


@pytest.mark.slow
def test_ray_workers_rebuild_the_declared_model_from_its_spec(tmp_path):
    """Each Ray worker loads the model file with its --input from the spec: the local engine's report, bit for bit."""
    pytest.importorskip("ray")
    from test_pipeline import _report_arrays

    model_path, _ = _write_report_inputs(tmp_path)
    argv = [
        "--model",
        str(model_path),
        "--input",
        "torch",
        "--layers",
        "c1,c2",
        "--channels",
        "2",
        "--num-images",
        "8",
        "--top-k",
        "3",
        "--batch-size",
        "4",
        "--shard-images",
        "4",
        "--quiet",
    ]
    assert cli.run(None, "report", argv + ["--out", str(tmp_path / "local")]) == 0
    assert cli.run(None, "report", argv + ["--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "1"]) == 0
    local, ray_run = _report_arrays(tmp_path / "local"), _report_arrays(tmp_path / "ray")
    assert local[0] == ray_run[0] and len(local[0]) == 4
    assert local[1].keys() == ray_run[1].keys()
    for name, arrays in local[1].items():
        for key, value in arrays.items():
            if value.dtype != np.float16:  # top-k values, ids, positions, boxes, patches (reconstructions: float rounding)
                np.testing.assert_array_equal(value, ray_run[1][name][key], err_msg=f"{name}:{key}")


def test_onnx_file_with_its_input_convention_matches_onnxruntime(tmp_path):
    """A PyTorch-layout ONNX file (NCHW, trained on torch's normalisation), declared --input torch, against onnxruntime."""
    pytest.importorskip("tfvis.models.onnx_import")
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((5, 3, 3, 3)).astype(np.float32) * 0.2, "c1.weight"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32) * 0.1, "c1.bias"),
        numpy_helper.from_array(rng.standard_normal((2, 5)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "c1.weight", "c1.bias"], ["conv"], name="/c1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="/relu/Relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="/Flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        initializer=weights,
    )
    path = tmp_path / "net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    model = load_model(path, input="torch")
    x = pixels(1)
    normalised = (x / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"input": normalised.transpose(0, 3, 1, 2).astype(np.float32)})[0]
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-4)
