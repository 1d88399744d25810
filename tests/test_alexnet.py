"""Tests of the AlexNet zoo model: architecture, the bvlc_alexnet.npy loader and a NumPy reference forward.

The real ``bvlc_alexnet.npy`` cannot be downloaded here, so the tests write files of its exact
layout (a pickled dict from layer name to ``[weights, biases]``, float32, the shapes of the
BVLC model) filled with seeded random values, and check the Keras model against an independent
NumPy implementation of Caffe's layers.
"""

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tfvis.models import WeightsFormatError, WeightsUnavailableError, alexnet, load_model, weights_label

URL = "https://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy"

# The layout of bvlc_alexnet.npy (docs/weights.md): HWIO kernels, (in, out) dense weights.
SHAPES = {
    "conv1": ((11, 11, 3, 96), (96,)),
    "conv2": ((5, 5, 48, 256), (256,)),
    "conv3": ((3, 3, 256, 384), (384,)),
    "conv4": ((3, 3, 192, 384), (384,)),
    "conv5": ((3, 3, 192, 256), (256,)),
    "fc6": ((9216, 4096), (4096,)),
    "fc7": ((4096, 4096), (4096,)),
    "fc8": ((4096, 1000), (1000,)),
}
GROUPS = {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
LAYER_ORDER = [
    "image",
    "preprocess",
    "conv1",
    "conv1_relu",
    "norm1",
    "pool1",
    "conv2",
    "conv2_relu",
    "norm2",
    "pool2",
    "conv3",
    "conv3_relu",
    "conv4",
    "conv4_relu",
    "conv5",
    "conv5_relu",
    "pool5",
    "flatten",
    "fc6",
    "fc6_relu",
    "fc7",
    "fc7_relu",
    "fc8",
    "prob",
]
MEAN_BGR = np.array([104.00698793, 116.66876762, 122.67891434])
RTOL = 1e-4


def make_arrays(layers, seed):
    """Seeded float32 ``{layer: [W, b]}`` in the file's shapes, He-scaled so activations stay large.

    Large activations (tens to hundreds, as in the trained network) make the LRN denominators
    differ from 1, so the LRN comparison below means something.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in layers:
        w_shape, b_shape = SHAPES[name]
        fan_in = int(np.prod(w_shape[:-1]))
        w = rng.standard_normal(w_shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        b = rng.standard_normal(b_shape, dtype=np.float32)
        arrays[name] = [w, b]
    return arrays


def save_npy(path, arrays):
    """Write ``arrays`` the way bvlc_alexnet.npy holds them: a pickled dict of ``[W, b]`` lists."""
    np.save(path, {name: [w, b] for name, (w, b) in arrays.items()}, allow_pickle=True)
    return path


def images(size, n=1, seed=0):
    """Seeded float32 RGB images in [0, 255]."""
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def outputs(model, names, x):
    """The outputs of the named layers of ``model`` on ``x``, as float64 arrays."""
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    return [np.asarray(y, dtype=np.float64) for y in probe(x)]


def assert_close(actual, expected, rtol=RTOL, what=""):
    """Max abs difference at most ``rtol`` times the reference's max abs value."""
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = np.max(np.abs(expected))
    assert scale > 0, what
    err = np.max(np.abs(actual - expected))
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} vs scale {scale:.3g}"


# --- independent NumPy versions of Caffe's layers (float64) -------------------------------------


