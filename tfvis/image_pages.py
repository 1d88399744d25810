"""Per-image report pages: saliency maps and inversions of a few input images, layer by layer.

The model CLIs (``--methods saliency,inversion``) call :func:`write_image_pages`. For each page
image and each selected layer it shows the saliency maps of the image's strongest channel among
the channels of the report (or, for a model with a class output, of its top classes), and the
image inverted from that layer's representation with the normalised representation error.

Work is saved per (method, layer) for all page images at once (the computations are batched over
the images), so an interrupted run resumes where it stopped.
"""
import numpy as np

from . import inversion, saliency
from .activations import activations
from .layers import get_layer
from .report import array_stem, safe_name

#: Saliency methods of the pages, in column order, with their titles.
SALIENCY_TITLES = {
    "vanilla": "Gradient (Simonyan)",
    "smoothgrad": "SmoothGrad",
    "guided": "Guided backprop",
    "grad_cam": "Grad-CAM",
}
#: Noisy copies per image of the pages' SmoothGrad.
SMOOTHGRAD_SAMPLES = 16
#: Noise of the pages' SmoothGrad, as a fraction of the input range.
SMOOTHGRAD_NOISE = 0.15


def _smoothgrad_settings():
    return {"noise": SMOOTHGRAD_NOISE, "samples": SMOOTHGRAD_SAMPLES}


def strongest_channels(model, images, layer, channels, batch_size=16):
    """For each image, the channel of ``channels`` with the largest mean activation at ``layer``.

    Parameters
    ----------
    model : keras.Model
    images : ndarray, shape (N, H, W, 3)
    layer : str
    channels : sequence of int
        Candidates (the channels shown in the report).
    batch_size : int

    Returns
    -------
    best : ndarray of int, shape (N,)
    values : ndarray of float, shape (N,)
        The mean activation of each image's best channel.
    """
    act = activations(model, [layer], images, batch_size=batch_size)[layer]
    means = act.reshape(len(images), -1, act.shape[-1]).mean(axis=1)[:, list(channels)]
    pick = means.argmax(axis=1)
    return np.asarray(channels)[pick], means[np.arange(len(images)), pick]


def saliency_maps(model, images, targets, cam_at, batch_size=16, seed=0, noise=SMOOTHGRAD_NOISE, samples=SMOOTHGRAD_SAMPLES):
    """The page's saliency maps of ``images`` for one target per image, by method.

    ``noise`` and ``samples`` are SmoothGrad's (:func:`tfvis.saliency.smoothgrad`).

    Returns
    -------
    dict of str to ndarray, shape (N, H, W)
        Keys of :data:`SALIENCY_TITLES`.
    """
    return {
        "vanilla": saliency.vanilla(model, images, targets, batch_size=batch_size),
        "smoothgrad": saliency.smoothgrad(model, images, targets, noise=noise, samples=samples, batch_size=batch_size, seed=seed),
        "guided": saliency.guided(model, images, targets, batch_size=batch_size),
        "grad_cam": saliency.grad_cam(model, images, targets, cam_at, batch_size=batch_size),
    }


def _save_maps(report, model_name, key, ids, images, maps, targets):
    """Save overlays and raw maps; returns per-image ``{method: src}`` and the target texts."""
    per_image = []
    for i, image_id in enumerate(ids):
        stem = array_stem(model_name, key, image_id)
        srcs = {
            method: report.save_picture("pages", f"{stem}_{method}", saliency.overlay(images[i], values[i]), values[i])
            for method, values in maps.items()
        }  # fmt: skip
        per_image.append({"image": image_id, "target": str(targets[i]), "maps": srcs})
    return per_image


def _maps_named_now(report, key, entries):
    """Whether saved saliency entries name their files as :func:`_save_maps` does now (older rules could give two images one file)."""
    return all(
        src == report.picture_src("pages", f"{array_stem(report.model_name, key, entry['image'])}_{method}")
        for entry in entries for method, src in entry["maps"].items()
    )  # fmt: skip


