"""Lucid's InceptionV1: layer names and widths, the InceptionV1.pb reader, an independent forward pass.

The graph files here are written in the exact format of Lucid's ``InceptionV1.pb``: a serialized
GraphDef whose ``Const`` nodes ``<layer>_w`` / ``<layer>_b`` hold the kernels (H, W, in, out) and
biases, plus the ``LRN`` nodes ``localresponsenorm0/1`` and some auxiliary-head constants, with
random values of the real shapes.

The tests that load a ``.pb`` with LRN settings other than the defaults rely on ``load_model``
passing ``inceptionv1.build_options(path)`` to ``inceptionv1.build``.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvis
from tfvis.models import WeightsFormatError, WeightsUnavailableError, inceptionv1, weights_label

# Written out from the kernel shapes of Lucent's port of the same graph, not taken from the module:
# (1x1, 3x3_bottleneck, 3x3, 5x5_bottleneck, 5x5, pool_reduce).
LUCID_BRANCHES = {
    "mixed3a": (64, 96, 128, 16, 32, 32),
    "mixed3b": (128, 128, 192, 32, 96, 64),
    "mixed4a": (192, 96, 204, 16, 48, 64),
    "mixed4b": (160, 112, 224, 24, 64, 64),
    "mixed4c": (128, 128, 256, 24, 64, 64),
    "mixed4d": (112, 144, 288, 32, 64, 64),
    "mixed4e": (256, 160, 320, 32, 128, 128),
    "mixed5a": (256, 160, 320, 48, 128, 128),
    "mixed5b": (384, 192, 384, 48, 128, 128),
}
LUCID_WIDTHS = {  # lucid.modelzoo.other_models.InceptionV1.layers
    "mixed3a": 256,
    "mixed3b": 480,
    "mixed4a": 508,
    "mixed4b": 512,
    "mixed4c": 512,
    "mixed4d": 528,
    "mixed4e": 832,
    "mixed5a": 832,
    "mixed5b": 1024,
}
# The attributes of the graph's LRN nodes (TensorFlow convention).
REAL_LRN = {"depth_radius": 5, "alpha": 1e-4, "beta": 0.5, "bias": 2.0}
URL = "https://storage.googleapis.com/modelzoo/InceptionV1.pb"


def lucid_shapes():
    """``{constant_name: shape}`` of every kernel and bias the model uses, in graph order."""
    shapes = {}

    def conv(name, k, cin, cout):
        shapes[f"{name}_w"] = (k, k, cin, cout)
        shapes[f"{name}_b"] = (cout,)

    conv("conv2d0", 7, 3, 64)
    conv("conv2d1", 1, 64, 64)
    conv("conv2d2", 3, 64, 192)
    cin = 192
    for m, (n1, n3r, n3, n5r, n5, npool) in LUCID_BRANCHES.items():
        conv(f"{m}_1x1", 1, cin, n1)
        conv(f"{m}_3x3_bottleneck", 1, cin, n3r)
        conv(f"{m}_3x3", 3, n3r, n3)
        conv(f"{m}_5x5_bottleneck", 1, cin, n5r)
        conv(f"{m}_5x5", 5, n5r, n5)
        conv(f"{m}_pool_reduce", 1, cin, npool)
        cin = n1 + n3 + n5 + npool
    shapes["softmax2_w"] = (1024, 1008)
    shapes["softmax2_b"] = (1008,)
    return shapes


# Constants of the auxiliary heads that the reader must ignore.
IGNORED = {
    "head0_bottleneck_w": (1, 1, 508, 128),
    "head0_bottleneck_b": (128,),
    "softmax0_w": (1024, 1008),
    "softmax0_b": (1008,),
    "nn1_b": (1024,),
}


@pytest.fixture(scope="module")
def lucid_arrays():
    """Random float32 arrays of the real shapes; He-scaled kernels so that activations stay O(10-100)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for name, shape in {**lucid_shapes(), **IGNORED}.items():
        if name.endswith("_w"):
            fan_in = int(np.prod(shape[:-1]))
            arrays[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        else:
            arrays[name] = rng.normal(0.0, 0.5, shape).astype(np.float32)
    return arrays


@pytest.fixture(scope="module")
def real_pb(tmp_path_factory, lucid_arrays):
    """``lucid_arrays`` and the graph's LRN settings as a full-size InceptionV1.pb, written once (read-only)."""
    return write_pb(tmp_path_factory.mktemp("lucid") / "InceptionV1.pb", lucid_arrays)


def write_pb(path, arrays, lrn=REAL_LRN):
    """Serialize a TF1 graph holding ``arrays`` as Const nodes and the two LRN nodes to ``path``."""
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, (None, None, None, 3), name="input")
        for name, value in arrays.items():
            tf.constant(value, name=name)
        x = tf.nn.conv2d(image, tf.zeros((7, 7, 3, 64)), 2, "SAME", name="conv2d0_pre_relu/conv")
        for node in ("localresponsenorm0", "localresponsenorm1"):
            x = tf.nn.local_response_normalization(x, name=node, **lrn)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def assert_lrn(model, settings):
    for name in ("localresponsenorm0", "localresponsenorm1"):
        layer = model.get_layer(name)
        assert layer.depth_radius == settings["depth_radius"]
        for key in ("alpha", "beta", "bias"):
            assert getattr(layer, key) == pytest.approx(settings[key], rel=1e-6), (name, key)


