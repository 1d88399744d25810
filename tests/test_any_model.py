"""Methods on Keras models a user brings: fixed input sizes, Keras applications."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvis
from tfvis import deconv


def _fixed_size_functional():
    """A fixed 20 x 20 input, strided layers that do not pad (aligned crops would be exact, but do not fit)."""
    x = inputs = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    return keras.Model(inputs, x, name="fixed")


@pytest.mark.parametrize(
    "build, layer",
    [
        (_fixed_size_functional, "c2"),
        (lambda: keras.applications.VGG16(weights=None, input_shape=(64, 64, 3), include_top=False), "block2_conv1"),
    ],
)
def test_top_k_reconstructs_on_models_with_a_fixed_input_size(build, layer):
    keras.utils.set_random_seed(0)
    model = build()
    side = model.inputs[0].shape[1]
    images = np.rint(np.random.default_rng(0).uniform(0, 255, (5, side, side, 3))).astype(np.float32)  # top_k keeps uint8 pixels
    result = tfvis.top_k(model, images, layer, channels=[1, 2], k=2, batch_size=4, progress=False)
    rf = result.receptive_field
    for row, channel in enumerate(result.channels):
        for rank in range(result.k):
            index = int(result.image_index[row, rank])
            y, x = (int(v) for v in result.positions[row, rank])
            # independent of top_k's crops: the whole-image reconstruction of that unit, cut to its field
            full = deconv.reconstruct(model, images[index], f"{layer}:{channel}@{y},{x}", "deconvnet")
            want = rf.crop(full, y, x, fill=0.0)
            np.testing.assert_allclose(
                result.reconstructions["deconvnet"][row, rank], want, rtol=0, atol=1e-5 * max(np.abs(want).max(), 1e-6)
            )


def _fixed_size_with_dense():
    x = inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, name="c2")(x)
    d = keras.layers.Dense(3, name="d")(keras.layers.Flatten(name="flat")(x))
    return keras.Model(inputs, d, name="fixed_dense")


def test_render_on_a_fixed_input_model_frees_the_input_where_the_graph_allows(capsys):
    from tfvis import featurevis

    keras.utils.set_random_seed(1)
    model = _fixed_size_with_dense()
    conv = featurevis.render(model, "c2:1", size=40, steps=4, progress=False)  # 40 px + transforms != 24
    assert conv.shape == (1, 40, 40, 3) and np.isfinite(conv).all()
    assert "through a copy with a free input size (its layers up to c2 are fully convolutional)" in capsys.readouterr().err
    dense = featurevis.render(model, "d:2", size=40, steps=4, progress=False)
    assert dense.shape == (1, 40, 40, 3) and np.isfinite(dense).all()
    assert "need that size; rendering at 24 x 24" in capsys.readouterr().err
    # resized to the model's size, the dense unit is read on the model's own layers: same value as a direct pass
    features = featurevis.FeatureNet(model, ["d"], input_hw=(40, 40))
    image = np.asarray(dense) * 255.0
    resized = tf.image.resize(image, (24, 24), method="bilinear").numpy()
    np.testing.assert_allclose(features(tf.constant(image))["d"].numpy(), model(resized).numpy(), rtol=1e-4, atol=1e-4)


def test_caricature_of_a_saved_fixed_size_model(tmp_path):
    """The seed's case: a saved Keras model with a fixed input size, caricatured at another size."""
    from tfvis import featurevis

    keras.utils.set_random_seed(2)
    model = _fixed_size_functional()
    path = tmp_path / "fixed.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    photos = np.random.default_rng(3).uniform(0, 255, (2, 30, 30, 3)).astype(np.float32)
    out = featurevis.caricature(loaded, photos, "c2", steps=4, size=36, progress=False)
    assert out.shape == (2, 36, 36, 3) and np.isfinite(out).all()
