"""``python -m tfvis.caricature``: what each layer of one or more models sees in each image, on one grid page."""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .common import check_layers, check_positive, first_images, load_model_spec, run_command

def build_caricature_parser():
    """The argument parser of ``python -m tfvis.caricature``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.caricature",
        description="Caricatures (Lucid): render what a layer sees in an image, for every model x layer x image; "
        "writes <model>_<layer>_<image>.png and .npy and an HTML grid per model (rows: layers, columns: images).",
    )
    parser.add_argument("--model", default="vgg16", help="comma-separated models: zoo names, 'name:weights', or saved Keras "
                        "model files (default: vgg16)")  # fmt: skip
    parser.add_argument("--layers", required=True, help="comma-separated layer names, e.g. block3_conv1,block4_conv3")
    parser.add_argument("--images", help="a folder of images (default: scikit-image's sample photos)")
    parser.add_argument("--num-images", type=int, default=4, help="use at most this many images (default: 4)")
    parser.add_argument("--size", type=int, default=128, help="side of the images and caricatures (default: 128)")
    parser.add_argument("--steps", type=int, default=512, help="optimisation steps (default: 512)")
    parser.add_argument("--power", type=float, default=2.0, help="exponent of the cosine similarity (default: 2)")
    parser.add_argument("--out", default=str(Path("html_out") / "caricature"), help="output folder (default: html_out/caricature)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the renders and of random weights (default: 0)")
    parser.add_argument("--force", action="store_true", help="recompute caricatures already in the output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _run_caricature(args):
    from tfvis import fileio
    from tfvis.featurevis import caricature, describe
    from tfvis.report import Report, array_stem, safe_name

    check_positive(args, ("num_images", "size", "steps"))
    specs = [s.strip() for s in args.model.split(",") if s.strip()]
    layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    models = [load_model_spec(spec, args.seed) for spec in specs]
    for model, label in models:
        check_layers(model, label, layers)
    ids, images = first_images(args.images, args.size, args.num_images)
    out = Path(args.out)
    settings = {"images": f"{len(ids)} images at {args.size} px", "steps": args.steps, "power": args.power, "seed": args.seed}
    report = Report(out, " vs ".join(label for _, label in models), ", ".join(getattr(m, "tfvis_weights", l) for m, l in models), settings)
    inputs = [report.save_picture("inputs", safe_name(i), image / 255.0) for i, image in zip(ids, images)]
    tables = []
    started = time.perf_counter()
    for model, label in models:
        rows = [{"label": "image", "cells": [{"src": src, "alt": i} for src, i in zip(inputs, ids)]}]
        for layer in layers:
            stems = [array_stem(label, layer, i) for i in ids]
            if args.force or not all((out / f"{stem}.npy").is_file() for stem in stems):
                result = caricature(model, images, layer, steps=args.steps, size=args.size, power=args.power, seed=args.seed, progress=not args.quiet)
                for i, stem in enumerate(stems):  # the .npy last: its presence marks the caricature done
                    fileio.save_png(out / f"{stem}.png", result[i])
                    fileio.save_npy(out / f"{stem}.npy", np.asarray(result[i], np.float32))
                if result.failed:
                    print(f"tfvis: {label} {layer}: flat or NaN caricatures for {', '.join(ids[i] for i in result.failed)}", file=sys.stderr)
            cells = [{"src": f"{stem}.png", "alt": f"{label} {layer} caricature of {i}"} for stem, i in zip(stems, ids)]
            rows.append({"label": layer, "cells": cells})
        tables.append({"id": safe_name(label), "title": label, "columns": ids, "rows": rows})
    facts = [("Models", ", ".join(label for _, label in models)), ("Images", settings["images"]),
             ("Objective", f"dot(act, A) x cossim(act, A)^{args.power:g}, " + describe(steps=args.steps, size=args.size))]  # fmt: skip
    page = report.write_grid_page(
        "index.html", "Caricatures", tables, facts=facts,
        lede="What each layer sees in each image: an image optimised to reproduce the image's activations at the "
        "layer (their direction more than their size), from noise, under random jitter, scale and rotation.",
    )  # fmt: skip
    print(f"{len(models)} model(s) x {len(layers)} layers x {len(ids)} images, {time.perf_counter() - started:.0f} s")
    print(page.resolve())
    return 0


def caricature_main(argv=None):
    """Entry point of ``python -m tfvis.caricature``."""
    sys.exit(run_command(build_caricature_parser(), _run_caricature, argv))
