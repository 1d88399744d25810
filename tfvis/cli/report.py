"""``python -m tfvis.report --model SPEC``: the per-layer HTML report of any model; ``tfvis.vgg``, ``alex``, ``inception``: its zoo presets.

It loads the model (a zoo model, a saved Keras model or an ONNX file, see
:class:`tfvis.models.ModelSpec`), streams the images once to find every requested channel's
top-k activations, reconstructs them with the deconvnet, and writes the HTML report. Runs resume:
channels already in the output folder are skipped unless ``--force``.
"""
import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from .common import (
    DEFAULT_CHANNELS,
    DEFAULT_SAMPLE_IMAGES,
    UsageError,
    check_layers,
    check_memory,
    check_out,
    check_positive,
    dataset_options,
    featurevis_options,
    first_images,
    image_source,
    parse_channels,
    parse_layers,
    add_engine_options,
    add_model_options,
    apply_labels,
    load_spec,
    model_spec_of,
    run_command,
    run_options,
)

#: Report parts: top-k reconstructions on the layer pages; per-image saliency and inversion pages.
METHODS = ("deconv", "featurevis", "saliency", "inversion")
DEFAULT_PAGE_IMAGES = 4
DEFAULT_INVERT_SIZE = 128
DEFAULT_TOP_K = 9
_POSITIVE = ("num_images", "top_k", "batch_size", "size", "page_images", "invert_size", "fv_steps", "fv_size", "fv_batch", "workers", "shard_images")


def build_parser(prog, model_name=None):
    """The argument parser of ``python -m tfvis.<prog>``: a zoo preset (``model_name``), or ``--model`` when None."""
    label = model_name or "<model>"
    parents = [
        dataset_options(
            "a folder of images or a glob pattern such as 'photos/*.jpg' (default: scikit-image's sample photos plus crops of them)",
            f"use at most this many images (default: {DEFAULT_SAMPLE_IMAGES} samples, or the whole folder)",
        ),
        featurevis_options(),
        run_options(None, 16, "images per batch", "seed of random weights and sample crops",
                    force_help="recompute channels already in the output folder", out_help=f"output folder (default: html_out/{label})"),
    ]  # fmt: skip
    parser = argparse.ArgumentParser(
        prog=f"python -m tfvis.{prog}",
        parents=parents,
        description=f"Write an HTML report of what {model_name or 'a model'}'s layers respond to: for each channel the top-k "
        "dataset patches and their deconvnet reconstructions (Zeiler & Fergus 2014); with --methods saliency,inversion "
        "also a page per image with its saliency maps and its inversion from each layer. With --channels all, each "
        "layer gets an atlas view (a thumbnail per channel) and a page per channel.",
    )
    if model_name is None:
        add_model_options(parser, required=True)
    else:
        add_model_options(parser, spec_flags=(), input_flags=())
    parser.add_argument("--weights", default="auto", help="auto, imagenet, random, hed (VGG16), or a weight file (default: auto; "
                        "a model file holds its own)")  # fmt: skip
    parser.add_argument("--layers", help="comma-separated layer names (default: every conv layer)")
    parser.add_argument("--channels", default=DEFAULT_CHANNELS, help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size, else 224)")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help=f"patches per channel, at most the number of images (default: {DEFAULT_TOP_K})")
    parser.add_argument("--methods", default="deconv", help=f"comma-separated, from: {', '.join(METHODS)}, all (default: deconv)")
    parser.add_argument("--page-images", type=int, default=DEFAULT_PAGE_IMAGES,
                        help=f"saliency and inversion pages for the first N images (default: {DEFAULT_PAGE_IMAGES})")
    parser.add_argument("--invert-layers", help="layers inverted on the image pages (default: the last selected layer before each downsampling)")
    parser.add_argument("--invert-size", type=int,
                        help=f"image side for inversions, at most --size (default: {DEFAULT_INVERT_SIZE}, or the input size of "
                        "a model that takes only one)")
    parser.add_argument("--raw", choices=("compact", "npy"), default="compact",
                        help="raw arrays beside the PNGs: one compressed float16 .npz per channel (compact, default) "
                        "or a float32 .npy per image and method (npy)")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default="float32",
                        help="what the top-k forward passes and feature visualizations compute in: float32 (the same "
                        "results on every machine), bfloat16 (faster on CPUs with AVX512_BF16 or AMX, emulated and slower "
                        "elsewhere) or auto (bfloat16 where the CPU has it) (default: float32)")
    add_engine_options(parser)
    return parser


