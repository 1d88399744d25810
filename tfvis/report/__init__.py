"""HTML reports: an index per model and a page per layer, readable offline in any browser.

``python -m tfvis.report --model SPEC`` writes one for any model (:mod:`tfvis.cli.report`); this
package holds the pages' writer, :class:`Report`, and the file-name rules.

Layout of a report folder::

    index.html, style.css
    <layer>.html, <layer>_p2.html, ...  a layer's channel rows, 32 channels a page, prev/next links
    <layer>_atlas.html            a thumbnail per channel (its feature visualization, else its top patch)
    channels/<layer>/ch<c>.html   a channel: top-k patches with values and positions, every
                                  reconstruction and slot, links to its layer page, atlas and neighbours
    assets/<layer>/<model>_<layer>_<image>_ch<c>_{patch,deconv}.png and .npy
    state/<layer>/ch<c>.json      one manifest per finished channel (what makes runs resumable)
    run.json                      the settings the assets were computed with

Each ``<model>``, ``<layer>`` and ``<image>`` part is a :func:`safe_name`: the text itself when it
is a short plain name, else a cleaned, bounded stem and a digest of the text (``a_b-d3cddaad``
for ``a_b.png``), so two images or layers never share a file however their names clean.

Every file is written atomically; a channel counts as done once its manifest exists, and its
manifest is written after its images. Pages are rebuilt from the manifests, so a page always
lists every channel finished by this or an earlier run.

With ``--channels all`` a layer has up to 512 channels (VGG16's block4_conv3), so its rows are
paginated and every ``<img>`` has ``loading="lazy"`` and its display size. The atlas is a page of
its own rather than the top of the first page: 512 thumbnails would push page 1's rows a long
scroll down and make page 1 unlike the others, and a separate page gives the index one link to
the whole layer at a glance (like OpenAI Microscope's layer view), each tile linking its channel.
"""

import datetime
import hashlib
import re
import shutil
import sys
import unicodedata
from pathlib import Path

import numpy as np

from .. import fileio
from ..display import RECONSTRUCTION_PERCENTILE, to_image

STYLE = "style.css"
RAW_FORMATS = ("compact", "npy")
METHOD_TITLES = {"deconvnet": "Deconvnet", "guided": "Guided backprop", "gradient": "Gradient"}


def _environment():
    import jinja2

    try:
        import importlib.resources

        loader = jinja2.FileSystemLoader(str(importlib.resources.files("tfvis.templates")))
    except ModuleNotFoundError:  # running from a checkout without installing
        loader = jinja2.FileSystemLoader(str(Path(__file__).resolve().parents[2] / "templates"))
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)


#: Longest part of a file name made by :func:`safe_name`, in bytes (its names are ASCII): a name
#: joins up to three parts (model, layer, image) with a channel and a method, well under the
#: 255 bytes most file systems allow.
NAME_LIMIT = 60
#: Bytes of hexadecimal SHA-1 digest that :func:`safe_name` appends to a name it had to change.
NAME_DIGEST = 8
_IMAGE_EXTENSION = re.compile(r"\.(png|jpe?g|bmp|tiff?|gif|webp)$", re.IGNORECASE)
_KEPT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?")
_HASHED_NAME = re.compile(rf".*-[0-9a-f]{{{NAME_DIGEST}}}")


