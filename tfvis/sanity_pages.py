"""The report's sanity-check page (``--methods sanity``): Adebayo et al.'s randomization test of the page images.

The report plans the page's units (:func:`tfvis.pipeline.sanity_units.sanity_plan`), runs them on
its engine, and calls :func:`write_sanity_page`, which compares the stored maps
(:func:`tfvis.pipeline.sanity_units.sanity_result`) and writes ``sanity.html``: the paper's plot,
a table of mean similarities per metric and mode, the CSV of every image's values, and for each
page image a grid of its maps (rows: the trained model and each randomization, columns: methods).
"""

import numpy as np

from . import fileio
from .pipeline.context import Context
from .pipeline.sanity_units import sanity_plan, sanity_result
from .report import safe_name
from .saliency.sanity import TRAINED, VISUALIZATION, scaled, title

#: The page's file name in the report folder.
PAGE = "sanity.html"
#: Where the plot and the table go, relative to the report folder.
PLOT, CSV = "assets/sanity/sanity.png", "assets/sanity/sanity.csv"
_METRIC_TITLES = {
    "spearman_abs": "Spearman rank correlation of the absolute maps",
    "spearman": "Spearman rank correlation of the signed maps",
    "ssim": "SSIM of the scaled absolute maps",
}


def _picture(name, pictures, index):
    """Image ``index`` of ``pictures`` as shown: visualizations as rendered, maps scaled to [0, 1]."""
    if name == VISUALIZATION:
        return np.clip(pictures[index], 0.0, 1.0)
    return scaled(pictures[index : index + 1])[0]


def _tables(result):
    tables = []
    for metric in result.metrics:
        for mode in result.modes:
            rows = []
            for layer in result.layers(mode):
                values = []
                for name in result.names:
                    try:
                        values.append(f"{result.value(mode, layer, name, metric):.3f}")
                    except KeyError:  # visualizations have no absolute maps
                        values.append("-")
                rows.append({"layer": layer, "values": values})
            header = "Random from the top down to" if mode == "cascading" else "Random layer"
            tables.append(
                {"id": f"{metric}-{mode}", "title": f"{_METRIC_TITLES[metric]}, {mode}", "header": header, "rows": rows}
            )
    return tables


def _grids(report, result, ids, images):
    mode = result.modes[0]
    grids = []
    for index, image_id in enumerate(ids):
        stem = safe_name(image_id)
        rows = [{"label": TRAINED, "key": TRAINED}] + [
            {"label": f"{layer} down" if mode == "cascading" else f"{layer} only", "key": (mode, layer)}
            for layer in result.layers(mode)
        ]
        for number, row in enumerate(rows):
            row["cells"] = [
                {
                    "src": report.save_picture(
                        "sanity", f"{stem}_{number:02d}_{name}", _picture(name, result.examples[name][row["key"]], index)
                    ),
                    "alt": f"{title(name)}, {row['label']}",
                }
                for name in result.names
            ]
        grids.append(
            {
                "id": f"image-{stem}",
                "image": image_id,
                "target": str(result.targets[index]),
                "input": report.save_picture("sanity", f"{stem}_input", np.asarray(images[index], np.float32) / 255.0),
                "rows": rows,
            }
        )
    return grids, mode


def write_sanity_page(report, store, plan, ids, images, facts=()):
    """Write ``sanity.html`` from the stored results of ``plan``'s units; returns the index link ``{"href", "title"}``.

    Parameters
    ----------
    report : tfvis.report.Report
    store : tfvis.pipeline.Store
        Holds every unit of ``plan`` (run them on an engine first).
    plan : tfvis.pipeline.sanity_units.SanityPlan
    ids : list of str
        The page images' ids, in the order of the units' indices.
    images : ndarray, shape (N, H, W, 3)
        The page images, RGB in [0, 255].
    facts : sequence of (str, str)
        Settings shown at the top of the page.
    """
    result = sanity_result(store, plan)
    fileio.write_text(report.out / CSV, result.csv_text())
    result.plot(report.out / PLOT)
    grids, grid_mode = _grids(report, result, [str(i) for i in ids], images)
    report.render_page(
        "sanity.html",
        PAGE,
        title="Sanity checks",
        crumb=report.model_name,
        facts=[("Randomization seed", str(plan.seed)), *facts],
        plot=PLOT,
        csv=CSV,
        tables=_tables(result),
        columns=[title(name) for name in result.names],
        grids=grids,
        grid_mode=grid_mode,
        visualizations=VISUALIZATION in result.names,
    )
    return {"href": PAGE, "title": "Sanity checks (Adebayo et al. 2018)"}


def run_sanity_units(engine, store, spec, model, source, indices, images, target_layer, seed, batch_size=16, **settings):
    """Plan the page's units (:func:`~tfvis.pipeline.sanity_units.sanity_plan`) and run those not yet stored on ``engine``.

    The units run on a :class:`~tfvis.pipeline.context.Context` that names the randomized models
    by their specs, so Ray workers rebuild them. ``settings`` are ``sanity_plan``'s options
    (``methods``, ``layers``, ``modes``, ...). Returns the :class:`~tfvis.pipeline.sanity_units.SanityPlan`.
    """
    plan = sanity_plan(
        model,
        spec,
        images,
        indices,
        target_layer,
        seed=seed,
        batch_size=batch_size,
        describe_images=source.describe(),
        **settings,
    )
    engine.run(plan.units, Context(spec, source, model=model, specs=plan.specs), store, desc="sanity check")
    return plan
