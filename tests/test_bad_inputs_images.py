"""Hostile image files and folders: image bombs, extreme shapes, link loops in ``--images`` patterns.

A bomb is a small file that declares a huge image (a 30000 x 30000 PNG of zeros is about 110 KB):
the readers refuse it from its header with a warning naming it, read large files reduced with
bounded memory, and walk patterns over link loops in finite time. The library cases come first,
then the command line as a user runs it, in subprocesses.
"""

import glob
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tfvis import images

SMALL = ["--weights", "random", "--layers", "block1_conv1", "--channels", "2", "--size", "32", "--num-images", "6", "--quiet"]


def _blank_png(path, width, height, bit_depth=1):
    """Write a greyscale PNG of zeros chunk by chunk, so that no image of that size is ever held in memory."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width * bit_depth + 7) // 8)  # filter byte, then the packed samples
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return Path(path)


def _photo(path, width, height, **save):
    """Write scikit-image's cat at ``width`` x ``height``."""
    Image.fromarray(skimage.data.chelsea()).resize((width, height), Image.Resampling.BICUBIC).save(path, **save)
    return Path(path)


def _float_path(path, size):
    """What :func:`images.load_image` gave before large images were read reduced: all pixels as float, then fitted."""
    with Image.open(path) as image:
        image.load()
        return images.fit_image(images.to_rgb_array(images._pil_to_array(image)), size)


@pytest.fixture
def bomb(tmp_path):
    """``images/bomb.png``: 30000 x 30000 declared, 110 KB on disk."""
    (tmp_path / "images").mkdir()
    return _blank_png(tmp_path / "images" / "bomb.png", 30000, 30000)


# The library ---------------------------------------------------------------------------------------


def test_a_bomb_is_refused_from_its_header_naming_it(bomb):
    assert bomb.stat().st_size < 200_000
    limit_before = Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail here
        with pytest.raises(images.ImageSizeError) as caught:
            images.load_image(bomb, size=224)
    assert time.perf_counter() - start < 2
    message = str(caught.value)
    assert str(bomb) in message and "30000 x 30000 = 900,000,000 pixels" in message
    assert f"over the limit of {images.MAX_PIXELS:,}" in message and "--max-pixels" in message
    assert Image.MAX_IMAGE_PIXELS == limit_before  # Pillow's own check is back for everyone else


