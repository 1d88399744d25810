"""The layer report as a pipeline: plan the units, compute them on an engine, write the report from the store.

Used by ``python -m tfvis.vgg|alex|inception`` (:mod:`tfvis.cli.report`). Each stage resumes:
channels whose manifest holds the key of their current inputs are done; the others are grouped
into units; units already in the store are not computed again; each unit's channels are written
to the report as soon as its result arrives, so an interrupted run loses at most the units in flight.
The store keeps the top-k shards (small, and reused when other channels are asked for); a channel
or feature-visualization unit's result leaves the store once its channels' files hold it.
"""

import sys

import numpy as np

from .. import topk
from ..featurevis.render import AUTO_BFLOAT16 as RENDER_AUTO_BFLOAT16
from ..images import NoImagesError
from ..precision import resolve_precision
from .plan import channel_keys, channel_units, featurevis_key, featurevis_units, merge_top_k, top_k_units

FV_KIND = "featurevis"


def top_k(engine, context, store, layers, k, batch_size, shard_images=None, precision="float32"):
    """Stages 1 and 2: per-shard top-k of every channel of ``layers``, merged; dict layer to merged lists."""
    precision = resolve_precision(precision, topk.AUTO_BFLOAT16)  # the key holds what runs, not "auto"
    units = top_k_units(context, layers, k, batch_size, shard_images, precision)
    engine.run(units, context, store, desc="top-k shards")
    results = [store.load(unit) for unit in units]
    read, total = sum(result["meta"]["read"] for result in results), len(context.source)
    if not read:
        raise NoImagesError(f"none of the {total} images could be read")
    if read < total:
        print(
            f"tfvis: skipped {total - read} unreadable file(s) of {total} in {context.source.describe().get('files', 'the images')}",
            file=sys.stderr,
        )
    return {layer: merge_top_k(results, layer, k) for layer in layers}


def channels(engine, context, store, report, merged, channels_by_layer, k, methods, batch_size, group=16, force=False):
    """Stage 3a: patches and reconstructions of the chosen channels not yet in ``report``, written as they arrive.

    Returns ``(computed, done)`` channel counts.
    """
    units, keys, done = [], {}, 0
    for layer, chosen in channels_by_layer.items():
        keys[layer] = channel_keys(context, layer, chosen, merged[layer], k, methods, report.raw)
        todo = [c for c in chosen if force or report.written_by(layer, c) != keys[layer][c]]
        done += len(chosen) - len(todo)
        units += channel_units(context, layer, todo, merged[layer], k, methods, batch_size, group, report.raw)

    def write(unit, result):
        layer = unit.params["layer"]
        result = as_layer_top_k(result)
        for row, channel in enumerate(result.channels):
            report.add_top_k(_one_channel(result, row), unit=keys[layer][int(channel)])
        store.discard(unit)  # its channels' files now hold it all (their manifests name its key: never planned again)

    engine.run(units, context, store, desc="patches and reconstructions", on_result=write)
    return sum(len(u.params["channels"]) for u in units), done


def _one_channel(result, row):
    """Row ``row`` of a :class:`LayerTopK` as a one-channel LayerTopK (each channel's manifest has its own key)."""
    pick = slice(row, row + 1)
    return topk.LayerTopK(
        layer=result.layer,
        channels=result.channels[pick],
        values=result.values[pick],
        image_ids=result.image_ids[pick],
        positions=result.positions[pick],
        boxes=result.boxes[pick],
        patches=result.patches[pick],
        reconstructions={m: maps[pick] for m, maps in result.reconstructions.items()},
        image_index=None if result.image_index is None else result.image_index[pick],
    )


def feature_visualizations(
    engine, context, store, report, channels_by_layer, steps, size, batch, seed, force=False, precision="float32"
):
    """Stage 3b: feature visualizations of the chosen channels without one (for these settings), written as they arrive."""
    units, keys = [], {}
    precision = resolve_precision(precision, RENDER_AUTO_BFLOAT16)  # the key holds what runs, not "auto"
    for layer, chosen in channels_by_layer.items():
        keys[layer] = featurevis_key(context, layer, steps, size, batch, seed, precision)
        todo = [c for c in chosen if force or report.written_by(layer, c, FV_KIND) != keys[layer]]
        units += featurevis_units(context, layer, todo, steps, size, batch, seed, precision)

    def write(unit, result):
        layer = unit.params["layer"]
        for i, channel in enumerate(unit.params["channels"]):
            title = "Feature visualization" + (" (flat: a dead channel?)" if result["failed"][i] else "")
            report.add_slot(layer, channel, FV_KIND, title, result["images"][i], unit=keys[layer])
        store.discard(unit)

    engine.run(units, context, store, desc="feature visualizations", on_result=write)
    return sum(len(u.params["channels"]) for u in units)


def as_layer_top_k(result):
    """A ``channels`` unit's stored result as a :class:`tfvis.topk.LayerTopK`."""
    reconstructions = {name[len("recon_") :]: result[name] for name in result if name.startswith("recon_")}
    return topk.LayerTopK(
        layer=result["meta"]["layer"],
        channels=result["channels"],
        values=result["values"],
        image_ids=np.array(result["meta"]["image_ids"], dtype=object),
        positions=result["positions"],
        boxes=result["boxes"],
        patches=result["patches"],
        reconstructions=reconstructions,
        image_index=result["image_index"],
    )
