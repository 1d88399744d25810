"""Per-image report pages: saliency maps and inversions of a few input images, layer by layer.

The model CLIs (``--methods saliency,inversion``) plan the pages' work units
(:func:`tfvis.pipeline.image_units.page_units`: saliency of each image's strongest channel per
layer, saliency of its top classes, its inversion per layer), run them on the report's engine,
and call :func:`write_image_pages`, which renders one page per image from the stored results.
For each page image and each selected layer a page shows the saliency maps of the image's
strongest channel among the channels of the report (or, for a model with a class output, of
its top classes), and the image inverted from that layer's representation with the normalised
representation error. An interrupted run resumes unit by unit (the store keeps finished units).
"""

import numpy as np

from .display import overlay, shown_map
from .pipeline.image_units import PAGE_METHODS, SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES, resized, strongest_channels  # noqa: F401 - importable here as before
from .report import array_stem, safe_name
from .saliency.methods import titles


def page_titles(methods=PAGE_METHODS):
    """``{method: title}`` of the pages' saliency columns ``methods``, in column order (from :data:`tfvis.saliency.methods.METHODS`)."""
    return titles(methods)


#: The pages' saliency methods and their titles, as :func:`page_titles` (kept for code that read them here).
SALIENCY_TITLES = page_titles()


def page_images(source, count):
    """``(indices, ids, images)``: the first ``count`` readable images of ``source`` (an :class:`~tfvis.images.ImageSource`)."""
    indices, ids, images = source.read(range(min(int(count), len(source))))
    return [int(i) for i in indices], [str(i) for i in ids], np.asarray(images, np.float32)


def _results(store, units, kind):
    """``{layer or None: [results of its batches, in order]}`` of the units of ``kind``."""
    grouped = {}
    for unit in units:
        if unit.kind == kind:
            grouped.setdefault(unit.params.get("layer"), []).append(store.load(unit))
    return grouped


def _joined(results, name, axis=0):
    return np.concatenate([result[name] for result in results], axis=axis)


def _save_maps(report, key, ids, images, maps, targets):
    """Save overlays and raw maps; returns per-image ``{"image", "target", "maps": {method: src}}``."""
    per_image = []
    for i, image_id in enumerate(ids):
        stem = array_stem(report.model_name, key, image_id)
        srcs = {
            method: report.save_picture("pages", f"{stem}_{method}", overlay(images[i], shown_map(values[i])), values[i])
            for method, values in maps.items()
        }
        per_image.append({"image": image_id, "target": str(targets[i]), "maps": srcs})
    return per_image


def saliency_records(report, store, units, ids, images):
    """The saliency record of each layer (its maps saved as pictures), in the units' layer order."""
    records = []
    first = {unit.params["layer"]: unit for unit in reversed(units) if unit.kind == "page_saliency"}
    for layer, results in _results(store, units, "page_saliency").items():
        methods = first[layer].params["methods"]
        maps = {method: _joined(results, f"maps_{method}") for method in methods}
        targets = [t for result in results for t in result["meta"]["targets"]]
        entries = _save_maps(report, layer, ids, images, maps, targets)
        for entry, value in zip(entries, _joined(results, "values")):
            entry["note"] = f"mean activation {value:.3g}"
        records.append(
            {
                "layer": layer,
                "cam_layer": results[0]["meta"]["cam_layer"],
                "smoothgrad": dict(first[layer].params["smoothgrad"]),
                "methods": list(methods),
                "entries": entries,
            }
        )
    return records


def class_record(report, store, units, ids, images):
    """The record of the top classes' saliency (None when no unit computed it)."""
    results = _results(store, units, "page_classes").get(None)
    if not results:
        return None
    methods = next(unit.params["methods"] for unit in units if unit.kind == "page_classes")
    classes, logits = _joined(results, "classes"), _joined(results, "logits")
    ranks = []
    for rank in range(classes.shape[1]):
        maps = {method: np.concatenate([result[f"maps_{method}"][rank] for result in results]) for method in methods}
        targets = [int(c) for c in classes[:, rank]]
        entries = _save_maps(report, f"class{rank + 1}", ids, images, maps, targets)
        for i, entry in enumerate(entries):
            entry["logit"] = float(logits[i, rank])
            entry["note"] = f"class {targets[i]}, logit {logits[i, rank]:.3g}"
        ranks.append(entries)
    return {"cam_layer": results[0]["meta"]["cam_layer"], "methods": list(methods), "ranks": ranks}


def inversion_records(report, store, units, ids):
    """The inversion record of each inverted layer (reconstructions saved as pictures)."""
    sizes = {unit.params["layer"]: unit.params["size"] for unit in units if unit.kind == "page_inversion"}
    records = []
    for layer, results in _results(store, units, "page_inversion").items():
        recons, errors = _joined(results, "recons"), _joined(results, "errors")
        entries = []
        for i, image_id in enumerate(ids):
            stem = array_stem(report.model_name, layer, image_id)
            src = report.save_picture("pages", f"{stem}_inversion", np.clip(recons[i], 0, 255) / 255.0, recons[i])
            entries.append({"image": image_id, "src": src, "error": float(errors[i])})
        records.append({"layer": layer, "size": sizes[layer], "entries": entries})
    return records


