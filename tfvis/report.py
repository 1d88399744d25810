"""HTML reports: an index per model and a page per layer, readable offline in any browser.

Layout of a report folder::

    index.html, style.css, <layer>.html
    assets/<layer>/<model>_<layer>_<image>_ch<c>_{patch,deconv}.png and .npy
    state/<layer>/ch<c>.json      one manifest per finished channel (what makes runs resumable)
    run.json                      the settings the assets were computed with

Every file is written atomically; a channel counts as done once its manifest exists, and its
manifest is written after its images. Pages are rebuilt from the manifests, so a page always
lists every channel finished by this or an earlier run.
"""
import datetime
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from . import fileio
from .display import RECONSTRUCTION_PERCENTILE, to_image

STYLE = "style.css"
METHOD_TITLES = {"deconvnet": "Deconvnet", "guided": "Guided backprop", "gradient": "Gradient"}


def _environment():
    import jinja2

    try:
        import importlib.resources

        loader = jinja2.FileSystemLoader(str(importlib.resources.files("tfvis.templates")))
    except ModuleNotFoundError:  # running from a checkout without installing
        loader = jinja2.FileSystemLoader(str(Path(__file__).resolve().parents[1] / "templates"))
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)


def safe_name(text):
    """``text`` as a file-name part: letters, digits, ``.``, ``_`` and ``-``; extensions dropped."""
    text = re.sub(r"\.(png|jpe?g|bmp|tiff?|gif|webp)$", "", str(text), flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"


def array_stem(model_name, layer, image_id):
    """``<model>_<layer>_<image>``: how researchers name per-image arrays of a layer."""
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
    """

    def __init__(self, out_dir, model_name, weights, settings, force=False):
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
        self.force = force
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

    def add_top_k(self, result):
        """Write the patches, reconstructions and manifest of every channel of a :class:`~tfvis.topk.LayerTopK`."""
        layer = result.layer
        assets = self.out / "assets" / safe_name(layer)
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
                    "patch": f"assets/{safe_name(layer)}/{stem}_patch.png",
                }
                item["reconstructions"] = {}
                for method, arrays in result.reconstructions.items():
                    fileio.save_npy(assets / f"{stem}_{method}.npy", arrays[row, rank])
                    fileio.save_png(assets / f"{stem}_{method}.png", to_image(arrays[row, rank], percentile=RECONSTRUCTION_PERCENTILE))
                    item["reconstructions"][method] = f"assets/{safe_name(layer)}/{stem}_{method}.png"
                items.append(item)
            previous = fileio.read_json(self._manifest_path(layer, channel), {}) or {}
            manifest = {"channel": int(channel), "items": items, "slots": previous.get("slots", {})}
            fileio.write_json(self._manifest_path(layer, channel), manifest)

    def has_slot(self, layer, channel, kind):
        """Whether channel ``channel`` of ``layer`` has a ``kind`` picture (never when forcing)."""
        if self.force and (layer, channel, kind) not in self._added:
            return False
        manifest = fileio.read_json(self._manifest_path(layer, channel), {}) or {}
        return kind in manifest.get("slots", {})

    def add_slot(self, layer, channel, kind, title, image):
        """Add a picture for a channel beside its patches (feature visualization, ...)."""
        path = self.out / "assets" / safe_name(layer) / f"{array_stem(self.model_name, layer, kind)}_ch{int(channel)}.png"
        fileio.save_png(path, image)
        self._added.add((layer, channel, kind))
        manifest = fileio.read_json(self._manifest_path(layer, channel), {"channel": int(channel), "items": []})
        manifest.setdefault("slots", {})[kind] = {"title": title, "src": path.relative_to(self.out).as_posix()}
        fileio.write_json(self._manifest_path(layer, channel), manifest)

    def save_picture(self, folder, stem, image, array=None):
        """Save ``image`` (in [0, 1] or uint8) as ``assets/<folder>/<stem>.png``, and ``array`` beside it as ``.npy``.

        Returns the PNG's path relative to the report folder (for ``src`` attributes).
        """
        base = self.out / "assets" / safe_name(folder)
        if array is not None:
            fileio.save_npy(base / f"{stem}.npy", array)
        fileio.save_png(base / f"{stem}.png", image)
        return f"assets/{safe_name(folder)}/{stem}.png"

    def _state_path(self, kind, key):
        return self.out / "state" / safe_name(kind) / f"{safe_name(key)}.json"

    def load_state(self, kind, key):
        """The record saved by :meth:`save_state` for ``(kind, key)``, or None (always None when forcing)."""
        return None if self.force else fileio.read_json(self._state_path(kind, key))

    def save_state(self, kind, key, record):
        """Save a finished unit of work (e.g. the saliency maps of one layer for the page images)."""
        fileio.write_json(self._state_path(kind, key), record)

    def write_grid_page(self, path, title, tables, lede="", facts=(), crumb=None):
        """Write a page of picture tables (``templates/grid.html``); returns its path.

        ``tables`` is a list of dicts with ``id``, ``title``, optional ``lede``, ``columns`` (headers)
        and ``rows``, each row a dict with ``label``, optional ``note`` and ``cells``: dicts with
        ``src``, ``alt`` and optional ``caption``, or None for an empty cell.
        """
        return self._render(
            "grid.html", path, title=title, tables=tables, lede=lede, facts=list(facts), crumb=crumb or self.model_name
        )  # fmt: skip

    def _render(self, template, path, **context):
        context.setdefault("root", "")
        context.setdefault("version", _version())
        context.setdefault("generated", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
        html = self.env.get_template(template).render(**context)
        return fileio.write_text(self.out / path, html)

    def _model_context(self, input_desc):
        return {"name": self.model_name, "weights": self.weights, "input": input_desc}

    def write_layer_page(self, layer, channels, field, stride, k, input_desc=""):
        """Write ``<layer>.html`` from the finished channels' manifests; returns its path."""
        shown = []
        for manifest in self.manifests(layer):
            items = [
                {**item, "value": f"{item['value']:.3g}", "position": tuple(item["position"])}
                for item in manifest["items"]
            ]  # fmt: skip
            shown.append({"channel": manifest["channel"], "items": items, "slots": list(manifest.get("slots", {}).values())})
        return self._render(
            "layer.html",
            f"{safe_name(layer)}.html",
            model=self._model_context(input_desc),
            layer={"name": layer, "channels": channels, "field": field, "stride": stride},
            channels=shown,
            k=k,
            methods=[m for m in METHOD_TITLES if any(m in i.get("reconstructions", {}) for c in shown for i in c["items"])],
            titles=METHOD_TITLES,
        )

    def write_index(self, layers, input_desc, pages=()):
        """Write ``index.html``: ``layers`` is a list of dicts with name, channels, field, stride."""
        rows = []
        for layer in layers:
            done = len(self.manifests(layer["name"]))
            page = f"{safe_name(layer['name'])}.html"
            rows.append({**layer, "shown": done, "page": page if (self.out / page).exists() else None})
        return self._render(
            "index.html", "index.html", model=self._model_context(input_desc), layers=rows,
            settings=self.settings, pages=list(pages),
        )  # fmt: skip


def _version():
    from . import __version__

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
