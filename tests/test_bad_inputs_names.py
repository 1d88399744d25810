"""Hostile names: image files whose names clean alike or are long, and layers named with quotes and markup.

Image ids and layer names become file names (:func:`tfvis.report.safe_name`); the commands run
as a user runs them, in subprocesses, and each page is checked as a browser would read it: the
picture linked for an image is that image's own, every link resolves, and names are escaped.
"""

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from tfvis.layer_names import split_layer_names
from tfvis.report import NAME_LIMIT, array_stem, safe_name

#: Four names that the old rule made one file name (``a_b``), a 244-byte name and a 244-byte
#: name of two-byte characters, each a solid colour of its own (no colour is the patches' grey padding).
IMAGES = {
    "a b.png": (220, 20, 20),
    "a&b.png": (20, 200, 20),
    "a_b.jpg": (20, 20, 220),
    "a_b.png": (220, 220, 20),
    "x" * 240 + ".png": (200, 20, 200),
    "é" * 120 + ".png": (20, 200, 200),
}
#: Layer names Keras accepts and saves (not "/"): markup, quotes, an ampersand, a comma and spaces.
HOSTILE = 'conv"<script>alert(1)<\\script>'
QUOTED = "it's"
COMMA = "a,b & <i>"
ESCAPED = "conv&#34;&lt;script&gt;alert(1)&lt;\\script&gt;"  # as Jinja2 escapes it
SMALL = ["--size", "32", "--quiet"]


def _run(module, args, tmp_path, timeout=300):
    environment = dict(os.environ, TFVIS_OFFLINE="1", TFVIS_WEIGHTS_DIR=str(tmp_path / "weights"))
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=environment, cwd=tmp_path
    )


def _succeeded(done):
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]


def _pages(out):
    return sorted(Path(out).rglob("*.html"))


def _links(page):
    """Every ``href`` and ``src`` of ``page`` that points at a file (not at an anchor or a site)."""
    found = re.findall(r'(?:href|src)="([^"]*)"', page.read_text(encoding="utf8"))
    return [html.unescape(link) for link in found if link and not link.startswith(("#", "http:", "https:", "data:"))]


def _all_links_resolve(out):
    pages = _pages(out)
    assert pages
    for page in pages:
        for link in _links(page):
            assert (page.parent / unquote(link.split("#")[0])).is_file(), (
                f"{page.relative_to(out)} links {link}, which does not exist"
            )


def _pictures(page, alt_pattern):
    """``(id, path)`` of each ``<img>`` of ``page`` whose alt text, unescaped, matches ``alt_pattern`` (its group 1: the id)."""
    found = []
    for src, alt in re.findall(r'<img src="([^"]+)" alt="([^"]*)"', page.read_text(encoding="utf8")):
        match = re.fullmatch(alt_pattern, html.unescape(alt))
        if match:
            found.append((match.group(1), page.parent / html.unescape(src)))
    return found


def _own_colour(path, colour, tolerance=8):
    """Whether every pixel of the PNG at ``path`` is ``colour`` or the patches' grey padding, and some are ``colour``."""
    pixels = np.asarray(Image.open(path).convert("RGB"), np.int16).reshape(-1, 3)
    own = np.all(np.abs(pixels - colour) <= tolerance, axis=1)
    grey = np.all(np.abs(pixels - 128) <= 1, axis=1)
    return bool(own.any() and np.all(own | grey))


def _check_own_pictures(pictures, expected_ids):
    """Each image id has pictures, distinct files, and each shows its own image's colour."""
    by_id = {}
    for image_id, path in pictures:
        assert _own_colour(path, IMAGES[image_id]), f"{path.name} is not the picture of {image_id!r}"
        by_id.setdefault(image_id, set()).add(path.resolve())
    assert sorted(by_id) == sorted(expected_ids)
    files = [path for paths in by_id.values() for path in paths]
    assert len(files) == len(set(files))  # no two images share a file


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names") / "images"
    folder.mkdir()
    for name, colour in IMAGES.items():
        Image.fromarray(np.full((32, 32, 3), colour, np.uint8)).save(folder / name, quality=98)
    return folder


def test_safe_name_is_one_short_name_per_text():
    texts = list(IMAGES) + ["a_b", "a_b-3f2c1a9b", "sub/a_b.png", "sub_a_b.png", "", ".png", HOSTILE, QUOTED, COMMA]
    names = [safe_name(t) for t in texts]
    assert len(set(names)) == len(texts)
    assert names == [safe_name(t) for t in texts]  # the same text, the same name, every time
    for text, name in zip(texts, names):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name
        assert len(name.encode()) <= NAME_LIMIT
    assert [safe_name(t) for t in ("block1_conv1", "vgg16-hed", "coffee")] == ["block1_conv1", "vgg16-hed", "coffee"]
    assert names[:4] == [f"a_b-{n[-8:]}" for n in names[:4]]  # readable stem, then the digest
    assert safe_name("x" * 240 + ".png").startswith("x" * 40) and safe_name("é" * 120 + ".png").startswith("e" * 40)
    longest = f"{array_stem('m' * 300, 'l' * 300, 'i' * 300)}_ch4095_smoothgrad.npy"
    assert len(longest.encode()) < 220


def test_layer_names_may_hold_commas_and_spaces():
    known = {HOSTILE, QUOTED, COMMA, "block1_conv1"}
    assert split_layer_names(f"{HOSTILE},{QUOTED},{COMMA}", known) == [HOSTILE, QUOTED, COMMA]
    assert split_layer_names(f" block1_conv1 , {COMMA}", known) == ["block1_conv1", COMMA]
    assert split_layer_names("block1_conv1,,unknown", known) == ["block1_conv1", "unknown"]


