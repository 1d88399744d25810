"""``python -m tfvis.caricature``: what each layer of one or more models sees in each image, on one grid page.

Each caricature ``<model>_<layer>_<image>.png`` / ``.npy`` has a ``.json`` beside it holding the
settings it was made with (:func:`caricature_settings`); a rerun into the same folder reuses a
caricature only when they are the current ones, so the page never shows files made with other
``--size``, ``--steps``, ``--power``, ``--seed``, another image or an older caricature method.
"""
import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from .common import (
    INPUT_HELP,
    check_layers,
    check_positive,
    first_images,
    load_model_spec,
    run_command,
)


def build_caricature_parser():
    """The argument parser of ``python -m tfvis.caricature``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.caricature",
        description="Caricatures (Lucid): render what a layer sees in an image, for every model x layer x image; "
        "writes <model>_<layer>_<image>.png and .npy and an HTML grid per model (rows: layers, columns: images).",
    )
    parser.add_argument("--model", default="vgg16", help="comma-separated models: zoo names, 'name:weights', saved Keras "
                        "model files (.keras, .h5) or ONNX files (.onnx) (default: vgg16)")  # fmt: skip
    parser.add_argument("--input", metavar="CONVENTION", help=f"{INPUT_HELP}; applies to every model file of --model")
    parser.add_argument("--layers", required=True, help="comma-separated layer names, e.g. block3_conv1,block4_conv3")
    parser.add_argument("--images", help="a folder of images (default: scikit-image's sample photos)")
    parser.add_argument("--num-images", type=int, default=4, help="use at most this many images (default: 4)")
    parser.add_argument("--max-pixels", type=int, metavar="N", help="skip image files that declare more than N pixels (default: 8192 x 8192)")
    parser.add_argument("--size", type=int, default=128, help="side of the images and caricatures (default: 128)")
    parser.add_argument("--steps", type=int, default=512, help="optimisation steps (default: 512)")
    parser.add_argument("--power", type=float, default=4.0, help="exponent of the cosine similarity (default: 4)")
    parser.add_argument("--out", default=str(Path("html_out") / "caricature"), help="output folder (default: html_out/caricature)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the renders and of random weights (default: 0)")
    parser.add_argument("--force", action="store_true", help="recompute caricatures already in the output folder with the same settings")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


#: Version of the caricature method in :func:`tfvis.featurevis.caricature`; files made by another are recomputed.
#: 2: photos stacked into the render's batch, post-activation layers, cosine^4, blur penalty (issue 13).
METHOD_VERSION = 2


def caricature_settings(label, weights, layer, image, size, steps, power, seed):
    """The settings that decide one caricature file, as stored in its ``.json`` (plain JSON types).

    Parameters
    ----------
    label, weights : str
        The model as given (``vgg16:hed`` or a file) and the weights it holds.
    layer : str
    image : ndarray
        The image as read at ``size``; its content is keyed by a SHA-1 of its float32 bytes.
    size, steps : int
    power : float
    seed : int

    Returns
    -------
    dict

    Examples
    --------
    >>> caricature_settings("vgg16:hed", "hed", "block2_conv2", np.zeros((2, 2, 3)), 128, 512, 4.0, 0)["image"][:8]
    'c17fd926'
    """
    digest = hashlib.sha1(np.ascontiguousarray(image, np.float32).tobytes()).hexdigest()
    return {
        "method": METHOD_VERSION,
        "model": str(label),
        "weights": str(weights),
        "layer": str(layer),
        "image": digest,
        "size": int(size),
        "steps": int(steps),
        "power": float(power),
        "seed": int(seed),
    }


def _done(out, stem, settings):
    """Whether ``stem``'s arrays exist and were made with ``settings``."""
    from tfvis import fileio

    return (out / f"{stem}.npy").is_file() and (out / f"{stem}.png").is_file() and fileio.read_json(out / f"{stem}.json") == settings


