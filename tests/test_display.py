"""Display helpers and the inline display of results in notebooks (``_repr_html_``)."""

import base64
import io
import re

import keras
import numpy as np
import pytest
from PIL import Image

import tfvis
from tfvis import display


def _decoded_images(html):
    """The PNG images inlined in ``html`` as uint8 arrays, in order, and their alt texts."""
    sources = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))) for data, _ in sources], [alt for _, alt in sources]


def test_to_image_is_symmetric_around_grey():
    r = np.array([[-2.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(display.to_image(r), [[0.0, 0.5], [0.75, 1.0]])
    np.testing.assert_array_equal(display.to_image(np.zeros((3, 3))), 0.5)
    assert display.to_image(np.full((2, 2), np.nan)).tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_to_uint8_rounds_and_drops_a_single_channel():
    out = display.to_uint8(np.array([[[0.0], [0.5]], [[1.0], [2.0]]]))
    assert out.dtype == np.uint8 and out.shape == (2, 2)
    assert out.tolist() == [[0, 128], [255, 255]]


def test_html_images_round_trip_pixels():
    rng = np.random.default_rng(0)
    pictures = [rng.uniform(0, 1, (5, 7, 3)), (rng.uniform(0, 255, (4, 4))).astype(np.uint8)]
    decoded, alts = _decoded_images(display.html_images(pictures, ["first", "<b>"]))
    assert alts == ["first", "&lt;b&gt;"]  # escaped
    np.testing.assert_array_equal(decoded[0], np.clip(pictures[0] * 255 + 0.5, 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(decoded[1], pictures[1])
    with pytest.raises(ValueError, match="labels"):
        display.html_images(pictures, ["only one"])


def test_maps_display_inline_as_heatmaps():
    values = np.stack([np.outer(np.arange(4), np.ones(6)), np.zeros((4, 6))]).astype(np.float32)
    maps = display.as_maps(values)
    assert isinstance(maps, np.ndarray) and np.shares_memory(maps, values)
    decoded, _ = _decoded_images(maps._repr_html_())
    assert len(decoded) == 2 and decoded[0].shape == (4, 6, 3)
    # jet: the smallest value is dark blue, the largest dark red
    assert decoded[0][0, 0, 2] > 100 and decoded[0][0, 0, 0] < 50
    assert decoded[0][-1, 0, 0] > 100 and decoded[0][-1, 0, 2] < 50


def test_top_k_result_displays_its_patches_and_reconstructions():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3, name="c"), keras.layers.ReLU(name="c_relu")]
    )
    images = np.random.default_rng(1).uniform(0, 255, (4, 9, 9, 3)).astype(np.float32)
    result = tfvis.top_k(model, images, "c", k=2, methods=("deconvnet",), progress=False)
    decoded, alts = _decoded_images(result._repr_html_())
    assert len(decoded) == 2 * 2 * 2  # channels x (patches + deconvnet) x k
    np.testing.assert_array_equal(decoded[0], result.patches[0, 0])
    shown = display.to_image(result.reconstructions["deconvnet"][0, 0], percentile=display.RECONSTRUCTION_PERCENTILE)
    expected = display.to_uint8(shown)
    np.testing.assert_array_equal(decoded[2], expected)
    assert alts[0].startswith(str(result.image_ids[0, 0]))
