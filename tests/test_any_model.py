"""Methods on Keras models a user brings: fixed input sizes, Keras applications."""
import keras
import numpy as np
import pytest

import tfvis
from tfvis import deconv


def _fixed_size_functional():
    """A fixed 20 x 20 input, strided layers that do not pad (aligned crops would be exact, but do not fit)."""
    x = inputs = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    return keras.Model(inputs, x, name="fixed")


@pytest.mark.parametrize("build, layer", [
    (_fixed_size_functional, "c2"),
    (lambda: keras.applications.VGG16(weights=None, input_shape=(64, 64, 3), include_top=False), "block2_conv1"),
])  # fmt: skip
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
            np.testing.assert_allclose(result.reconstructions["deconvnet"][row, rank], want, rtol=0, atol=1e-5 * max(np.abs(want).max(), 1e-6))