def safe_name(text):
    """``text`` as a file-name part: readable, at most :data:`NAME_LIMIT` ASCII bytes, one per text.

    A text that is already a short plain name (letters, digits, ``.``, ``_``, ``-``, no image
    extension) is kept as it is: ``block1_conv1``, ``vgg16-hed``, ``coffee``. Any other text is
    cleaned (extension dropped, accents dropped, runs of other characters made ``_``, cut to fit) and followed by ``-`` and the first :data:`NAME_DIGEST` hexadecimal digits of the SHA-1
    of the whole text, so texts that clean alike (``a b.png``, ``a&b.png``, ``a_b.jpg``) still get
    names of their own. Kept names never end in such a digest, so the two kinds never meet.

    Parameters
    ----------
    text : str
        An image id (a path relative to the images folder), a layer name, a model label, ...

    Returns
    -------
    str

    Examples
    --------
    >>> safe_name("block1_conv1"), safe_name("a_b.png"), safe_name("a b.png")
    ('block1_conv1', 'a_b-d3cddaad', 'a_b-f6f33c2d')
    >>> len(safe_name("x" * 300 + ".jpg"))
    60
    """
    text = str(text)
    if (
        len(text) <= NAME_LIMIT
        and _KEPT_NAME.fullmatch(text)
        and not _IMAGE_EXTENSION.search(text)
        and not _HASHED_NAME.fullmatch(text)
    ):
        return text
    digest = hashlib.sha1(text.encode("utf8", "surrogatepass")).hexdigest()[:NAME_DIGEST]
    ascii_text = unicodedata.normalize("NFKD", _IMAGE_EXTENSION.sub("", text)).encode("ascii", "ignore").decode()  # café: cafe
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text)
    readable = readable[: NAME_LIMIT - NAME_DIGEST - 1].strip("._") or "image"
    return f"{readable}-{digest}"


def array_stem(model_name, layer, image_id):
    """``<model>_<layer>_<image>``, each part a :func:`safe_name`: how researchers name per-image arrays of a layer."""
    return f"{safe_name(model_name)}_{safe_name(layer)}_{safe_name(image_id)}"


