"""Every method on the Keras layouts that break visualization tools (tfvis.graph.prepared).

A nested base model, an image input beside a metadata input, two outputs and a mixed-precision
model (the kinds of ``tests/test_core.py``, where ``activations``, ``top_k`` values, gradient
reconstructions, ``saliency.gradients`` and objective values are checked against each kind's
hand-built twin) give here the same Grad-CAM maps, vanilla saliency, deconvnet reconstructions
(generic and explicit), top-k lists with positions and reconstructions, and renders as their twin:
the flat, single-input, single-output float32 model with the same layers and weights. The
mixed-precision model is compared with a float32 twin at float32 tolerances: its prepared model
is a float32 copy (mixed policies keep float32 weights), so it computes the twin's numbers.

BatchNorm: no method changes a model's moving statistics, even where the user's graph was built
with ``training=True``.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_core import MODELS, SIZE, copy_weights

import tfvis
from tfvis import compare, deconv, featurevis, graph, inversion, saliency, targets

LAYOUTS = ("nested", "two_inputs", "two_outputs", "mixed_precision")


@pytest.fixture(scope="module")
def layout_pairs():
    built = {}
    for kind in LAYOUTS:
        build = MODELS[kind][0]
        keras.utils.set_random_seed(11)
        model, twin = build(True), build(False)
        copy_weights(model, twin)
        built[kind] = (model, twin)
    return built


def _images(count, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


def _close(got, want, scale=1e-5):
    np.testing.assert_allclose(got, want, rtol=0, atol=scale * max(float(np.abs(want).max()), 1e-6))


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("method", ["grad_cam", "vanilla", "deconvnet", "explicit", "top_k", "render"])
def test_every_method_equals_the_flat_twin(layout_pairs, kind, method):
    model, twin = layout_pairs[kind]
    images = _images(4, seed=3)
    if method == "grad_cam":
        _close(saliency.grad_cam(model, images, 2, layer="c2_relu"), saliency.grad_cam(twin, images, 2, layer="c2_relu"))
        _close(
            saliency.grad_cam(model, images, "c2_relu:1", layer="c1_relu"),
            saliency.grad_cam(twin, images, "c2_relu:1", layer="c1_relu"),
        )
    elif method == "vanilla":
        _close(saliency.vanilla(model, images, 1), saliency.vanilla(twin, images, 1), 1e-4)
    elif method == "deconvnet":
        for target in ("c2:1", "c1_relu:3@2,2"):
            _close(deconv.reconstruct(model, images, target), deconv.reconstruct(twin, images, target), 1e-4)
    elif method == "explicit":  # the layer-by-layer pipeline runs on the flat float32 copy (no dtype mix)
        for rule in deconv.METHODS:
            _close(
                deconv.reconstruct_explicit(model, images, "c2:3", rule),
                deconv.reconstruct_explicit(twin, images, "c2:3", rule),
                1e-4,
            )
    elif method == "top_k":
        got = tfvis.top_k(model, np.rint(images), "c2", channels=[0, 3], k=2, progress=False)
        want = tfvis.top_k(twin, np.rint(images), "c2", channels=[0, 3], k=2, progress=False)
        _close(got.values, want.values)
        np.testing.assert_array_equal(got.image_index, want.image_index)
        np.testing.assert_array_equal(got.positions, want.positions)
        for name, maps in want.reconstructions.items():
            _close(got.reconstructions[name], maps, 1e-4)
    else:
        options = dict(size=16, steps=3, seed=2, progress=False)
        _close(featurevis.render(model, "c2:1", **options), featurevis.render(twin, "c2:1", **options), 1e-4)


# ---------------------------------------------------------------------------------------------
# Nested models: names, ambiguity, weights
# ---------------------------------------------------------------------------------------------


def _tiny_base(name):
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(image)
    return keras.Model(image, keras.layers.Conv2D(2, 1, name="mix")(x), name=name)


def test_a_nested_base_is_flat_and_shares_the_users_weights(layout_pairs):
    model, _ = layout_pairs["nested"]
    assert [name for name, _ in tfvis.layer_info(model)] == ["c1", "c2", "head"]
    net = tfvis.prepared(model)
    assert net is tfvis.prepared(model) and len(net.inputs) == 1
    assert targets.find_layer(net, "base").name == "c2_relu"  # a nested model's name: its output
    images = _images(2)
    before = tfvis.activations(model, ["c1"], images)["c1"]
    inner = model.get_layer("base").get_layer("c1")
    kernel, bias = inner.get_weights()
    inner.set_weights([kernel, bias + 1.0])
    try:  # weight surgery on the user's nested layer is seen
        _close(tfvis.activations(model, ["c1"], images)["c1"], before + 1.0, 1e-4)
        tfvis.set_weights(model, "c1:2", 0.0)  # tfvis' own surgery finds the nested layer by its name
        assert np.all(tfvis.activations(model, ["c1"], images)["c1"][..., 2] == 0.0)
        assert not np.any(inner.get_weights()[0][..., 2])
    finally:
        inner.set_weights([kernel, bias])


def test_two_copies_of_one_base_are_told_apart_by_their_model_name():
    keras.utils.set_random_seed(4)
    left, right = _tiny_base("left"), _tiny_base("right")
    image = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(image, keras.layers.Concatenate(name="both")([left(image), right(image)]))
    names = [name for name, _ in tfvis.layer_info(model)]
    assert sorted(names) == ["both", "left.conv", "left.mix", "right.conv", "right.mix"]
    images = _images(2)
    for spelled in ("right/conv_relu", "right.conv_relu"):  # the fused ReLU split out, as everywhere
        got = tfvis.activations(model, [spelled], images)[spelled]
        _close(got, keras.Model(right.inputs[0], right.get_layer("conv").output)(images).numpy())
    with pytest.raises(ValueError, match="has no layer 'conv'.*left.conv"):
        targets.resolve(tfvis.prepared(model), "conv:0")


# ---------------------------------------------------------------------------------------------
# Several inputs, several outputs
# ---------------------------------------------------------------------------------------------


def _two_images():
    a, b = keras.Input((SIZE, SIZE, 3), name="a"), keras.Input((SIZE, SIZE, 3), name="b")
    conv = keras.layers.Conv2D(2, 3, name="c")
    return keras.Model([a, b], keras.layers.Add(name="sum")([conv(a), conv(b)]), name="pair")


def test_the_image_input_is_found_or_named():
    model = _two_images()
    with pytest.raises(ValueError, match=r"inputs a \(None, 12, 12, 3\), b .* several .*set_image_input"):
        tfvis.prepared(model)
    with pytest.raises(ValueError, match="has no input 'nope'; its inputs: a"):
        graph.set_image_input(model, "nope")
    other = np.full((SIZE, SIZE, 3), 10.0, np.float32)
    graph.set_image_input(model, "b", others={"a": other})
    images = _images(2)
    got = tfvis.activations(model, ["sum"], images)["sum"]
    _close(got, model([np.broadcast_to(other, images.shape), images]).numpy())
    with pytest.raises(ValueError, match="has shape"):
        graph.set_image_input(model, "b", others={"a": np.zeros(3)})
        tfvis.prepared(model)


def test_an_input_of_unknown_size_needs_its_value():
    image, words = keras.Input((SIZE, SIZE, 3), name="image"), keras.Input((None,), name="words")
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    summed = keras.layers.Lambda(lambda w: tf.reduce_sum(w, axis=1, keepdims=True), output_shape=(1,))(words)
    model = keras.Model([image, words], keras.layers.Concatenate()([pooled, summed]))
    with pytest.raises(ValueError, match="input 'words' .* give the value it holds"):
        tfvis.prepared(model)
    graph.set_image_input(model, others={"words": np.array([1.0, 2.0, 4.0])})
    last = tfvis.prepared(model).layers[-1].name
    assert tfvis.activations(model, [last], _images(1))[last][0, -1] == 7.0


def test_the_class_output_is_found_or_named(layout_pairs):
    model, _ = layout_pairs["two_outputs"]
    assert targets.logits_layer(tfvis.prepared(model)).layer == "head"  # the softmax output, though second
    regression = keras.Model(model.inputs, [model.outputs[0], model.get_layer("gap").output], name="no_classes")
    with pytest.raises(ValueError, match=r"outputs reg \(None, 1\), gap \(None, 5\) and none looks like class scores"):
        targets.logits_layer(regression)
    graph.set_class_output(regression, "reg")
    assert targets.resolve(tfvis.prepared(regression), 0).layer == "reg"
    graph.set_class_output(regression, "nope")
    with pytest.raises(ValueError, match="class output 'nope' is not an output layer"):
        targets.logits_layer(regression)


# ---------------------------------------------------------------------------------------------
# BatchNorm: inference mode everywhere
# ---------------------------------------------------------------------------------------------


def _batchnorm_models():
    """A graph built with ``bn(x, training=True)``, a nested base with BatchNorm, and the same under mixed precision."""
    keras.utils.set_random_seed(5)
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c")(image)
    x = keras.layers.ReLU(name="c_relu")(keras.layers.BatchNormalization(name="bn")(x, training=True))
    head = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D(name="gap")(x))
    baked = keras.Model(image, head, name="baked_training")

    def nested():
        inner_image = keras.Input((SIZE, SIZE, 3))
        y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c")(inner_image)
        base = keras.Model(inner_image, keras.layers.BatchNormalization(name="bn")(y), name="base")
        return keras.Sequential(
            [
                keras.Input((SIZE, SIZE, 3)),
                base,
                keras.layers.GlobalAveragePooling2D(name="gap"),
                keras.layers.Dense(3, name="logits"),
            ]
        )

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = nested()
    finally:
        keras.mixed_precision.set_global_policy(before)
    models = [baked, nested(), mixed]
    rng = np.random.default_rng(0)
    for model in models:
        bn = next(layer for layer in _leaves(model) if isinstance(layer, keras.layers.BatchNormalization))
        gamma, beta, _, _ = bn.get_weights()
        bn.set_weights([gamma, beta, rng.uniform(-1, 1, 4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)])
    return models


def _leaves(model):
    for layer in model.layers:
        yield from _leaves(layer) if isinstance(layer, keras.Model) else [layer]


def _moving_statistics(model):
    return [
        np.array(w)
        for layer in _leaves(model)
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.non_trainable_weights
    ]


def test_no_method_changes_batchnorm_statistics():
    images = _images(4, seed=9)
    for model in _batchnorm_models():
        before = _moving_statistics(model)
        calls = {
            "activations": lambda: tfvis.activations(model, ["bn", "c"], images),
            "top_k": lambda: tfvis.top_k(model, np.rint(images), "bn", channels=[1], k=2, progress=False),
            "reconstruct": lambda: [deconv.reconstruct(model, images, "bn:1", m) for m in deconv.METHODS],
            "explicit": lambda: deconv.reconstruct_explicit(model, images, "bn:1"),
            "grad_cam": lambda: saliency.grad_cam(model, images, 1),
            "smoothgrad": lambda: saliency.smoothgrad(model, images, 1, samples=2),
            "integrated": lambda: saliency.integrated_gradients(model, images, 1, steps=4),
            "class_model": lambda: saliency.class_model(model, 1, steps=2),
            "render": lambda: featurevis.render(model, "bn:1", size=16, steps=2, progress=False),
            "inversion": lambda: inversion.invert(model, images[0], "bn", steps=2),
            "cka": lambda: compare.model_cka(model, model, images, ["bn"], progress=False),
        }
        for method, call in calls.items():
            call()
            for want, got in zip(before, _moving_statistics(model)):
                np.testing.assert_array_equal(got, want, err_msg=f"{method} changed the moving statistics of {model.name}")
        # and the values read are the inference-mode ones: (c - mean) / sqrt(var + eps) * gamma + beta
        acts = tfvis.activations(model, ["c", "bn"], images)
        bn = next(layer for layer in _leaves(model) if isinstance(layer, keras.layers.BatchNormalization))
        gamma, beta, mean, variance = bn.get_weights()
        c = acts["c"] if model.name == "baked_training" else np.maximum(acts["c"], 0)
        _close(acts["bn"], (c - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta, 1e-4)
