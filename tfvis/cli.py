"""The shared runner behind ``python -m tfvis.alex``, ``tfvis.vgg`` and ``tfvis.inception``.

It loads a zoo model, streams the images once to find every requested channel's top-k
activations, reconstructs them with the deconvnet, and writes the HTML report. Runs resume:
channels already in the output folder are skipped unless ``--force``.
"""
import argparse
import sys
import time
from pathlib import Path

METHODS = ("deconv",)
DEFAULT_CHANNELS = "8"
DEFAULT_SAMPLE_IMAGES = 64


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
        "dataset patches and their deconvnet reconstructions (Zeiler & Fergus 2014).",
    )
    parser.add_argument("--weights", default="auto", help="auto, imagenet, random, hed (VGG16), or a weight file (default: auto)")
    parser.add_argument("--layers", help="comma-separated layer names (default: every conv layer)")
    parser.add_argument("--channels", default=DEFAULT_CHANNELS, help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--images", help="a folder of images (default: scikit-image's sample photos plus crops of them)")
    parser.add_argument("--num-images", type=int, help=f"use at most this many images (default: {DEFAULT_SAMPLE_IMAGES} samples, or the whole folder)")
    parser.add_argument("--size", type=int, help="image side in pixels (default: the model's input size)")
    parser.add_argument("--top-k", type=int, default=9, help="patches per channel (default: 9)")
    parser.add_argument("--methods", default="deconv", help=f"comma-separated, from: {', '.join(METHODS)}, all (default: deconv)")
    parser.add_argument("--out", help=f"output folder (default: html_out/{model_name})")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights and sample crops (default: 0)")
    parser.add_argument("--force", action="store_true", help="recompute channels already in the output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _check_positive(args):
    for name in ("num_images", "top_k", "batch_size", "size"):
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
    fields = receptive_fields(model, layers, input_size=(size, size))
    input_desc = f"{size} x {size} RGB, values in [0, 255]"
    for name in layers:
        report.write_layer_page(name, counts[name], field_text(fields[name]), stride_text(fields[name]), args.top_k, input_desc=input_desc)
    rows = [{"name": name, "channels": counts[name], "field": field_text(fields[name]), "stride": stride_text(fields[name])} for name in layers]
    index = report.write_index(rows, input_desc)
    elapsed = time.perf_counter() - started
    skipped = sum(len(channels[n]) for n in layers) - sum(len(c) for c in todo.values())
    print(f"{model_name} ({model.tfvis_weights}): {len(layers)} layers, "
          f"{sum(len(c) for c in todo.values())} channels computed, {skipped} already done, {elapsed:.0f} s")  # fmt: skip
    print(index.resolve())
    return 0


def main(model_name, prog):
    """Entry point of the thin modules: exit with :func:`run`'s status."""
    sys.exit(run(model_name, prog))
