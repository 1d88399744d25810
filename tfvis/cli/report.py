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
from dataclasses import dataclass, field
from pathlib import Path

from ..saliency.methods import ALIASES as SALIENCY_ALIASES
from ..saliency.methods import DEFAULT_METHODS as PAGE_METHODS
from ..saliency.methods import METHODS as SALIENCY_METHODS
from ..saliency.methods import method as saliency_method
from .common import (
    DEFAULT_CHANNELS,
    DEFAULT_SAMPLE_IMAGES,
    UsageError,
    add_engine_options,
    add_model_options,
    apply_labels,
    check_layers,
    check_memory,
    check_out,
    check_positive,
    dataset_options,
    featurevis_options,
    image_source,
    load_spec,
    make_run_engine,
    model_spec_of,
    parse_channels,
    parse_layers,
    run_command,
    run_options,
)

#: Parts a report can have (``--methods``): top-k reconstructions and feature visualizations on the
#: layer pages; per-image saliency and inversion pages.
REPORT_PARTS = ("deconv", "featurevis", "saliency", "inversion", "sanity")
#: What ``--methods all`` selects: every part but the sanity check (a model per randomized layer), asked for by name.
ALL_PARTS = REPORT_PARTS[:-1]
#: The former name of :data:`REPORT_PARTS`.
METHODS = REPORT_PARTS
DEFAULT_PAGE_IMAGES = 4
DEFAULT_INVERT_SIZE = 128
DEFAULT_TOP_K = 9
_POSITIVE = (
    "num_images",
    "top_k",
    "batch_size",
    "size",
    "page_images",
    "invert_size",
    "fv_steps",
    "fv_size",
    "fv_batch",
    "workers",
    "shard_images",
)


def build_parser(prog, model_name=None):
    """The argument parser of ``python -m tfvis.<prog>``: a zoo preset (``model_name``), or ``--model`` when None."""
    label = model_name or "<model>"
    parents = [
        dataset_options(
            "a folder of images or a glob pattern such as 'photos/*.jpg' (default: scikit-image's sample photos plus crops of them)",
            f"use at most this many images (default: {DEFAULT_SAMPLE_IMAGES} samples, or the whole folder)",
        ),
        featurevis_options(),
        run_options(
            None,
            16,
            "images per batch",
            "seed of random weights and sample crops",
            force_help="recompute channels already in the output folder",
            out_help=f"output folder (default: html_out/{label})",
        ),
    ]
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
    parser.add_argument(
        "--weights",
        default="auto",
        help="auto, imagenet, random, hed (VGG16), or a weight file (default: auto; a model file holds its own)",
    )
    parser.add_argument("--layers", help="comma-separated layer names (default: every conv layer)")
    parser.add_argument("--channels", default=DEFAULT_CHANNELS, help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size, else 224)")
    parser.add_argument(
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        help=f"patches per channel, at most the number of images (default: {DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--methods",
        default="deconv",
        help=f"comma-separated, from: {', '.join(REPORT_PARTS)}, all (all but sanity) (default: deconv)",
    )
    parser.add_argument(
        "--saliency-methods",
        default=",".join(PAGE_METHODS),
        help=f"the image pages' saliency columns, comma-separated, from: {', '.join(SALIENCY_METHODS)}, all "
        f"(default: {','.join(PAGE_METHODS)})",
    )
    parser.add_argument(
        "--sanity-methods",
        help="the sanity check's saliency methods (--methods sanity), comma-separated, from the --saliency-methods "
        "choices (default: vanilla,gradient_x_input,integrated,guided,grad_cam,smoothgrad)",
    )
    parser.add_argument(
        "--sanity-layers", help="layers the sanity check randomizes, comma-separated (default: every layer with weights)"
    )
    parser.add_argument(
        "--sanity-modes",
        default="cascading,independent",
        help="randomizations of the sanity check: cascading (from the top layer down), independent (one layer at a "
        "time) or both (default: cascading,independent)",
    )
    parser.add_argument(
        "--page-images",
        type=int,
        default=DEFAULT_PAGE_IMAGES,
        help=f"saliency and inversion pages for the first N images (default: {DEFAULT_PAGE_IMAGES})",
    )
    parser.add_argument(
        "--invert-layers", help="layers inverted on the image pages (default: the last selected layer before each downsampling)"
    )
    parser.add_argument(
        "--invert-size",
        type=int,
        help=f"image side for inversions, at most --size (default: {DEFAULT_INVERT_SIZE}, or the input size of "
        "a model that takes only one)",
    )
    parser.add_argument(
        "--raw",
        choices=("compact", "npy"),
        default="compact",
        help="raw arrays beside the PNGs: one compressed float16 .npz per channel (compact, default) "
        "or a float32 .npy per image and method (npy)",
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="what the top-k forward passes and feature visualizations compute in: float32 (the same "
        "results on every machine), bfloat16 (faster on CPUs with AVX512_BF16 or AMX, emulated and slower "
        "elsewhere) or auto (bfloat16 where the CPU has it) (default: float32)",
    )
    add_engine_options(parser, shard_units="top-k")
    return parser