def layer_saliency(report, model, ids, images, layer, channels, batch_size=16, seed=0):
    """Compute (or reload) the saliency record of one layer for the page images."""
    record = report.load_state("saliency", layer)
    if record and record.get("images") == list(ids) and _maps_named_now(report, layer, record["entries"]):
        return record
    best, values = strongest_channels(model, images, layer, channels, batch_size)
    targets = [f"{layer}:{int(c)}" for c in best]
    cam_at = layer if len(get_layer(model, layer).output.shape) == 4 else saliency.default_layer(model)
    smoothgrad = _smoothgrad_settings()
    maps = saliency_maps(model, images, targets, cam_at, batch_size, seed, **smoothgrad)
    entries = _save_maps(report, report.model_name, layer, ids, images, maps, targets)
    for entry, value in zip(entries, values):
        entry["note"] = f"mean activation {value:.3g}"
    record = {"images": list(ids), "layer": layer, "cam_layer": cam_at, "smoothgrad": smoothgrad, "entries": entries}
    report.save_state("saliency", layer, record)
    return record


def class_saliency(report, model, ids, images, top=3, batch_size=16, seed=0):
    """Compute (or reload) the saliency records of each image's ``top`` classes (models with a class output)."""
    record = report.load_state("saliency", "classes")
    named = record and all(_maps_named_now(report, f"class{rank + 1}", entries) for rank, entries in enumerate(record["ranks"]))
    if record and record.get("images") == list(ids) and named:
        return record
    logits = saliency.class_scores(model, images, batch_size)
    order = np.argsort(-logits, axis=1)[:, :top]
    cam_at = saliency.default_layer(model)
    smoothgrad = _smoothgrad_settings()
    ranks = []
    for rank in range(order.shape[1]):
        targets = [int(c) for c in order[:, rank]]
        maps = saliency_maps(model, images, targets, cam_at, batch_size, seed, **smoothgrad)
        entries = _save_maps(report, report.model_name, f"class{rank + 1}", ids, images, maps, targets)
        for entry, i in zip(entries, range(len(ids))):
            entry["logit"] = float(logits[i, targets[i]])  # the note is written at page time, with the class names of that run
            entry["note"] = f"class {targets[i]}, logit {logits[i, targets[i]]:.3g}"
        ranks.append(entries)
    record = {"images": list(ids), "cam_layer": cam_at, "smoothgrad": smoothgrad, "ranks": ranks}
    report.save_state("saliency", "classes", record)
    return record


def layer_inversion(report, model, ids, images, layer, seed=0):
    """Compute (or reload) the inversions of the page images at one layer, batched."""
    record = report.load_state("inversion", layer)
    named = record and all(e["src"] == report.picture_src("pages", f"{array_stem(report.model_name, layer, e['image'])}_inversion") for e in record["entries"])
    if record and record.get("images") == list(ids) and named:
        return record
    recons, errors = inversion.invert(model, images, layer, seed=seed)
    entries = []
    for i, image_id in enumerate(ids):
        stem = array_stem(report.model_name, layer, image_id)
        src = report.save_picture("pages", f"{stem}_inversion", np.clip(recons[i], 0, 255) / 255.0, recons[i])
        entries.append({"image": image_id, "src": src, "error": float(errors[i])})
    record = {"images": list(ids), "layer": layer, "size": int(images.shape[1]), "entries": entries}
    report.save_state("inversion", layer, record)
    return record


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
        cells = [{"src": entry["maps"][m], "alt": f"{titles[m]}, {entry['target']}"} for m in SALIENCY_TITLES]
        rows.append({"label": entry["target"], "note": entry["note"], "cells": cells})
    return rows


def _smoothgrad_text(records):
    """SmoothGrad's settings as the records say their maps were computed (records saved before they were kept: the defaults)."""
    settings = [record.get("smoothgrad") or _smoothgrad_settings() for record in records]
    samples = dict.fromkeys(f"{s['samples']:g}" for s in settings)
    noises = dict.fromkeys(f"{s['noise']:.0%}" for s in settings)
    return f"SmoothGrad: {' or '.join(samples)} copies, noise {' or '.join(noises)} of the range."


def _class_entry_text(entry, info):
    """``(class, note)`` of a class saliency entry: the class by its name when ``info`` has class names."""
    if info is None or "logit" not in entry:  # records of earlier runs keep their own note
        return f"class {entry['target']}", entry["note"]
    name = info.class_name(int(entry["target"]))
    return name, f"{name}, logit {entry['logit']:.3g}"


