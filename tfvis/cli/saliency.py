"""``python -m tfvis.saliency``: saliency maps of a few images for classes or units, on one page.

A run is planned as work units (:func:`tfvis.pipeline.image_units.saliency_units`: per target
and batch of images, the scores and each method's maps), computed on an engine (``--engine``)
into ``<out>/store``, and rendered from the store: a rerun skips finished units, an interrupted
run resumes, and ``--force`` recomputes. The methods and their titles are those of
:data:`tfvis.saliency.methods.METHODS`.

``--faithfulness deletion,insertion,mu_fidelity`` (or ``all``) also measures how faithful each
method's maps are (:mod:`tfvis.saliency.faithfulness`), as ``saliency_faithfulness`` units
(:mod:`tfvis.pipeline.faithfulness_units`): the page gets a table of each method's mean values
per target, and ``<out>/faithfulness.csv`` every image's.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

from ..saliency.methods import METHODS as SALIENCY_METHOD_TABLE
from ..saliency.methods import SMOOTHABLE
from ..saliency.methods import method as saliency_method
from .common import (
    UsageError,
    add_engine_options,
    add_model_options,
    apply_labels,
    check_memory,
    check_positive,
    dataset_options,
    load_spec,
    make_run_engine,
    model_spec_of,
    run_command,
    run_options,
)

#: Metrics of ``--faithfulness`` (those of :data:`tfvis.saliency.faithfulness.METRICS`, which imports TensorFlow).
FAITHFULNESS_METRICS = ("deletion", "insertion", "mu_fidelity")
#: How pages name the metrics, with which way is better.
FAITHFULNESS_TITLES = {"deletion": "deletion AUC (lower is better)", "insertion": "insertion AUC", "mu_fidelity": "MuFidelity"}
#: The faithfulness table written beside the page.
FAITHFULNESS_CSV = "faithfulness.csv"

#: Methods of ``python -m tfvis.saliency``, with their titles (read from :data:`tfvis.saliency.methods.METHODS`).
SALIENCY_METHODS = {name: entry.title for name, entry in SALIENCY_METHOD_TABLE.items()}
DEFAULT_SALIENCY_METHODS = "vanilla,smoothgrad,guided,grad_cam"


def build_saliency_parser():
    """The argument parser of ``python -m tfvis.saliency``."""
    parents = [
        dataset_options(
            "a folder of images or a glob pattern (default: scikit-image's sample photos)",
            "use at most this many images (default: all)",
        ),
        run_options(
            str(Path("html_out") / "saliency"),
            16,
            "images per work unit and rows per compiled call",
            "seed of the SmoothGrad noise and of random weights",
            force_help="recompute the maps already in the output folder",
        ),
    ]
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.saliency",
        parents=parents,
        description="Saliency maps of images for a class or a channel (Simonyan et al. 2014 and its successors), "
        "written as PNG overlays, .npy maps and one HTML page. Reruns skip finished maps.",
    )
    add_model_options(parser, default="vgg16")
    parser.add_argument("--weights", default="auto", help="weights of a zoo model (default: auto)")
    parser.add_argument(
        "--target",
        action="append",
        help="targets separated by ';' or spaces (or repeat the option): class "
        "indices, 'layer:channel' or 'layer:channel@y,x' (default: each image's top class)",
    )
    parser.add_argument(
        "--methods",
        default=DEFAULT_SALIENCY_METHODS,
        help=f"comma-separated, from: {', '.join(SALIENCY_METHODS)}, all (default: {DEFAULT_SALIENCY_METHODS})",
    )
    parser.add_argument(
        "--cam-layer",
        help="the layer of Grad-CAM, Grad-CAM++, LayerCAM and Score-CAM (default: the target's layer, or the last "
        "rectified spatial map)",
    )
    parser.add_argument("--samples", type=int, default=25, help="SmoothGrad copies per image (default: 25)")
    parser.add_argument("--noise", type=float, default=0.15, help="SmoothGrad noise, fraction of the input range (default: 0.15)")
    parser.add_argument(
        "--smooth-method",
        default="vanilla",
        choices=SMOOTHABLE,
        help="the method SmoothGrad averages over its noisy copies (default: vanilla)",
    )
    parser.add_argument("--steps", type=int, default=64, help="integrated-gradient steps (default: 64)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size)")
    parser.add_argument(
        "--faithfulness",
        help=f"also measure each method's faithfulness: comma-separated, from: {', '.join(FAITHFULNESS_METRICS)}, all "
        f"(default: off); a table on the page and {FAITHFULNESS_CSV}",
    )
    parser.add_argument(
        "--faithfulness-steps", type=int, default=50, help="steps of the deletion and insertion curves (default: 50)"
    )
    parser.add_argument(
        "--faithfulness-samples", type=int, default=128, help="random subsets per image of MuFidelity (default: 128)"
    )
    add_engine_options(parser)
    return parser


def _methods(spec):
    methods = list(SALIENCY_METHODS) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    bad = [m for m in methods if m not in SALIENCY_METHODS]
    if bad or not methods:
        raise UsageError(f"--methods: unknown {', '.join(bad) or '(none)'}; choose from: {', '.join(SALIENCY_METHODS)}, all")
    return methods


def _faithfulness_metrics(spec):
    """The metrics of ``--faithfulness`` (``[]`` when absent); a :class:`UsageError` naming the valid ones."""
    if spec is None:
        return []
    metrics = list(FAITHFULNESS_METRICS) if spec.strip() == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    bad = [m for m in metrics if m not in FAITHFULNESS_METRICS]
    if bad or not metrics:
        raise UsageError(
            f"--faithfulness: unknown {', '.join(bad) or '(none)'}; choose from: {', '.join(FAITHFULNESS_METRICS)}, all"
        )
    return list(dict.fromkeys(metrics))


def _fidelity_grid(size):
    """MuFidelity's grid for images of ``size`` px: the largest of 9 to 4 cells that divides it (equal cells), else 9."""
    return next((grid for grid in range(9, 3, -1) if size % grid == 0), min(9, size))


