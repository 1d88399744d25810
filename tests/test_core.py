"""One target names one tensor in every method (tfvis.targets, tfvis.graph).

Each model kind below comes with a *twin* built by hand: the same layers and weights with every
activation a layer of its own, so that the twin's ``layer.output`` is the reference tensor for the
target string, computed without tfvis. Every method must read that tensor: the activations
``top_k`` ranks by, the unit ``reconstruct`` starts from, the score ``saliency`` differentiates and
the objective ``featurevis`` maximises.

The layouts that break visualization tools (a nested base model, an image and a metadata input,
two outputs, mixed precision) are model kinds of the same matrix: each twin is the flat,
single-input, single-output float32 model built by hand with the same layers and weights.

An ONNX file is one more kind: a small NCHW CNN written with ``onnx.helper`` as PyTorch's exporter
writes one (``/features/features.0/Conv``, ...), imported with ``tfvis.load_model``. Its twin is
built in Keras from the ONNX weight arrays themselves (kernels transposed to NHWC by hand here),
never from the imported model, and the imported logits are checked against onnxruntime's.
"""

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvis
from tfvis import deconv, featurevis, saliency, targets

SIZE = 12


def _sequential(fused):
    """Conv(relu) -> pool -> conv(relu) -> GAP -> dense(softmax); ``fused=False`` is its hand-split twin."""
    act = (lambda name: [keras.layers.ReLU(name=f"{name}_relu")]) if not fused else (lambda name: [])
    relu = "relu" if fused else None
    layers = [
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation=relu, name="c1"),
        *act("c1"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Conv2D(5, 3, padding="same", activation=relu, name="c2"),
        *act("c2"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation="softmax" if fused else None, name="head"),
    ]
    if not fused:
        layers.append(keras.layers.Softmax(name="head_softmax"))
    return keras.Sequential(layers, name="seq")


def _branching(_fused):
    """Branches, a residual add and a concatenation; its activations are layers already (its own twin)."""
    x = inputs = keras.Input((SIZE, SIZE, 3))
    a = keras.layers.ReLU(name="a_relu")(keras.layers.Conv2D(4, 3, padding="same", name="a")(x))
    b1 = keras.layers.Conv2D(4, 3, padding="same", name="b1")(a)
    b2 = keras.layers.Conv2D(4, 1, name="b2")(keras.layers.ReLU(name="b1_relu")(b1))
    add = keras.layers.Add(name="add")([a, b2])
    added = keras.layers.ReLU(name="add_relu")(add)
    cat = keras.layers.Concatenate(name="cat")([added, a])
    d = keras.layers.ReLU(name="d_relu")(keras.layers.Conv2D(6, 3, strides=2, name="d")(cat))
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D(name="gap")(d))
    return keras.Model(inputs, keras.layers.Softmax(name="probs")(logits), name="branching")


def _fused_non_relu(fused):
    """Fused tanh and sigmoid convolutions and a fused softmax head; ``fused=False`` is its hand-split twin."""

    def conv(x, filters, activation, name):
        x = keras.layers.Conv2D(filters, 3, activation=activation if fused else None, name=name)(x)
        return x if fused else keras.layers.Activation(activation, name=f"{name}_{activation}")(x)

    x = inputs = keras.Input((SIZE, SIZE, 3))
    x = conv(conv(x, 4, "tanh", "c1"), 3, "sigmoid", "c2")
    head = keras.layers.Dense(2, activation="softmax" if fused else None, name="head")(keras.layers.Flatten(name="flat")(x))
    if not fused:
        head = keras.layers.Softmax(name="head_softmax")(head)
    return keras.Model(inputs, head, name="fused")


def _conv_base(x):
    """The convolutional part of :func:`_sequential`, fused ReLUs, on tensor ``x``."""
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    return keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(x)