def test_max_pixels_replaces_pillows_own_limits(tmp_path, monkeypatch):
    """Between Pillow's warning (89 MP) and its error (179 MP), and past a lowered error limit: max_pixels decides."""
    big = _blank_png(tmp_path / "big.png", 10000, 10000)  # 100 MP: Pillow would warn
    with pytest.raises(images.ImageSizeError, match="10000 x 10000"):
        images.load_image(big, size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = images.load_image(big, size=64, max_pixels=None)
    assert read.shape == (64, 64, 3) and read.dtype == np.float32 and not read.any()

    photo = _photo(tmp_path / "photo.png", 120, 90)
    expected = _float_path(photo, 32)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would raise DecompressionBombError
    with pytest.raises(Image.DecompressionBombError):
        _float_path(photo, 32)
    np.testing.assert_array_equal(images.load_image(photo, size=32), expected)
    with pytest.raises(images.ImageSizeError, match="over the limit of 5,000"):
        images.load_image(photo, max_pixels=5000)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_shapes_too_elongated_to_crop_are_refused(tmp_path):
    strip = _blank_png(tmp_path / "strip.png", 1, 50000, bit_depth=8)
    with pytest.raises(images.ImageSizeError) as caught:
        images.load_image(strip, size=224)
    assert str(strip) in str(caught.value) and "1 x 50000 pixels, too elongated to centre-crop to 224 x 224" in str(caught.value)
    assert images.load_image(strip).shape == (50000, 1, 3)  # uncropped, the whole strip is a fine image

    at_limit = _photo(tmp_path / "at_limit.png", 400, 20)  # 20:1
    beyond = _photo(tmp_path / "beyond.png", 420, 20)  # 21:1
    assert images.load_image(at_limit, size=16).shape == (16, 16, 3)
    with pytest.raises(images.ImageSizeError, match="too elongated"):
        images.load_image(beyond, size=16)
    assert images.load_image(beyond, size=(10, 210)).shape == (10, 210, 3)  # the elongation counts against the crop's shape


def test_file_source_skips_bombs_with_one_warning_naming_each(bomb, capsys):
    folder = bomb.parent
    _photo(folder / "good.png", 40, 30)
    strip = _blank_png(folder / "strip.png", 1, 50000, bit_depth=8)
    source = images.FileSource(folder, size=32)
    assert source.ids == ["bomb.png", "good.png", "strip.png"]
    indices, ids, batch = source.read(range(len(source)))
    assert ids == ["good.png"] and indices.tolist() == [1] and batch.shape == (1, 32, 32, 3)
    warned = capsys.readouterr().err.splitlines()
    assert len(warned) == 2
    assert warned[0].startswith(f"tfvis: warning: skipped {bomb} declares 30000 x 30000")
    assert warned[1].startswith(f"tfvis: warning: skipped {strip} is 1 x 50000 pixels, too elongated")
    source.read(range(len(source)))
    assert capsys.readouterr().err == ""  # once per file


def test_the_limit_travels_with_the_source(tmp_path):
    """Workers receive the source pickled: the limit must come with it, and name the images it reads."""
    _photo(tmp_path / "good.png", 40, 30)
    default = images.FileSource(tmp_path, size=32)
    strict = pickle.loads(pickle.dumps(images.FileSource(tmp_path, size=32, max_pixels=1000)))
    assert strict.max_pixels == 1000
    assert strict.read([0])[1] == [] and default.read([0])[1] == ["good.png"]
    assert "max_pixels" not in default.describe()  # keys of runs with the default limit are unchanged
    assert strict.describe()["max_pixels"] == 1000 and strict.describe() != default.describe()


def test_a_folder_of_only_bombs_has_no_readable_images(tmp_path, bomb, capsys):
    folder = bomb.parent
    _blank_png(folder / "strip.png", 1, 50000, bit_depth=8)
    with pytest.raises(images.NoImagesError) as caught:
        list(images.iter_images(folder, size=32))
    assert f"{folder}: no readable images: all 2 file(s) skipped" in str(caught.value) and str(bomb) in str(caught.value)
    assert str(bomb) in capsys.readouterr().err

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "good.png", 40, 30)  # 1200 pixels
    assert len(list(images.iter_images(photos, size=32))) == 1
    with pytest.raises(images.NoImagesError):
        list(images.iter_batches(photos, size=32, max_pixels=1000))


@pytest.fixture
def reduced_above_half_a_megapixel(monkeypatch):
    """Images over 0.5 MP take the reduced path, so that the float path to compare with stays quick."""
    monkeypatch.setattr(images, "FLOAT_RESIZE_PIXELS", 500_000)
    assert images._too_large_for_float_resize((1200, 800), (224, 224))


@pytest.mark.parametrize("name, save", [("big.png", {}), ("big.jpg", {"quality": 95}), ("big_palette.png", None)])
def test_large_photos_are_read_reduced_close_to_the_float_path(tmp_path, name, save, reduced_above_half_a_megapixel):
    path = tmp_path / name
    if save is None:  # a palette image: converted to RGB around the crop only
        with Image.open(_photo(tmp_path / "rgb.png", 1200, 800)) as rgb:
            rgb.convert("P").save(path)
    else:
        _photo(path, 1200, 800, **save)
    for size, tolerance in ((224, 1.0), (32, 2.0), ((60, 200), 1.0)):
        reduced, reference = images.load_image(path, size=size), _float_path(path, size)
        assert reduced.shape == reference.shape and reduced.dtype == np.float32
        assert np.abs(reduced - reference).mean() < tolerance, (size, np.abs(reduced - reference).mean())


