"""The shared runner behind ``python -m tfvis.alex``, ``tfvis.vgg`` and ``tfvis.inception``.

It loads a zoo model, streams the images once to find every requested channel's top-k
activations, reconstructs them with the deconvnet, and writes the HTML report. Runs resume:
channels already in the output folder are skipped unless ``--force``.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

#: Report parts: top-k reconstructions on the layer pages; per-image saliency and inversion pages.
METHODS = ("deconv", "featurevis", "saliency", "inversion")
DEFAULT_CHANNELS = "8"
DEFAULT_SAMPLE_IMAGES = 64
DEFAULT_PAGE_IMAGES = 4
DEFAULT_INVERT_SIZE = 128
DEFAULT_FV_STEPS = 256
DEFAULT_FV_SIZE = 128
DEFAULT_FV_BATCH = 8


class UsageError(Exception):
    """A bad option value; the CLI prints it on one line and exits with status 2."""


def parse_channels(spec, count, layer):
    """Channels of a layer with ``count`` channels from ``spec``.

    ``"all"``; ``"N"``: the first N; ``"a-b"``: a range (inclusive); ``"3,7,12"`` or ``"0-3,8"``: a list.
    """
    spec = str(spec).strip()
    if spec == "all":
        return list(range(count))
    try:
        if spec.isdigit():
            return list(range(min(int(spec), count)))
        channels = []
        for part in filter(None, spec.split(",")):
            first, _, last = part.partition("-")
            channels.extend(range(int(first), int(last or first) + 1))
    except ValueError:
        raise UsageError(f"--channels {spec!r}: use 'all', a count N (the first N), 'a-b' or a list like '3,7,12'") from None
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise UsageError(f"--channels {spec!r}: layer {layer} has channels 0-{count - 1}; got {bad}")
    return sorted(set(channels))


def build_parser(prog, model_name):
    """The argument parser of ``python -m tfvis.<prog>``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m tfvis.{prog}",
        description=f"Write an HTML report of what {model_name}'s layers respond to: for each channel the top-k "
        "dataset patches and their deconvnet reconstructions (Zeiler & Fergus 2014); with --methods saliency,inversion "
        "also a page per image with its saliency maps and its inversion from each layer.",
    )
    parser.add_argument("--weights", default="auto", help="auto, imagenet, random, hed (VGG16), or a weight file (default: auto)")
    parser.add_argument("--layers", help="comma-separated layer names (default: every conv layer)")
    parser.add_argument("--channels", default=DEFAULT_CHANNELS, help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--images", help="a folder of images (default: scikit-image's sample photos plus crops of them)")
    parser.add_argument("--num-images", type=int, help=f"use at most this many images (default: {DEFAULT_SAMPLE_IMAGES} samples, or the whole folder)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size)")
    parser.add_argument("--top-k", type=int, default=9, help="patches per channel (default: 9)")
    parser.add_argument("--methods", default="deconv", help=f"comma-separated, from: {', '.join(METHODS)}, all (default: deconv)")
    parser.add_argument("--page-images", type=int, default=DEFAULT_PAGE_IMAGES,
                        help=f"saliency and inversion pages for the first N images (default: {DEFAULT_PAGE_IMAGES})")
    parser.add_argument("--invert-layers", help="layers inverted on the image pages (default: the last selected layer before each downsampling)")
    parser.add_argument("--invert-size", type=int, default=DEFAULT_INVERT_SIZE,
                        help=f"image side for inversions, at most --size (default: {DEFAULT_INVERT_SIZE})")
    parser.add_argument("--fv-steps", type=int, default=DEFAULT_FV_STEPS, help=f"feature visualization steps (default: {DEFAULT_FV_STEPS})")
    parser.add_argument("--fv-size", type=int, default=DEFAULT_FV_SIZE, help=f"feature visualization side in pixels (default: {DEFAULT_FV_SIZE})")
    parser.add_argument("--fv-batch", type=int, default=DEFAULT_FV_BATCH, help=f"channels rendered together (default: {DEFAULT_FV_BATCH})")
    parser.add_argument("--out", help=f"output folder (default: html_out/{model_name})")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights and sample crops (default: 0)")
    parser.add_argument("--force", action="store_true", help="recompute channels already in the output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _check_positive(args, names=("num_images", "top_k", "batch_size", "size", "page_images", "invert_size", "fv_steps", "fv_size", "fv_batch")):
    """UsageError for the first of the integer options ``names`` given below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _methods(spec):
    methods = METHODS if spec == "all" else tuple(m.strip() for m in spec.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UsageError(f"--methods: unknown {', '.join(bad)}; choose from: {', '.join(METHODS)}, all")
    return methods


def _layers(spec, module, model_layers):
    names = [n.strip() for n in spec.split(",") if n.strip()] if spec else list(module.REPORT_LAYERS)
    valid = [n for n, _ in model_layers]
    bad = [n for n in names if n not in valid]
    if bad:
        raise UsageError(f"--layers: {module.NAME} has no layer {', '.join(bad)}; choose from: {', '.join(valid)}")
    return names


def _load(module, args, include_top):
    import tfvis
    from tfvis.models import WeightsError, WeightsUnavailableError

    try:
        return tfvis.load_model(module.NAME, weights=args.weights, include_top=include_top, seed=args.seed)
    except WeightsUnavailableError as err:
        raise UsageError(f"{err} Or try the whole pipeline now with --weights random.") from None
    except (WeightsError, ValueError) as err:
        raise UsageError(str(err)) from None


def _image_source(args, size):
    from tfvis import images

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise UsageError(f"--images {args.images}: not a folder")
        return folder, f"{folder} (centre-cropped to {size} px)", args.num_images
    count = args.num_images or DEFAULT_SAMPLE_IMAGES
    ids, batch = images.sample_dataset(count, size=size, seed=args.seed)
    label = f"{count} scikit-image sample photos and crops ({size} px)"
    return dict(zip(ids, batch)), label, None


FV_KIND = "featurevis"


def render_channels(report, model, channels, steps, size, batch, seed=0, progress=True):
    """Render the feature visualization of every channel without one, ``batch`` channels per render.

    Flat or NaN renders (a dead channel) are saved too, with a title that says so.
    """
    from tfvis.featurevis import render

    for layer, chans in channels.items():
        todo = [c for c in chans if not report.has_slot(layer, c, FV_KIND)]
        for start in range(0, len(todo), batch):
            group = todo[start : start + batch]
            images = render(model, [f"{layer}:{c}" for c in group], size=size, steps=steps, seed=seed, progress=progress)
            for i, channel in enumerate(group):
                title = "Feature visualization" + (" (flat: a dead channel?)" if i in images.failed else "")
                report.add_slot(layer, channel, FV_KIND, title, np.asarray(images[i]))


def _page_images(source, size, count):
    """The first ``count`` images of the source: ``(ids, array)``."""
    import itertools

    from tfvis import images

    pairs = list(itertools.islice(images.iter_images(source, size=size), count))
    if not pairs:
        raise UsageError("no readable images for the image pages")
    return [i for i, _ in pairs], np.stack([image for _, image in pairs]).astype(np.float32)


def run(model_name, prog, argv=None):
    """Parse ``argv`` and write the report; returns the exit status."""
    parser = build_parser(prog, model_name)
    args = parser.parse_args(argv)
    try:
        return _run(model_name, args)
    except UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2


def _run(model_name, args):
    _check_positive(args)
    methods = _methods(args.methods)
    import tfvis
    from tfvis.models import zoo_module
    from tfvis.receptive_field import receptive_fields
    from tfvis.image_pages import stage_layers, write_image_pages
    from tfvis.report import Report, field_text, stride_text
    from tfvis.topk import top_k_layers

    module = zoo_module(model_name)
    requested = [n.strip() for n in (args.layers or "").split(",") if n.strip()]
    include_top = any(name in module.TOP_LAYERS for name in requested)
    model = _load(module, args, include_top)
    info = tfvis.layer_info(model)
    layers = _layers(args.layers, module, info)
    counts = dict(info)
    channels = {name: parse_channels(args.channels, counts[name], name) for name in layers}
    size = args.size or module.DEFAULT_SIZE
    if include_top and size != module.DEFAULT_SIZE:
        raise UsageError(f"--size {size}: layers {', '.join(requested)} need the classifier, whose input is {module.DEFAULT_SIZE} px")
    if size < module.MIN_SIZE:
        raise UsageError(f"--size {size}: {module.NAME} needs at least {module.MIN_SIZE} px")
    source, images_label, limit = _image_source(args, size)
    out = Path(args.out or Path("html_out") / model_name)
    settings = {"images": images_label, "top-k": args.top_k, "seed": args.seed, "methods": ", ".join(methods)}
    fields = receptive_fields(model, layers, input_size=(size, size))
    if "featurevis" in methods:
        settings["feature visualization"] = f"{args.fv_steps} steps at {args.fv_size} px, Fourier + decorrelated, standard transforms"
    per_image = [m for m in methods if m in ("saliency", "inversion")]
    if per_image:
        invert_layers = _layers(args.invert_layers, module, info) if args.invert_layers else stage_layers(fields, layers)
        invert_size = min(args.invert_size, size)
        if invert_size < module.MIN_SIZE:
            raise UsageError(f"--invert-size {invert_size}: {module.NAME} needs at least {module.MIN_SIZE} px")
        settings["image pages"] = f"{args.page_images} images"
        if "inversion" in per_image:
            settings["inversion"] = f"{', '.join(invert_layers)} at {invert_size} px"
    report = Report(out, model_name, model.tfvis_weights, settings, force=args.force)
    todo = {name: [c for c in channels[name] if c not in report.done_channels(name)] for name in layers}
    todo = {name: chans for name, chans in todo.items() if chans}
    started = time.perf_counter()
    if todo:
        results = top_k_layers(
            model, source, todo, k=args.top_k, batch_size=args.batch_size, size=size, limit=limit,
            methods=("deconvnet", "guided") if "deconv" in methods else (), progress=not args.quiet,
        )  # fmt: skip
        for result in results.values():
            report.add_top_k(result)
    if "featurevis" in methods:
        render_channels(report, model, channels, args.fv_steps, args.fv_size, args.fv_batch, args.seed, not args.quiet)
    pages = []
    if per_image:
        ids, page_images = _page_images(source, size, args.page_images)
        pages = write_image_pages(
            report, model, ids, page_images, layers, channels, per_image, invert_layers=invert_layers,
            invert_size=invert_size, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
        )  # fmt: skip
    input_desc = f"{size} x {size} RGB, values in [0, 255]"
    for name in layers:
        report.write_layer_page(name, counts[name], field_text(fields[name]), stride_text(fields[name]), args.top_k, input_desc=input_desc)
    rows = [{"name": name, "channels": counts[name], "field": field_text(fields[name]), "stride": stride_text(fields[name])} for name in layers]
    index = report.write_index(rows, input_desc, pages=pages)
    elapsed = time.perf_counter() - started
    skipped = sum(len(channels[n]) for n in layers) - sum(len(c) for c in todo.values())
    print(f"{model_name} ({model.tfvis_weights}): {len(layers)} layers, "
          f"{sum(len(c) for c in todo.values())} channels computed, {skipped} already done, {elapsed:.0f} s")  # fmt: skip
    print(index.resolve())
    return 0


def main(model_name, prog):
    """Entry point of the thin modules: exit with :func:`run`'s status."""
    sys.exit(run(model_name, prog))


# --------------------------------------------------------------------------------------------
# python -m tfvis.saliency
# --------------------------------------------------------------------------------------------

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
    from tfvis.models import ZOO

    parser = argparse.ArgumentParser(
        prog="python -m tfvis.saliency",
        description="Saliency maps of images for a class or a channel (Simonyan et al. 2014 and its successors), "
        "written as PNG overlays, .npy maps and one HTML page.",
    )
    parser.add_argument("--model", default="vgg16", help=f"a zoo model ({', '.join(ZOO)}) or a saved Keras model file (default: vgg16)")
    parser.add_argument("--weights", default="auto", help="weights of a zoo model (default: auto)")
    parser.add_argument("--target", help="comma-separated targets: class indices and/or 'layer:channel' or 'layer:channel@y,x' "
                        "(default: each image's top class)")  # fmt: skip
    parser.add_argument("--images", help="a folder of images (default: scikit-image's sample photos)")
    parser.add_argument("--num-images", type=int, help="use at most this many images (default: all)")
    parser.add_argument("--methods", default=DEFAULT_SALIENCY_METHODS, help=f"comma-separated, from: {', '.join(SALIENCY_METHODS)}, all "
                        f"(default: {DEFAULT_SALIENCY_METHODS})")  # fmt: skip
    parser.add_argument("--cam-layer", help="Grad-CAM's layer (default: the target's layer, or the last rectified spatial map)")
    parser.add_argument("--samples", type=int, default=25, help="SmoothGrad copies per image (default: 25)")
    parser.add_argument("--noise", type=float, default=0.15, help="SmoothGrad noise, fraction of the input range (default: 0.15)")
    parser.add_argument("--steps", type=int, default=64, help="integrated-gradient steps (default: 64)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size)")
    parser.add_argument("--out", default=str(Path("html_out") / "saliency"), help="output folder (default: html_out/saliency)")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per compiled call (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SmoothGrad noise and of random weights (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _saliency_targets(spec):
    """Targets from ``"281,block5_conv3:12,block4_conv3:3@5,6"``; None (the top class) when empty."""
    if not spec:
        return [None]
    targets = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        previous = targets[-1] if targets else None
        if part.isdigit() and isinstance(previous, str) and "@" in previous and "," not in previous.partition("@")[2]:
            targets[-1] = f"{previous},{part}"  # the x of a '@y,x' position
        else:
            targets.append(int(part) if part.lstrip("-").isdigit() else part)
    return targets


def _saliency_model(args, needs_classes):
    """``(model, label, input size)`` for ``--model``: a zoo name or a saved Keras model file."""
    from tfvis.models import ZOO

    model, label = load_model_spec(args.model, args.seed, include_top=needs_classes, weights=args.weights)
    module = ZOO.get(args.model.partition(":")[0])
    if module is None:
        size = args.size or model.inputs[0].shape[1]
        if size is None:
            raise UsageError(f"--model {args.model} takes any image size: give --size")
        return model, label, size
    size = args.size or module.DEFAULT_SIZE
    if needs_classes and size != module.DEFAULT_SIZE:
        raise UsageError(f"--size {size}: class targets need {module.NAME}'s classifier, whose input is {module.DEFAULT_SIZE} px")
    if size < module.MIN_SIZE:
        raise UsageError(f"--size {size}: {module.NAME} needs at least {module.MIN_SIZE} px")
    return model, label, size


def _saliency_images(args, size):
    import itertools

    from tfvis import images

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise UsageError(f"--images {args.images}: not a folder")
        pairs = list(itertools.islice(images.iter_images(folder, size=size), args.num_images))
    else:
        photos = images.sample_images(size=size)
        pairs = list(photos.items())[: args.num_images]
    if not pairs:
        raise UsageError(f"--images {args.images}: no readable images")
    return [str(i) for i, _ in pairs], np.stack([image for _, image in pairs]).astype(np.float32)


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
    from tfvis.image_pages import cam_layer
    from tfvis.layers import get_layer

    if requested:
        return requested
    if isinstance(target, str):
        name = target.partition("@")[0].partition(":")[0]
        if len(get_layer(model, name).output.shape) == 4:
            return name
    return cam_layer(model)


def _run_saliency(args):
    from tfvis import saliency
    from tfvis.report import Report, array_stem, safe_name

    _check_positive(args, ("num_images", "samples", "steps", "batch_size", "size"))
    methods = list(SALIENCY_METHODS) if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in SALIENCY_METHODS]
    if bad or not methods:
        raise UsageError(f"--methods: unknown {', '.join(bad) or '(none)'}; choose from: {', '.join(SALIENCY_METHODS)}, all")
    targets = _saliency_targets(args.target)
    needs_classes = any(t is None or isinstance(t, int) for t in targets)
    model, label, size = _saliency_model(args, needs_classes)
    ids, images = _saliency_images(args, size)
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
        title = "Top class" if target is None else f"Target {target}"
        rows = []
        for i, image_id in enumerate(ids):
            key = f"class{per_image[i]}" if isinstance(per_image[i], int) else per_image[i]
            stem = array_stem(label, key, image_id)
            cells = [{"src": report.save_picture("saliency", f"{stem}_input", images[i] / 255.0), "alt": image_id}]
            for m in methods:
                src = report.save_picture("saliency", f"{stem}_{m}", saliency.overlay(images[i], maps[m][i]), maps[m][i])
                cells.append({"src": src, "alt": f"{SALIENCY_METHODS[m]} of {per_image[i]} on {image_id}"})
            rows.append({"label": image_id, "note": f"{per_image[i]}: score {scores[i]:.3g}", "cells": cells})
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
    _main(build_saliency_parser(), _run_saliency, argv)


# --------------------------------------------------------------------------------------------
# Models named on the command line: "vgg16", "vgg16:hed" or a saved Keras model file
# --------------------------------------------------------------------------------------------


def load_model_spec(spec, seed=0, include_top=False, option="--model", weights="auto"):
    """``(model, label)`` for ``name``, ``name:weights`` (a zoo model) or a saved Keras model file.

    ``weights`` applies when the spec names none. The label names files and pictures: ``vgg16``,
    or ``vgg16-hed`` when the spec gives weights.
    """
    import tfvis
    from tfvis.models import ZOO, WeightsError, WeightsUnavailableError

    name, _, named = spec.partition(":")
    if name in ZOO:
        try:
            model = tfvis.load_model(name, weights=named or weights, include_top=include_top, seed=seed)
        except WeightsUnavailableError as err:
            raise UsageError(f"{option} {spec}: {err} Or try it now with {name}:random.") from None
        except (WeightsError, ValueError) as err:
            raise UsageError(f"{option} {spec}: {err}") from None
        return model, f"{name}-{named}" if named else name
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"{option} {spec}: not a zoo model ({', '.join(ZOO)}, optionally with ':weights') nor a saved Keras model file")
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for unreadable files
        raise UsageError(f"{option} {spec}: cannot load it as a Keras model ({err})") from None
    return model, path.stem


def _check_layers(model, label, names, option="--layers"):
    from tfvis.layers import layer_info

    valid = [n for n, _ in layer_info(model)]
    bad = [n for n in names if n not in valid]
    if bad:
        raise UsageError(f"{option}: {label} has no layer {', '.join(bad)}; choose from: {', '.join(valid)}")
    return names


def _folder_images(folder, size, count, option="--images"):
    """``(ids, images)``: the first ``count`` images of ``folder``, or the sample photos when None."""
    import itertools

    from tfvis import images

    if folder:
        if not Path(folder).is_dir():
            raise UsageError(f"{option} {folder}: not a folder")
        pairs = list(itertools.islice(images.iter_images(Path(folder), size=size), count))
    else:
        pairs = list(images.sample_images(size=size).items())[:count]
    if not pairs:
        raise UsageError(f"{option} {folder}: no readable images")
    return [str(i) for i, _ in pairs], np.stack([image for _, image in pairs]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# python -m tfvis.caricature
# --------------------------------------------------------------------------------------------


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
    from tfvis.featurevis import caricature
    from tfvis.report import Report, array_stem, safe_name

    _check_positive(args, ("num_images", "size", "steps"))
    specs = [s.strip() for s in args.model.split(",") if s.strip()]
    layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    models = [load_model_spec(spec, args.seed) for spec in specs]
    for model, label in models:
        _check_layers(model, label, layers)
    ids, images = _folder_images(args.images, args.size, args.num_images)
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
             ("Objective", f"dot(act, A) x cossim(act, A)^{args.power:g}, {args.steps} steps, Fourier + decorrelated, standard transforms")]  # fmt: skip
    page = report.write_grid_page(
        "index.html", "Caricatures", tables, facts=facts,
        lede="What each layer sees in each image: an image optimised to reproduce the image's activations at the "
        "layer (their direction more than their size), from noise, under random jitter, scale and rotation.",
    )  # fmt: skip
    print(f"{len(models)} model(s) x {len(layers)} layers x {len(ids)} images, {time.perf_counter() - started:.0f} s")
    print(page.resolve())
    return 0


def _main(parser, runner, argv):
    args = parser.parse_args(argv)
    try:
        status = runner(args)
    except UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        status = 2
    sys.exit(status)


def caricature_main(argv=None):
    """Entry point of ``python -m tfvis.caricature``."""
    _main(build_caricature_parser(), _run_caricature, argv)


# --------------------------------------------------------------------------------------------
# python -m tfvis.compare
# --------------------------------------------------------------------------------------------


def build_compare_parser():
    """The argument parser of ``python -m tfvis.compare``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.compare",
        description="Compare two networks (e.g. a base model and a fine-tuned one): CKA between their layers, each "
        "channel's feature visualization in both models sorted by how much it changed, and dead channels.",
    )
    parser.add_argument("--a", required=True, help="model A: 'name:weights' (e.g. vgg16:hed) or a saved Keras model file")
    parser.add_argument("--b", required=True, help="model B, as --a (e.g. vgg16:random)")
    parser.add_argument("--reinit-b", help="re-initialise B's layers whose names start with these comma-separated prefixes "
                        "(e.g. block5): an ablation to compare against")  # fmt: skip
    parser.add_argument("--layers", required=True, help="comma-separated layers whose channels are visualized")
    parser.add_argument("--cka-layers", help="comma-separated layers of the CKA matrix (default: the model's report layers, "
                        "or every conv layer)")  # fmt: skip
    parser.add_argument("--channels", default="8", help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--images", help="a folder of images for CKA (default: scikit-image's sample photos plus crops)")
    parser.add_argument("--num-images", type=int, help="use at most this many images (default: 64 samples, or the whole folder)")
    parser.add_argument("--size", type=int, default=128, help="image side for CKA (default: 128)")
    parser.add_argument("--steps", type=int, default=DEFAULT_FV_STEPS, help=f"feature visualization steps (default: {DEFAULT_FV_STEPS})")
    parser.add_argument("--fv-size", type=int, default=DEFAULT_FV_SIZE, help=f"feature visualization side (default: {DEFAULT_FV_SIZE})")
    parser.add_argument("--fv-batch", type=int, default=DEFAULT_FV_BATCH, help=f"channels rendered together (default: {DEFAULT_FV_BATCH})")
    parser.add_argument("--out", default=str(Path("html_out") / "compare"), help="output folder (default: html_out/compare)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per CKA minibatch (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights, sample crops and renders (default: 0)")
    parser.add_argument("--force", action="store_true", help="recompute what is already in the output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _default_cka_layers(model):
    from tfvis.layers import conv_layer_names
    from tfvis.models import ZOO

    module = ZOO.get(getattr(model, "tfvis_name", None) or model.name)
    names = conv_layer_names(model)
    if module is not None and all(n in names for n in module.REPORT_LAYERS):
        return list(module.REPORT_LAYERS)
    return names


def reinitialise(model, prefixes, seed=0):
    """Re-initialise, in place, the weighted layers of ``model`` whose names start with one of ``prefixes``.

    The fresh weights come from a clone of the model (Keras' initialisers, seeded). Returns the layer names.
    """
    import keras

    from tfvis import set_weights

    names = [layer.name for layer in model.layers if layer.weights and any(layer.name.startswith(p) for p in prefixes)]
    if not names:
        return names
    keras.utils.set_random_seed(seed)
    fresh = keras.models.clone_model(model)
    for name in names:
        set_weights(model, name, fresh)
    return names


def _visualizations(report, model, side, layer, channels, args):
    """Feature visualizations ``(C, H, W, 3)`` of ``channels`` of ``layer`` in one model, reloaded when saved."""
    from tfvis import fileio
    from tfvis.featurevis import render

    key = f"{side}_{layer}"
    record = report.load_state("visualizations", key)
    path = report.out / "state" / "visualizations" / f"{key}.npy"
    if record and record.get("channels") == list(channels) and path.is_file():
        return np.load(path)
    images = []
    for start in range(0, len(channels), args.fv_batch):
        group = channels[start : start + args.fv_batch]
        images.append(np.asarray(render(model, [f"{layer}:{c}" for c in group], size=args.fv_size, steps=args.steps,
                                        seed=args.seed, progress=not args.quiet)))  # fmt: skip
    images = np.concatenate(images)
    fileio.save_npy(path, images)
    report.save_state("visualizations", key, {"channels": list(channels)})
    return images


def _compare_layer(report, models, layer, channels, args):
    """Visualize, score and write the page of one layer; returns its index row and dead names."""
    from tfvis.compare import dead_channels, gram_distance, visualization_similarity
    from tfvis.report import safe_name

    (model_a, label_a), (model_b, label_b) = models
    vis_a = _visualizations(report, model_a, "a", layer, channels, args)
    vis_b = _visualizations(report, model_b, "b", layer, channels, args)
    similarity = visualization_similarity(model_a, layer, vis_a, vis_b)
    distance = gram_distance(model_a, layer, vis_a, vis_b)
    dead_a, dead_b = dead_channels(vis_a), dead_channels(vis_b)
    rows = []
    for i in np.argsort(similarity, kind="stable"):  # most changed first
        channel = channels[i]
        cells = []
        for side, label, vis in (("a", label_a, vis_a), ("b", label_b, vis_b)):
            src = report.save_picture(layer, f"{safe_name(label)}_{safe_name(layer)}_ch{channel}_{side}", vis[i], vis[i])
            cells.append({"src": src, "alt": f"{label} {layer}:{channel}"})
        flags = [name for name, dead in (("dead in A", dead_a.flags[i]), ("dead in B", dead_b.flags[i])) if dead]
        note = f"similarity {similarity[i]:.3f}, Gram distance {distance[i]:.3f}" + (f" ({', '.join(flags)})" if flags else "")
        rows.append({"label": f"channel {channel}", "note": note, "cells": cells})
    page = f"{safe_name(layer)}.html"
    report.write_grid_page(page, layer, [{"id": "channels", "title": f"{layer}: channels from most to least changed",
                                          "columns": [f"A: {label_a}", f"B: {label_b}"], "rows": rows}],  # fmt: skip
                           lede="Similarity: cosine of the two visualizations' activations in model A at this layer "
                           "(1: the same feature). Gram distance: of their style (Gram) matrices.")  # fmt: skip
    names = [f"{layer}:{c}" for c in channels]
    row = {
        "name": layer, "page": page, "channels": len(channels), "mean": f"{float(np.mean(similarity)):.3f}",
        "most_changed": ", ".join(str(channels[i]) for i in np.argsort(similarity, kind="stable")[:3]),
        "dead_a": int(dead_a.flags.sum()), "dead_b": int(dead_b.flags.sum()),
    }  # fmt: skip
    csv_rows = [(f"A {n}", s, f) for n, s, f in zip(names, dead_a.scores, dead_a.flags)]
    csv_rows += [(f"B {n}", s, f) for n, s, f in zip(names, dead_b.scores, dead_b.flags)]
    return row, csv_rows


def _cka_heatmap(report, models, source, layers_a, layers_b, limit, args):
    """CKA matrix (reloaded when saved) and the path of its heatmap."""
    import io

    from tfvis import fileio
    from tfvis.compare import model_cka, plot_cka

    record = report.load_state("cka", "matrix")
    if record and record.get("layers_a") == layers_a and record.get("layers_b") == layers_b:
        matrix = np.asarray(record["matrix"])
    else:
        result = model_cka(models[0][0], models[1][0], source, layers_a, layers_b, batch_size=args.batch_size,
                           size=args.size, limit=limit, progress=not args.quiet)  # fmt: skip
        matrix = result.matrix
        report.save_state("cka", "matrix", {"layers_a": layers_a, "layers_b": layers_b, "matrix": matrix.tolist(), "images": result.n_images})
    fig = plot_cka(matrix, layers_a, layers_b, title=f"CKA: {models[0][1]} (rows) vs {models[1][1]} (columns)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    fileio.write_bytes(report.out / "assets" / "cka.png", buffer.getvalue())
    return matrix, "assets/cka.png"


def _run_compare(args):
    from tfvis import fileio
    from tfvis.compare import write_dead_csv
    from tfvis.layers import layer_info
    from tfvis.report import Report

    _check_positive(args, ("num_images", "size", "steps", "fv_size", "fv_batch", "batch_size"))
    if args.batch_size < 4:
        raise UsageError(f"--batch-size {args.batch_size}: CKA minibatches need at least 4 images")
    model_a, label_a = load_model_spec(args.a, args.seed, option="--a")
    model_b, label_b = load_model_spec(args.b, args.seed, option="--b")
    if args.reinit_b:
        prefixes = [p.strip() for p in args.reinit_b.split(",") if p.strip()]
        changed = reinitialise(model_b, prefixes, seed=args.seed + 1)
        if not changed:
            raise UsageError(f"--reinit-b {args.reinit_b}: no weighted layer of {label_b} starts with {', '.join(prefixes)}")
        label_b = f"{label_b} ({','.join(prefixes)} re-initialised)"
    models = [(model_a, label_a), (model_b, label_b)]
    layers = [n.strip() for n in args.layers.split(",") if n.strip()]
    for model, label in models:
        _check_layers(model, label, layers)
    if args.cka_layers:
        cka_layers = [n.strip() for n in args.cka_layers.split(",") if n.strip()]
        layers_a = _check_layers(model_a, label_a, cka_layers, "--cka-layers")
        layers_b = _check_layers(model_b, label_b, cka_layers, "--cka-layers")
    else:
        layers_a, layers_b = _default_cka_layers(model_a), _default_cka_layers(model_b)
    counts = dict(layer_info(model_a))
    channels = {name: parse_channels(args.channels, counts[name], name) for name in layers}
    args.weights = None  # _image_source reads only images, num_images, seed
    source, images_label, limit = _image_source(args, args.size)
    settings = {"a": args.a, "b": args.b, "reinit-b": args.reinit_b or "", "images": images_label, "channels": args.channels,
                "steps": args.steps, "fv-size": args.fv_size, "seed": args.seed}  # fmt: skip
    report = Report(args.out, f"{label_a} vs {label_b}", "", settings, force=args.force)
    started = time.perf_counter()
    matrix, heatmap = _cka_heatmap(report, models, source, layers_a, layers_b, limit, args)
    rows, csv_rows = [], []
    for layer in layers:
        row, dead = _compare_layer(report, models, layer, channels[layer], args)
        rows.append(row)
        csv_rows += dead
    write_dead_csv(report.out / "dead_channels.csv", *zip(*csv_rows))
    diagonal = [{"name": n, "value": f"{matrix[i, layers_b.index(n)]:.3f}"} for i, n in enumerate(layers_a) if n in layers_b]
    facts = [("A", f"{label_a} ({getattr(model_a, 'tfvis_weights', 'saved model')})"),
             ("B", f"{label_b} ({getattr(model_b, 'tfvis_weights', 'saved model')})"),
             ("CKA images", f"{images_label}, minibatches of {args.batch_size}"),
             ("Visualizations", f"{args.steps} steps at {args.fv_size} px, Fourier + decorrelated, standard transforms")]  # fmt: skip
    dead = [name for name, _, flag in csv_rows if flag]
    report._render("compare.html", "index.html", title="Comparison", facts=facts, heatmap=heatmap, diagonal=diagonal, layers=rows, dead=dead)
    fileio.write_json(report.out / "cka.json", {"layers_a": layers_a, "layers_b": layers_b, "matrix": np.asarray(matrix).tolist()})
    print(f"{label_a} vs {label_b}: CKA {len(layers_a)} x {len(layers_b)} layers, {sum(len(c) for c in channels.values())} "
          f"channels x 2 models, {time.perf_counter() - started:.0f} s")  # fmt: skip
    print((report.out / "index.html").resolve())
    return 0


def compare_main(argv=None):
    """Entry point of ``python -m tfvis.compare``."""
    _main(build_compare_parser(), _run_compare, argv)