def _run_caricature(args):
    from tfvis import fileio
    from tfvis.featurevis import caricature
    from tfvis.report import Report, array_stem, safe_name
    from tfvis.graph import prepared
    from tfvis.layer_names import allow_any_layer_name, split_layer_names

    check_positive(args, ("num_images", "size", "steps"))
    allow_any_layer_name()  # a saved model's layers may be named "it's"
    specs = [s.strip() for s in args.model.split(",") if s.strip()]
    from tfvis.models import ZOO, model_info

    models = [load_model_spec(spec, args.seed, input=None if spec.partition(":")[0] in ZOO and not Path(spec).is_file() else args.input)
              for spec in specs]  # fmt: skip
    layers = split_layer_names(args.layers, {layer.name for model, _ in models for layer in prepared(model).layers})
    for model, label in models:
        layers = check_layers(model, label, layers)  # without repeats
    ids, images = first_images(args.images, args.size, args.num_images, max_pixels=args.max_pixels)
    out = Path(args.out)
    settings = {"images": f"{len(ids)} images at {args.size} px", "steps": args.steps, "power": args.power, "seed": args.seed}
    report = Report(out, " vs ".join(label for _, label in models), ", ".join(getattr(m, "tfvis_weights", l) for m, l in models), settings)
    inputs = [report.save_picture("inputs", safe_name(i), image / 255.0) for i, image in zip(ids, images)]
    tables = []
    started = time.perf_counter()
    for model, label in models:
        rows = [{"label": "image", "cells": [{"src": src, "alt": i} for src, i in zip(inputs, ids)]}]
        weights = getattr(model, "tfvis_weights", label)
        declared = model_info(model).input
        if declared is not None and not hasattr(model, "tfvis_weights"):  # a model file's convention changes its caricatures
            weights = f"{weights} (input {declared.text})"
        for layer in layers:
            stems = [array_stem(label, layer, i) for i in ids]
            keys = [caricature_settings(label, weights, layer, image, args.size, args.steps, args.power, args.seed) for image in images]
            todo = [j for j, (stem, key) in enumerate(zip(stems, keys)) if args.force or not _done(out, stem, key)]
            if todo:
                for j in todo:  # what is about to be replaced no longer stands for any settings
                    (out / f"{stems[j]}.json").unlink(missing_ok=True)
                result = caricature(model, images[todo], layer, steps=args.steps, size=args.size, power=args.power, seed=args.seed,
                                    progress=not args.quiet)  # fmt: skip
                for k, j in enumerate(todo):  # the settings last: they mark the caricature done
                    fileio.save_png(out / f"{stems[j]}.png", result[k])
                    fileio.save_npy(out / f"{stems[j]}.npy", np.asarray(result[k], np.float32))
                    fileio.write_json(out / f"{stems[j]}.json", keys[j])
                if result.failed:
                    failed = ", ".join(ids[todo[k]] for k in result.failed)
                    print(f"tfvis: {label} {layer}: flat or NaN caricatures for {failed}", file=sys.stderr)
            cells = [{"src": f"{stem}.png", "alt": f"{label} {layer} caricature of {i}"} for stem, i in zip(stems, ids)]
            rows.append({"label": layer, "cells": cells})
        tables.append({"id": safe_name(label), "title": label, "columns": ids, "rows": rows})
    objective = (f"dot(act, A) / |A|^2 x cossim(act, A)^{args.power:g} at each layer's output after its activation (ReLU), "
                 f"minus a blur penalty; {args.steps} steps at {args.size} px, Fourier + decorrelated colours, "
                 "the photos in the same batch under the same transforms (pad 8, jitter 8, scale, rotate 5 degrees, jitter 2)")
    facts = [("Models", ", ".join(label for _, label in models)), ("Images", settings["images"]), ("Objective", objective)]
    page = report.write_grid_page(
        "index.html", "Caricatures", tables, facts=facts,
        lede="What each layer sees in each image: an image optimised from noise to reproduce the image's activations at "
        "the layer (their direction more than their size), the photo going through the same random jitter, scale and "
        "rotation as the render at every step.",
    )  # fmt: skip
    print(f"{len(models)} model(s) x {len(layers)} layers x {len(ids)} images, {time.perf_counter() - started:.0f} s")
    print(page.resolve())
    return 0


def caricature_main(argv=None):
    """Entry point of ``python -m tfvis.caricature``."""
    sys.exit(run_command(build_caricature_parser(), _run_caricature, argv))