def _targets(spec):
    """Targets of ``--target``: ints for classes, ``"layer:channel[@y,x]"`` texts; ``[None]`` (each image's top class) when absent."""
    from tfvis.targets import parse_list

    if not spec:
        return [None]
    try:
        parsed = parse_list(spec)
    except ValueError as err:
        raise UsageError(f"--target: {err}") from None
    return [t.index if t.is_class else str(t) for t in parsed] or [None]


def _saliency_model(args, needs_classes):
    """``(spec, model, label, input size)`` for ``--model``: a zoo name or a saved model file."""
    from tfvis.models import model_info

    spec, label = model_spec_of(args.model, args.seed, include_top=needs_classes, weights=args.weights, input=args.input)
    model = load_spec(spec, args.model)
    apply_labels(model, args.labels)
    info = model_info(model)
    size = args.size or info.default_size
    if size is None:
        raise UsageError(f"--model {args.model} takes any image size: give --size")
    if needs_classes and info.default_size is not None and size != info.default_size:
        raise UsageError(f"--size {size}: class targets need {info.name}'s classifier, whose input is {info.default_size} px")
    if size < info.min_size:
        raise UsageError(f"--size {size}: {info.name} needs at least {info.min_size} px")
    return spec, model, label, size


def _cam_layer_for(model, target, requested):
    from tfvis.layers import get_layer
    from tfvis.saliency import default_layer

    if requested:
        return requested
    if isinstance(target, str):
        name = target.partition("@")[0].partition(":")[0]
        if len(get_layer(model, name).output.shape) == 4:
            return name
    return default_layer(model)