def _nested(fused):
    """The transfer-learning layout: a base model used as one layer, then pooling and a head; twin: :func:`_sequential`."""
    if not fused:
        return _sequential(False)
    image = keras.Input((SIZE, SIZE, 3))
    base = keras.Model(image, _conv_base(image), name="base")
    head = keras.layers.Dense(3, activation="softmax", name="head")
    return keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), base, keras.layers.GlobalAveragePooling2D(name="gap"), head], name="nested"
    )


#: The metadata vector the two-input model's second input holds (set with tfvis.graph.set_image_input).
META = np.array([0.5, -2.0], np.float32)


def _two_inputs(fused):
    """A metadata input first, then the image; the head reads both. Twin: :func:`_sequential` whose head folds ``META`` in."""
    if not fused:
        return _sequential(False)
    meta, image = keras.Input((2,), name="meta"), keras.Input((SIZE, SIZE, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(_conv_base(image))
    both = keras.layers.Concatenate(name="cat")([pooled, meta])
    model = keras.Model([meta, image], keras.layers.Dense(3, activation="softmax", name="head")(both), name="two_inputs")
    return tfvis.graph.set_image_input(model, others={"meta": META})  # the image input is found by its shape


def _two_outputs(fused):
    """A regression head first, then the class head; twin: :func:`_sequential` (the class head alone)."""
    if not fused:
        return _sequential(False)
    image = keras.Input((SIZE, SIZE, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(_conv_base(image))
    outputs = [keras.layers.Dense(1, name="reg")(pooled), keras.layers.Dense(3, activation="softmax", name="head")(pooled)]
    return keras.Model(image, outputs, name="two_outputs")


def _mixed_precision(fused):
    """:func:`_sequential` built under ``mixed_float16``; the twin is float32.

    Mixed precision keeps float32 weights, and the prepared model is a float32 copy, so every
    method gives the float32 twin's numbers (to float32 rounding, as for the other kinds), not
    float16's.
    """
    if not fused:
        return _sequential(False)
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _sequential(True)
    finally:
        keras.mixed_precision.set_global_policy(before)


# --- An ONNX file (PyTorch's export layout) -------------------------------------------------------

HAVE_ONNX = all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))


def _onnx_weights():
    """The ONNX initializers, in PyTorch's layouts: Conv ``(O, I, kH, kW)``, Linear ``(out, in)``."""
    rng = np.random.default_rng(3)

    def normal(*shape, scale):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "features.0.weight": normal(8, 3, 3, 3, scale=0.05),
        "features.0.bias": normal(8, scale=0.5),
        "features.3.weight": normal(6, 8, 3, 3, scale=0.1),
        "features.3.bias": normal(6, scale=0.5),
        "classifier.weight": normal(3, 6, scale=0.3),
        "classifier.bias": normal(3, scale=0.5),
    }


def _onnx_graph():
    """``features = Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(8, 6, 3), ReLU())``,
    ``AdaptiveAvgPool2d(1)``, ``torch.flatten(x, 1)``, ``Linear(6, 3)``: the graph ``torch.onnx.export`` writes."""
    from onnx import TensorProto, helper, numpy_helper

    def node(op, inputs, scope, **attrs):
        return helper.make_node(op, inputs, [f"{scope}/{op}_output_0"], name=f"{scope}/{op}", **attrs)

    nodes = [
        node(
            "Conv",
            ["input", "features.0.weight", "features.0.bias"],
            "/features/features.0",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
            dilations=[1, 1],
            group=1,
        ),
        node("Relu", ["/features/features.0/Conv_output_0"], "/features/features.1"),
        node(
            "MaxPool",
            ["/features/features.1/Relu_output_0"],
            "/features/features.2",
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[0, 0, 0, 0],
            ceil_mode=0,
        ),
        node(
            "Conv",
            ["/features/features.2/MaxPool_output_0", "features.3.weight", "features.3.bias"],
            "/features/features.3",
            kernel_shape=[3, 3],
            pads=[0, 0, 0, 0],
            strides=[1, 1],
        ),
        node("Relu", ["/features/features.3/Conv_output_0"], "/features/features.4"),
        node("GlobalAveragePool", ["/features/features.4/Relu_output_0"], "/avgpool"),
        node("Flatten", ["/avgpool/GlobalAveragePool_output_0"], "", axis=1),
        helper.make_node(
            "Gemm",
            ["/Flatten_output_0", "classifier.weight", "classifier.bias"],
            ["output"],
            name="/classifier/Gemm",
            alpha=1.0,
            beta=1.0,
            transB=1,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 3])],
        [numpy_helper.from_array(value, name=name) for name, value in _onnx_weights().items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch")
    model.ir_version = 8
    return model


def _onnx_imported(fused, path=None):
    """The ONNX file at ``path`` as ``tfvis.load_model`` imports it; ``fused=False``: its twin, built in
    Keras from :func:`_onnx_weights` (NHWC layers named as the importer names PyTorch's modules)."""
    if fused:
        return tfvis.load_model(str(path))
    w = _onnx_weights()
    x = inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="features_0")(x)
    x = keras.layers.ReLU(name="features_1")(x)
    x = keras.layers.MaxPooling2D(2, name="features_2")(x)
    x = keras.layers.Conv2D(6, 3, name="features_3")(x)
    x = keras.layers.ReLU(name="features_4")(x)
    x = keras.layers.Flatten(name="flatten")(keras.layers.GlobalAveragePooling2D(keepdims=True, name="avgpool")(x))
    logits = keras.layers.Dense(3, name="classifier")(x)
    twin = keras.Model(inputs, logits, name="onnx_twin")
    for layer in ("features_0", "features_3"):  # (O, I, kH, kW) -> (kH, kW, I, O)
        prefix = layer.replace("_", ".")
        twin.get_layer(layer).set_weights([w[f"{prefix}.weight"].transpose(2, 3, 1, 0), w[f"{prefix}.bias"]])
    twin.get_layer("classifier").set_weights([w["classifier.weight"].T, w["classifier.bias"]])  # (out, in) -> (in, out)
    return twin