class Report:
    """A report folder for one model: assets, per-channel manifests and pages.

    Parameters
    ----------
    out_dir : str or Path
    model_name : str
    weights : str
        Which weights the model holds (shown on the index).
    settings : dict
        The run settings that decide the assets (images, k, seed, ...). If a previous run into
        the same folder used other settings, its channels are recomputed.
    force : bool
        Recompute every channel even if done.
    raw : {"compact", "npy"}
        How the raw arrays of each channel are kept beside its PNGs: ``"compact"`` (default), one
        compressed ``<model>_<layer>_ch<c>.npz`` per channel with reconstructions in float16;
        ``"npy"``, a float32 ``<model>_<layer>_<image>_ch<c>_<method>.npy`` per image and method.
    """

    def __init__(self, out_dir, model_name, weights, settings, force=False, raw="compact"):
        self.out = Path(out_dir)
        self.model_name = model_name
        self.weights = weights
        self.settings = dict(settings)
        self.env = _environment()
        previous = fileio.read_json(self.out / "run.json")
        stale = previous is not None and previous.get("settings") != self.settings
        if stale:
            print(f"tfvis: {self.out} holds a run with other settings; recomputing its channels", file=sys.stderr)
            for folder in ("state", "assets"):  # the old channels no longer match the settings
                shutil.rmtree(self.out / folder, ignore_errors=True)
        if raw not in RAW_FORMATS:
            raise ValueError(f"raw={raw!r}: choose from {', '.join(RAW_FORMATS)}")
        self.force, self.raw = force, raw
        self._added = set()  # slots written by this run (kept when forcing)
        self.out.mkdir(parents=True, exist_ok=True)
        fileio.remove_stale_temporaries(self.out)
        fileio.write_json(self.out / "run.json", {"model": model_name, "weights": weights, "settings": self.settings})
        fileio.write_text(self.out / STYLE, (Path(self.env.loader.searchpath[0]) / STYLE).read_text(encoding="utf8"))

    def _manifest_path(self, layer, channel):
        return self.out / "state" / safe_name(layer) / f"ch{int(channel)}.json"

    def done_channels(self, layer):
        """Channels of ``layer`` whose assets are complete (empty when forcing)."""
        if self.force:
            return set()
        folder = self.out / "state" / safe_name(layer)
        return {int(p.stem[2:]) for p in folder.glob("ch*.json")} if folder.is_dir() else set()

    def manifests(self, layer):
        """Manifests of the finished channels of ``layer``, by channel."""
        folder = self.out / "state" / safe_name(layer)
        found = (fileio.read_json(p) for p in sorted(folder.glob("ch*.json"))) if folder.is_dir() else ()
        return sorted((m for m in found if m), key=lambda m: m["channel"])

    def add_top_k(self, result, unit=None):
        """Write the patches, reconstructions, raw arrays and manifest of every channel of a :class:`~tfvis.topk.LayerTopK`.

        ``unit`` (the key of the pipeline unit that computed them) is kept in the manifests, so
        that a resumed run rewrites only channels whose unit changed (:meth:`written_by`).
        """
        layer = result.layer
        folder = safe_name(layer)
        assets = self.out / "assets" / folder
        for row, channel in enumerate(result.channels):
            items = []
            for rank in range(result.k):
                image_id = result.image_ids[row, rank]
                if not image_id:
                    continue
                stem = f"{array_stem(self.model_name, layer, image_id)}_ch{int(channel)}"
                fileio.save_png(assets / f"{stem}_patch.png", result.patches[row, rank])
                item = {
                    "image": str(image_id),
                    "value": float(result.values[row, rank]),
                    "position": [int(v) for v in result.positions[row, rank]],
                    "box": [int(v) for v in result.boxes[row, rank]],
                    "patch": f"assets/{folder}/{stem}_patch.png",
                }
                item["reconstructions"] = {}
                for method, arrays in result.reconstructions.items():
                    if self.raw == "npy":
                        fileio.save_npy(assets / f"{stem}_{method}.npy", arrays[row, rank].astype(np.float32))
                    fileio.save_png(
                        assets / f"{stem}_{method}.png", to_image(arrays[row, rank], percentile=RECONSTRUCTION_PERCENTILE)
                    )
                    item["reconstructions"][method] = f"assets/{folder}/{stem}_{method}.png"
                items.append(item)
            previous = fileio.read_json(self._manifest_path(layer, channel), {}) or {}
            manifest = {"channel": int(channel), "items": items, "slots": previous.get("slots", {})}
            self._remove_replaced(previous.get("items") or (), items, assets)
            if self.raw == "compact":
                manifest["arrays"] = self._save_channel_arrays(result, row, assets)
            if unit:
                manifest["unit"] = unit
            fileio.write_json(self._manifest_path(layer, channel), manifest)

    def _remove_replaced(self, old_items, new_items, assets):
        """Delete the files of a channel's previous items that its new items no longer name (images that left its
        top-k, or files named by an older naming rule), so no image's picture stays under another name."""
        kept = {src for item in new_items for src in [item["patch"], *item["reconstructions"].values()]}
        for item in old_items:
            for src in [item.get("patch"), *(item.get("reconstructions") or {}).values()]:
                path = self.out / str(src)
                if src and src not in kept and path.parent == assets:  # only this layer's assets
                    path.unlink(missing_ok=True)
                    path.with_suffix(".npy").unlink(missing_ok=True)

    def _save_channel_arrays(self, result, row, assets):
        """One compressed ``.npz`` with a channel's top-k: values, ids, positions, boxes, patches, reconstructions."""
        channel = int(result.channels[row])
        path = assets / f"{array_stem(self.model_name, result.layer, 'ch')}{channel}.npz"
        arrays = {
            "values": result.values[row],
            "image_ids": np.array([str(i) for i in result.image_ids[row]]),
            "positions": result.positions[row],
            "boxes": result.boxes[row],
            "patches": result.patches[row],
        }
        for method, maps in result.reconstructions.items():
            arrays[method] = maps[row].astype(np.float16)
        fileio.save_npz(path, arrays)
        return path.relative_to(self.out).as_posix()

    def written_by(self, layer, channel, slot=None):
        """The pipeline unit key recorded in a channel's manifest, or in one of its slots (None if none).

        None also for a channel whose files were named by an older rule than :func:`safe_name`'s
        (two images could share them), so that a rerun into an old folder rewrites it.
        """
        manifest = fileio.read_json(self._manifest_path(layer, channel), {}) or {}
        if slot:
            return (manifest.get("slots", {}).get(slot) or {}).get("unit")
        named = all(
            item.get("patch") == self._patch_src(layer, item.get("image"), channel) for item in manifest.get("items") or ()
        )
        return manifest.get("unit") if named else None

    def _patch_src(self, layer, image_id, channel):
        stem = f"{array_stem(self.model_name, layer, image_id)}_ch{int(channel)}"
        return f"assets/{safe_name(layer)}/{stem}_patch.png"

    def has_slot(self, layer, channel, kind):
        """Whether channel ``channel`` of ``layer`` has a ``kind`` picture (never when forcing)."""
        if self.force and (layer, channel, kind) not in self._added:
            return False
        manifest = fileio.read_json(self._manifest_path(layer, channel), {}) or {}
        return kind in manifest.get("slots", {})

    def add_slot(self, layer, channel, kind, title, image, unit=None):
        """Add a picture for a channel beside its patches (feature visualization, ...)."""
        path = self.out / "assets" / safe_name(layer) / f"{array_stem(self.model_name, layer, kind)}_ch{int(channel)}.png"
        fileio.save_png(path, image)
        self._added.add((layer, channel, kind))
        manifest = fileio.read_json(self._manifest_path(layer, channel), {"channel": int(channel), "items": []})
        manifest.setdefault("slots", {})[kind] = {
            "title": title,
            "src": path.relative_to(self.out).as_posix(),
            **({"unit": unit} if unit else {}),
        }
        fileio.write_json(self._manifest_path(layer, channel), manifest)

    def save_picture(self, folder, stem, image, array=None):
        """Save ``image`` (in [0, 1] or uint8) as ``assets/<folder>/<stem>.png``, and ``array`` beside it as ``.npy``.

        Returns the PNG's path relative to the report folder (for ``src`` attributes).
        """
        src = self.picture_src(folder, stem)
        if array is not None:
            fileio.save_npy((self.out / src).with_suffix(".npy"), array)
        fileio.save_png(self.out / src, image)
        return src

    @staticmethod
    def picture_src(folder, stem):
        """Where :meth:`save_picture` saves ``stem`` in ``folder``, relative to the report folder."""
        return f"assets/{safe_name(folder)}/{stem}.png"

    def write_grid_page(self, path, title, tables, lede="", facts=(), crumb=None):
        """Write a page of picture tables (``templates/grid.html``); returns its path.

        ``tables`` is a list of dicts with ``id``, ``title``, optional ``lede``, ``columns`` (headers)
        and ``rows``, each row a dict with ``label``, optional ``note`` and ``cells``: dicts with
        ``src``, ``alt`` and optional ``caption``, or None for an empty cell.
        """
        return self._render(
            "grid.html", path, title=title, tables=tables, lede=lede, facts=list(facts), crumb=crumb or self.model_name
        )

    def render_page(self, template, path, **context):
        """Render ``template`` (a file of ``templates/``) with ``context`` to ``<out>/<path>``, atomically; returns the path.

        ``root`` (the relative path from the page to the report's root), ``version`` and
        ``generated`` are filled in unless given.
        """
        return self._render(template, path, **context)

    def _render(self, template, path, **context):
        context.setdefault("root", "")
        context.setdefault("version", _version())
        context.setdefault("generated", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
        html = self.env.get_template(template).render(**context)
        return fileio.write_text(self.out / path, html)

    def _model_context(self, input_desc):
        return {"name": self.model_name, "weights": self.weights, "input": input_desc}

    def write_layer_page(self, layer, channels, field, stride, k, input_desc="", per_page=None):
        """Write the pages of ``layer`` from its finished channels' manifests.

        The channel rows go on ``<layer>.html``, ``<layer>_p2.html``, ... (``per_page`` channels
        each), the thumbnails on ``<layer>_atlas.html`` and each channel's page on
        ``channels/<layer>/ch<c>.html`` (see the module docstring). Each manifest is read once.

        Parameters
        ----------
        layer : str
            The layer's name.
        channels : int
            How many channels the layer has (shown; the pages list the finished ones).
        field, stride : str
            Receptive field and stride as text (:func:`field_text`, :func:`stride_text`).
        k : int
            Patches per channel.
        input_desc : str, optional
            The model's input, for the index.
        per_page : int, optional
            Channels per page of rows (:data:`CHANNELS_PER_PAGE`).

        Returns
        -------
        path : Path
            The first page, ``<layer>.html``.
        """
        per_page = max(1, int(per_page or CHANNELS_PER_PAGE))
        shown = [_channel_view(manifest) for manifest in self.manifests(layer)]
        groups = [shown[i : i + per_page] for i in range(0, len(shown), per_page)] or [[]]
        pages = [
            {"href": layer_page_name(layer, n), "first": g[0]["channel"] if g else "-", "last": g[-1]["channel"] if g else "-"}
            for n, g in enumerate(groups, 1)
        ]
        for number, group in enumerate(groups, 1):
            for ch in group:
                ch.update(page=layer_page_name(layer, number), page_number=number, href=channel_page_name(layer, ch["channel"]))
        found = {m for ch in shown for item in ch["items"] for m in item["reconstructions"]}
        common = {
            "model": self._model_context(input_desc),
            "layer": {"name": layer, "channels": channels, "field": field, "stride": stride},
            "k": k,
            "methods": [m for m in METHOD_TITLES if m in found] + sorted(found - set(METHOD_TITLES)),
            "titles": METHOD_TITLES,
            "pages": pages,
            "atlas": atlas_page_name(layer),
        }
        first = None
        for number, group in enumerate(groups, 1):
            path = self._render(
                "layer.html", pages[number - 1]["href"], channels=group, current=number, total=len(shown), **common
            )
            first = first or path
        kinds = [ch["thumb"]["kind"] for ch in shown if ch["thumb"]]
        self._render(
            "atlas.html",
            common["atlas"],
            channels=shown,
            thumb=THUMB_PX,
            visualized=kinds.count("featurevis"),
            patch_tiles=len(kinds) - kinds.count("featurevis"),
            **common,
        )
        root = "../" * channel_page_name(layer, 0).count("/")
        for i, ch in enumerate(shown):
            before = shown[i - 1] if i > 0 else None
            after = shown[i + 1] if i + 1 < len(shown) else None
            self._render("channel.html", ch["href"], root=root, ch=ch, prev=before, next=after, **common)
        folder = self.out / channel_page_name(layer, 0).rsplit("/", 1)[0]
        keep = {ch["href"].rsplit("/", 1)[1] for ch in shown}
        for old in folder.glob("ch*.html"):  # channels of a run with other settings, whose assets are gone
            if re.fullmatch(r"ch\d+\.html", old.name) and old.name not in keep:
                old.unlink(missing_ok=True)
        return first

    def write_index(self, layers, input_desc, pages=()):
        """Write ``index.html``: ``layers`` is a list of dicts with name, channels, field, stride.

        Each layer links its first page and its atlas, where :meth:`write_layer_page` wrote them.
        """
        rows = []
        for layer in layers:
            done = len(self.manifests(layer["name"]))
            page, atlas = layer_page_name(layer["name"]), atlas_page_name(layer["name"])
            rows.append(
                {
                    **layer,
                    "shown": done,
                    "page": page if (self.out / page).exists() else None,
                    "atlas": atlas if (self.out / atlas).exists() else None,
                }
            )
        return self._render(
            "index.html",
            "index.html",
            model=self._model_context(input_desc),
            layers=rows,
            settings=self.settings,
            pages=list(pages),
        )


#: Channels per page of a layer's rows: 32 channels of 9 patches and 2 reconstructions are ~900 images.
CHANNELS_PER_PAGE = 32
#: Side of an atlas thumbnail, in CSS pixels.
THUMB_PX = 96


def layer_page_name(layer, number=1):
    """Page ``number`` (from 1) of ``layer``'s channel rows: ``<layer>.html``, then ``<layer>_p2.html``, ...

    Examples
    --------
    >>> layer_page_name("block4_conv3"), layer_page_name("block4_conv3", 3)
    ('block4_conv3.html', 'block4_conv3_p3.html')
    """
    return f"{safe_name(layer)}.html" if int(number) == 1 else f"{safe_name(layer)}_p{int(number)}.html"


def atlas_page_name(layer):
    """The atlas of ``layer`` (a thumbnail per channel): ``<layer>_atlas.html``."""
    return f"{safe_name(layer)}_atlas.html"


def channel_page_name(layer, channel):
    """The page of one channel, relative to the report folder.

    Examples
    --------
    >>> channel_page_name("block4_conv3", 12)
    'channels/block4_conv3/ch12.html'
    """
    return f"channels/{safe_name(layer)}/ch{int(channel)}.html"


def _text(value, spec):
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return "" if value is None else str(value)


def _coordinates(values):
    """``[3, 5]`` as ``"(3, 5)"``; ``""`` when missing."""
    return "(" + ", ".join(str(v) for v in values) + ")" if isinstance(values, (list, tuple)) else _text(values, "")


def _slot_views(slots):
    """A manifest's ``slots`` as a list of ``{kind, title, images: [{src, caption}]}``: featurevis first, then by kind.

    A slot holds ``src`` (one image) or ``srcs`` (a list of paths, or of dicts with ``src`` and
    optional ``caption``); other keys are ignored, and a slot without an image is left out.
    """
    views = []
    for kind in sorted(slots, key=lambda kind: (kind != "featurevis", kind)):
        slot = slots[kind]
        if not isinstance(slot, dict):
            continue
        entries = slot.get("srcs") or ([slot["src"]] if slot.get("src") else [])
        images = []
        for entry in entries:
            src, caption = (entry.get("src"), entry.get("caption", "")) if isinstance(entry, dict) else (entry, "")
            if src:
                images.append({"src": str(src), "caption": str(caption or "")})
        if images:
            views.append({"kind": kind, "title": slot.get("title") or kind.replace("_", " ").capitalize(), "images": images})
    return views


def _channel_view(manifest):
    """What the pages show of one channel's manifest (unknown keys are ignored).

    The thumbnail (``thumb``) is the channel's feature visualization if it has one, else its top
    patch, else None.
    """
    items = []
    for rank, item in enumerate(manifest.get("items") or [], 1):
        items.append(
            {
                "rank": rank,
                "image": str(item.get("image", "")),
                "value": _text(item.get("value"), ".3g"),
                "position": _coordinates(item.get("position")),
                "box": _coordinates(item.get("box")),
                "patch": item.get("patch"),
                "reconstructions": dict(item.get("reconstructions") or {}),
            }
        )
    slots = _slot_views(manifest.get("slots") or {})
    thumb = None
    featurevis = next((slot for slot in slots if slot["kind"] == "featurevis"), None)
    top = next((item for item in items if item["patch"]), None)
    if featurevis:
        thumb = {"src": featurevis["images"][0]["src"], "kind": "featurevis", "title": featurevis["title"]}
    elif top:
        thumb = {"src": top["patch"], "kind": "patch", "title": f"top patch, {top['image']}, activation {top['value']}"}
    arrays = manifest.get("arrays")
    return {
        "channel": int(manifest["channel"]),
        "items": items,
        "slots": slots,
        "thumb": thumb,
        "arrays": str(arrays) if arrays else None,
    }


def _version():
    from .. import __version__

    return __version__


def field_text(field):
    """A receptive field's size as ``"44 x 44"``, or ``"whole image"`` for layers without a spatial map."""
    if not field.stride or not all(field.stride):
        return "whole image"
    return f"{field.size[0]} x {field.size[1]}"


def stride_text(field):
    """A receptive field's stride as ``"8"`` or ``"8 x 4"``; ``"-"`` without a spatial map."""
    if not field.stride or not all(field.stride):
        return "-"
    return str(field.stride[0]) if field.stride[0] == field.stride[1] else f"{field.stride[0]} x {field.stride[1]}"
