"""Reading images of every common mode and format, sample photos, and batching from any source."""

import numpy as np
import pytest
from PIL import Image

from tfvis import images


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_lossless_rgb_formats_round_trip(tmp_path, rgb, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    Image.fromarray(rgb).save(path, format=fmt)
    loaded = images.load_image(path)
    assert loaded.dtype == np.float32 and loaded.shape == (20, 30, 3)
    np.testing.assert_array_equal(loaded, rgb.astype(np.float32))


def test_jpeg_is_close(tmp_path, rgb):
    smooth = np.repeat(np.repeat(rgb[:5, :5], 6, 0), 6, 1)
    Image.fromarray(smooth).save(tmp_path / "x.jpg", quality=95)
    loaded = images.load_image(tmp_path / "x.jpg")
    assert loaded.shape == (30, 30, 3)
    np.testing.assert_array_equal(loaded, np.asarray(Image.open(tmp_path / "x.jpg").convert("RGB")))
    assert np.abs(loaded - smooth).mean() < 12  # lossy, but the same picture


def test_greyscale_rgba_palette_cmyk_become_rgb(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(grey).save(tmp_path / "l.png")
    np.testing.assert_array_equal(images.load_image(tmp_path / "l.png"), np.repeat(grey[..., None], 3, -1))

    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], -1)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(images.load_image(tmp_path / "a.png"), rgb)

    palette = Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(images.load_image(tmp_path / "p.png"), np.asarray(palette.convert("RGB")))

    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(tmp_path / "c.tiff")
    np.testing.assert_allclose(images.load_image(tmp_path / "c.tiff"), np.asarray(cmyk.convert("RGB")), atol=1)


def test_16_bit_greyscale_scales_to_255(tmp_path):
    values = np.array([[0, 257 * 100], [65535, 257 * 255]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    Image.fromarray(values).save(tmp_path / "g16.tiff")
    for name in ("g16.png", "g16.tiff"):
        loaded = images.load_image(tmp_path / name)
        np.testing.assert_allclose(loaded[..., 0], [[0, 100], [255, 255]], atol=1e-3)


def test_not_an_image_names_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello")
    with pytest.raises(images.ImageLoadError, match="notes.jpg"):
        images.load_image(path)
    with pytest.raises(images.ImageLoadError, match="missing.png"):
        images.load_image(tmp_path / "missing.png")


def test_resize_and_centre_crop(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.png")
    out = images.load_image(tmp_path / "x.png", size=16)
    assert out.shape == (16, 16, 3)
    assert images.fit_image(np.zeros((40, 80, 3), np.float32), (20, 30)).shape == (20, 30, 3)


def test_sample_images_are_natural_rgb_photos():
    photos = images.sample_images(["chelsea", "coffee", "camera"], size=64)
    assert list(photos) == ["chelsea", "coffee", "camera"]
    for photo in photos.values():
        assert photo.shape == (64, 64, 3) and photo.dtype == np.float32
        assert 0 <= photo.min() and photo.max() <= 255 and photo.std() > 10
    with pytest.raises(ValueError, match="chelsea"):
        images.sample_images(["lena"])


def test_sample_dataset_adds_distinct_crops():
    ids, batch = images.sample_dataset(len(images.SAMPLE_NAMES) + 5, size=32)
    assert batch.shape == (len(images.SAMPLE_NAMES) + 5, 32, 32, 3)
    assert ids[: len(images.SAMPLE_NAMES)] == list(images.SAMPLE_NAMES)
    assert ids[-1].endswith("_crop0") and len(set(ids)) == len(ids)
    assert not np.allclose(batch[len(images.SAMPLE_NAMES)], batch[0])


def test_directory_iterator_skips_bad_files_with_a_count(tmp_path, rgb, capsys):
    for i in range(3):
        Image.fromarray(rgb).save(tmp_path / f"img{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "sub").mkdir()
    Image.fromarray(rgb).save(tmp_path / "sub" / "deep.bmp")
    batches = list(images.iter_batches(tmp_path, batch_size=2, size=16))
    ids = [i for b in batches for i in b.ids]
    assert ids == ["img0.png", "img1.png", "img2.png", "sub/deep.bmp"]
    assert [b.images.shape[0] for b in batches] == [2, 2]
    err = capsys.readouterr().err
    assert err.count("broken.jpg") == 1 and "skipped 1 unreadable file(s) of 5" in err


def test_arrays_and_datasets_batch_alike(rgb):
    import tensorflow as tf

    stack = np.stack([rgb, rgb[::-1], rgb[:, ::-1]])
    from_array = list(images.iter_batches(stack, batch_size=2))
    from_dataset = list(images.iter_batches(tf.data.Dataset.from_tensor_slices((stack, [0, 1, 2])), batch_size=2))
    from_batched = list(images.iter_batches(tf.data.Dataset.from_tensor_slices(stack).batch(2), batch_size=2))
    for batches in (from_dataset, from_batched):
        assert [b.ids for b in batches] == [b.ids for b in from_array] == [["0", "1"], ["2"]]
        for a, b in zip(from_array, batches):
            np.testing.assert_array_equal(a.images, b.images)


def test_mixed_sizes_need_a_size(rgb):
    with pytest.raises(ValueError, match="size="):
        list(images.iter_batches([rgb, rgb[:10]], batch_size=4))