# 1. Names and widths ----------------------------------------------------------------------------


def test_layer_names_and_channel_counts():
    model = inceptionv1.build()
    assert model.name == "inceptionv1"
    assert model.inputs[0].name == "image"
    assert model.get_layer("preprocess").mean == (117.0, 117.0, 117.0)
    assert not model.get_layer("preprocess").bgr
    assert inceptionv1.MIXED_LAYERS == tuple(LUCID_WIDTHS)
    assert inceptionv1.TOP_LAYERS == ("softmax2",)
    for m, width in LUCID_WIDTHS.items():
        assert model.get_layer(m).output.shape[-1] == width, m
        assert model.get_layer(f"{m}_relu").output.shape[-1] == width
        for branch in ("1x1", "3x3_bottleneck", "3x3", "5x5_bottleneck", "5x5", "pool", "pool_reduce"):
            model.get_layer(f"{m}_{branch}")
        for bottleneck in ("3x3_bottleneck", "5x5_bottleneck"):
            assert isinstance(model.get_layer(f"{m}_{bottleneck}_relu"), keras.layers.ReLU)
        names = {layer.name for layer in model.layers}
        # The branches are concatenated before their ReLU: one ReLU per block.
        assert not {f"{m}_1x1_relu", f"{m}_3x3_relu", f"{m}_5x5_relu", f"{m}_pool_reduce_relu"} & names
    for conv, filters in (("conv2d0", 64), ("conv2d1", 64), ("conv2d2", 192)):
        assert model.get_layer(conv).filters == filters
        model.get_layer(f"{conv}_relu")
    for name in ("maxpool0", "maxpool1", "maxpool4", "maxpool10", "avgpool0", "softmax2_softmax"):
        model.get_layer(name)
    assert model.get_layer("softmax2").units == 1008
    assert model.output.shape == (None, 1008)
    assert_lrn(model, REAL_LRN)
    assert model.get_layer("mixed5b").output.shape[1:3] == (7, 7)
    assert not {"head0_bottleneck", "nn0", "softmax0", "softmax1"} & {layer.name for layer in model.layers}

    # Any size from MIN_SIZE up without the top; per-layer LRN settings fall back to the defaults.
    notop = inceptionv1.build(include_top=False, lrn={"localresponsenorm1": {"bias": 1.0}})
    for size, grid in ((224, 7), (96, 3), (inceptionv1.MIN_SIZE, 1)):
        out = notop(np.zeros((1, size, size, 3), np.float32))
        assert tuple(out.shape) == (1, grid, grid, 1024), size
    assert notop.get_layer("localresponsenorm0").bias == 2.0
    assert notop.get_layer("localresponsenorm1").bias == 1.0
    assert notop.get_layer("localresponsenorm1").depth_radius == 5
    with pytest.raises(ValueError, match="224"):
        inceptionv1.build(include_top=True, input_shape=(96, 96, 3))


# 2. The .pb format ------------------------------------------------------------------------------


def test_pb_loads_every_array_where_it_belongs(lucid_arrays, real_pb, private_weights_dir):
    path = private_weights_dir / "InceptionV1.pb"
    path.symlink_to(real_pb)
    arrays, lrn = inceptionv1.read_lucid_pb(path)
    expected = {name[:-2] for name in lucid_shapes()}
    assert set(arrays) == expected  # head0 / softmax0 / nn1 constants ignored
    assert lrn["localresponsenorm0"]["alpha"] == pytest.approx(1e-4, rel=1e-6)
    assert lrn["localresponsenorm1"] == lrn["localresponsenorm0"]

    model = tfvis.load_model("inceptionv1", weights="imagenet")
    assert weights_label(model) == "imagenet (InceptionV1.pb)"
    by_path = tfvis.load_model("inceptionv1", weights=str(real_pb), include_top=False)
    for layer in expected:
        kernel, bias = model.get_layer(layer).get_weights()
        np.testing.assert_array_equal(kernel, lucid_arrays[f"{layer}_w"], err_msg=layer)
        np.testing.assert_array_equal(bias, lucid_arrays[f"{layer}_b"], err_msg=layer)
        if layer != "softmax2":
            for got, want in zip(by_path.get_layer(layer).get_weights(), (kernel, bias)):
                np.testing.assert_array_equal(got, want, err_msg=layer)
    assert "softmax2" not in {layer.name for layer in by_path.layers}
    assert_lrn(model, REAL_LRN)
    assert_lrn(by_path, REAL_LRN)


