"""The signal fed back at the target: the activation (Zeiler & Fergus) or 1 (captum), worked by hand."""

import keras
import numpy as np
import pytest

from tfvis import deconv


@pytest.fixture(scope="module")
def two_layer():
    """x -> conv a (1x1, weight 1) -> ReLU -> conv b (2x2 valid, kernel [[1, -1], [2, 1]]): one unit b(0, 0)."""
    inputs = keras.Input((2, 2, 1))
    a = keras.layers.Conv2D(1, 1, use_bias=False, name="a")(inputs)
    b = keras.layers.Conv2D(1, 2, use_bias=False, name="b")(keras.layers.ReLU(name="a_relu")(a))
    model = keras.Model(inputs, b)
    model.get_layer("a").set_weights([np.ones((1, 1, 1, 1), np.float32)])
    model.get_layer("b").set_weights([np.array([[1.0, -1.0], [2.0, 1.0]], np.float32).reshape(2, 2, 1, 1)])
    return model


IMAGE = np.array([[2.0, 1.0], [-3.0, 0.5]], np.float32).reshape(1, 2, 2, 1)
# b(0, 0) = 1 * 2 - 1 * 1 + 2 * relu(-3) + 1 * 0.5 = 1.5; the unit signal reaching relu(a) is the kernel itself.
HAND = {
    "deconvnet": [[1.0, 0.0], [2.0, 1.0]],  # relu(kernel)
    "guided": [[1.0, 0.0], [0.0, 1.0]],  # relu(kernel) * [a > 0]
    "gradient": [[1.0, -1.0], [0.0, 1.0]],  # kernel * [a > 0]
}


@pytest.mark.parametrize("method", sorted(HAND))
@pytest.mark.parametrize("implementation", [deconv.reconstruct_generic, deconv.reconstruct_explicit])
def test_unit_signal_is_the_hand_worked_backward_pass(two_layer, method, implementation):
    unit = implementation(two_layer, IMAGE, "b:0", method, position=(0, 0), signal="unit")
    np.testing.assert_allclose(unit[0, ..., 0], HAND[method], atol=1e-6)
    activation = implementation(two_layer, IMAGE, "b:0", method, position=(0, 0))
    np.testing.assert_allclose(activation, 1.5 * unit, atol=1e-6)  # Zeiler & Fergus: times the activation


def test_units_and_bad_signal(two_layer):
    maps = deconv.reconstruct_units(two_layer, IMAGE, [0], ["b:0"], [(0, 0)], methods=("guided",), signal="unit")
    np.testing.assert_allclose(maps["guided"][0, ..., 0], HAND["guided"], atol=1e-6)
    with pytest.raises(ValueError, match="signal='one'; choose one of: activation, unit"):
        deconv.reconstruct(two_layer, IMAGE, "b:0", signal="one")