def stage_layers(fields, layers):
    """The last layer of each run of equal total stride in ``layers`` (VGG16: the conv before each pool).

    ``fields`` maps layer names to :class:`~tfvis.receptive_field.ReceptiveField`.
    """
    chosen = []
    for name in layers:
        if chosen and tuple(fields[chosen[-1]].stride) == tuple(fields[name].stride):
            chosen[-1] = name
        else:
            chosen.append(name)
    return chosen


def _page_name(image_id):
    return f"image_{safe_name(image_id)}.html"


def _saliency_table(records, index, titles):
    rows = []
    for record in records:
        entry = record["entries"][index]
        cells = [{"src": entry["maps"][m], "alt": f"{titles[m]}, {entry['target']}"} for m in titles]
        rows.append({"label": entry["target"], "note": entry["note"], "cells": cells})
    return rows


def _smoothgrad_text(records):
    """SmoothGrad's settings as the records say their maps were computed."""
    settings = [record["smoothgrad"] for record in records]
    samples = dict.fromkeys(f"{s['samples']:g}" for s in settings)
    noises = dict.fromkeys(f"{s['noise']:.0%}" for s in settings)
    return f"SmoothGrad: {' or '.join(samples)} copies, noise {' or '.join(noises)} of the range."


def _class_entry_text(entry, info):
    """``(class, note)`` of a class saliency entry: the class by its name when ``info`` has class names."""
    if info is None:
        return f"class {entry['target']}", entry["note"]
    name = info.class_name(int(entry["target"]))
    return name, f"{name}, logit {entry['logit']:.3g}"


def image_tables(ids, index, image_src, saliency_records=(), class_record=None, inversion_records=(), info=None):
    """The tables of the page of image ``ids[index]`` (see :meth:`tfvis.report.Report.write_grid_page`).

    ``info`` (:class:`tfvis.models.ModelInfo`) names the classes of the class rows by its
    ``class_names`` (``--labels``); without it they are shown by index.
    """
    image_id = ids[index]
    tables = [
        {
            "id": "image",
            "title": "Image",
            "columns": [image_id],
            "rows": [{"label": "", "cells": [{"src": image_src, "alt": image_id}]}],
        }
    ]
    shown = (class_record or {}).get("methods") or next((r.get("methods") for r in saliency_records), None)
    titles = page_titles(shown or PAGE_METHODS)
    if class_record:
        rows = []
        for rank, entries in enumerate(class_record["ranks"]):
            entry = entries[index]
            shown, note = _class_entry_text(entry, info)
            cells = [{"src": entry["maps"][m], "alt": f"{titles[m]}, {shown}"} for m in titles]
            rows.append({"label": f"top {rank + 1}", "note": note, "cells": cells})
        tables.append(
            {
                "id": "classes",
                "title": "Saliency of the top classes",
                "columns": list(titles.values()),
                "rows": rows,
                "lede": f"Maps of the unnormalised class scores; Grad-CAM at {class_record['cam_layer']}.",
            }
        )
    if saliency_records:
        tables.append(
            {
                "id": "saliency",
                "title": "Saliency of the strongest channel per layer",
                "columns": list(titles.values()),
                "rows": _saliency_table(saliency_records, index, titles),
                "lede": "For each layer, the report channel with the largest mean activation on this image; the maps are "
                "gradients of that mean (Grad-CAM at the layer itself is the channel's own map, upsampled). "
                + (_smoothgrad_text(saliency_records) if "smoothgrad" in titles else ""),
            }
        )
    if inversion_records:
        rows = []
        for record in inversion_records:
            entry = record["entries"][index]
            cell = {"src": entry["src"], "alt": f"inversion at {record['layer']}", "caption": f"error {entry['error']:.3f}"}
            rows.append({"label": record["layer"], "note": f"{record['size']} px", "cells": [cell]})
        tables.append(
            {
                "id": "inversion",
                "title": "Inversion (Mahendran & Vedaldi 2015)",
                "columns": ["reconstruction"],
                "rows": rows,
                "lede": "The image reconstructed from each layer's representation alone, with the normalised "
                "representation error ||Phi(x*) - Phi(x)||^2 / ||Phi(x)||^2.",
            }
        )
    return tables


def write_image_pages(report, store, units, ids, images, info=None):
    """Write one page per image from the stored results of ``units``; returns the index links ``[{"href", "title"}]``.

    Parameters
    ----------
    report : tfvis.report.Report
    store : tfvis.pipeline.Store
        Holds the result of every unit of ``units`` (run them on an engine first).
    units : list of tfvis.pipeline.Unit
        The pages' units, :func:`tfvis.pipeline.image_units.page_units`.
    ids : list of str
        The page images' ids, in the order of the units' indices.
    images : ndarray, shape (N, H, W, 3)
        The page images, RGB in [0, 255] (the maps are drawn over them).
    info : tfvis.models.ModelInfo, optional
        Names the classes of the class rows (``--labels``).
    """
    ids = [str(i) for i in ids]
    images = np.asarray(images, np.float32)
    saliency = saliency_records(report, store, units, ids, images)
    classes = class_record(report, store, units, ids, images)
    inverted = inversion_records(report, store, units, ids)
    links = []
    for index, image_id in enumerate(ids):
        src = report.save_picture("pages", f"{safe_name(image_id)}_input", images[index] / 255.0)
        tables = image_tables(ids, index, src, saliency, classes, inverted, info=info)
        report.write_grid_page(_page_name(image_id), image_id, tables, lede=f"What {report.model_name} sees in {image_id}.")
        links.append({"href": _page_name(image_id), "title": image_id})
    return links


_resized = resized  # the former name
