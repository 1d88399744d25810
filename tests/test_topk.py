"""top_k: against a brute-force ranking, streaming from any source, and exact crop reconstructions."""

import numpy as np
import pytest
import tensorflow as tf

import tfvis
from tfvis import topk
from tfvis.deconv import reconstruct


@pytest.fixture(scope="module")
def vgg(vgg16_random):
    """The session's VGG16 with random weights (conftest.py; read-only)."""
    return vgg16_random


@pytest.fixture(scope="module")
def photos():
    ids, images = tfvis.images.sample_dataset(10, size=48)
    return dict(zip(ids, images))


def brute_force(model, layer, images, channels, k):
    acts = tfvis.activations(model, [layer], images)[layer][..., channels]
    flat = acts.reshape(len(images), -1, len(channels))
    maxima = flat.max(1)  # (N, C)
    order = np.argsort(-maxima, axis=0, kind="stable")[:k]
    return np.take_along_axis(maxima, order, 0).T, order.T, flat.argmax(1)


def test_matches_brute_force_ranking(vgg, photos):
    images = np.stack(list(photos.values()))
    channels = [0, 5, 17]
    result = tfvis.top_k(vgg, photos, "block2_conv2", channels=channels, k=4, batch_size=3, methods=(), progress=False)
    values, order, argmax = brute_force(vgg, "block2_conv2", images, channels, 4)
    np.testing.assert_allclose(result.values, values, rtol=1e-5)
    ids = np.array(list(photos))
    np.testing.assert_array_equal(result.image_ids, ids[order])
    width = 48 // 2
    for row in range(len(channels)):
        for rank in range(4):
            flat = argmax[order[row, rank], row]
            assert tuple(result.positions[row, rank]) == (flat // width, flat % width)
            assert len(set(result.image_ids[row])) == 4  # k different images


def test_patches_are_the_field_under_the_unit(vgg, photos):
    result = tfvis.top_k(vgg, photos, "block2_conv1", channels=[3], k=3, methods=(), progress=False)
    rf = tfvis.receptive_field(vgg, "block2_conv1", input_size=(48, 48))
    assert result.patches.shape == (1, 3, 10, 10, 3)
    for rank in range(3):
        image = photos[result.image_ids[0, rank]]
        y, x = result.positions[0, rank]
        expected = rf.crop(np.clip(np.rint(image), 0, 255).astype(np.uint8), y, x, fill=128)
        np.testing.assert_array_equal(result.patches[0, rank], expected)


def test_sources_stream_alike_and_memory_stays_bounded(vgg, photos, tmp_path, monkeypatch):
    from PIL import Image

    for name, image in photos.items():
        Image.fromarray(np.rint(image).astype(np.uint8)).save(tmp_path / f"{name}.png")
    array = np.stack([np.rint(im) for im in photos.values()])
    kept_sizes = []
    real_merge = topk._RunningTopK.merge_entries

    def spy(self, *args):
        real_merge(self, *args)
        kept_sizes.append(len(self.referenced()))

    monkeypatch.setattr(topk._RunningTopK, "merge_entries", spy)
    from_dir = tfvis.top_k(vgg, tmp_path, "block1_conv2", channels=[1, 2], k=2, batch_size=4, methods=(), progress=False)
    from_data = tfvis.top_k(
        vgg,
        tf.data.Dataset.from_tensor_slices(array),
        "block1_conv2",
        channels=[1, 2],
        k=2,
        batch_size=4,
        methods=(),
        progress=False,
    )
    np.testing.assert_allclose(from_dir.values, from_data.values, rtol=1e-5)
    assert max(kept_sizes) <= 2 * 2  # never more images than k x channels


def test_fewer_images_than_k(vgg, photos):
    two = dict(list(photos.items())[:2])
    with pytest.warns(UserWarning, match="k=4 is more than the 2 images read"):
        result = tfvis.top_k(vgg, two, "block1_conv1", channels=[0], k=4, methods=("deconvnet",), progress=False)
    assert result.k == 2 and sorted(result.image_ids[0]) == sorted(two) and np.isfinite(result.values[0]).all()
    assert result.reconstructions["deconvnet"].shape[1] == 2 and result.reconstructions["deconvnet"].any()


@pytest.mark.parametrize(
    "name, size, layer, channels",
    [("vgg16", 64, "block3_conv1", [2, 9]), ("alexnet", 131, "conv2", [4, 40])],
)
def test_crop_reconstructions_equal_full_image(name, size, layer, channels, zoo_model):
    """Reconstructing on an aligned crop around the field gives exactly the full-image result."""
    model = zoo_model(name)
    ids, images = tfvis.images.sample_dataset(6, size=size)
    data = dict(zip(ids, images))
    assert topk._crops_are_exact(model)
    cropped = tfvis.top_k(model, data, layer, channels=channels, k=3, batch_size=4, progress=False)
    rf = cropped.receptive_field
    windows = topk._crop_windows(rf, cropped.positions.reshape(-1, 2), (size, size, 3))
    assert windows is not None and windows[1][0] < size  # the crop path really ran
    for method, arrays in cropped.reconstructions.items():
        for row, channel in enumerate(channels):
            for rank in range(3):
                image = data[cropped.image_ids[row, rank]]
                y, x = (int(v) for v in cropped.positions[row, rank])
                full = reconstruct(model, np.rint(image)[None], f"{layer}:{channel}", method=method, position=[(y, x)])[0]
                expected = cropped.receptive_field.crop(full, y, x, fill=0.0)
                scale = np.abs(expected).max() or 1.0
                np.testing.assert_allclose(arrays[row, rank], expected, atol=1e-5 * scale, err_msg=f"{method} {channel} {rank}")
                assert np.abs(expected).max() > 0


def test_inception_uses_whole_images(inceptionv1_random):
    model = inceptionv1_random
    assert not topk._crops_are_exact(model)  # stride-2 "same" padding depends on the input size


def test_bad_channels(vgg, photos):
    with pytest.raises(ValueError, match="channels 0..63"):
        tfvis.top_k(vgg, photos, "block1_conv1", channels=[64], progress=False)