def _saliency_methods(spec, option="--saliency-methods"):
    """The saliency methods ``spec`` names (comma-separated, or ``all``), by their table names."""
    names = tuple(SALIENCY_METHODS) if spec.strip() == "all" else tuple(m.strip() for m in spec.split(",") if m.strip())
    bad = [name for name in names if name not in SALIENCY_METHODS and name not in SALIENCY_ALIASES]
    if bad or not names:
        raise UsageError(f"{option}: unknown {', '.join(bad) or '(none given)'}; choose from: {', '.join(SALIENCY_METHODS)}, all")
    return tuple(dict.fromkeys(saliency_method(name).name for name in names))


def _methods(spec):
    methods = ALL_PARTS if spec == "all" else tuple(m.strip() for m in spec.split(",") if m.strip())
    bad = [m for m in methods if m not in REPORT_PARTS]
    if bad:
        raise UsageError(f"--methods: unknown {', '.join(bad)}; choose from: {', '.join(REPORT_PARTS)}, all")
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
            raise UsageError(
                f"--layers: layer {name} has no channel axis (output shape {net_model.get_layer(name).output.shape})"
            )
        counts[name] = count
    return counts


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
        raise UsageError(
            f"--size {size}: layers {', '.join(requested)} need the classifier, whose input is {info.default_size} px"
        )
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
    return (
        f"{text}; first layer: {declared.describe()}" if declared else f"{text}, fed as they are (no input convention declared)"
    )


@dataclass
class ReportPlan:
    """What a report run will do, decided from the options before any work: the model, the images, the parts and their settings."""

    spec: object
    model: object
    label: str
    weights_text: str
    size: int
    out: Path
    source: object
    layers: list
    counts: dict
    channels: dict
    fields: dict
    parts: tuple
    settings: dict
    per_image: list = field(default_factory=list)
    invert_layers: list = field(default_factory=list)
    invert_size: int = None
    saliency_methods: tuple = PAGE_METHODS
    sanity: dict = None


@dataclass
class ReportWork:
    """What the engine computed: the report folder, the store, the channel counts and the image pages' units."""

    report: object
    store: object
    computed: int
    done: int
    engine_name: str
    page_units: list = field(default_factory=list)
    page_ids: list = field(default_factory=list)
    page_images: object = None
    sanity_plan: object = None


def _model_of(model_name, args):
    """``(spec, model or None, label, info, size)`` of a zoo preset or ``--model``, checked."""
    from tfvis.models import ZOO

    spec_text = model_name or args.model
    zoo_name, _, named = spec_text.partition(":")
    model = None
    if zoo_name in ZOO and not Path(spec_text).is_file():
        if getattr(args, "input", None) is not None:
            raise UsageError(
                f"--input {args.input}: {zoo_name} is a zoo model, which takes RGB in [0, 255] and preprocesses inside; "
                "--input is for model files"
            )
        spec, info, size = _zoo_plan(zoo_name, named or args.weights, args)
        label = zoo_name
    else:
        spec, model, label, info, size = _file_plan(args)
    if size < info.min_size:
        raise UsageError(f"--size {size}: {info.name} needs at least {info.min_size} px")
    return spec, model, label, info, size


