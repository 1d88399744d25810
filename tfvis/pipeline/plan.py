"""The units of a layer report, and the exact merge of per-shard top-k lists.

A report runs in three stages, each a list of independent units:

1. ``topk``: one unit per shard of the images (all channels of every selected layer);
2. merge (on the driver, cheap): the dataset's top-k of each channel, exactly that of one pass;
3. ``channels`` (patches and reconstructions of a group of channels) and ``featurevis`` (a batch
   of channels rendered together), which depend only on the merged top-k and the settings.

Every unit's key holds what its result depends on, so a rerun skips finished units and changed
settings recompute exactly the units they affect.
"""

import numpy as np

from ..topk import _RunningTopK
from .units import Unit, digest


def shard_ranges(count, shard_images, batch_size):
    """``(start, stop)`` of each shard of ``count`` images: ``shard_images`` rounded up to whole batches.

    Shards start on multiples of the batch size, so every shard feeds the model the same batches
    as one pass would (the same arithmetic, bit for bit).

    Examples
    --------
    >>> shard_ranges(100, 30, 16)
    [(0, 32), (32, 64), (64, 96), (96, 100)]
    >>> shard_ranges(10, None, 4)
    [(0, 10)]
    """
    if not shard_images or shard_images >= count:
        return [(0, count)] if count else []
    size = -(-shard_images // batch_size) * batch_size
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def _precision(precision, default):
    """``{"precision": ...}`` unless it is the default (so that keys of default runs stay as they were)."""
    return {} if precision == default else {"precision": precision}


def _resolved(precision):
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision={precision!r}: resolve it first (tfvis.precision.resolve_precision)")
    return precision


def top_k_units(context, layers, k, batch_size, shard_images=None, precision="float32"):
    """One ``topk`` unit per shard of the context's images."""
    base = {**context.describe(), "layers": list(layers), "k": int(k), "batch_size": int(batch_size)}
    base.update(_precision(precision, "float32"))
    ranges = shard_ranges(len(context.source), shard_images, batch_size)
    return [
        Unit("topk", {**base, "start": start, "stop": stop}, label=f"top-k of images {start}-{stop - 1}")
        for start, stop in ranges
    ]


def merge_top_k(results, layer, k):
    """The top-k of every channel of ``layer`` over all shards: ``(values, images, flat, ids)``.

    Candidates are ordered by value (largest first), then by image index, exactly the order of
    one pass over the images, so any sharding gives the same lists.
    """
    merged, ids = None, {}
    for result in results:
        i = result["meta"]["layers"].index(layer)
        values, images, flat = result[f"values{i}"], result[f"images{i}"], result[f"flat{i}"]
        if merged is None:
            merged = _RunningTopK(np.arange(values.shape[1]), k)
        merged.merge_entries(values, images, flat)
        ids.update({int(index): image_id for index, image_id in result["meta"]["ids"].items()})
    kept = set(merged.images[merged.images >= 0].tolist())
    return merged.values, merged.images, merged.flat_positions, {i: ids[i] for i in kept}


def channel_keys(context, layer, channels, merged, k, methods, raw="compact"):
    """Per channel, a key of everything its patches and reconstructions depend on (its own top-k included).

    A channel whose manifest holds the same key is done; the others are grouped into units.
    """
    values, images, flat, _ = merged
    base = {**context.describe(), "layer": layer, "k": int(k), "methods": sorted(methods), "raw": raw}
    return {
        int(c): digest(
            {
                **base,
                "channel": int(c),
                "values": values[:, c].tolist(),
                "images": images[:, c].tolist(),
                "flat": flat[:, c].tolist(),
            }
        )
        for c in channels
    }


def channel_units(context, layer, channels, merged, k, methods, batch_size, group=16, raw="compact"):
    """``channels`` units for ``channels`` of ``layer`` (those still to do), ``group`` channels each."""
    values, images, flat, _ = merged
    base = {
        **context.describe(),
        "layer": layer,
        "k": int(k),
        "methods": list(methods),
        "batch_size": int(batch_size),
        "raw": raw,
    }
    units = []
    for start in range(0, len(channels), group):
        chosen = [int(c) for c in channels[start : start + group]]
        params = {
            **base,
            "channels": chosen,
            "values": values[:, chosen].tolist(),
            "images": images[:, chosen].tolist(),
            "flat": flat[:, chosen].tolist(),
        }
        units.append(Unit("channels", params, label=f"{layer}: channels {chosen[0]}-{chosen[-1]}"))
    return units


def featurevis_key(context, layer, steps, size, batch, seed, precision="float32"):
    """The settings a layer's feature visualizations depend on (kept in each channel's slot: a match is done).

    ``precision`` is the one that runs (``"float32"`` or ``"bfloat16"``, not ``"auto"``), always
    in the key: renders made under the old machine-dependent default are not taken for float32 ones.
    """
    return digest(
        {
            "model": context.describe()["model"],
            "layer": layer,
            "steps": int(steps),
            "size": int(size),
            "batch": int(batch),
            "seed": int(seed),
            "precision": _resolved(precision),
        }
    )


def featurevis_units(context, layer, channels, steps, size, batch, seed, precision="float32"):
    """``featurevis`` units rendering ``batch`` channels of ``layer`` together."""
    base = {
        "model": context.describe()["model"],
        "layer": layer,
        "steps": int(steps),
        "size": int(size),
        "seed": int(seed),
        "precision": _resolved(precision),
    }
    return [
        Unit(
            "featurevis",
            {**base, "channels": [int(c) for c in channels[start : start + batch]]},
            label=f"{layer}: feature visualizations {channels[start]}-{channels[min(start + batch, len(channels)) - 1]}",
        )
        for start in range(0, len(channels), batch)
    ]