def _image_source(args, size):
    """The images of ``--images`` (files, identified by name, size and time) or the sample photos, read by index."""
    from tfvis import images

    from .common import image_source

    if args.images:
        source, _ = image_source(args, size)
        return source
    count = min(args.num_images or len(images.SAMPLE_NAMES), len(images.SAMPLE_NAMES))
    return images.SampleSource(count, size=size, seed=args.seed)  # its first images are the photos themselves


def _check_targets(model, targets, methods, args):
    """Each target resolved on the model (a bad one is a :class:`UsageError` before any work); Grad-CAM's layer per target."""
    from tfvis.graph import prepared
    from tfvis.saliency.methods import method
    from tfvis.targets import resolve

    layered = [m for m in methods if "layer" in method(m).options]  # the CAM methods
    if "smoothgrad" in methods and "layer" in method(args.smooth_method).options:
        layered.append(args.smooth_method)
    cam_layers = []
    for target in targets:
        shown = target if target is not None else "(top class)"
        try:
            resolve(prepared(model), 0 if target is None else target, require_index=True)
            cam_layers.append(_cam_layer_for(model, target, args.cam_layer) if layered else None)
        except ValueError as err:
            raise UsageError(f"--target {shown}: {err}") from None
    return cam_layers


def plan(args):
    """Parse and check the options, load the model: ``(run, units)``, the run's settings and its units by (target, part)."""
    from tfvis.layer_names import allow_any_layer_name
    from tfvis.pipeline.context import Context
    from tfvis.pipeline.faithfulness_units import faithfulness_settings, faithfulness_units
    from tfvis.pipeline.image_units import saliency_units

    check_positive(
        args,
        ("num_images", "samples", "steps", "batch_size", "size", "workers", "faithfulness_steps", "faithfulness_samples"),
    )
    methods = _methods(args.methods)
    metrics = _faithfulness_metrics(args.faithfulness)
    if "mu_fidelity" in metrics and args.faithfulness_samples < 2:
        raise UsageError(f"--faithfulness-samples must be at least 2 (a correlation), got {args.faithfulness_samples}")
    targets = _targets(args.target)
    allow_any_layer_name()  # a saved model's layers may be named "it's"
    spec, model, label, size = _saliency_model(args, needs_classes=any(t is None or isinstance(t, int) for t in targets))
    source = _image_source(args, size)
    indices, ids, images = source.read(range(len(source)))
    if not len(ids):
        raise UsageError(f"--images {args.images}: none of the {len(source)} images could be read")
    check_memory(model, None, size, args.batch_size, images=len(ids))  # gradients through the whole model
    cam_layers = _check_targets(model, targets, methods, args)
    context = Context(spec, source, model=model)  # Ray workers rebuild the model from the same spec
    options = {"noise": args.noise, "samples": args.samples, "method": args.smooth_method, "steps": args.steps}
    units = {}
    for number, (target, cam_layer) in enumerate(zip(targets, cam_layers)):
        layer = {"layer": cam_layer} if cam_layer else {}
        planned = saliency_units(
            context, [int(i) for i in indices], [target], methods, {**options, **layer}, args.batch_size, args.seed
        )
        units.update({(number, part): batch for (_, part), batch in planned.items()})
        if metrics:
            measured = faithfulness_units(
                context,
                [int(i) for i in indices],
                [target],
                methods,
                {**options, **layer},
                metrics,
                faithfulness_settings(
                    steps=args.faithfulness_steps, samples=args.faithfulness_samples, grid=_fidelity_grid(size)
                ),
                args.batch_size,
                args.seed,
            )
            units.update({(number, ("faithfulness", m)): batch for (_, m), batch in measured.items()})
    settings = {"images": f"{len(ids)} images at {size} px", "methods": ", ".join(methods), "seed": args.seed}
    run = {
        "model": model,
        "label": label,
        "context": context,
        "ids": list(ids),
        "images": images,
        "targets": targets,
        "methods": methods,
        "cam_layers": cam_layers,
        "metrics": metrics,
        "size": size,
        "settings": settings,
    }
    return run, units