def test_sixteen_bit_large_images_keep_their_scale(tmp_path, reduced_above_half_a_megapixel):
    grey = np.asarray(Image.fromarray(skimage.data.camera()).resize((1200, 1000)), np.uint16)
    Image.fromarray(grey * 257).save(tmp_path / "grey16.png")
    reduced, reference = images.load_image(tmp_path / "grey16.png", size=64), _float_path(tmp_path / "grey16.png", 64)
    assert reduced.max() <= 255 and np.abs(reduced - reference).mean() < 2.0


def test_normal_images_are_read_as_before(tmp_path):
    assert not images._too_large_for_float_resize((640, 480), (224, 224))
    assert images._too_large_for_float_resize((4000, 3000), (224, 224))  # a 12 MP photo is read reduced
    for name in ("photo.png", "photo.jpg"):
        path = _photo(tmp_path / name, 640, 480)
        for size in (224, 32, (48, 96)):
            np.testing.assert_array_equal(images.load_image(path, size=size), _float_path(path, size))


@pytest.mark.slow
def test_a_12000_pixel_square_is_read_in_bounded_memory_and_time(tmp_path):
    """The whole image as float would take 4.6 GB and over a minute; reduced, a few hundred MB and a second."""
    big = _blank_png(tmp_path / "big.png", 12000, 12000, bit_depth=8)
    script = f"""
import json, time
from tfvis import images

def status_mb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) restarts from the current size: what importing TensorFlow took is not counted
before, start = status_mb("VmRSS"), time.perf_counter()
try:
    images.load_image({str(big)!r}, size=224)
    refused = False
except images.ImageSizeError:
    refused = True
refused_s, start = time.perf_counter() - start, time.perf_counter()
image = images.load_image({str(big)!r}, size=224, max_pixels=200_000_000)
read_s = time.perf_counter() - start
peak = status_mb("VmHWM")
print(json.dumps({{"refused": refused, "refused_s": refused_s, "read_s": read_s, "grown_mb": peak - before,
                   "shape": list(image.shape)}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refused"] and result["refused_s"] < 1  # over the default limit: refused from the header
    assert result["shape"] == [224, 224, 3]
    assert result["grown_mb"] < 400, result  # the decoded greyscale file is 137 MB
    assert result["read_s"] < 15, result


# Patterns and link loops ---------------------------------------------------------------------------


def _tree(root):
    """A tree of files at several depths, hidden folders and files among them, and no links."""
    for relative in (
        "a.png",
        "b.jpg",
        ".hidden.png",
        "sub/c.png",
        "sub/d.PNG",
        "sub/deep/e.png",
        "sub/deep/deeper/f.png",
        ".secret/g.png",
        "sub/.cache/h.png",
        "other/i.png",
        "other/sub/j.png",
        "empty/",
    ):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not relative.endswith("/"):
            path.write_bytes(b"")
    return root


PATTERNS = [
    "**/*.png",
    "*/*.png",
    "**",
    "**/*",
    "sub/**",
    "sub/**/*.png",
    "*/deep/*.png",
    "**/deep/**/*.png",
    "**/.*/*.png",
    ".secret/*.png",
    "**/.hidden.png",
    "[ab].*",
    "s?b/*",
    "**/**/*.png",
    "sub/*.[Pp][Nn][Gg]",
    "nothing/**/*.png",
]


def test_patterns_match_what_glob_matches(tmp_path, monkeypatch):
    root = _tree(tmp_path / "tree")
    for pattern in PATTERNS:
        absolute = f"{root}/{pattern}"
        expected = sorted({Path(p) for p in glob.glob(absolute, recursive=True) if Path(p).is_file()})
        assert images.image_files(absolute) == expected, pattern
    monkeypatch.chdir(root)
    for pattern in PATTERNS:
        expected = sorted({Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()})
        assert images.image_files(pattern) == expected, pattern
    assert images.image_files("**/*.png")  # not a vacuous comparison


def _in_time(function, seconds=60):
    """``function()``, failing the test (instead of hanging it) when it has not returned after ``seconds``."""
    result = {}
    worker = threading.Thread(target=lambda: result.update(value=function()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert "value" in result, f"still walking after {seconds} s"
    return result["value"]


def test_link_loops_end_and_list_each_file_once(tmp_path):
    root = _tree(tmp_path / "links")
    os.symlink("..", root / "sub" / "loop")
    os.symlink(".", root / "self")
    os.symlink("../../..", root / "sub" / "deep" / "up")
    mesh = root / "mesh"  # every folder links to every other: glob would walk every order of them
    for i in range(6):
        (mesh / f"d{i}").mkdir(parents=True)
        (mesh / f"d{i}" / f"m{i}.png").write_bytes(b"")
    for i in range(6):
        for j in range(6):
            if i != j:
                os.symlink(f"../d{j}", mesh / f"d{i}" / f"to{j}")
    real = sorted(
        p for p in root.rglob("*.png") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    assert len(real) == 12
    found = _in_time(lambda: images.image_files(f"{root}/**/*.png"))
    assert found == real  # each real file once, under its path without links
    source = _in_time(lambda: images.FileSource(f"{root}/**/*.png", size=16))
    assert len(source) == 12 and len(set(source.ids)) == 12 and "a.png" in source.ids
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    assert _in_time(lambda: images.image_files(root)) == files  # the folder walk does not follow links at all


def test_aliases_without_loops_follow_links_like_glob(tmp_path):
    root = _tree(tmp_path / "tree")
    os.symlink("sub/deep", root / "shortcut")
    expected = sorted({Path(p) for p in glob.glob(f"{root}/*/*.png", recursive=True) if Path(p).is_file()})
    assert Path(root / "shortcut" / "e.png") in expected
    assert images.image_files(f"{root}/*/*.png") == expected


# The command line ---------------------------------------------------------------------------------


def _run(module, args, tmp_path, timeout=300):
    environment = dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"))
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=environment, cwd=tmp_path
    )


def _error_lines(done):
    return [line for line in done.stderr.splitlines() if "error:" in line]


@pytest.mark.slow
def test_a_bomb_among_photos_is_skipped_and_the_report_written(tmp_path, bomb):
    folder = bomb.parent
    for i in range(3):
        _photo(folder / f"photo{i}.png", 60 + 10 * i, 50)
    strip = _blank_png(folder / "strip.png", 1, 50000, bit_depth=8)
    out = tmp_path / "out"
    done = _run("tfvis.vgg", SMALL + ["--images", str(folder), "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"tfvis: warning: skipped {bomb} declares 30000 x 30000" in done.stderr
    assert f"tfvis: warning: skipped {strip} is 1 x 50000 pixels, too elongated" in done.stderr
    assert "Traceback" not in done.stderr and "DecompressionBomb" not in done.stderr
    page = (out / "block1_conv1.html").read_text()
    assert "photo0" in page and "bomb.png" not in page


@pytest.mark.slow
def test_only_bombs_end_in_one_error_line(tmp_path, bomb):
    folder = bomb.parent
    _blank_png(folder / "strip.png", 1, 50000, bit_depth=8)
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "photo.png", 40, 30)
    cases = [
        (["--images", str(folder)], f"{folder}: no readable images: all 2 file(s) skipped"),
        (["--images", f"{folder}/*.png"], f"{folder}/*.png: no readable images: all 2 matching file(s) skipped"),
        (["--images", str(photos), "--max-pixels", "1000"], "40 x 30 = 1,200 pixels, over the limit of 1,000"),
        (["--images", str(photos), "--max-pixels", "0"], "--max-pixels must be at least 1, got 0"),
    ]
    for i, (args, message) in enumerate(cases):
        done = _run("tfvis.vgg", SMALL + args + ["--out", str(tmp_path / f"out{i}")], tmp_path)
        assert done.returncode == 2, done.stderr
        assert len(_error_lines(done)) == 1 and message in _error_lines(done)[0], done.stderr
        assert "Traceback" not in done.stderr and "DecompressionBomb" not in done.stderr
        assert not (tmp_path / f"out{i}").exists()