_LIKE_SEQUENTIAL = {"channel": "c2:1", "unit": "c2:1@2,3", "post": "c1_relu:2", "class": "logits:2"}

# kind -> (builder, {target kind: target string}); "class" targets name the logits
MODELS = {
    "sequential": (_sequential, _LIKE_SEQUENTIAL),
    "branching": (_branching, {"channel": "add:2", "unit": "add:2@1,1", "post": "add_relu:3", "class": "logits:1"}),
    "fused": (_fused_non_relu, {"channel": "c1:3", "unit": "c2:1@2,2", "post": "c1_tanh:3", "class": "0"}),
    "nested": (_nested, _LIKE_SEQUENTIAL),
    "two_inputs": (_two_inputs, _LIKE_SEQUENTIAL),
    "two_outputs": (_two_outputs, _LIKE_SEQUENTIAL),
    "mixed_precision": (_mixed_precision, _LIKE_SEQUENTIAL),
    "onnx": (
        _onnx_imported,
        {"channel": "features_3:1", "unit": "features_3:1@2,3", "post": "features_1:2", "class": "logits:2"},
    ),
}
REFERENCE_LOGITS = dict.fromkeys(MODELS, "head") | {"branching": "logits", "onnx": "classifier"}
#: Kinds read from a file: the builder takes the file's path, and the twin holds the file's weights (no copy_weights).
FROM_FILE = {"onnx": HAVE_ONNX}
MODEL_KINDS = [
    pytest.param(kind, marks=pytest.mark.skipif(not FROM_FILE[kind], reason="needs onnx and onnxruntime"))
    if kind in FROM_FILE
    else kind
    for kind in MODELS
]


def leaf_layers(model):
    """Every layer of ``model`` that is not a model, nested models' layers included."""
    for layer in model.layers:
        yield from leaf_layers(layer) if isinstance(layer, keras.Model) else [layer]