def compute(args, run, units):
    """Run the units not in ``<out>/store`` on the engine of ``--engine``; returns the store."""
    from tfvis.pipeline import Store

    store = Store(Path(args.out) / "store")
    if args.force:
        shutil.rmtree(store.root, ignore_errors=True)
    from tfvis.pipeline.context import InputsContext

    measured = {part: batch for part, batch in units.items() if isinstance(part[1], tuple)}  # (number, ("faithfulness", m))
    needed = {unit.params["maps"] for batch in measured.values() for unit in batch}
    maps = {}

    def keep_maps(unit, result):
        if unit.key in needed:
            maps[unit.key] = result

    engine = make_run_engine(args)
    try:
        first = [unit for part, batch in units.items() if part not in measured for unit in batch]
        engine.run(first, run["context"], store, desc="saliency maps", on_result=keep_maps)
        if measured:
            later = [unit for batch in measured.values() for unit in batch]
            engine.run(later, InputsContext(run["context"], maps), store, desc="faithfulness")
    finally:
        engine.close()
    return store


def render(args, run, units, store):
    """Write the maps (PNG overlays and ``.npy``) and the page from the store; returns the page's path."""
    import numpy as np

    from tfvis import fileio
    from tfvis.display import overlay, shown_map
    from tfvis.models import model_info, weights_label
    from tfvis.report import Report, array_stem, safe_name

    model, label, ids, images, methods = run["model"], run["label"], run["ids"], run["images"], run["methods"]
    weights = weights_label(model, label)
    report = Report(args.out, label, weights, run["settings"], force=True)  # the pictures are redrawn from the store each run
    info = model_info(model)
    tables, csv_rows = [], []
    for number, (target, cam_layer) in enumerate(zip(run["targets"], run["cam_layers"])):
        scored = [store.load(unit) for unit in units[(number, "scores")]]
        per_image = [t for result in scored for t in result["meta"]["targets"]]
        scores = np.concatenate([result["scores"] for result in scored])
        maps = {m: np.concatenate([store.load(unit)[f"maps_{m}"] for unit in units[(number, m)]]) for m in methods}
        title = "Top class" if target is None else f"Target {info.class_name(target) if isinstance(target, int) else target}"
        shown = [info.class_name(t) if isinstance(t, int) else t for t in per_image]
        rows = []
        for i, image_id in enumerate(ids):
            key = f"class{per_image[i]}" if isinstance(per_image[i], int) else per_image[i]
            stem = array_stem(label, key, image_id)
            cells = [{"src": report.save_picture("saliency", f"{stem}_input", images[i] / 255.0), "alt": image_id}]
            for m in methods:
                src = report.save_picture("saliency", f"{stem}_{m}", overlay(images[i], shown_map(maps[m][i])), maps[m][i])
                cells.append({"src": src, "alt": f"{SALIENCY_METHODS[m]} of {shown[i]} on {image_id}"})
            rows.append({"label": image_id, "note": f"{shown[i]}: score {scores[i]:.3g}", "cells": cells})
        lede = f"Grad-CAM at {cam_layer}." if cam_layer else ""
        tables.append(
            {
                "id": safe_name(title),
                "title": title,
                "columns": ["image"] + [SALIENCY_METHODS[m] for m in methods],
                "rows": rows,
                "lede": lede,
            }
        )
        if run["metrics"]:
            measured = _faithfulness_values(store, units, number, methods, run["metrics"])
            tables.append(_faithfulness_table(title, methods, run["metrics"], measured))
            csv_rows.extend(
                ["top class" if target is None else str(target), m, metric, _number(_mean(values), 6)]
                + [_number(v, 6) for v in values]
                for (m, metric), values in measured.items()
            )
    smoothed = "" if args.smooth_method == "vanilla" else f" of {saliency_method(args.smooth_method).title}"
    facts = [
        ("Model", label),
        ("Weights", weights_label(model, "as saved")),
        ("Images", run["settings"]["images"]),
        (SALIENCY_METHODS["smoothgrad"], f"{args.samples} copies{smoothed}, noise {args.noise:g} of the range"),
    ]
    if run["metrics"]:
        header = ["target", "method", "metric", "mean"] + list(ids)
        fileio.write_text(Path(args.out) / FAITHFULNESS_CSV, _csv_text([header] + csv_rows))
        facts.append(("Faithfulness", _faithfulness_fact(args, run["metrics"], run["size"])))
    return report.write_grid_page(
        "index.html",
        "Saliency",
        tables,
        facts=facts,
        lede="Each column is a method's map of the target's score (the unnormalised class score, or the mean of a "
        "channel) over the image: gradients and their variants as max over colours of the magnitude, CAMs and "
        "perturbation methods as they are; signed maps are drawn by their magnitude.",
    )


