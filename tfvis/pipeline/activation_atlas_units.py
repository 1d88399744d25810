"""Activation atlas units (``python -m tfvis.activation_atlas``): sample, lay out, render.

Three kinds, run in this order by :func:`run_atlas`:

1. ``atlas_samples``: one shard of the images (indices ``start..stop-1``, aligned on the batch
   size, so any sharding feeds the model the same batches): the layer's activation vectors at
   random positions of each image (:func:`tfvis.featurevis.activation_atlas.sample_activations`;
   the positions keyed by the seed and the image's index only).
2. ``atlas_layout``: every shard's samples -> the 2-D layout and the grid's cells (counts, mean
   vectors, nearest samples). Its parameters name the samples by their units' keys, so its key is
   a pure function of theirs; the samples themselves reach the worker with the run's context
   (:class:`InputsContext`), since a unit's parameters are hashed and 16,000 vectors of 512
   floats are too many to hash as JSON.
3. ``atlas_render``: a batch of cells' mean vectors (in the parameters, so the key follows the
   directions themselves) -> one icon each.

Every unit names its model by its description and its images by the source's description, so a
Ray worker reads exactly the driver's images and another model or other weights make other units.
"""

import numpy as np

from ..display import to_uint8
from ..featurevis import activation_atlas as atlas
from ..precision import resolve_precision
from .context import InputsContext
from .units import Unit

SAMPLES_KIND, LAYOUT_KIND, RENDER_KIND = "atlas_samples", "atlas_layout", "atlas_render"
#: Version of the method; part of every unit's key, so stores made by another version are not reused.
METHOD_VERSION = 1
#: Images per ``atlas_samples`` unit (rounded up to whole batches).
SHARD_IMAGES = 256
#: Cells rendered together in one ``atlas_render`` unit (one batch of the render).
RENDER_BATCH = 16