def image_tables(ids, index, image_src, saliency_records=(), class_record=None, inversion_records=(), info=None):
    """The tables of the page of image ``ids[index]`` (see :meth:`tfvis.report.Report.write_grid_page`).

    ``info`` (:class:`tfvis.models.ModelInfo`) names the classes of the class rows by its
    ``class_names`` (``--labels``); without it they are shown by index.
    """
    image_id = ids[index]
    tables = [{"id": "image", "title": "Image", "columns": [image_id], "rows": [{"label": "", "cells": [{"src": image_src, "alt": image_id}]}]}]
    titles = SALIENCY_TITLES
    if class_record:
        rows = []
        for rank, entries in enumerate(class_record["ranks"]):
            entry = entries[index]
            shown, note = _class_entry_text(entry, info)
            cells = [{"src": entry["maps"][m], "alt": f"{titles[m]}, {shown}"} for m in titles]
            rows.append({"label": f"top {rank + 1}", "note": note, "cells": cells})
        tables.append({
            "id": "classes", "title": "Saliency of the top classes", "columns": list(titles.values()), "rows": rows,
            "lede": f"Maps of the unnormalised class scores; Grad-CAM at {class_record['cam_layer']}.",
        })  # fmt: skip
    if saliency_records:
        tables.append({
            "id": "saliency", "title": "Saliency of the strongest channel per layer", "columns": list(titles.values()),
            "rows": _saliency_table(saliency_records, index, titles),
            "lede": "For each layer, the report channel with the largest mean activation on this image; the maps are "
            "gradients of that mean (Grad-CAM at the layer itself is the channel's own map, upsampled). "
            + _smoothgrad_text(saliency_records),
        })  # fmt: skip
    if inversion_records:
        rows = []
        for record in inversion_records:
            entry = record["entries"][index]
            cell = {"src": entry["src"], "alt": f"inversion at {record['layer']}", "caption": f"error {entry['error']:.3f}"}
            rows.append({"label": record["layer"], "note": f"{record['size']} px", "cells": [cell]})
        tables.append({
            "id": "inversion", "title": "Inversion (Mahendran & Vedaldi 2015)", "columns": ["reconstruction"], "rows": rows,
            "lede": "The image reconstructed from each layer's representation alone, with the normalised "
            "representation error ||Phi(x*) - Phi(x)||^2 / ||Phi(x)||^2.",
        })  # fmt: skip
    return tables


def write_image_pages(report, model, ids, images, layers, channels, methods, invert_layers=(), invert_size=None, batch_size=16, seed=0, progress=True):
    """Compute and write one page per image; returns the index links ``[{"href", "title"}]``.

    Parameters
    ----------
    report : tfvis.report.Report
    model : keras.Model
    ids : list of str
    images : ndarray, shape (N, H, W, 3)
        RGB in [0, 255].
    layers : list of str
        Layers of the saliency rows.
    channels : dict of str to list of int
        The report's channels per layer (the candidates of each row).
    methods : collection of str
        ``"saliency"`` and/or ``"inversion"``.
    invert_layers : list of str
        Layers inverted (each costs a few hundred optimisation steps).
    invert_size : int, optional
        Side of the images inverted (smaller is faster); default the images' size.
    """
    from tqdm.auto import tqdm

    ids = [str(i) for i in ids]
    images = np.asarray(images, np.float32)
    work = (["saliency"] * len(layers) if "saliency" in methods else []) + (["inversion"] * len(invert_layers) if "inversion" in methods else [])
    bar = tqdm(total=len(work) + ("saliency" in methods), desc="image pages", unit="step", disable=not progress)
    saliency_records, inversion_records, class_record = [], [], None
    if "saliency" in methods:
        if saliency.has_class_output(model):
            class_record = class_saliency(report, model, ids, images, batch_size=batch_size, seed=seed)
        bar.update()
        for layer in layers:
            saliency_records.append(layer_saliency(report, model, ids, images, layer, channels[layer], batch_size, seed))
            bar.update()
    if "inversion" in methods:
        small = images if not invert_size or invert_size == images.shape[1] else _resized(images, invert_size)
        for layer in invert_layers:
            inversion_records.append(layer_inversion(report, model, ids, small, layer, seed))
            bar.update()
    bar.close()
    from .models import model_info

    info = model_info(model)
    links = []
    for index, image_id in enumerate(ids):
        src = report.save_picture("pages", f"{safe_name(image_id)}_input", images[index] / 255.0)
        tables = image_tables(ids, index, src, saliency_records, class_record, inversion_records, info=info)
        report.write_grid_page(_page_name(image_id), image_id, tables, lede=f"What {report.model_name} sees in {image_id}.")
        links.append({"href": _page_name(image_id), "title": image_id})
    return links


def _resized(images, size):
    import tensorflow as tf

    return tf.image.resize(images, (size, size), method="area").numpy().astype(np.float32)