@pytest.mark.slow
def test_layer_report_and_image_pages_keep_colliding_names_apart(tmp_path, image_folder):
    out = tmp_path / "report"
    args = [
        "--weights",
        "random",
        "--layers",
        "block1_conv1",
        "--channels",
        "2",
        "--top-k",
        "6",
        "--images",
        str(image_folder),
        "--methods",
        "deconv,saliency",
        "--page-images",
        "6",
        "--out",
        str(out),
        *SMALL,
    ]
    _succeeded(_run("tfvis.vgg", args, tmp_path))
    layer_page = out / "block1_conv1.html"
    _check_own_pictures(_pictures(layer_page, r"patch \d+: (.*)"), IMAGES)
    for channel in (0, 1):
        _check_own_pictures(_pictures(out / "channels" / "block1_conv1" / f"ch{channel}.html", r"patch \d+: (.*)"), IMAGES)
    image_pages = list(out.glob("image_*.html"))
    assert len(image_pages) == len(IMAGES)
    inputs = [pair for page in image_pages for pair in _pictures(page, "(" + "|".join(map(re.escape, IMAGES)) + ")")]
    _check_own_pictures(inputs, IMAGES)
    index = (out / "index.html").read_text(encoding="utf8")
    assert all(f'href="{page.name}"' in index for page in image_pages)
    assert str(escape("a&b.png")) in index and "a&b.png" not in index
    _all_links_resolve(out)
    assert max(len(p.name.encode()) for p in out.rglob("*")) < 200


@pytest.mark.slow
def test_saliency_and_caricature_keep_colliding_names_apart(tmp_path, image_folder):
    ids = "(" + "|".join(map(re.escape, IMAGES)) + ")"
    out = tmp_path / "saliency"
    args = [
        "--model",
        "vgg16",
        "--weights",
        "random",
        "--target",
        "block1_conv1:0",
        "--methods",
        "vanilla,grad_cam",
        "--images",
        str(image_folder),
        "--out",
        str(out),
        *SMALL,
    ]
    _succeeded(_run("tfvis.saliency", args, tmp_path))
    _check_own_pictures(_pictures(out / "index.html", ids), IMAGES)
    assert len(list((out / "assets" / "saliency").glob("*_vanilla.npy"))) == len(IMAGES)
    _all_links_resolve(out)

    out = tmp_path / "caricature"
    args = [
        "--model",
        "vgg16:random",
        "--layers",
        "block1_conv1",
        "--images",
        str(image_folder),
        "--num-images",
        "6",
        "--steps",
        "2",
        "--out",
        str(out),
        *SMALL,
    ]
    _succeeded(_run("tfvis.caricature", args, tmp_path))
    _check_own_pictures(_pictures(out / "index.html", ids), IMAGES)
    caricatures = _pictures(out / "index.html", rf"vgg16-random block1_conv1 caricature of {ids}")
    assert sorted(i for i, _ in caricatures) == sorted(IMAGES) and len({p for _, p in caricatures}) == len(IMAGES)
    assert len(list(out.glob("vgg16-random_*.npy"))) == len(IMAGES)
    assert len(list((out / "store" / "caricature").glob("*.npz"))) == 1  # the 6 images fit in one unit
    _all_links_resolve(out)


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    """A saved model whose layers are named with markup, a quote, a comma and spaces."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name=HOSTILE)(inputs)
    x = keras.layers.ReLU(name=QUOTED)(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=COMMA)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    path = tmp_path_factory.mktemp("hostile") / "hostile model.keras"
    model.save(path)
    return path


def _escaped_and_linked(out, names):
    """Every page holds no raw markup from the names, each name shows escaped somewhere, every link resolves."""
    text = "".join(page.read_text(encoding="utf8") for page in _pages(out))
    assert "<script" not in text.lower() and "<i>" not in text
    for name in names:
        assert str(escape(name)) in text, name
    _all_links_resolve(out)


@pytest.mark.slow
def test_hostile_layer_names_run_and_are_escaped(tmp_path, hostile_model):
    layers = f"{HOSTILE},{QUOTED},{COMMA}"
    out = tmp_path / "caricature"
    args = ["--model", str(hostile_model), "--layers", layers, "--num-images", "2", "--steps", "2", "--out", str(out), *SMALL]
    _succeeded(_run("tfvis.caricature", args, tmp_path))
    _escaped_and_linked(out, [HOSTILE, QUOTED, COMMA])
    assert len(list(out.glob("*.npy"))) == 3 * 2

    out = tmp_path / "compare"
    args = [
        "--a",
        str(hostile_model),
        "--b",
        str(hostile_model),
        "--layers",
        layers,
        "--cka-layers",
        f"{HOSTILE},{COMMA}",
        "--channels",
        "2",
        "--num-images",
        "8",
        "--steps",
        "2",
        "--fv-size",
        "32",
        "--out",
        str(out),
        *SMALL,
    ]
    _succeeded(_run("tfvis.compare", args, tmp_path))
    _escaped_and_linked(out, [HOSTILE, QUOTED, COMMA])
    index = (out / "index.html").read_text(encoding="utf8")
    assert ESCAPED in index and f'href="{safe_name(HOSTILE)}.html"' in index

    out = tmp_path / "saliency"
    args = [
        "--model",
        str(hostile_model),
        "--target",
        f"{HOSTILE}:0;{QUOTED}:1",
        "--methods",
        "vanilla,grad_cam",
        "--num-images",
        "2",
        "--out",
        str(out),
        *SMALL,
    ]
    _succeeded(_run("tfvis.saliency", args, tmp_path))
    _escaped_and_linked(out, [f"{HOSTILE}:0", f"{QUOTED}:1"])
    assert len(list((out / "assets" / "saliency").glob("*_vanilla.npy"))) == 2 * 2
