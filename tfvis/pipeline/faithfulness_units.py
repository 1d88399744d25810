"""Unit kind ``saliency_faithfulness``: the saliency command's faithfulness metrics of one method's maps.

One unit per (``--target``, batch of images, method), planned beside the command's
``saliency_maps`` units (:func:`tfvis.pipeline.image_units.saliency_units`): its parameters are
those of the maps' unit plus the metrics, their settings and the maps unit's key (``maps``). The
driver runs it after the maps, on an :class:`~tfvis.pipeline.context.InputsContext` that carries
the maps' results by key (a unit sees only its context and its parameters), so the maps are
computed once: RISE's 2,000 masked copies per image cost more than the metrics' copies.

A result holds, per metric ``m``: ``values_m`` (N,), each image's area under the curve or
correlation, and for the curves ``scores_m`` (N, steps + 1) with ``fractions_m`` (steps + 1,).
"""

import numpy as np

from ..saliency.faithfulness import GRID, SAMPLES, STEPS, SUBSET_FRACTION, check_metrics, metric_values
from .image_units import saliency_units
from .units import Unit

#: Bump when the metrics' computation changes, so that stored results are not reused.
VERSION = 2


def faithfulness_settings(steps=STEPS, samples=SAMPLES, grid=GRID, subset_fraction=SUBSET_FRACTION, score="probability"):
    """The metrics' settings as a unit stores them (JSON-able), with the defaults of :mod:`tfvis.saliency.faithfulness`."""
    return {
        "steps": int(steps),
        "samples": int(samples),
        "grid": int(grid),
        "subset_fraction": float(subset_fraction),
        "score": str(score),
    }


def faithfulness_units(context, indices, targets, methods, options, metrics, settings=None, batch_size=16, seed=0):
    """The ``saliency_faithfulness`` units of the saliency command: per target, method and batch of images.

    Parameters
    ----------
    context, indices, targets, methods, options, batch_size, seed
        As in :func:`tfvis.pipeline.image_units.saliency_units` (the same maps).
    metrics : sequence of str
        Of :data:`tfvis.saliency.faithfulness.METRICS` (checked; ``ValueError`` naming them).
    settings : dict, optional
        :func:`faithfulness_settings` (its defaults when None).

    Returns
    -------
    dict of (target index, method) to list of Unit (one per batch of images)
    """
    metrics = list(check_metrics(metrics))
    settings = faithfulness_settings(**(settings or {}))
    maps_plan = saliency_units(context, indices, targets, methods, options, batch_size, seed)
    plan = {}
    for (number, part), units in maps_plan.items():
        if part == "scores":
            continue
        plan[(number, part)] = [
            Unit(
                "saliency_faithfulness",
                {
                    **unit.params,
                    "metrics": metrics,
                    "faithfulness": settings,
                    "faithfulness_version": VERSION,
                    "maps": unit.key,
                },
                label=f"faithfulness: {unit.label}",
            )
            for unit in units
        ]
    return plan


def saliency_faithfulness(context, params, progress=False):
    """``saliency_faithfulness``: each metric of the maps of the unit's ``saliency_maps`` unit (carried by the context)."""
    (name,) = params["methods"]
    made = getattr(context, "inputs", {}).get(params["maps"])
    if made is None:
        raise RuntimeError(
            f"saliency_faithfulness: the maps {params['maps']} are not in the run's context; run the maps first and these "
            "units on an InputsContext holding them (as python -m tfvis.saliency does)"
        )
    model = context.model_for(params)
    read, _, images = context.source.read(params["indices"])
    if len(read) != len(params["indices"]):
        raise RuntimeError(
            f"images {params['indices']} of the dataset could not all be read again (changed since the run was planned?)"
        )
    images = np.asarray(images, np.float32)
    targets, settings = made["meta"]["targets"], params["faithfulness"]
    result = {"meta": {"ids": made["meta"]["ids"], "targets": targets, "method": name, "metrics": list(params["metrics"])}}
    for metric in params["metrics"]:
        measured = metric_values(
            metric,
            model,
            images,
            made[f"maps_{name}"],
            targets,
            steps=settings["steps"],
            score=settings["score"],
            grid=settings["grid"],
            subset_fraction=settings["subset_fraction"],
            samples=settings["samples"],
            seed=params["seed"],
            batch_size=params["batch_size"],
            progress=progress,
        )
        result[f"values_{metric}"] = np.asarray(measured.values, np.float64)
        if hasattr(measured, "scores"):
            result[f"scores_{metric}"] = np.asarray(measured.scores, np.float32)
            result[f"fractions_{metric}"] = np.asarray(measured.fractions, np.float64)
    return result


#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {"saliency_faithfulness": saliency_faithfulness}