def test_lrn_settings_come_from_the_pb(lucid_arrays, tmp_path):
    odd = {"depth_radius": 3, "alpha": 2.5e-3, "beta": 0.75, "bias": 1.5}
    path = write_pb(tmp_path / "InceptionV1.pb", lucid_arrays, lrn=odd)
    model = tfvis.load_model("inceptionv1", weights=path, include_top=False, input_shape=(32, 32, 3))
    assert_lrn(model, odd)


# 3. An independent forward pass ----------------------------------------------------------------


def same_pads(size, kernel, stride):
    """TensorFlow's SAME padding (before, after) along one axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def np_conv(x, w, b, stride=1, pads=None):
    kh, kw = w.shape[:2]
    pads = pads or (same_pads(x.shape[0], kh, stride), same_pads(x.shape[1], kw, stride))
    xp = np.pad(x, (*pads, (0, 0)))
    h, wd = (xp.shape[0] - kh) // stride + 1, (xp.shape[1] - kw) // stride + 1
    out = np.zeros((h, wd, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += xp[i : i + stride * (h - 1) + 1 : stride, j : j + stride * (wd - 1) + 1 : stride] @ w[i, j]
    return out + b


def np_maxpool(x, k, stride, pads=None):
    pads = pads or (same_pads(x.shape[0], k, stride), same_pads(x.shape[1], k, stride))
    xp = np.pad(x, (*pads, (0, 0)), constant_values=-np.inf)
    h, wd = (xp.shape[0] - k) // stride + 1, (xp.shape[1] - k) // stride + 1
    out = np.full((h, wd, x.shape[2]), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, xp[i : i + stride * (h - 1) + 1 : stride, j : j + stride * (wd - 1) + 1 : stride])
    return out


def np_lrn(x, depth_radius, alpha, beta, bias):
    """b_c = a_c / (bias + alpha * sum_{|d - c| <= depth_radius} a_d^2) ** beta."""
    channels = x.shape[-1]
    squares = np.pad(x**2, ((0, 0), (0, 0), (depth_radius, depth_radius)))
    window = sum(squares[..., d : d + channels] for d in range(2 * depth_radius + 1))
    return x / (bias + alpha * window) ** beta


def relu(x):
    return np.maximum(x, 0.0)


def test_first_layers_and_mixed3a_match_numpy(lucid_arrays, real_pb):
    # Lucent's port of the graph pads conv2d0 by (2, 3) and the stride-2 pools by (0, 1) at 224 px:
    # the graph's SAME padding, odd pixel at the bottom/right.
    assert same_pads(224, 7, 2) == (2, 3) and same_pads(112, 3, 2) == (0, 1)
    size = 64
    model = tfvis.load_model("inceptionv1", weights=real_pb, include_top=False, input_shape=(size, size, 3))
    names = [
        "conv2d0",
        "maxpool0",
        "localresponsenorm0",
        "conv2d1",
        "conv2d2",
        "localresponsenorm1",
        "maxpool1",
        "mixed3a_1x1",
        "mixed3a_3x3",
        "mixed3a_5x5",
        "mixed3a_pool_reduce",
        "mixed3a",
        "mixed3a_relu",
    ]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    image = np.random.default_rng(1).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    got = dict(zip(names, (np.asarray(t)[0] for t in probe(image))))

    a = {k: v.astype(np.float64) for k, v in lucid_arrays.items()}
    ref = {}
    x = image[0].astype(np.float64) - 117.0  # Lucid's input: RGB minus 117
    assert same_pads(size, 7, 2) == (2, 3)
    ref["conv2d0"] = np_conv(x, a["conv2d0_w"], a["conv2d0_b"], stride=2)
    assert same_pads(size // 2, 3, 2) == (0, 1)
    ref["maxpool0"] = np_maxpool(relu(ref["conv2d0"]), 3, 2)
    ref["localresponsenorm0"] = np_lrn(ref["maxpool0"], **REAL_LRN)
    ref["conv2d1"] = np_conv(ref["localresponsenorm0"], a["conv2d1_w"], a["conv2d1_b"])
    ref["conv2d2"] = np_conv(relu(ref["conv2d1"]), a["conv2d2_w"], a["conv2d2_b"])
    ref["localresponsenorm1"] = np_lrn(relu(ref["conv2d2"]), **REAL_LRN)
    ref["maxpool1"] = x = np_maxpool(ref["localresponsenorm1"], 3, 2)
    ref["mixed3a_1x1"] = np_conv(x, a["mixed3a_1x1_w"], a["mixed3a_1x1_b"])
    b3 = relu(np_conv(x, a["mixed3a_3x3_bottleneck_w"], a["mixed3a_3x3_bottleneck_b"]))
    ref["mixed3a_3x3"] = np_conv(b3, a["mixed3a_3x3_w"], a["mixed3a_3x3_b"])
    b5 = relu(np_conv(x, a["mixed3a_5x5_bottleneck_w"], a["mixed3a_5x5_bottleneck_b"]))
    ref["mixed3a_5x5"] = np_conv(b5, a["mixed3a_5x5_w"], a["mixed3a_5x5_b"])
    pooled = np_maxpool(x, 3, 1)
    ref["mixed3a_pool_reduce"] = np_conv(pooled, a["mixed3a_pool_reduce_w"], a["mixed3a_pool_reduce_b"])
    ref["mixed3a"] = np.concatenate([ref[f"mixed3a_{b}"] for b in ("1x1", "3x3", "5x5", "pool_reduce")], axis=-1)  # Lucid's order
    ref["mixed3a_relu"] = relu(ref["mixed3a"])

    for name in names:
        scale = np.abs(ref[name]).max()
        assert scale > 1.0, name  # activations large enough for the comparison to mean something
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-4, atol=1e-4 * scale, err_msg=name)

    # The LRN matters at these scales: it is not just the constant division by bias ** beta.
    for name, before in (("localresponsenorm0", ref["maxpool0"]), ("localresponsenorm1", relu(ref["conv2d2"]))):
        plain = before / REAL_LRN["bias"] ** REAL_LRN["beta"]
        assert np.abs(ref[name] - plain).max() > 0.05 * np.abs(plain).max(), name

    # The asymmetric padding is what the model does: the mirrored placement gives other values.
    mirrored = np_conv(image[0] - 117.0, a["conv2d0_w"], a["conv2d0_b"], stride=2, pads=((3, 2), (3, 2)))
    assert np.abs(mirrored - got["conv2d0"]).max() > 1e-2 * np.abs(ref["conv2d0"]).max()
    mirrored = np_maxpool(relu(ref["conv2d0"]), 3, 2, pads=((1, 0), (1, 0)))
    assert np.abs(mirrored - got["maxpool0"]).max() > 1e-2 * np.abs(ref["maxpool0"]).max()


# 4. Errors --------------------------------------------------------------------------------------


def test_kernel_of_wrong_shape_names_layer_and_shapes(lucid_arrays, tmp_path):
    bad = dict(lucid_arrays)
    bad["mixed4a_3x3_w"] = np.zeros((3, 3, 96, 208), np.float32)  # the paper's 4a width, not the graph's
    path = write_pb(tmp_path / "InceptionV1.pb", bad)
    with pytest.raises(WeightsFormatError) as info:
        tfvis.load_model("inceptionv1", weights=path, include_top=False, input_shape=(32, 32, 3))
    message = str(info.value)
    assert "mixed4a_3x3" in message and "(3, 3, 96, 204)" in message and "(3, 3, 96, 208)" in message
    assert str(path) in message


@pytest.mark.parametrize("content", [b"\x00\xff this is not a GraphDef \xfe", b"", "truncated"])
def test_corrupt_pb_names_the_file(content, lucid_arrays, private_weights_dir, tmp_path):
    path = private_weights_dir / "InceptionV1.pb"
    if content == "truncated":
        small = {k: v for k, v in lucid_arrays.items() if k.startswith("conv2d")}
        data = write_pb(tmp_path / "whole.pb", small).read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    for weights in ("imagenet", path):
        with pytest.raises(WeightsFormatError) as info:
            tfvis.load_model("inceptionv1", weights=weights)
        assert str(path) in str(info.value)


def test_offline_without_the_file_says_where_to_get_it(private_weights_dir):
    for weights, include_top in (("imagenet", True), ("auto", False)):
        with pytest.raises(WeightsUnavailableError) as info:
            tfvis.load_model("inceptionv1", weights=weights, include_top=include_top)
        message = str(info.value)
        assert "InceptionV1.pb" in message and URL in message
        assert str(private_weights_dir / "InceptionV1.pb") in message


def test_keras_weight_file_round_trip(tmp_path):
    saved = inceptionv1.build(include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "inceptionv1.weights.h5"
    saved.save_weights(path)
    assert inceptionv1.build_options(path) == {}  # no LRN settings in a Keras file: the defaults stay
    loaded = tfvis.load_model("inceptionv1", weights=path, include_top=False, input_shape=(32, 32, 3), seed=1)
    for name in ("conv2d0", "mixed4a_3x3", "mixed5b_pool_reduce"):
        for got, want in zip(loaded.get_layer(name).get_weights(), saved.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert_lrn(loaded, REAL_LRN)