def np_conv(x, w, b, stride=1, padding="valid", groups=1):
    """Caffe convolution: groups split input channels and output channels into contiguous halves."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    kh, kw, cin_g, cout = w.shape
    if padding == "same":  # stride 1, odd kernels: (k - 1) / 2 on each side
        x = np.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N, Ho, Wo, C, kh, kw
    assert win.shape[3] == cin_g * groups
    cout_g = cout // groups
    parts = [
        np.einsum(
            "nhwcij,ijco->nhwo",
            win[:, :, :, g * cin_g : (g + 1) * cin_g],
            w[..., g * cout_g : (g + 1) * cout_g],
            optimize=True,
        )
        for g in range(groups)
    ]
    return np.concatenate(parts, axis=-1) + np.asarray(b, np.float64)


def np_lrn_denominator(a, n=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's across-channel LRN denominator ``(k + alpha / n * sum_{window n} a^2) ** beta``."""
    sq = np.pad(a**2, ((0, 0), (0, 0), (0, 0), (n // 2, n // 2)))
    channels = a.shape[-1]
    window_sum = sum(sq[..., i : i + channels] for i in range(n))
    return (k + alpha / n * window_sum) ** beta


def np_maxpool(x):
    """3 x 3, stride 2, VALID max pooling."""
    return sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))


def relu(x):
    return np.maximum(x, 0.0)


def np_forward(arrays, x):
    """BVLC AlexNet's conv part in NumPy: ``{layer_name: output}``."""
    out = {}
    out["preprocess"] = h = np.asarray(x, np.float64)[..., ::-1] - MEAN_BGR
    out["conv1"] = h = np_conv(h, *arrays["conv1"], stride=4)
    out["conv1_relu"] = h = relu(h)
    out["norm1"] = h = h / np_lrn_denominator(h)
    out["pool1"] = h = np_maxpool(h)
    out["conv2"] = h = np_conv(h, *arrays["conv2"], padding="same", groups=2)
    out["conv2_relu"] = h = relu(h)
    out["norm2"] = h = h / np_lrn_denominator(h)
    out["pool2"] = h = np_maxpool(h)
    for name in ("conv3", "conv4", "conv5"):
        out[name] = h = np_conv(h, *arrays[name], padding="same", groups=GROUPS[name])
        out[f"{name}_relu"] = h = relu(h)
    out["pool5"] = np_maxpool(h)
    return out


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_arrays():
    return make_arrays(alexnet.CONV_LAYERS, seed=1)


@pytest.fixture(scope="module")
def conv_file(tmp_path_factory, conv_arrays):
    """A conv-only bvlc_alexnet.npy (keys conv1 ... conv5)."""
    return save_npy(tmp_path_factory.mktemp("conv_only") / "bvlc_alexnet.npy", conv_arrays)


@pytest.fixture(scope="module")
def full_arrays():
    return make_arrays(SHAPES, seed=2)


@pytest.fixture(scope="module")
def full_file(tmp_path_factory, full_arrays):
    """A full-size bvlc_alexnet.npy (about 233 MB), written once for the module."""
    return save_npy(tmp_path_factory.mktemp("full") / "bvlc_alexnet.npy", full_arrays)


@pytest.fixture(scope="module")
def full_model(full_file):
    """The 227 x 227 model with the top, loaded from the full file by path."""
    return load_model("alexnet", weights=str(full_file))


def place(src, weights_dir):
    """Put ``src`` into the weights folder under the name load_model looks for."""
    dest = weights_dir / "bvlc_alexnet.npy"
    dest.symlink_to(src)
    return dest


def assert_holds(model, arrays):
    for name, (w, b) in arrays.items():
        kernel, bias = model.get_layer(name).get_weights()
        assert np.array_equal(kernel, w), name
        assert np.array_equal(bias, b), name


# --- 1. architecture ----------------------------------------------------------------------------


def test_layers_names_order_and_shapes(alexnet_random_top):
    model = alexnet_random_top
    assert model.name == "alexnet"
    assert [layer.name for layer in model.layers] == LAYER_ORDER
    assert model.input.shape == (None, 227, 227, 3)
    assert model.output.shape == (None, 1000)
    assert model.get_layer("conv1").output.shape == (None, 55, 55, 96)
    assert model.get_layer("pool1").output.shape == (None, 27, 27, 96)
    assert model.get_layer("pool2").output.shape == (None, 13, 13, 256)
    assert model.get_layer("pool5").output.shape == (None, 6, 6, 256)
    assert model.get_layer("flatten").output.shape == (None, 9216)
    for name, (w_shape, b_shape) in SHAPES.items():
        layer = model.get_layer(name)
        assert tuple(layer.kernel.shape) == w_shape and tuple(layer.bias.shape) == b_shape, name
        assert layer.get_config()["activation"] == "linear", name
        if name != "fc8":  # fc8 gives the logits, then prob
            relu_layer = model.layers[model.layers.index(layer) + 1]
            assert relu_layer.name == f"{name}_relu" and isinstance(relu_layer, keras.layers.ReLU)
    assert model.get_layer("fc8").get_config()["activation"] == "linear"
    assert isinstance(model.get_layer("prob"), keras.layers.Softmax)
    for name, groups in GROUPS.items():
        layer = model.get_layer(name)
        assert layer.groups == groups, name
        assert layer.strides == ((4, 4) if name == "conv1" else (1, 1)), name
        assert layer.padding == ("valid" if name == "conv1" else "same"), name
    for name in ("norm1", "norm2"):  # Caffe 5 / 1e-4 / 0.75 / 1 in TF's convention
        norm = model.get_layer(name)
        assert (norm.depth_radius, norm.beta, norm.bias) == (2, 0.75, 1.0)
        assert norm.alpha == pytest.approx(1e-4 / 5)
    for name in ("pool1", "pool2", "pool5"):
        pool = model.get_layer(name)
        assert pool.pool_size == (3, 3) and pool.strides == (2, 2) and pool.padding == "valid"
    preprocess = model.get_layer("preprocess")
    assert preprocess.bgr and np.allclose(preprocess.mean, MEAN_BGR) and preprocess.scale == 1.0


def test_module_interface():
    assert alexnet.NAME == "alexnet" and alexnet.DEFAULT_SIZE == 227
    assert alexnet.CONV_LAYERS == ("conv1", "conv2", "conv3", "conv4", "conv5")
    assert alexnet.TOP_LAYERS == ("fc6", "fc7", "fc8")
    assert alexnet.imagenet_file(True) is alexnet.BVLC_NPY is alexnet.imagenet_file(False)
    assert alexnet.BVLC_NPY.filename == "bvlc_alexnet.npy" and alexnet.BVLC_NPY.url == URL
    assert alexnet.BVLC_NPY.md5 is None
    assert (
        alexnet.preprocess_for("imagenet")
        == alexnet.preprocess_for("file")
        == {
            "bgr": True,
            "mean": alexnet.CAFFE_MEAN_BGR,
        }
    )
    assert not hasattr(alexnet, "EXTRA_SOURCES") and not hasattr(alexnet, "OFFLINE_FALLBACK")
    # MIN_SIZE is the smallest side for which pool5 is at least 1 x 1.
    assert alexnet.output_size(alexnet.MIN_SIZE) == 1 and alexnet.output_size(alexnet.MIN_SIZE - 1) < 1
    assert alexnet.output_size(227) == 6


def test_keras_grouped_conv_matches_caffe_halves():
    """Keras' Conv2D(groups=2) kernel (kh, kw, in/2, out): outputs [:out/2] see inputs [:in/2] only.

    That is Caffe's (and the port's) convention, so grouped kernels load unchanged.
    """
    rng = np.random.default_rng(3)
    layer = keras.layers.Conv2D(6, 3, padding="same", groups=2)
    x = rng.standard_normal((2, 7, 7, 4)).astype(np.float32)
    layer.build(x.shape)
    w = rng.standard_normal((3, 3, 2, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    layer.set_weights([w, b])
    assert_close(np.asarray(layer(x), np.float64), np_conv(x, w, b, padding="same", groups=2), what="groups=2")
    # Perturbing the second half of the input channels leaves the first half of the outputs alone.
    x2 = x.copy()
    x2[..., 2:] += 1.0
    y, y2 = np.asarray(layer(x)), np.asarray(layer(x2))
    assert np.array_equal(y[..., :3], y2[..., :3]) and not np.allclose(y[..., 3:], y2[..., 3:])


# --- 2. loading bvlc_alexnet.npy, and a NumPy reference forward ---------------------------------


def test_full_file_loads_from_weights_dir_and_by_path(private_weights_dir, full_file, full_arrays, full_model):
    assert alexnet.read_weights(full_file).keys() == SHAPES.keys()
    assert_holds(full_model, full_arrays)  # weights=<path>
    assert weights_label(full_model) == f"file {full_file}"
    place(full_file, private_weights_dir)
    model = load_model("alexnet", weights="imagenet")
    assert weights_label(model) == "imagenet (bvlc_alexnet.npy)"
    assert_holds(model, full_arrays)
    del model
    conv = load_model("alexnet", weights="auto", include_top=False)  # the full file serves the conv part
    assert_holds(conv, {name: full_arrays[name] for name in alexnet.CONV_LAYERS})


def test_conv_only_file_matches_numpy_forward(private_weights_dir, conv_file, conv_arrays):
    place(conv_file, private_weights_dir)
    model = load_model("alexnet", weights="imagenet", include_top=False)
    assert_holds(model, conv_arrays)
    assert_holds(load_model("alexnet", weights=str(conv_file), include_top=False), conv_arrays)

    x = images(99, n=2, seed=4)
    names = LAYER_ORDER[LAYER_ORDER.index("preprocess") : LAYER_ORDER.index("flatten")]
    expected = np_forward(conv_arrays, x)
    for name, actual in zip(names, outputs(model, names, x)):
        assert_close(actual, expected[name], what=name)
    assert expected["pool5"].shape == (2, 2, 2, 256)

    # The LRN check means something: denominators are well above 1 where the activations are ...
    denominator = np_lrn_denominator(expected["conv1_relu"])
    assert denominator.max() > 1.5 and np.median(denominator[expected["conv1_relu"] > 0]) > 1.1
    assert np_lrn_denominator(expected["conv2_relu"]).max() > 1.1
    # ... and TF's alpha (not divided by the window) would have failed it by far.
    wrong = expected["conv1_relu"] / np_lrn_denominator(expected["conv1_relu"], alpha=5e-4)
    assert np.max(np.abs(wrong - expected["norm1"])) > 100 * RTOL * np.max(np.abs(expected["norm1"]))


# --- 3. fc6 takes pool5 flattened in NHWC order -------------------------------------------------


def test_fc6_flatten_order_is_nhwc(full_model, full_arrays):
    x = images(227, n=1, seed=5)
    pool5, fc6, fc7, fc8, prob = outputs(full_model, ["pool5", "fc6", "fc7", "fc8", "prob"], x)
    assert pool5.shape == (1, 6, 6, 256)
    w6, b6 = (np.asarray(a, np.float64) for a in full_arrays["fc6"])
    expected = pool5.reshape(1, -1) @ w6 + b6
    assert_close(fc6, expected, what="fc6")
    nchw = pool5.transpose(0, 3, 1, 2).reshape(1, -1) @ w6 + b6  # the order the test must rule out
    assert np.max(np.abs(nchw - expected)) > 100 * RTOL * np.max(np.abs(expected))
    w7, b7 = (np.asarray(a, np.float64) for a in full_arrays["fc7"])
    w8, b8 = (np.asarray(a, np.float64) for a in full_arrays["fc8"])
    assert_close(fc7, relu(fc6) @ w7 + b7, what="fc7")
    assert_close(fc8, relu(fc7) @ w8 + b8, what="fc8")
    softmax = np.exp(fc8 - fc8.max()) / np.exp(fc8 - fc8.max()).sum()
    assert np.allclose(prob, softmax, atol=1e-6)


# --- 4. errors ----------------------------------------------------------------------------------


def test_wrong_shape_names_layer_and_both_shapes(private_weights_dir, conv_arrays):
    arrays = dict(conv_arrays)
    arrays["conv3"] = [np.zeros((3, 3, 256, 383), np.float32), conv_arrays["conv3"][1]]
    save_npy(private_weights_dir / "bvlc_alexnet.npy", arrays)
    with pytest.raises(WeightsFormatError) as info:
        load_model("alexnet", weights="imagenet", include_top=False)
    message = str(info.value)
    assert "conv3" in message and "(3, 3, 256, 384)" in message and "(3, 3, 256, 383)" in message


def test_conv_only_file_cannot_serve_the_top(private_weights_dir, conv_file):
    place(conv_file, private_weights_dir)
    with pytest.raises(WeightsFormatError, match="fc6, fc7, fc8"):
        load_model("alexnet", weights="imagenet")


def _write_bad_files(folder, conv_file):
    bad = {}
    bad["random_bytes"] = folder / "random.npy"
    bad["random_bytes"].write_bytes(np.random.default_rng(6).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    bad["truncated"] = folder / "truncated.npy"
    data = conv_file.read_bytes()
    bad["truncated"].write_bytes(data[: len(data) // 2])
    bad["plain_array"] = folder / "array.npy"
    np.save(bad["plain_array"], np.zeros((4, 4), np.float32))
    bad["pickled_list"] = folder / "list.npy"
    np.save(bad["pickled_list"], np.array([1, "a"], dtype=object), allow_pickle=True)
    bad["wrong_keys"] = folder / "keys.npy"
    np.save(bad["wrong_keys"], {"conv1_W": np.zeros(3)}, allow_pickle=True)
    bad["bad_entry"] = folder / "entry.npy"
    np.save(bad["bad_entry"], {"conv1": "not arrays"}, allow_pickle=True)
    bad["empty"] = folder / "empty.npy"
    bad["empty"].write_bytes(b"")
    return bad


def test_corrupt_files_raise_weights_format_error(tmp_path, private_weights_dir, conv_file):
    for kind, path in _write_bad_files(tmp_path, conv_file).items():
        with pytest.raises(WeightsFormatError) as info:
            alexnet.read_weights(path)
        assert str(path) in str(info.value), kind
        assert "Traceback" not in str(info.value), kind
    # Through load_model, from the weights folder.
    dest = private_weights_dir / "bvlc_alexnet.npy"
    dest.write_bytes(np.random.default_rng(7).integers(0, 256, 10000, dtype=np.uint8).tobytes())
    with pytest.raises(WeightsFormatError, match="bvlc_alexnet.npy") as info:
        load_model("alexnet", weights="imagenet", include_top=False)
    assert str(dest) in str(info.value)


def test_offline_without_file_says_where_to_get_it(private_weights_dir):
    for kwargs in ({}, {"weights": "imagenet"}, {"include_top": False}):
        with pytest.raises(WeightsUnavailableError) as info:
            load_model("alexnet", **kwargs)
        message = str(info.value)
        assert "bvlc_alexnet.npy" in message and URL in message, kwargs
        assert str(private_weights_dir / "bvlc_alexnet.npy") in message, kwargs


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as info:
        load_model("alexnet2", weights=None)
    assert all(name in str(info.value) for name in ("alexnet", "vgg16", "inceptionv1"))


# --- 5. Keras weight files ----------------------------------------------------------------------


def test_keras_weights_file_round_trips(tmp_path, alexnet_random):
    x = images(75, n=1, seed=8)
    original = alexnet_random  # seed 0; saved, not changed
    path = tmp_path / "a.weights.h5"
    original.save_weights(path)
    other_seed = load_model("alexnet", weights=None, include_top=False, seed=2)
    assert not np.allclose(np.asarray(other_seed(x)), np.asarray(original(x)))
    loaded = load_model("alexnet", weights=str(path), include_top=False, seed=2)
    assert weights_label(loaded) == f"file {path}"
    for name in alexnet.CONV_LAYERS:
        for a, b in zip(original.get_layer(name).get_weights(), loaded.get_layer(name).get_weights()):
            assert np.array_equal(a, b), name
    assert np.array_equal(np.asarray(loaded(x)), np.asarray(original(x)))


# --- 6. input sizes without the top -------------------------------------------------------------


def test_conv_part_accepts_any_size_from_min_size(alexnet_random):
    model = alexnet_random
    assert model.input.shape == (None, None, None, 3)
    for height, width in ((alexnet.MIN_SIZE, alexnet.MIN_SIZE), (68, 70), (98, 99), (131, 131), (67, 131)):
        y = np.asarray(model(np.zeros((1, height, width, 3), np.float32)))
        assert y.shape == (1, alexnet.output_size(height), alexnet.output_size(width), 256)
        assert min(y.shape[1:3]) >= 1
    assert alexnet.output_size(131) == 3
    fixed = alexnet.build(include_top=False, input_shape=(alexnet.MIN_SIZE, alexnet.MIN_SIZE, 3))
    assert fixed.output.shape == (None, 1, 1, 256)
    with pytest.raises(ValueError, match=str(alexnet.MIN_SIZE)):
        alexnet.build(include_top=False, input_shape=(alexnet.MIN_SIZE - 1, 100, 3))