def copy_weights(model, twin):
    """The twin gets ``model``'s weights, layer by layer (by name; layers the twin lacks are left out)."""
    names = {layer.name for layer in twin.layers}
    for layer in leaf_layers(model):
        if layer.weights and layer.name in names:
            weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
            if layer.name == "head" and model.name == "two_inputs":  # the held metadata folded into the bias
                kernel, bias = weights
                weights = [kernel[:-2], bias + META @ kernel[-2:]]
            twin.get_layer(layer.name).set_weights(weights)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """The ONNX model of :func:`_onnx_graph`, saved once for the module."""
    import onnx

    path = tmp_path_factory.mktemp("onnx") / "small_cnn.onnx"
    onnx.save(_onnx_graph(), str(path))
    return path


@pytest.fixture(scope="module")
def pairs(request):
    """kind -> (model as a user gives it, hand-split twin with the same weights)."""
    built = {}
    for kind, (build, _) in MODELS.items():
        keras.utils.set_random_seed(7)
        if kind in FROM_FILE:
            if FROM_FILE[kind]:  # the twin holds the file's own arrays: no weights copied from the import
                built[kind] = (build(True, request.getfixturevalue(f"{kind}_file")), build(False))
            continue
        model = build(True)
        twin = build(False)
        copy_weights(model, twin)
        built[kind] = (model, twin)
    return built


def _images(count, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


def _reference(twin, kind, text):
    """``(layer name, channel, position)`` of the target on the twin, parsed here by hand."""
    if text.startswith("logits:") or text.isdigit():
        return REFERENCE_LOGITS[kind], int(text.rpartition(":")[2]), None
    head, _, where = text.partition("@")
    name, _, channel = head.partition(":")
    return name, int(channel), tuple(int(v) for v in where.split(",")) if where else None


def _twin_tensor(twin, name, images):
    return keras.Model(twin.inputs[0], twin.get_layer(name).output)(images).numpy()


def _twin_gradient(twin, name, images, weights_fn):
    """``d sum(T * w) / d images`` with ``w = weights_fn(T)`` held constant, T the twin's tensor."""
    net = keras.Model(twin.inputs[0], twin.get_layer(name).output)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        t = net(x)
    return tape.gradient(t, x, output_gradients=tf.constant(weights_fn(t.numpy()), tf.float32)).numpy()


def _one_hot_unit(values, channel, position):
    mask = np.zeros_like(values)
    if position is None:
        mask[..., channel] = 1.0
    else:
        mask[(slice(None),) + tuple(position) + (channel,)] = 1.0
    return mask


KINDS = ("channel", "unit", "post", "class")
COUNTS = (1, 3, 16)


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("target_kind", KINDS)
@pytest.mark.parametrize("model_kind", MODEL_KINDS)
@pytest.mark.parametrize("method", ["activations", "top_k", "reconstruct", "saliency", "featurevis"])
def test_one_target_names_one_tensor(pairs, method, model_kind, target_kind, count):
    model, twin = pairs[model_kind]
    text = MODELS[model_kind][1][target_kind]
    name, channel, position = _reference(twin, model_kind, text)
    images = _images(count, seed=count)
    expected = _twin_tensor(twin, name, images)
    tolerance = 1e-5 * max(np.abs(expected).max(), 1e-3)
    resolved = targets.resolve(tfvis.prepared(model), text)
    if method == "activations":
        got = tfvis.activations(model, [resolved.layer], images, batch_size=count)[resolved.layer]
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    elif method == "top_k":
        result = tfvis.top_k(model, images, resolved.layer, channels=[channel], k=min(count, 3), methods=(), progress=False)
        per_image = expected[..., channel].reshape(count, -1).max(axis=1)
        np.testing.assert_allclose(result.values[0], np.sort(per_image)[::-1][: min(count, 3)], rtol=0, atol=tolerance)
    elif method == "reconstruct":
        got = deconv.reconstruct(model, images, text, method="gradient", position=None, batch_size=count)
        want = _twin_gradient(twin, name, images, lambda t: t * _one_hot_unit(t, channel, position))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(np.abs(want).max(), 1e-6))
    elif method == "saliency":
        target = int(text.rpartition(":")[2]) if target_kind == "class" else text
        got = saliency.gradients(model, images, target, batch_size=count)
        spatial = expected.ndim == 4 and position is None
        weights = lambda t: _one_hot_unit(t, channel, position) / (np.prod(t.shape[1:-1]) if spatial else 1.0)
        want = _twin_gradient(twin, name, images, weights)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(np.abs(want).max(), 1e-6))
    else:
        if target_kind == "class":
            objective = featurevis.class_logit(channel)
        elif position is None:
            objective = featurevis.channel(text)
        else:
            objective = featurevis.neuron(text)
        got = float(featurevis.objective_value(model, objective, images))
        values = expected[..., channel] if position is None else expected[(slice(None),) + tuple(position) + (channel,)]
        np.testing.assert_allclose(got, values.mean(), rtol=1e-5, atol=tolerance)