def plan(model_name, args):
    """Check the options, load the model and decide every setting: a :class:`ReportPlan` (nothing written yet but probes)."""
    from tfvis.graph import prepared
    from tfvis.image_pages import stage_layers
    from tfvis.models import weights_label
    from tfvis.receptive_field import receptive_fields
    from tfvis.report import safe_name

    check_positive(args, _POSITIVE)
    parts = _methods(args.methods)
    saliency_methods = _saliency_methods(args.saliency_methods)
    spec, model, label, info, size = _model_of(model_name, args)
    out = Path(args.out or Path("html_out") / safe_name(label))
    check_out(out)
    source, images_label = image_source(args, size)  # before loading the model: bad images fail at once
    if args.top_k > len(source):  # every image already holds a place: more ranks would stay empty
        if args.top_k != DEFAULT_TOP_K:
            print(
                f"tfvis: --top-k {args.top_k} is more than the {len(source)} images; keeping all {len(source)} per channel",
                file=sys.stderr,
            )
        args.top_k = len(source)
    model = model if model is not None else load_spec(spec, option=None, retry="try the whole pipeline now with --weights random")
    apply_labels(model, args.labels)
    weights_text = weights_label(model) or f"as saved in {Path(spec.name).name}"
    layers = _layers(args.layers, model)
    counts = _channel_counts(model, layers)
    channels = {name: parse_channels(args.channels, counts[name], name) for name in layers}
    check_memory(model, layers, size, args.batch_size, images=len(source))  # before the first forward pass
    settings = {"images": images_label, "top-k": args.top_k, "seed": args.seed, "methods": ", ".join(parts)}
    fields = receptive_fields(prepared(model), layers, input_size=(size, size))  # layer names as --layers reads them
    if "featurevis" in parts:
        from tfvis.featurevis import describe

        settings["feature visualization"] = describe(steps=args.fv_steps, size=args.fv_size)
    run = ReportPlan(spec, model, label, weights_text, size, out, source, layers, counts, channels, fields, parts, settings)
    run.per_image = [m for m in parts if m in ("saliency", "inversion")]
    if run.per_image:
        run.invert_layers = (
            _layers(args.invert_layers, model, "--invert-layers") if args.invert_layers else stage_layers(fields, layers)
        )
        run.invert_size = min(args.invert_size or max(DEFAULT_INVERT_SIZE, info.min_size), size)
        if "inversion" in run.per_image and run.invert_size < info.min_size:
            raise UsageError(f"--invert-size {run.invert_size}: {info.name} needs at least {info.min_size} px")
        settings["image pages"] = f"{args.page_images} images"
        if "saliency" in run.per_image:
            settings["saliency methods"] = ", ".join(saliency_methods)
        run.saliency_methods = saliency_methods
        if "inversion" in run.per_image:
            settings["inversion"] = f"{', '.join(run.invert_layers)} at {run.invert_size} px"
    if "sanity" in parts:
        run.sanity = _sanity_settings(args, model)
        settings["sanity check"] = f"{args.page_images} images, {', '.join(run.sanity['modes'])}, target {layers[-1]}"
    if spec.input is not None:
        settings["input"] = spec.input.text
    return run


