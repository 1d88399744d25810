"""The pages of a 512-channel layer (``--channels all`` on VGG16's block4_conv3): paginated rows, atlas, channel pages.

The report is synthetic: manifests in the format :class:`tfvis.report.Report` writes
(``state/<layer>/ch<c>.json``) pointing at tiny PNGs, so no model is needed.
"""

import html
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from tfvis import fileio
from tfvis.report import CHANNELS_PER_PAGE, Report, atlas_page_name, channel_page_name, layer_page_name

LAYER = "block4_conv3"
CHANNELS = 512
K = 9
DIVERSITY = 7  #: the one channel with ``srcs`` slots and raw arrays
EMPTY = 11  #: a channel that no image activates: no items, no slots
SMALL = "block1_conv1"  #: a second layer with two channels: one page, no pager


def has_featurevis(channel):
    """Channels 0, 3, 6, ... and DIVERSITY have a feature visualization; the others show their top patch."""
    return (channel % 3 == 0 or channel == DIVERSITY) and channel != EMPTY


def _png(path, seed):
    fileio.save_png(path, np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return path


def _build(out):
    """A report folder with synthetic manifests for LAYER (512 channels) and SMALL (2 channels)."""
    report = Report(out, "vgg16", "random (seed 0)", {"images": "synthetic", "top-k": K})
    assets = f"assets/{LAYER}"
    shared = [f"{assets}/rank{r}_{kind}.png" for r in range(K) for kind in ("patch", "deconvnet", "guided")]
    for i, src in enumerate(shared):
        _png(out / src, i)
    for c in range(CHANNELS):
        items = []
        for r in range(0 if c == EMPTY else K):
            patch = f"{assets}/ch{c}_top_patch.png" if r == 0 else f"{assets}/rank{r}_patch.png"
            items.append(
                {
                    "image": f"img{(c + r) % 50}",
                    "value": 100.0 - r - c / 1000,
                    "position": [r, c % 14],
                    "box": [r, c % 14, r + 44, c % 14 + 44],
                    "patch": patch,
                    "reconstructions": {m: f"{assets}/rank{r}_{m}.png" for m in ("deconvnet", "guided")},
                }
            )
        if items:
            _png(out / items[0]["patch"], 1000 + c)
        manifest = {"channel": c, "items": items, "slots": {}, "future_key": {"anything": [1, 2]}}
        if has_featurevis(c):
            manifest["slots"]["featurevis"] = {"title": "Feature visualization (3 steps)", "src": f"{assets}/ch{c}_fv.png"}
            _png(out / manifest["slots"]["featurevis"]["src"], 5000 + c)
        if c == DIVERSITY:
            srcs = [_png(out / f"{assets}/ch{c}_div{i}.png", 9000 + i).relative_to(out).as_posix() for i in range(4)]
            manifest["slots"]["diversity"] = {"title": "Diversity", "srcs": srcs}
            manifest["slots"]["caricature"] = {"title": "Caricature", "srcs": [{"src": srcs[0], "caption": "photo 1"}]}
            manifest["arrays"] = f"{assets}/ch{c}_arrays.npz"
            (out / manifest["arrays"]).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
        fileio.write_json(out / "state" / LAYER / f"ch{c}.json", manifest)
    for c in range(2):
        src = _png(out / f"assets/{SMALL}/ch{c}.png", 20000 + c).relative_to(out).as_posix()
        items = [{"image": "img0", "value": 1.5, "position": [0, 0], "box": [0, 0, 3, 3], "patch": src, "reconstructions": {}}]
        fileio.write_json(out / "state" / SMALL / f"ch{c}.json", {"channel": c, "items": items, "slots": {}})
    return report


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The report with every page written; ``seconds``: how long writing LAYER's pages took."""
    out = tmp_path_factory.mktemp("atlas")
    report = _build(out)
    started = time.perf_counter()
    first = report.write_layer_page(LAYER, CHANNELS, "60 x 60", "8", K, input_desc="224 x 224 RGB")
    seconds = time.perf_counter() - started
    report.write_layer_page(SMALL, 64, "3 x 3", "1", K)
    layers = [{"name": n, "channels": c, "field": "-", "stride": "-"} for n, c in ((SMALL, 64), (LAYER, CHANNELS))]
    report.write_index(layers, "224 x 224 RGB")
    print(f"\nwrote the pages of {CHANNELS} channels x {K} patches in {seconds:.2f} s")
    return {"out": out, "first": first, "seconds": seconds}


def _layer_pages(out, layer):
    """The layer's pages of rows, in order, following the names :func:`layer_page_name` gives."""
    pages, number = [], 1
    while (out / layer_page_name(layer, number)).exists():
        pages.append(out / layer_page_name(layer, number))
        number += 1
    return pages


def _attrs(page, tag, name):
    """Values of attribute ``name`` of every ``<tag>`` of ``page`` (entities decoded)."""
    text = page.read_text(encoding="utf8")
    return [html.unescape(m) for m in re.findall(rf'<{tag}\b[^>]*?\s{name}="([^"]*)"', text)]


def _resolve(page, ref):
    """The local file a relative ``src``/``href`` of ``page`` names (its fragment dropped)."""
    parsed = urlparse(ref)
    assert not parsed.scheme and not parsed.netloc and not ref.startswith("/"), (page, ref)  # relative links only
    return (page.parent / unquote(parsed.path)).resolve()


def test_writing_512_channels_is_fast(written):
    assert written["first"] == written["out"] / f"{LAYER}.html"
    assert written["seconds"] < 15, f"writing the pages of {CHANNELS} channels took {written['seconds']:.1f} s"


def test_pagination_covers_every_channel_once(written):
    out = written["out"]
    pages = _layer_pages(out, LAYER)
    assert len(pages) == -(-CHANNELS // CHANNELS_PER_PAGE) == 16
    assert not (out / layer_page_name(LAYER, len(pages) + 1)).exists()
    sections = []
    for number, page in enumerate(pages, 1):
        shown = [int(c) for c in re.findall(r'<section class="channel" id="ch(\d+)"', page.read_text())]
        assert shown == sorted(shown) and 0 < len(shown) <= CHANNELS_PER_PAGE
        sections += shown
        links = _attrs(page, "a", "href")
        # Page-number links to every other page, and prev/next to the neighbours.
        assert {p.name for p in pages} - {page.name} <= set(links)
        prev = re.search(r'<a rel="prev" href="([^"]+)"', page.read_text())
        after = re.search(r'<a rel="next" href="([^"]+)"', page.read_text())
        assert (prev.group(1) if prev else None) == (pages[number - 2].name if number > 1 else None)
        assert (after.group(1) if after else None) == (pages[number].name if number < len(pages) else None)
    assert sections == list(range(CHANNELS))  # every channel exactly once, in order
    small = _layer_pages(out, SMALL)
    assert len(small) == 1 and 'class="pager"' not in small[0].read_text()
    assert re.findall(r'id="ch(\d+)"', small[0].read_text()) == ["0", "1"]


def test_every_link_and_image_resolves(written):
    out = written["out"]
    pages = sorted(out.glob("*.html")) + sorted((out / "channels").rglob("*.html"))
    assert len(pages) == 1 + 16 + 1 + CHANNELS + 1 + 1 + 2  # index; LAYER's rows, atlas, channels; SMALL's
    for page in pages:
        refs = (
            _attrs(page, "img", "src")
            + _attrs(page, "link", "href")
            + [h for h in _attrs(page, "a", "href") if not h.startswith("#")]
        )
        assert refs, page
        missing = [ref for ref in refs if not _resolve(page, ref).is_file()]
        assert not missing, (page, missing[:5])
        anchors = [h for h in _attrs(page, "a", "href") if "#" in h]
        for ref in anchors:  # a link to #chN lands on that channel
            target = _resolve(page, ref) if not ref.startswith("#") else page
            assert f'id="{ref.split("#")[1]}"' in target.read_text(), (page, ref)


def test_images_are_lazy_with_their_display_size(written):
    out = written["out"]
    for page in [out / layer_page_name(LAYER, 2), out / atlas_page_name(LAYER), out / channel_page_name(LAYER, DIVERSITY)]:
        tags = re.findall(r"<img\b[^>]*>", page.read_text())
        assert tags
        for tag in tags:
            assert 'loading="lazy"' in tag and re.search(r'width="\d+"', tag) and re.search(r'height="\d+"', tag), tag


def test_atlas_prefers_featurevis_and_links_channel_pages(written):
    out = written["out"]
    atlas = out / atlas_page_name(LAYER)
    tiles = re.findall(r'<a class="thumb( from-patch)?" id="ch(\d+)" href="([^"]+)"[^>]*>\s*(.*?)</a>', atlas.read_text(), re.S)
    assert [int(c) for _, c, _, _ in tiles] == list(range(CHANNELS))
    for framed, c, href, body in tiles:
        c = int(c)
        assert bool(framed) == (c != EMPTY and not has_featurevis(c))  # a mixed atlas marks the patches
        assert _resolve(atlas, href) == (out / channel_page_name(LAYER, c)).resolve()
        src = re.search(r'src="([^"]+)"', body)
        if c == EMPTY:
            assert src is None and "no patch" in body
        elif has_featurevis(c):
            assert src.group(1) == f"assets/{LAYER}/ch{c}_fv.png"
        else:
            assert src.group(1) == f"assets/{LAYER}/ch{c}_top_patch.png"
    index = (out / "index.html").read_text()
    assert f'href="{atlas_page_name(LAYER)}"' in index and f'href="{atlas_page_name(SMALL)}"' in index
    assert f'href="{layer_page_name(LAYER)}"' in index
    first = (out / layer_page_name(LAYER)).read_text()
    assert f'href="{atlas_page_name(LAYER)}"' in first
    small = (out / atlas_page_name(SMALL)).read_text()  # all patches: nothing to tell apart
    assert small.count('class="thumb"') == 2 and "from-patch" not in small and "dashed" not in small


def test_channel_page_shows_patches_methods_slots_and_neighbours(written):
    out = written["out"]
    page = out / channel_page_name(LAYER, DIVERSITY)
    text = page.read_text()
    manifest = fileio.read_json(out / "state" / LAYER / f"ch{DIVERSITY}.json")
    srcs = {_resolve(page, s) for s in _attrs(page, "img", "src")}
    for item in manifest["items"]:
        assert (out / item["patch"]).resolve() in srcs
        for src in item["reconstructions"].values():
            assert (out / src).resolve() in srcs
        position, box = (f"({', '.join(str(v) for v in item[key])})" for key in ("position", "box"))
        assert (
            f"<b>{item['image']}</b><dl><dt>activation</dt><dd>{item['value']:.3g}</dd><dt>position</dt><dd>{position}</dd>"
            f"<dt>box</dt><dd>{box}</dd></dl>"
        ) in text
    for slot in manifest["slots"].values():  # one src or a list of srcs, as paths or {src, caption}
        for entry in slot.get("srcs") or [slot["src"]]:
            assert (out / (entry["src"] if isinstance(entry, dict) else entry)).resolve() in srcs
        assert f"<h2>{slot['title']}</h2>" in text
    assert text.index("Feature visualization") < text.index("<h2>Caricature</h2>") < text.index("<h2>Diversity</h2>")
    assert "photo 1" in text and "Deconvnet" in text and "Guided backprop" in text
    links = {ref: _resolve(page, ref) for ref in _attrs(page, "a", "href")}
    assert links[f"../../{manifest['arrays']}"] == (out / manifest["arrays"]).resolve()  # "raw arrays"
    assert re.search(r'<a href="[^"]+">raw arrays</a>', text)
    assert _resolve(page, re.search(r'rel="prev" href="([^"]+)"', text).group(1)) == (out / channel_page_name(LAYER, 6)).resolve()
    assert _resolve(page, re.search(r'rel="next" href="([^"]+)"', text).group(1)) == (out / channel_page_name(LAYER, 8)).resolve()
    assert (out / f"{LAYER}.html").resolve() in {t for t in links.values()}  # back to the layer page (page 1)
    assert (out / atlas_page_name(LAYER)).resolve() in {t for t in links.values()}
    last = out / channel_page_name(LAYER, CHANNELS - 1)
    assert 'rel="next"' not in last.read_text() and 'rel="prev"' in last.read_text()
    assert f'href="../../{layer_page_name(LAYER, 16)}#ch{CHANNELS - 1}"' in last.read_text()
    assert 'rel="prev"' not in (out / channel_page_name(LAYER, 0)).read_text()
    empty = (out / channel_page_name(LAYER, EMPTY)).read_text()
    assert "No image activates this channel" in empty and "raw arrays" not in empty


@pytest.mark.browser
def test_pages_show_no_broken_images_in_chromium(written, tmp_path):
    from browser import inspect_pages

    out = written["out"]
    atlas, rows, channel = (
        out / atlas_page_name(LAYER),
        out / layer_page_name(LAYER, 2),
        out / channel_page_name(LAYER, DIVERSITY),
    )
    shot = tmp_path / "atlas.png"
    results = inspect_pages([atlas, rows, channel], screenshots={atlas: shot})
    counts = {atlas: CHANNELS - 1, rows: CHANNELS_PER_PAGE * K * 3 + 11, channel: K * 3 + 1 + 4 + 1}
    for path, result in results.items():
        images = result["images"]
        assert not result["errors"], (path, result["errors"])
        assert len(images) == counts[path], path
        broken = [i["src"] for i in images if i["natural"] <= 0]
        assert not broken, (path, broken[:5])  # every image loaded once scrolled to, lazy ones included
        assert all(i["loading"] == "lazy" and int(i["width"]) > 0 and int(i["height"]) > 0 for i in images)
        local = [link for link in result["links"] if link.startswith("file:")]
        assert all(Path(unquote(urlparse(link).path)).exists() for link in local), path
    assert shot.stat().st_size > 1000


def test_rewriting_drops_pages_of_channels_no_longer_finished(tmp_path):
    """After a run with other settings (state wiped), pages of the old channels go with their assets."""
    report = Report(tmp_path, "vgg16", "random (seed 0)", {"images": "synthetic"})
    for c in range(3):
        src = _png(tmp_path / f"assets/{SMALL}/ch{c}.png", c).relative_to(tmp_path).as_posix()
        item = {"image": "img0", "value": 1.0, "position": [0, 0], "box": [0, 0, 3, 3], "patch": src, "reconstructions": {}}
        fileio.write_json(tmp_path / "state" / SMALL / f"ch{c}.json", {"channel": c, "items": [item], "slots": {}})
    report.write_layer_page(SMALL, 64, "3 x 3", "1", 1, per_page=2)
    assert [p.name for p in _layer_pages(tmp_path, SMALL)] == [f"{SMALL}.html", f"{SMALL}_p2.html"]
    (tmp_path / "state" / SMALL / "ch2.json").unlink()
    report.write_layer_page(SMALL, 64, "3 x 3", "1", 1, per_page=2)
    assert sorted(p.name for p in (tmp_path / "channels" / SMALL).iterdir()) == ["ch0.html", "ch1.html"]
    assert 'class="pager"' not in (tmp_path / layer_page_name(SMALL)).read_text()