def _faithfulness_values(store, units, number, methods, metrics):
    """``{(method, metric): per-image values}`` of target ``number``, read from the stored ``saliency_faithfulness`` units."""
    import numpy as np

    measured = {}
    for m in methods:
        results = [store.load(unit) for unit in units[(number, ("faithfulness", m))]]
        for metric in metrics:
            measured[(m, metric)] = np.concatenate([result[f"values_{metric}"] for result in results]).astype(float)
    return measured


def _mean(values):
    """The mean of the finite ``values`` (a MuFidelity is NaN for a constant map); NaN when none is."""
    finite = [float(v) for v in values if v == v and abs(v) != float("inf")]
    return sum(finite) / len(finite) if finite else float("nan")


def _number(value, digits=4):
    """A value as the page (4 significant digits) and the CSV (6) show it, ``nan`` for an undefined one."""
    return f"{value:.{digits}g}"


def _faithfulness_table(title, methods, metrics, measured):
    """The page's faithfulness section of one target: a row per method, a column per metric (means over the images)."""
    from tfvis.report import safe_name

    rows = [
        {"label": SALIENCY_METHODS[m], "cells": [{"text": _number(_mean(measured[(m, metric)]))} for metric in metrics]}
        for m in methods
    ]
    return {
        "id": safe_name(f"{title} faithfulness"),
        "title": f"{title}: faithfulness",
        "columns": [FAITHFULNESS_TITLES[metric] for metric in metrics],
        "rows": rows,
        "lede": "Means over the images (each image's values in faithfulness.csv). Deletion: the area under the "
        "target's score as the map's most salient pixels are replaced by the model's zero input (lower: the map "
        "found what the score needs); insertion: as they are put back into a blurred image (higher is better); "
        "MuFidelity: the correlation between the map's sum over random grid cells and the score's drop when they "
        "are removed (higher is better).",
    }


def _faithfulness_fact(args, metrics, size):
    parts = []
    if {"deletion", "insertion"} & set(metrics):
        parts.append(f"{args.faithfulness_steps} steps per curve")
    if "mu_fidelity" in metrics:
        grid = _fidelity_grid(int(size))
        parts.append(f"MuFidelity over {args.faithfulness_samples} random subsets of a {grid} x {grid} grid")
    return ", ".join(parts) + "; class targets scored by their probability, channels by their mean"


def _csv_text(rows):
    """``rows`` (lists of cells) as CSV text."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _run_saliency(args):
    started = time.perf_counter()
    run, units = plan(args)
    store = compute(args, run, units)
    page = render(args, run, units, store)
    print(
        f"{run['label']}: {len(run['ids'])} images x {len(run['targets'])} targets x {len(run['methods'])} methods, "
        f"{time.perf_counter() - started:.0f} s"
    )
    if run["metrics"]:
        print((Path(args.out) / FAITHFULNESS_CSV).resolve())
    print(page.resolve())
    return 0


def saliency_main(argv=None):
    """Entry point of ``python -m tfvis.saliency``."""
    sys.exit(run_command(build_saliency_parser(), _run_saliency, argv))
