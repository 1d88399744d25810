"""Layer tools on any Keras model: split_activations, set_weights, layer_info, activations."""

import keras
import numpy as np
import pytest

import tfvis


def tiny_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b")(inputs)
    x = keras.layers.Concatenate(name="cat")([a, b])
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu6", name="dw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5, activation="softmax", name="out")(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def x16():
    return np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)


def assert_split(original, split, images):
    np.testing.assert_allclose(np.asarray(split(images)), np.asarray(original(images)), rtol=1e-5, atol=1e-6)
    for layer in split.layers:
        if layer.weights and getattr(layer, "activation", None) is not None:
            assert keras.activations.serialize(layer.activation) == "linear", layer.name


def test_split_branching_model(x16):
    model = tiny_cnn()
    split = tfvis.split_activations(model)
    assert_split(model, split, x16)
    names = [layer.name for layer in split.layers]
    for name, act in (("a", "relu"), ("b", "relu"), ("dw", "relu6"), ("out", "softmax")):
        assert f"{name}_{act}" in names
    # Pre-activation values are now the layer's own output: they go negative.
    pre = tfvis.activations(split, ["a", "a_relu"], x16)
    assert pre["a"].min() < 0 and pre["a_relu"].min() >= 0


def test_split_sequential(x16):
    keras.utils.set_random_seed(1)
    seq = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(3, 3, activation="relu", name="c"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(2, activation="sigmoid", name="d"),
        ]
    )
    split = tfvis.split_activations(seq)
    assert [layer.name for layer in split.layers][1:] == ["c", "c_relu", "flatten", "d", "d_sigmoid"]
    assert_split(seq, split, x16)


@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_split_keras_applications(name):
    """Residual additions (ResNet50) and ReLU6 (MobileNetV2) survive the rewrite with identical outputs."""
    model = getattr(keras.applications, name)(weights=None, input_shape=(64, 64, 3), classes=10)
    split = tfvis.split_activations(model)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    assert_split(model, split, images)
    assert split.get_layer("predictions_softmax") is not None
    assert any(isinstance(layer, keras.layers.Add) for layer in split.layers)


def test_set_weights_whole_layer_from_another_model(x16):
    a, b = tiny_cnn(0), tiny_cnn(1)
    tfvis.set_weights(a, "b", b)
    for wa, wb in zip(a.get_layer("b").get_weights(), b.get_layer("b").get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.allclose(a.get_layer("a").get_weights()[0], b.get_layer("a").get_weights()[0])


def test_set_weights_one_channel_and_modes():
    a, b = tiny_cnn(0), tiny_cnn(1)
    before = [w.copy() for w in a.get_layer("a").get_weights()]
    tfvis.set_weights(a, "a:2", b, mode="weight")
    kernel, bias = a.get_layer("a").get_weights()
    np.testing.assert_array_equal(kernel[..., 2], b.get_layer("a").get_weights()[0][..., 2])
    np.testing.assert_array_equal(np.delete(kernel, 2, -1), np.delete(before[0], 2, -1))
    np.testing.assert_array_equal(bias, before[1])
    tfvis.set_weights(a, "a:1", 0.0)
    kernel, bias = a.get_layer("a").get_weights()
    assert not kernel[..., 1].any() and bias[1] == 0 and kernel[..., 0].any()


def test_silenced_channel_outputs_zero(x16):
    model = tiny_cnn()
    tfvis.set_weights(model, "a:3", 0.0)
    acts = tfvis.activations(model, "a", x16)["a"]
    assert not acts[..., 3].any() and acts[..., 0].any()


def test_set_weights_depthwise_channel():
    a, b = tiny_cnn(0), tiny_cnn(1)
    tfvis.set_weights(a, "dw:5", b, mode="weight")  # channel 5 = input 2, multiplier 1
    np.testing.assert_array_equal(a.get_layer("dw").get_weights()[0][:, :, 2, 1], b.get_layer("dw").get_weights()[0][:, :, 2, 1])


def test_set_weights_errors():
    a = tiny_cnn()
    with pytest.raises(ValueError, match="no layer 'zz'.*a, b"):
        tfvis.set_weights(a, "zz", 0.0)
    with pytest.raises(ValueError, match="channels 0..3"):
        tfvis.set_weights(a, "a:4", 0.0)
    with pytest.raises(ValueError, match="mode"):
        tfvis.set_weights(a, "a", 0.0, mode="kernel")
    with pytest.raises(ValueError, match="integer"):
        tfvis.set_weights(a, "a:x", 0.0)


def test_layer_info_lists_convs_concats_dense():
    info = tfvis.layer_info(tiny_cnn())
    assert info == [("a", 4), ("b", 4), ("cat", 8), ("dw", 16), ("out", 5)]


def test_activations_match_direct_model_and_stream(tmp_path, x16):
    model = tiny_cnn()
    acts = tfvis.activations(model, ["cat", "out", "out_softmax"], x16, batch_size=2)
    np.testing.assert_allclose(acts["out_softmax"], np.asarray(model(x16)), rtol=1e-5)
    # "out" is the fused layer's pre-activation output (tfvis.graph.prepared): its softmax is the model's output
    logits = acts["out"] - acts["out"].max(axis=1, keepdims=True)
    np.testing.assert_allclose(
        np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), acts["out_softmax"], rtol=1e-5, atol=1e-7
    )
    assert acts["cat"].shape == (3, 16, 16, 8)
    streamed = list(tfvis.stream_activations(model, ["cat"], x16, batch_size=2))
    assert [ids for ids, _ in streamed] == [["0", "1"], ["2"]]
    np.testing.assert_allclose(np.concatenate([a["cat"] for _, a in streamed]), acts["cat"], rtol=1e-6)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        tfvis.activations(model, ["nope"], x16)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        tfvis.activations(model, ["cat"], x16[0])


def test_layer_tools_keep_their_old_homes():
    """split_activations moved beside the prepared model's split rule, find_layer to the leaf tfvis.layer_lookup."""
    from tfvis import graph, layer_lookup, layers, targets
    from tfvis.models import surgery

    assert tfvis.split_activations is graph.split_activations is surgery.split_activations
    assert targets.find_layer is layer_lookup.find_layer
    model = tiny_cnn()
    assert layers.get_layer(model, "cat") is model.get_layer("cat")
    with pytest.raises(ValueError, match=r"has no layer 'nope'; its layers include: a, b, cat, dw, out \(and 2 other layers"):
        layers.get_layer(model, "nope")
