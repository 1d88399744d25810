"""``python -m tfvis.caricature``: what each layer of one or more models sees in each image, on one grid page.

Parse, plan, run, render: the caricatures are work units (:mod:`tfvis.pipeline.caricature_units`:
one model x one layer x a batch of images) run on an engine (``--engine local`` or ``ray``) into
the store ``<out>/store``, keyed by everything they depend on (the model and its weights, the
images, ``--size``, ``--steps``, ``--power``, ``--seed``, the caricature method). A rerun, after an
interruption as after kill -9, computes only the units not stored yet; ``--force`` recomputes them
all. The page and the ``<model>_<layer>_<image>.png`` / ``.npy`` files are written from the store.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .common import (
    INPUT_HELP,
    add_engine_options,
    check_layers,
    check_positive,
    image_source,
    load_spec,
    make_run_engine,
    model_spec_of,
    run_command,
)


def build_caricature_parser():
    """The argument parser of ``python -m tfvis.caricature``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.caricature",
        description="Caricatures (Lucid): render what a layer sees in an image, for every model x layer x image; "
        "writes <model>_<layer>_<image>.png and .npy and an HTML grid per model (rows: layers, columns: images).",
    )
    parser.add_argument(
        "--model",
        default="vgg16",
        help="comma-separated models: zoo names, 'name:weights', saved Keras "
        "model files (.keras, .h5) or ONNX files (.onnx) (default: vgg16)",
    )
    parser.add_argument("--input", metavar="CONVENTION", help=f"{INPUT_HELP}; applies to every model file of --model")
    parser.add_argument("--layers", required=True, help="comma-separated layer names, e.g. block3_conv1,block4_conv3")
    parser.add_argument("--images", help="a folder of images (default: scikit-image's sample photos)")
    parser.add_argument("--num-images", type=int, default=4, help="use at most this many images (default: 4)")
    parser.add_argument(
        "--max-pixels", type=int, metavar="N", help="skip image files that declare more than N pixels (default: 8192 x 8192)"
    )
    parser.add_argument("--size", type=int, default=128, help="side of the images and caricatures (default: 128)")
    parser.add_argument("--steps", type=int, default=512, help="optimisation steps (default: 512)")
    parser.add_argument("--power", type=float, default=4.0, help="exponent of the cosine similarity (default: 4)")
    parser.add_argument(
        "--out", default=str(Path("html_out") / "caricature"), help="output folder (default: html_out/caricature)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the renders and of random weights (default: 0)")
    parser.add_argument(
        "--force", action="store_true", help="recompute caricatures already in the output folder with the same settings"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_engine_options(parser)
    return parser


def _models(args):
    """``(context, labels, models)``: every model of ``--model`` by its label, loaded here and named in one context."""
    from tfvis.models import ZOO
    from tfvis.pipeline.context import Context

    specs, models = {}, {}
    for text in dict.fromkeys(s.strip() for s in args.model.split(",") if s.strip()):
        zoo = text.partition(":")[0] in ZOO and not Path(text).is_file()
        spec, label = model_spec_of(text, args.seed, input=None if zoo else args.input)
        specs[label], models[label] = spec, load_spec(spec, text)
    labels = list(specs)
    return Context(specs[labels[0]], image_source(args, args.size)[0], specs=specs, models=models), labels, models


def _images(context, count):
    """``(indices, ids, images)`` of the first ``count`` readable images of the context's source."""
    from .common import UsageError

    indices, ids, images = context.source.read(range(min(count, len(context.source))))
    if not ids:
        raise UsageError(f"--images: none of the first {count} images could be read")
    return [int(i) for i in indices], list(ids), images


def _current(out, stem, image):
    """Whether ``stem``'s ``.png`` exists and its ``.npy`` holds ``image`` (files of other settings are not)."""
    try:
        return (out / f"{stem}.png").is_file() and np.array_equal(np.load(out / f"{stem}.npy"), image)
    except (OSError, ValueError):
        return False


def _write_files(out):
    """``on_result`` writing each caricature's ``.png`` and ``.npy``: of units computed now, or where the files differ."""
    from tfvis import fileio
    from tfvis.report import array_stem

    def write(unit, result, fresh):
        label, layer = unit.params["model_name"], unit.params["layer"]
        for k, image_id in enumerate(result["meta"]["ids"]):
            stem, image = array_stem(label, layer, image_id), np.asarray(result["images"][k], np.float32)
            if fresh or not _current(out, stem, image):  # a resumed run leaves files as they are
                fileio.save_png(out / f"{stem}.png", image)
                fileio.save_npy(out / f"{stem}.npy", image)
        failed = [i for i, bad in zip(result["meta"]["ids"], result["failed"]) if bad]
        if fresh and failed:
            print(f"tfvis: {label} {layer}: flat or NaN caricatures for {', '.join(failed)}", file=sys.stderr)

    return write


def _write_page(args, out, labels, models, layers, ids, images):
    from tfvis.models import weights_label
    from tfvis.report import Report, array_stem, safe_name

    settings = {"images": f"{len(ids)} images at {args.size} px", "steps": args.steps, "power": args.power, "seed": args.seed}
    weights = ", ".join(weights_label(models[label], label) for label in labels)
    report = Report(out, " vs ".join(labels), weights, settings)
    inputs = [report.save_picture("inputs", safe_name(i), image / 255.0) for i, image in zip(ids, images)]
    tables = []
    for label in labels:
        rows = [{"label": "image", "cells": [{"src": src, "alt": i} for src, i in zip(inputs, ids)]}]
        for layer in layers:
            cells = [{"src": f"{array_stem(label, layer, i)}.png", "alt": f"{label} {layer} caricature of {i}"} for i in ids]
            rows.append({"label": layer, "cells": cells})
        tables.append({"id": safe_name(label), "title": label, "columns": ids, "rows": rows})
    objective = (
        f"dot(act, A) / |A|^2 x cossim(act, A)^{args.power:g} at each layer's output after its activation (ReLU), "
        f"minus a blur penalty; {args.steps} steps at {args.size} px, Fourier + decorrelated colours, "
        "the photos in the same batch under the same transforms (pad 8, jitter 8, scale, rotate 5 degrees, jitter 2)"
    )
    facts = [("Models", ", ".join(labels)), ("Images", settings["images"]), ("Objective", objective)]
    return report.write_grid_page(
        "index.html",
        "Caricatures",
        tables,
        facts=facts,
        lede="What each layer sees in each image: an image optimised from noise to reproduce the image's activations at "
        "the layer (their direction more than their size), the photo going through the same random jitter, scale and "
        "rotation as the render at every step.",
    )


def _run_caricature(args):
    from tfvis.graph import prepared
    from tfvis.layer_names import allow_any_layer_name, split_layer_names
    from tfvis.pipeline import Store, caricature_units

    check_positive(args, ("num_images", "size", "steps", "workers"))
    allow_any_layer_name()  # a saved model's layers may be named "it's"
    context, labels, models = _models(args)
    layers = split_layer_names(args.layers, {layer.name for model in models.values() for layer in prepared(model).layers})
    for label in labels:
        layers = check_layers(models[label], label, layers)  # without repeats
    indices, ids, images = _images(context, args.num_images)
    units = caricature_units.plan(context, labels, layers, indices, args.size, args.steps, args.power, args.seed)
    out, store = Path(args.out), Store(Path(args.out) / "store")
    if args.force:
        for unit in units:
            store.discard(unit)
    stored = {unit.key for unit in units if store.has(unit)}
    write = _write_files(out)
    started = time.perf_counter()
    engine = make_run_engine(args)
    try:
        engine.run(
            units, context, store, desc="caricatures", on_result=lambda unit, result: write(unit, result, unit.key not in stored)
        )
    finally:
        engine.close()
    page = _write_page(args, out, labels, models, layers, ids, images)
    print(f"{len(labels)} model(s) x {len(layers)} layers x {len(ids)} images, {time.perf_counter() - started:.0f} s")
    print(page.resolve())
    return 0


def caricature_main(argv=None):
    """Entry point of ``python -m tfvis.caricature``."""
    sys.exit(run_command(build_caricature_parser(), _run_caricature, argv))
