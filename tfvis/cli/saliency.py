"""``python -m tfvis.saliency``: saliency maps of a few images for classes or units, on one page."""
import argparse
import sys
import time
from pathlib import Path

from .common import (
    UsageError,
    add_model_options,
    apply_labels,
    check_memory,
    check_positive,
    dataset_options,
    first_images,
    load_model_spec,
    run_command,
    run_options,
)

#: Methods of ``python -m tfvis.saliency``, with their titles.
SALIENCY_METHODS = {
    "vanilla": "Gradient (Simonyan)",
    "smoothgrad": "SmoothGrad",
    "integrated": "Integrated gradients",
    "guided": "Guided backprop",
    "deconvnet": "Deconvnet",
    "grad_cam": "Grad-CAM",
}
DEFAULT_SALIENCY_METHODS = "vanilla,smoothgrad,guided,grad_cam"


def build_saliency_parser():
    """The argument parser of ``python -m tfvis.saliency``."""
    parents = [
        dataset_options("a folder of images or a glob pattern (default: scikit-image's sample photos)",
                        "use at most this many images (default: all)"),
        run_options(str(Path("html_out") / "saliency"), 16, "rows per compiled call",
                    "seed of the SmoothGrad noise and of random weights", force_help=None),
    ]  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.saliency",
        parents=parents,
        description="Saliency maps of images for a class or a channel (Simonyan et al. 2014 and its successors), "
        "written as PNG overlays, .npy maps and one HTML page.",
    )
    add_model_options(parser, default="vgg16")
    parser.add_argument("--weights", default="auto", help="weights of a zoo model (default: auto)")
    parser.add_argument("--target", action="append", help="targets separated by ';' or spaces (or repeat the option): class "
                        "indices, 'layer:channel' or 'layer:channel@y,x' (default: each image's top class)")  # fmt: skip
    parser.add_argument("--methods", default=DEFAULT_SALIENCY_METHODS, help=f"comma-separated, from: {', '.join(SALIENCY_METHODS)}, all "
                        f"(default: {DEFAULT_SALIENCY_METHODS})")  # fmt: skip
    parser.add_argument("--cam-layer", help="Grad-CAM's layer (default: the target's layer, or the last rectified spatial map)")
    parser.add_argument("--samples", type=int, default=25, help="SmoothGrad copies per image (default: 25)")
    parser.add_argument("--noise", type=float, default=0.15, help="SmoothGrad noise, fraction of the input range (default: 0.15)")
    parser.add_argument("--steps", type=int, default=64, help="integrated-gradient steps (default: 64)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size)")
    return parser


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
    """``(model, label, input size)`` for ``--model``: a zoo name or a saved Keras model file."""
    from tfvis.models import model_info

    model, label = load_model_spec(args.model, args.seed, include_top=needs_classes, weights=args.weights, input=args.input)
    apply_labels(model, args.labels)
    info = model_info(model)
    size = args.size or info.default_size
    if size is None:
        raise UsageError(f"--model {args.model} takes any image size: give --size")
    if needs_classes and info.default_size is not None and size != info.default_size:
        raise UsageError(f"--size {size}: class targets need {info.name}'s classifier, whose input is {info.default_size} px")
    if size < info.min_size:
        raise UsageError(f"--size {size}: {info.name} needs at least {info.min_size} px")
    return model, label, size


def _saliency_method(model, method, images, targets, args, cam_layer):
    from tfvis import saliency

    options = {"batch_size": args.batch_size}
    if method == "smoothgrad":
        return saliency.smoothgrad(model, images, targets, noise=args.noise, samples=args.samples, seed=args.seed, **options)
    if method == "integrated":
        return saliency.integrated_gradients(model, images, targets, steps=args.steps, **options)
    if method == "grad_cam":
        return saliency.grad_cam(model, images, targets, cam_layer, **options)
    return getattr(saliency, method)(model, images, targets, **options)


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