@pytest.mark.skipif(not HAVE_ONNX, reason="needs onnx and onnxruntime")
def test_the_onnx_kind_computes_what_onnxruntime_computes(pairs, onnx_file):
    """The imported model's layers are named after PyTorch's modules, and its logits (and the
    post-ReLU map the matrix targets) are onnxruntime's on the same images: the chain file ->
    import -> twin is closed."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model, _ = pairs["onnx"]
    names = ["features_0", "features_1", "features_2", "features_3", "features_4", "avgpool", "flatten", "classifier"]
    assert [layer.name for layer in model.layers[1:]] == names
    assert targets.resolve(tfvis.prepared(model), "logits:2").layer == "classifier"
    graph = onnx.load(str(onnx_file))
    inner = "/features/features.1/Relu_output_0"
    graph.graph.output.append(helper.make_tensor_value_info(inner, TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    images = _images(4, seed=5)
    want_logits, want_relu = session.run(["output", inner], {"input": images.transpose(0, 3, 1, 2)})
    got_logits, got_relu = keras.Model(model.inputs[0], [model.output, model.get_layer("features_1").output])(images)
    for got, want in ((got_logits, want_logits), (got_relu, want_relu.transpose(0, 2, 3, 1))):
        got = keras.ops.convert_to_numpy(got)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


# ---------------------------------------------------------------------------------------------
# The target syntax
# ---------------------------------------------------------------------------------------------


def test_parse_every_form():
    T = targets.Target
    assert targets.parse("block4_conv3") == T("block4_conv3")
    assert targets.parse("block4_conv3:12") == T("block4_conv3", 12)
    assert targets.parse("block4_conv3:12@3,5") == T("block4_conv3", 12, (3, 5))
    assert targets.parse(281) == targets.parse("281") == targets.parse("logits:281") == T("logits", 281)
    assert targets.parse(np.int64(7)).is_class
    for bad in ("block4_conv3:x", "block4_conv3@3,5", "b:1@3,y", ":3", "b:-1", 2.5, None):
        with pytest.raises(ValueError, match="target"):
            targets.parse(bad)
    assert str(targets.parse("b:1@3,5")) == "b:1@3,5"


def test_command_line_lists_cannot_confuse_positions():
    texts = [str(t) for t in targets.parse_list("281; block5_conv3:12@3,5 block4_conv3:7")]
    assert texts == ["logits:281", "block5_conv3:12@3,5", "block4_conv3:7"]
    assert [str(t) for t in targets.parse_list(["a:1@0,0", "b:2"])] == ["a:1@0,0", "b:2"]
    assert [str(t) for t in targets.parse_list("281,block5_conv3:12")] == ["logits:281", "block5_conv3:12"]
    for ambiguous in ("281,a:1@3,5", "a:1@3,5,b:2", "a:1@3,5@4"):
        with pytest.raises(ValueError, match="';' or spaces"):
            targets.parse_list(ambiguous)


def test_resolve_errors_name_the_valid_choices(pairs):
    model, _ = pairs["sequential"]
    net = tfvis.prepared(model)
    with pytest.raises(ValueError, match="has no layer 'nope'.*c1"):
        targets.resolve(net, "nope:0")
    with pytest.raises(ValueError, match="channels 0..4; got 9"):
        targets.resolve(net, "c2:9")
    with pytest.raises(ValueError, match="needs 2 coordinates"):
        targets.resolve(net, "c2:0@1")
    with pytest.raises(ValueError, match="outside layer 'c2'"):
        targets.resolve(net, "c2:0@6,0")
    with pytest.raises(ValueError, match="classes 0..2"):
        targets.resolve(net, 3)
    with pytest.raises(ValueError, match="no spatial map"):
        targets.resolve(net, "gap:0@1,1")
    assert targets.resolve(net, "c2:1").kind == "channel"
    assert targets.resolve(net, "gap:1").kind == "unit"
    assert targets.resolve(net, "c2").kind == "layer"


def test_logits_finder_walks_back_over_softmax(pairs):
    assert targets.logits_layer(tfvis.prepared(pairs["branching"][0])).layer == "logits"
    # on the user's model itself a fused softmax head is read through its Dense kernel
    fused = targets.logits_layer(pairs["fused"][0])
    assert (fused.layer, fused.classes, fused.head.name) == ("flat", 2, "head")
    headless = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="no class output"):
        targets.logits_layer(headless)


# ---------------------------------------------------------------------------------------------
# The prepared model and the backward rules
# ---------------------------------------------------------------------------------------------


def test_prepared_splits_every_fused_activation_once(pairs):
    model, _ = pairs["fused"]
    net = tfvis.prepared(model)
    assert net is tfvis.prepared(model)  # one prepared model per model
    names = [layer.name for layer in net.layers]
    assert {"c1_tanh", "c2_sigmoid", "head_softmax"} <= set(names)
    assert tfvis.graph.activation_name(net.get_layer("c1")) is None
    branching, _ = pairs["branching"]
    assert tfvis.prepared(branching) is branching  # nothing fused: the model itself
    # weight surgery on the user's model is seen by the prepared copy
    images = _images(2)
    before = tfvis.activations(model, ["c1"], images)["c1"]
    kernel, bias = model.get_layer("c1").get_weights()
    model.get_layer("c1").set_weights([kernel, bias + 1.0])
    try:
        np.testing.assert_allclose(tfvis.activations(model, ["c1"], images)["c1"], before + 1.0, rtol=1e-5, atol=1e-4)
    finally:
        model.get_layer("c1").set_weights([kernel, bias])


def test_redirected_relu_hand_worked():
    """Lucid's rule for ascent: a blocked image (every unit below zero) lets rising signal through."""
    x = tf.constant([[[-1.0, -2.0]], [[3.0, -1.0]]])  # image 0 dead, image 1 alive
    g = tf.constant([[[0.5, -0.25]], [[0.5, 2.0]]])
    out = tfvis.rules.redirect(keras.layers.ReLU(), x, g).numpy()
    # image 0: plain mask stops everything; g > 0 passes (raises x), g < 0 at x < 0 is stopped
    np.testing.assert_array_equal(out[0], [[0.5, 0.0]])
    # image 1: the plain gradient g * [x > 0]
    np.testing.assert_array_equal(out[1], [[0.5, 0.0]])


def test_every_layer_of_a_resnet_is_a_target():
    """Keras' residual-block outputs (Activation layers, post-ReLU by construction) and the adds."""
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), include_top=False)
    images = _images(1)[:, :SIZE, :SIZE].repeat(6, axis=1).repeat(6, axis=2)[:, :64, :64]
    for name in ("conv3_block4_out", "conv3_block4_add", "conv2_block1_1_relu"):
        acts = tfvis.activations(model, [name], images)[name]
        want = keras.Model(model.inputs[0], model.get_layer(name).output)(images).numpy()
        np.testing.assert_allclose(acts, want, rtol=1e-4, atol=1e-4)
        maps = saliency.vanilla(model, images, f"{name}:3")
        assert maps.shape == (1, 64, 64) and np.isfinite(maps).all()
    assert (tfvis.activations(model, ["conv3_block4_out"], images)["conv3_block4_out"] >= 0).all()