def _methods(spec):
    methods = METHODS if spec == "all" else tuple(m.strip() for m in spec.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UsageError(f"--methods: unknown {', '.join(bad)}; choose from: {', '.join(METHODS)}, all")
    return methods


def _layers(spec, model, option="--layers"):
    """The layers named by ``spec`` (any layer of the model), or the model's report layers."""
    from tfvis.models import model_info

    info = model_info(model)
    names = parse_layers(spec, option) if spec is not None else list(info.report_layers)
    return check_layers(model, info.name, names, option)


def _channel_counts(model, layers):
    from tfvis.graph import prepared
    from tfvis.targets import resolve

    net_model = prepared(model)
    counts = {}
    for name in layers:
        count = resolve(net_model, name).channels
        if not count:
            raise UsageError(f"--layers: layer {name} has no channel axis (output shape {net_model.get_layer(name).output.shape})")
        counts[name] = count
    return counts


def _load(model_spec):
    from tfvis.models import WeightsError, WeightsUnavailableError

    try:
        return model_spec.load()
    except WeightsUnavailableError as err:
        raise UsageError(f"{err} Or try the whole pipeline now with --weights random.") from None
    except (WeightsError, ValueError) as err:
        raise UsageError(str(err)) from None


def _engine(args):
    from tfvis.pipeline import make_engine
    from tfvis.pipeline.engines import EngineError

    try:
        return make_engine(args.engine, address=args.address, workers=args.workers, progress=not args.quiet)
    except EngineError as err:
        raise UsageError(f"--engine {args.engine}: {err}") from None


def run(model_name, prog, argv=None):
    """Parse ``argv`` and write the report of zoo model ``model_name`` (None: of ``--model``); returns the exit status."""
    return run_command(build_parser(prog, model_name), lambda args: _run(model_name, args), argv)


#: Image side of a report of a model that takes any size.
DEFAULT_SIZE = 224


def _zoo_plan(name, weights, args):
    """``(spec, info, size, include_top)`` of a zoo model, checked before it is built."""
    from tfvis.models import zoo_module
    from tfvis.pipeline.work import ModelSpec

    module = zoo_module(name)
    requested = parse_layers(args.layers) if args.layers is not None else []
    include_top = any(layer in module.TOP_LAYERS for layer in requested)
    info = module.INFO
    size = args.size or info.default_size
    if include_top and size != info.default_size:
        raise UsageError(f"--size {size}: layers {', '.join(requested)} need the classifier, whose input is {info.default_size} px")
    return ModelSpec(name, weights, include_top, args.seed), info, size


def _file_plan(args):
    """``(spec, model, label, info, size)`` of a model file, loaded (its fixed input size decides the default size)."""
    from tfvis.models import model_info

    spec, label = model_spec_of(args.model, args.seed, weights=args.weights, input=args.input)
    model = load_spec(spec, args.model)
    info = model_info(model)
    size = args.size or info.default_size or DEFAULT_SIZE
    if info.default_size is not None and size != info.default_size:
        raise UsageError(f"--size {size}: {args.model} takes {info.default_size} x {info.default_size} px images only")
    return spec, model, label, info, size


def _input_text(size, spec, model):
    """The index's line on the input: the pixels fed, and what the model's first layer makes of them."""
    from tfvis.models import model_info

    text = f"{size} x {size} RGB, values in [0, 255]"
    if spec.is_zoo:
        return text
    declared = model_info(model).input
    return f"{text}; first layer: {declared.describe()}" if declared else f"{text}, fed as they are (no input convention declared)"


def _run(model_name, args):
    check_positive(args, _POSITIVE)
    methods = _methods(args.methods)
    from tfvis.models import ZOO
    from tfvis.graph import prepared
    from tfvis.receptive_field import receptive_fields
    from tfvis.image_pages import stage_layers, write_image_pages
    from tfvis.pipeline import Store, layer_report
    from tfvis.pipeline.work import Context
    from tfvis.report import Report, field_text, safe_name, stride_text

    spec_text = model_name or args.model
    zoo_name, _, named = spec_text.partition(":")
    model = None
    if zoo_name in ZOO and not Path(spec_text).is_file():
        if getattr(args, "input", None) is not None:
            raise UsageError(f"--input {args.input}: {zoo_name} is a zoo model, which takes RGB in [0, 255] and preprocesses inside; "
                             "--input is for model files")  # fmt: skip
        spec, info, size = _zoo_plan(zoo_name, named or args.weights, args)
        label = zoo_name
    else:
        spec, model, label, info, size = _file_plan(args)
    if size < info.min_size:
        raise UsageError(f"--size {size}: {info.name} needs at least {info.min_size} px")
    out = Path(args.out or Path("html_out") / safe_name(label))
    check_out(out)
    source, images_label, _ = image_source(args, size)  # before loading the model: bad images fail at once
    if args.top_k > len(source):  # every image already holds a place: more ranks would stay empty
        if args.top_k != DEFAULT_TOP_K:
            print(f"tfvis: --top-k {args.top_k} is more than the {len(source)} images; keeping all {len(source)} per channel", file=sys.stderr)
        args.top_k = len(source)
    model = model if model is not None else _load(spec)
    apply_labels(model, args.labels)
    weights_text = getattr(model, "tfvis_weights", None) or f"as saved in {Path(spec.name).name}"
    layers = _layers(args.layers, model)
    counts = _channel_counts(model, layers)
    channels = {name: parse_channels(args.channels, counts[name], name) for name in layers}
    check_memory(model, layers, size, args.batch_size, images=len(source))  # before the first forward pass
    settings = {"images": images_label, "top-k": args.top_k, "seed": args.seed, "methods": ", ".join(methods)}
    fields = receptive_fields(prepared(model), layers, input_size=(size, size))  # layer names as --layers reads them
    if "featurevis" in methods:
        from tfvis.featurevis import describe

        settings["feature visualization"] = describe(steps=args.fv_steps, size=args.fv_size)
    per_image = [m for m in methods if m in ("saliency", "inversion")]
    if per_image:
        invert_layers = _layers(args.invert_layers, model, "--invert-layers") if args.invert_layers else stage_layers(fields, layers)
        invert_size = min(args.invert_size or max(DEFAULT_INVERT_SIZE, info.min_size), size)
        if "inversion" in per_image and invert_size < info.min_size:
            raise UsageError(f"--invert-size {invert_size}: {info.name} needs at least {info.min_size} px")
        settings["image pages"] = f"{args.page_images} images"
        if "inversion" in per_image:
            settings["inversion"] = f"{', '.join(invert_layers)} at {invert_size} px"
    engine = _engine(args)  # before the first file: an unreachable cluster leaves the output folder untouched
    if spec.input is not None:
        settings["input"] = spec.input.text
    report = Report(out, label, weights_text, settings, force=args.force, raw=args.raw)
    store = Store(out / "store")
    if args.force:
        shutil.rmtree(store.root, ignore_errors=True)
    context = Context(spec, source, model=model)  # Ray workers rebuild the model from the same spec
    started = time.perf_counter()
    try:
        merged = layer_report.top_k(
            engine, context, store, layers, args.top_k, args.batch_size, args.shard_images, precision=args.precision
        )  # fmt: skip
        recon = ("deconvnet", "guided") if "deconv" in methods else ()
        computed, done = layer_report.channels(
            engine, context, store, report, merged, channels, args.top_k, recon, args.batch_size, force=args.force
        )  # fmt: skip
        if "featurevis" in methods:
            layer_report.feature_visualizations(
                engine, context, store, report, channels, args.fv_steps, args.fv_size, args.fv_batch, args.seed, force=args.force,
                precision=args.precision,
            )  # fmt: skip
    finally:
        engine.close()
    pages = []
    if per_image:
        ids, page_images = first_images(source, size, args.page_images)
        pages = write_image_pages(
            report, model, ids, page_images, layers, channels, per_image, invert_layers=invert_layers,
            invert_size=invert_size, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
        )  # fmt: skip
    input_desc = _input_text(size, spec, model)
    for name in layers:
        report.write_layer_page(name, counts[name], field_text(fields[name]), stride_text(fields[name]), args.top_k, input_desc=input_desc)
    rows = [{"name": name, "channels": counts[name], "field": field_text(fields[name]), "stride": stride_text(fields[name])} for name in layers]
    index = report.write_index(rows, input_desc, pages=pages)
    elapsed = time.perf_counter() - started
    print(f"{label} ({weights_text}): {len(layers)} layers, {computed} channels computed, {done} already done, "
          f"{elapsed:.0f} s ({engine.name} engine)")  # fmt: skip
    print(index.resolve())
    return 0


def main(model_name, prog, argv=None):
    """Entry point of the thin modules and console commands: exit with :func:`run`'s status."""
    sys.exit(run(model_name, prog, argv))


def report_main(argv=None):
    """Entry point of ``python -m tfvis.report --model SPEC`` (``tfvis report``, ``tfvis-report``)."""
    main(None, "report", argv)