def _shards(count, shard_images, batch_size):
    step = max(int(batch_size), -(-int(shard_images) // int(batch_size)) * int(batch_size))
    return [(start, min(start + step, count)) for start in range(0, count, step)]


def plan_samples(context, layer, count, samples_per_image, seed, batch_size=16, shard_images=SHARD_IMAGES):
    """The ``atlas_samples`` units of the first ``count`` images of ``context.source``.

    Parameters
    ----------
    context : Context
    layer : str
    count : int
    samples_per_image, seed, batch_size : int
    shard_images : int
        Images per unit, rounded up to whole batches; any sharding gives the same samples.

    Returns
    -------
    list of Unit

    Examples
    --------
    >>> from tfvis.images import SampleSource
    >>> from tfvis.models import ModelSpec
    >>> from tfvis.pipeline.context import Context
    >>> context = Context(ModelSpec("vgg16", "random"), SampleSource(40, 32))
    >>> [u.label for u in plan_samples(context, "block1_conv1", 40, 4, 0, batch_size=8, shard_images=20)]
    ['block1_conv1 samples of images 0-23', 'block1_conv1 samples of images 24-39']
    """
    common = {
        "model": context.describe_model(),
        "images": context.source.describe(),
        "layer": layer,
        "samples_per_image": int(samples_per_image),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "method": METHOD_VERSION,
    }
    count = min(int(count), len(context.source))
    return [
        Unit(SAMPLES_KIND, {**common, "start": start, "stop": stop}, label=f"{layer} samples of images {start}-{stop - 1}")
        for start, stop in _shards(count, shard_images, batch_size)
    ]


def atlas_samples(context, params, progress=False):
    """The activation vectors of one shard of images (see :func:`plan_samples`).

    Returns
    -------
    dict
        ``vectors`` float32 (N, C), ``image_index`` int64, ``y`` and ``x`` int32 (N,), and ``meta``
        with the layer read, its map size and the images' ids by index.
    """
    model = context.model_for(params)
    parts, ids = [], {}
    for batch in context.source.batches(params["start"], params["stop"], params["batch_size"]):
        parts.append(
            atlas.sample_activations(
                model, batch.images, params["layer"], params["samples_per_image"], params["seed"], batch.indices, len(batch.ids)
            )
        )
        ids.update((str(int(i)), image_id) for i, image_id in zip(batch.indices, batch.ids))
    if not parts:
        raise RuntimeError(f"none of the images {params['start']}-{params['stop'] - 1} could be read")
    samples = atlas.Samples.concatenate(parts)
    return {
        "vectors": samples.vectors,
        "image_index": samples.image_index,
        "y": samples.y,
        "x": samples.x,
        "meta": {"layer": samples.layer, "map_hw": list(samples.map_hw), "ids": ids},
    }


def plan_layout(sample_units, method, seed, grid, min_count, nearest=atlas.NEAREST):
    """The ``atlas_layout`` unit of ``sample_units``' samples (``method`` resolved: ``"umap"`` or ``"tsne"``)."""
    params = {
        "samples": [u.key for u in sample_units],
        "method": atlas.layout_method(method),
        "seed": int(seed),
        "grid": int(grid),
        "min_count": int(min_count),
        "nearest": int(nearest),
        "version": METHOD_VERSION,
    }
    return Unit(LAYOUT_KIND, params, label=f"layout ({params['method']}) and {grid} x {grid} grid")


def atlas_layout(context, params, progress=False):
    """The layout and grid cells of the samples named in ``params["samples"]`` (carried by an :class:`InputsContext`).

    Returns
    -------
    dict
        ``points`` (N, 2) in [0, 1]; the samples' ``image_index``, ``y``, ``x``; the cells'
        ``rows``, ``cols``, ``counts``, ``means`` and ``nearest``
        (:class:`~tfvis.featurevis.activation_atlas.GridCells`); ``meta`` with the method, the
        layer, its map size and the images' ids.
    """
    inputs = getattr(context, "inputs", {})
    missing = [key for key in params["samples"] if key not in inputs]
    if missing:
        raise RuntimeError(
            f"atlas_layout: the samples {', '.join(missing)} are not in the run's context; "
            "run the layout through tfvis.pipeline.activation_atlas_units.run_atlas"
        )
    results = [inputs[key] for key in params["samples"]]
    samples = atlas.Samples.concatenate(
        atlas.Samples(r["vectors"], r["image_index"], r["y"], r["x"], r["meta"]["layer"], tuple(r["meta"]["map_hw"]))
        for r in results
    )
    points = atlas.layout(samples.vectors, params["method"], params["seed"])
    cells = atlas.grid_cells(points, samples.vectors, params["grid"], params["min_count"], params["nearest"])
    ids = {}
    for r in results:
        ids.update(r["meta"]["ids"])
    return {
        "points": points.astype(np.float32),
        "image_index": samples.image_index,
        "y": samples.y,
        "x": samples.x,
        "rows": cells.rows,
        "cols": cells.cols,
        "counts": cells.counts,
        "means": cells.means,
        "nearest": cells.nearest,
        "meta": {
            "method": params["method"],
            "layer": samples.layer,
            "map_hw": list(samples.map_hw),
            "ids": ids,
            "grid": cells.grid,
        },
    }


def plan_renders(context, layer, means, size, steps, seed, power=atlas.COSSIM_POWER, batch=RENDER_BATCH, precision="float32"):
    """The ``atlas_render`` units of the cells' mean vectors ``means`` (K, C), ``batch`` cells each, in order.

    ``precision`` (``"float32"``, ``"bfloat16"`` or ``"auto"``) is resolved here, on the driver, so
    that the units' keys say what their icons were computed in on any worker.
    """
    means = np.asarray(means, np.float32)
    precision = resolve_precision(precision, atlas.AUTO_BFLOAT16)
    common = {
        "model": context.describe_model(),
        "layer": layer,
        "size": int(size),
        "steps": int(steps),
        "seed": int(seed),
        "power": float(power),
        "batch": int(batch),
        "method": METHOD_VERSION,
    }
    if precision != "float32":  # float32 keys stay those of stores written before the option
        common["precision"] = precision
    units = []
    for start in range(0, len(means), int(batch)):
        chunk = means[start : start + int(batch)]
        params = {**common, "first": start, "vectors": [[float(v) for v in row] for row in chunk]}
        units.append(Unit(RENDER_KIND, params, label=f"{layer} icons {start}-{start + len(chunk) - 1}"))
    return units


def atlas_render(context, params, progress=False):
    """Icons of a batch of cells: ``images`` uint8 (B, size, size, 3) and ``failed`` (B,) bool (flat or NaN)."""
    images = atlas.render_cells(
        context.model_for(params),
        params["layer"],
        np.asarray(params["vectors"], np.float32),
        size=params["size"],
        steps=params["steps"],
        seed=params["seed"],
        batch=params["batch"],
        power=params["power"],
        precision=params.get("precision", "float32"),
        progress=progress,
    )
    failed = np.zeros(len(images), bool)
    failed[list(images.failed)] = True
    return {
        "images": to_uint8(np.asarray(images)),
        "failed": failed,
        "meta": {"layer": params["layer"], "first": params["first"]},
    }


def run_atlas(
    engine,
    context,
    store,
    layer,
    count,
    samples_per_image=8,
    grid=20,
    min_count=3,
    method="auto",
    seed=0,
    steps=256,
    size=64,
    batch_size=16,
    shard_images=SHARD_IMAGES,
    render_batch=RENDER_BATCH,
    power=atlas.COSSIM_POWER,
    force=False,
    precision="float32",
):
    """Plan and run an activation atlas's units on ``engine`` into ``store``; units already stored are not recomputed.

    Parameters
    ----------
    engine : LocalEngine or RayEngine
    context : Context
        Its primary model and its image source.
    store : Store
    layer : str
    count : int
        The first ``count`` images of the source.
    samples_per_image, grid, min_count, method, seed, steps, size
        See :func:`tfvis.featurevis.activation_atlas.activation_atlas`.
    batch_size, shard_images, render_batch : int
    power : float
    force : bool
        Discard stored results of these units first.
    precision : {"float32", "bfloat16", "auto"}
        What the icons are rendered in (:func:`tfvis.featurevis.render`'s ``precision``).

    Returns
    -------
    dict
        ``units`` (every unit, by stage), ``layout`` (the layout unit's result), ``renders``
        (uint8 icons, one per cell, in the cells' order) and ``failed`` (bool per icon).
    """
    sample_units = plan_samples(context, layer, count, samples_per_image, seed, batch_size, shard_images)
    layout_unit = plan_layout(sample_units, method, seed, grid, min_count)
    if force:
        for unit in [*sample_units, layout_unit]:
            store.discard(unit)
    samples = {}
    if not store.has(layout_unit):
        engine.run(sample_units, context, store, desc="activation samples", on_result=lambda u, r: samples.__setitem__(u.key, r))
        engine.run([layout_unit], InputsContext(context, samples), store, desc="layout")
    layout = store.load(layout_unit)
    render_units = plan_renders(context, layer, layout["means"], size, steps, seed, power, render_batch, precision)
    if force:
        for unit in render_units:
            store.discard(unit)
    engine.run(render_units, context, store, desc="icons")
    rendered = [store.load(u) for u in render_units]
    return {
        "units": {"samples": sample_units, "layout": [layout_unit], "renders": render_units},
        "layout": layout,
        "renders": np.concatenate([r["images"] for r in rendered]) if rendered else np.zeros((0, size, size, 3), np.uint8),
        "failed": np.concatenate([r["failed"] for r in rendered]) if rendered else np.zeros(0, bool),
    }


#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {SAMPLES_KIND: atlas_samples, LAYOUT_KIND: atlas_layout, RENDER_KIND: atlas_render}