def _sanity_settings(args, model):
    """The sanity page's methods, layers and modes (``--sanity-*``), checked."""
    from tfvis.saliency.sanity import DEFAULT_METHODS, MODES, weighted_layers

    methods = _saliency_methods(args.sanity_methods, "--sanity-methods") if args.sanity_methods else DEFAULT_METHODS
    modes = tuple(m.strip() for m in args.sanity_modes.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        raise UsageError(f"--sanity-modes {args.sanity_modes}: choose one or both of: {', '.join(MODES)}")
    weighted = weighted_layers(model)
    layers = parse_layers(args.sanity_layers, "--sanity-layers") if args.sanity_layers else None
    bad = [name for name in layers or () if name not in weighted]
    if bad:
        raise UsageError(f"--sanity-layers: {', '.join(bad)} hold no weights; choose from: {', '.join(weighted)}")
    return {"methods": tuple(methods), "modes": modes, "layers": layers}


def compute(args, run):
    """Run every unit of the report not yet done on the engine of ``--engine``: a :class:`ReportWork`.

    Top-k shards, channel groups and feature visualizations are written to the report as they
    arrive; the image pages' units stay in ``<out>/store`` for :func:`render`.
    """
    from tfvis.image_pages import page_images
    from tfvis.pipeline import Store, layer_report
    from tfvis.pipeline.image_units import page_units
    from tfvis.pipeline.work import Context
    from tfvis.report import Report
    from tfvis.saliency import has_class_output

    engine = make_run_engine(args)  # before the first file: an unreachable cluster leaves the output folder untouched
    report = Report(run.out, run.label, run.weights_text, run.settings, force=args.force, raw=args.raw)
    store = Store(run.out / "store")
    if args.force:
        shutil.rmtree(store.root, ignore_errors=True)
    context = Context(run.spec, run.source, model=run.model)  # Ray workers rebuild the model from the same spec
    try:
        merged = layer_report.top_k(
            engine, context, store, run.layers, args.top_k, args.batch_size, args.shard_images, precision=args.precision
        )
        recon = ("deconvnet", "guided") if "deconv" in run.parts else ()
        computed, done = layer_report.channels(
            engine, context, store, report, merged, run.channels, args.top_k, recon, args.batch_size, force=args.force
        )
        work = ReportWork(report, store, computed, done, engine.name)
        if "featurevis" in run.parts:
            layer_report.feature_visualizations(
                engine,
                context,
                store,
                report,
                run.channels,
                args.fv_steps,
                args.fv_size,
                args.fv_batch,
                args.seed,
                force=args.force,
                precision=args.precision,
            )
        if run.per_image or run.sanity:
            indices, work.page_ids, work.page_images = page_images(run.source, args.page_images)  # read once for both
            if not work.page_ids:
                raise UsageError(f"--page-images {args.page_images}: none of the first {args.page_images} images could be read")
        if run.per_image:
            classes = "saliency" in run.per_image and has_class_output(run.model)
            work.page_units = page_units(
                context,
                indices,
                run.layers,
                run.channels,
                run.per_image,
                run.invert_layers,
                run.invert_size,
                args.batch_size,
                args.seed,
                classes=classes,
                saliency_methods=run.saliency_methods,
            )
            engine.run(work.page_units, context, store, desc="image pages")
        if run.sanity:
            from tfvis.sanity_pages import run_sanity_units

            work.sanity_plan = run_sanity_units(
                engine,
                store,
                run.spec,
                run.model,
                run.source,
                indices,
                work.page_images,
                run.layers[-1],
                run.spec.effective_reinit_seed,
                args.batch_size,
                **run.sanity,
            )
    finally:
        engine.close()
    return work


def render(args, run, work):
    """Write the image pages, the layer pages and the index from the report's files and the store; returns the index's path."""
    from tfvis.image_pages import write_image_pages
    from tfvis.models import model_info
    from tfvis.report import field_text, stride_text

    report = work.report
    pages = []
    if run.per_image:
        pages = write_image_pages(
            report, work.store, work.page_units, work.page_ids, work.page_images, info=model_info(run.model)
        )
    if work.sanity_plan is not None:
        from tfvis.sanity_pages import write_sanity_page

        pages.append(write_sanity_page(report, work.store, work.sanity_plan, work.page_ids, work.page_images))
    input_desc = _input_text(run.size, run.spec, run.model)
    rows = []
    for name in run.layers:
        field_, stride = field_text(run.fields[name]), stride_text(run.fields[name])
        report.write_layer_page(name, run.counts[name], field_, stride, args.top_k, input_desc=input_desc)
        rows.append({"name": name, "channels": run.counts[name], "field": field_, "stride": stride})
    return report.write_index(rows, input_desc, pages=pages)


def _run(model_name, args):
    started = time.perf_counter()
    run = plan(model_name, args)
    work = compute(args, run)
    index = render(args, run, work)
    print(
        f"{run.label} ({run.weights_text}): {len(run.layers)} layers, {work.computed} channels computed, {work.done} already done, "
        f"{time.perf_counter() - started:.0f} s ({work.engine_name} engine)"
    )
    print(index.resolve())
    return 0


def main(model_name, prog, argv=None):
    """Entry point of the thin modules and console commands: exit with :func:`run`'s status."""
    sys.exit(run(model_name, prog, argv))


def report_main(argv=None):
    """Entry point of ``python -m tfvis.report --model SPEC`` (``tfvis report``, ``tfvis-report``)."""
    main(None, "report", argv)