def _run_saliency(args):
    from tfvis import saliency
    from tfvis.report import Report, array_stem, safe_name
    from tfvis.layer_names import allow_any_layer_name
    from tfvis.models import model_info

    check_positive(args, ("num_images", "samples", "steps", "batch_size", "size"))
    methods = list(SALIENCY_METHODS) if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in SALIENCY_METHODS]
    if bad or not methods:
        raise UsageError(f"--methods: unknown {', '.join(bad) or '(none)'}; choose from: {', '.join(SALIENCY_METHODS)}, all")
    targets = _targets(args.target)
    needs_classes = any(t is None or isinstance(t, int) for t in targets)
    allow_any_layer_name()  # a saved model's layers may be named "it's"
    model, label, size = _saliency_model(args, needs_classes)
    ids, images = first_images(args.images, size, args.num_images or 10**9, max_pixels=args.max_pixels)
    check_memory(model, None, size, args.batch_size, images=len(ids))  # gradients through the whole model
    settings = {"images": f"{len(ids)} images at {size} px", "methods": ", ".join(methods), "seed": args.seed}
    report = Report(args.out, label, getattr(model, "tfvis_weights", label), settings, force=True)
    tables = []
    started = time.perf_counter()
    for target in targets:
        try:
            if target is None:
                per_image = [int(c) for c in saliency.class_scores(model, images, args.batch_size).argmax(axis=1)]
            else:
                per_image = [target] * len(ids)
            cam_layer = _cam_layer_for(model, per_image[0], args.cam_layer) if "grad_cam" in methods else None
            scores = saliency.score(model, images, per_image, args.batch_size)
            maps = {m: _saliency_method(model, m, images, per_image, args, cam_layer) for m in methods}
        except ValueError as err:
            raise UsageError(f"--target {target if target is not None else '(top class)'}: {err}") from None
        info = model_info(model)
        title = "Top class" if target is None else f"Target {info.class_name(target) if isinstance(target, int) else target}"
        rows = []
        shown = [info.class_name(t) if isinstance(t, int) else t for t in per_image]
        for i, image_id in enumerate(ids):
            key = f"class{per_image[i]}" if isinstance(per_image[i], int) else per_image[i]
            stem = array_stem(label, key, image_id)
            cells = [{"src": report.save_picture("saliency", f"{stem}_input", images[i] / 255.0), "alt": image_id}]
            for m in methods:
                src = report.save_picture("saliency", f"{stem}_{m}", saliency.overlay(images[i], maps[m][i]), maps[m][i])
                cells.append({"src": src, "alt": f"{SALIENCY_METHODS[m]} of {shown[i]} on {image_id}"})
            rows.append({"label": image_id, "note": f"{shown[i]}: score {scores[i]:.3g}", "cells": cells})
        lede = f"Grad-CAM at {cam_layer}." if cam_layer else ""
        tables.append({"id": safe_name(title), "title": title, "columns": ["image"] + [SALIENCY_METHODS[m] for m in methods], "rows": rows, "lede": lede})
    facts = [("Model", label), ("Weights", getattr(model, "tfvis_weights", "as saved")), ("Images", settings["images"]), ("SmoothGrad", f"{args.samples} copies, noise {args.noise:g} of the range")]
    page = report.write_grid_page("index.html", "Saliency", tables, facts=facts,
                                  lede="Each map is the gradient of the target's score (the unnormalised class score, or the "
                                  "mean of a channel) with respect to the image, max over colours, over the image.")  # fmt: skip
    print(f"{label}: {len(ids)} images x {len(targets)} targets x {len(methods)} methods, {time.perf_counter() - started:.0f} s")
    print(page.resolve())
    return 0


def saliency_main(argv=None):
    """Entry point of ``python -m tfvis.saliency``."""
    sys.exit(run_command(build_saliency_parser(), _run_saliency, argv))
