"""The units of a study of N models: Gram matrices for CKA, and each model's feature visualizations.

A study (``python -m tfvis.compare``) compares models that all read the same images:

1. ``grams``: one unit per model and shard of the images (shards aligned on the CKA minibatches,
   :func:`~tfvis.pipeline.plan.shard_ranges`): the linear Gram matrix of every chosen layer for
   every minibatch of the shard, exactly as :func:`tfvis.compare.model_cka` forms them (flattened,
   per-minibatch-centred activations, float32 in TensorFlow, then float64). Units are ordered
   model-major, so a worker holds one model at a time.
2. merge (on the driver): once every model's unit of a shard is stored, its minibatches are
   added to a :class:`tfvis.compare.study.StudyCKA` and dropped, so the driver's memory does
   not grow with the number of images (:func:`study_cka`).
3. ``featurevis`` (:func:`tfvis.pipeline.work.feature_visualizations`) for each model, named by
   ``model_name`` in the unit, with that model's description in the key (:func:`featurevis_units_of`).

Models are named in the :class:`~tfvis.pipeline.context.Context` by their study labels, so adding
a model to a study leaves the other models' units, and their stored results, as they were.
"""

import warnings

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ..compare.cka import gram_function
from ..compare.study import StudyCKA
from ..graph import cached
from .plan import shard_ranges
from .units import Unit

GRAMS_KIND = "grams"


def _gram_run(model, layers):
    """The compiled Gram function of ``model``'s ``layers``, traced once per process, not once per unit."""
    return cached(model, ("study_grams", tuple(layers)), lambda: gram_function(model, list(layers)))


def gram_shard(context, params, progress=False):
    """The Gram matrices of ``params["layers"]`` of one model for each minibatch of images ``start..stop-1``.

    A minibatch of fewer than 4 readable images (the unbiased HSIC needs 4) is left out and counted.

    Returns
    -------
    dict
        ``grams<j>``: float64 (layers, n, n) of the shard's j-th minibatch kept; ``meta``: the
        layers, the images of each minibatch kept (``sizes``) and the images left out (``skipped``).
    """
    model = context.model_for(params)
    run = _gram_run(model, params["layers"])
    result, sizes, skipped = {}, [], 0
    batches = context.source.batches(params["start"], params["stop"], params["batch_size"])
    for batch in tqdm(batches, desc=f"Gram matrices: {params.get('model_name', '')}", unit="batch", disable=not progress):
        if len(batch.ids) < 4:
            skipped += len(batch.ids)
            continue
        grams, _ = run(tf.constant(batch.images))
        result[f"grams{len(sizes)}"] = grams.numpy().astype(np.float64)
        sizes.append(len(batch.ids))
    result["meta"] = {"layers": list(params["layers"]), "sizes": sizes, "skipped": skipped}
    return result


#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {GRAMS_KIND: gram_shard}


def gram_units(context, layers, batch_size, shard_images=None):
    """``grams`` units of every model of ``layers`` (dict of model name to its CKA layers), model-major.

    Parameters
    ----------
    context : Context
        Its ``specs`` name the models; its ``source`` the images.
    layers : dict of str to list of str
        For each model (its name in the context, in study order), the layers of its Gram matrices.
    batch_size : int
        Images per CKA minibatch.
    shard_images : int, optional
        Images per unit, rounded up to whole minibatches; default one unit per model.

    Returns
    -------
    list of list of Unit
        For each shard of the images, one unit per model; flattened model-major by :func:`study_cka`.
    """
    ranges = shard_ranges(len(context.source), shard_images, batch_size)
    images = context.source.describe()
    shards = [[] for _ in ranges]
    for name, names in layers.items():
        base = {
            "model": context.describe_model(name),
            "model_name": name,
            "images": images,
            "layers": list(names),
            "batch_size": int(batch_size),
        }
        for shard, (start, stop) in zip(shards, ranges):
            shard.append(
                Unit(
                    GRAMS_KIND,
                    {**base, "start": start, "stop": stop},
                    label=f"{name}: Gram matrices of images {start}-{stop - 1}",
                )
            )
    return shards


def study_cka(engine, context, store, layers, batch_size, shard_images=None, desc="CKA Gram matrices", after=None):
    """Compute (or read from ``store``) every model's Gram matrices and merge them into a :class:`~tfvis.compare.study.StudyCKA`.

    Each shard is merged as soon as every model's unit of it is stored, read back from the store,
    so memory holds one shard's Gram matrices at a time. Any sharding gives the one-pass sums up to
    float rounding (the order of the additions).

    Parameters
    ----------
    engine : LocalEngine or RayEngine
    context : Context
    store : Store
    layers : dict of str to list of str
        Each model's name in ``context`` and its CKA layers.
    batch_size, shard_images : int
        See :func:`gram_units`.
    desc : str
        Progress bar text.
    after : dict of str to list of Unit, optional
        Further units of each model (e.g. its feature visualizations), run right after its Gram
        units, so that a worker loads each model once; their results are only stored.

    Returns
    -------
    StudyCKA
    """
    shards = gram_units(context, layers, batch_size, shard_images)
    if not shards:
        raise ValueError("no images to compare: CKA needs at least one minibatch of 4 or more images")
    study = StudyCKA(layers)
    shard_of = {unit.key: i for i, shard in enumerate(shards) for unit in shard}
    waiting = [{unit.key for unit in shard} for shard in shards]
    skipped = []

    def merge(unit, result):
        i = shard_of[unit.key]
        waiting[i].discard(unit.key)
        if waiting[i]:
            return
        results = {u.params["model_name"]: (result if u.key == unit.key else store.load(u)) for u in shards[i]}
        sizes = {tuple(r["meta"]["sizes"]) for r in results.values()}
        if len(sizes) != 1:
            raise RuntimeError(
                f"the models read different images in images {shards[i][0].params['start']}-"
                f"{shards[i][0].params['stop'] - 1} (changed during the run?)"
            )
        skipped.append(next(iter(results.values()))["meta"]["skipped"])
        for j in range(len(next(iter(sizes)))):
            study.update({name: r[f"grams{j}"] for name, r in results.items()})

    after = after or {}
    by_model = [unit for m, name in enumerate(layers) for unit in [shard[m] for shard in shards] + list(after.get(name, ()))]

    def arrived(unit, result):
        if unit.key in shard_of:
            merge(unit, result)

    engine.run(by_model, context, store, desc=desc, on_result=arrived)  # model-major: one model per worker at a time
    if sum(skipped):
        warnings.warn(f"CKA: left out {sum(skipped)} image(s) in minibatches of fewer than 4", stacklevel=2)
    if not study.n_batches:
        raise ValueError("no images to compare: CKA needs at least one minibatch of 4 or more images")
    return study


def featurevis_units_of(context, name, layer, channels, steps, size, batch, seed, precision="float32"):
    """``featurevis`` units of model ``name`` (its name in ``context``) rendering ``batch`` channels of ``layer`` together.

    The key holds the model's description (:meth:`Context.describe_model`), so each model of a
    study has its own units, and a model keeps them when the study changes around it.
    """
    base = {
        "model": context.describe_model(name),
        "model_name": name,
        "layer": layer,
        "steps": int(steps),
        "size": int(size),
        "seed": int(seed),
        "precision": precision,
    }
    return [
        Unit(
            "featurevis",
            {**base, "channels": [int(c) for c in channels[start : start + batch]]},
            label=f"{name} {layer}: feature visualizations {channels[start]}-{channels[min(start + batch, len(channels)) - 1]}",
        )
        for start in range(0, len(channels), batch)
    ]
