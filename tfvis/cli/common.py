"""What every command shares: option checks, models named on the command line, image sources.

Each command is a module of this package (``report``: ``python -m tfvis.vgg|alex|inception``;
``saliency``, ``caricature``, ``compare``); a bad option value raises :class:`UsageError`, which the
command prints on one line before exiting with status 2.
"""
import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

DEFAULT_CHANNELS = "8"
DEFAULT_SAMPLE_IMAGES = 64
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


def dataset_options(images_help, count_help):
    """Parent parser: ``--images`` and ``--num-images`` (the images a command reads)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--images", help=images_help)
    parent.add_argument("--num-images", type=int, help=count_help)
    return parent


def featurevis_options(steps_flags=("--fv-steps",)):
    """Parent parser: the feature visualizations of channels (``--fv-steps``, ``--fv-size``, ``--fv-batch``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(*steps_flags, dest="fv_steps", type=int, default=DEFAULT_FV_STEPS,
                        help=f"feature visualization steps (default: {DEFAULT_FV_STEPS})")  # fmt: skip
    parent.add_argument("--fv-size", type=int, default=DEFAULT_FV_SIZE, help=f"feature visualization side in pixels (default: {DEFAULT_FV_SIZE})")
    parent.add_argument("--fv-batch", type=int, default=DEFAULT_FV_BATCH, help=f"channels rendered together (default: {DEFAULT_FV_BATCH})")
    return parent


def run_options(out_default, batch_default, batch_help, seed_help, force_help="recompute what is already in the output folder",
                out_help=None):
    """Parent parser: ``--out``, ``--batch-size``, ``--seed``, ``--force`` (if ``force_help``) and ``--quiet``."""
    parent = argparse.ArgumentParser(add_help=False)
    out_help = out_help or f"output folder (default: {out_default})"
    parent.add_argument("--out", default=out_default, help=out_help)
    parent.add_argument("--batch-size", type=int, default=batch_default, help=f"{batch_help} (default: {batch_default})")
    parent.add_argument("--seed", type=int, default=0, help=f"{seed_help} (default: 0)")
    if force_help:
        parent.add_argument("--force", action="store_true", help=force_help)
    parent.add_argument("--quiet", action="store_true", help="no progress bars")
    return parent


def add_engine_options(parser):
    """``--engine``, ``--address``, ``--workers`` and ``--shard-images``: where a command's work units run."""
    group = parser.add_argument_group("engine (where the work runs)")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: in this process (default); ray: Ray workers, one model each (pip install 'tfvis[ray]')")
    group.add_argument("--address", help="with --engine ray: HOST:PORT of a running Ray cluster (default: start a local one)")
    group.add_argument("--workers", type=int, help="with --engine ray: workers to start (default: one per GPU, else per CPU)")
    group.add_argument("--shard-images", type=int, default=512,
                       help="images per top-k unit, rounded up to whole batches (default: 512); any sharding gives the same top-k")
    return parser


def check_positive(args, names):
    """Raise :class:`UsageError` for the first option of ``names`` (attribute names) set below 1."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def run_command(parser, runner, argv):
    """Parse ``argv``, run ``runner(args)`` and return its status; a :class:`UsageError` prints one line and gives 2."""
    from tfvis.images import NoImagesError

    args = parser.parse_args(argv)
    try:
        check_out(getattr(args, "out", None))
        return runner(args)
    except (UsageError, NoImagesError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; every file written is complete: run the same command again to resume", file=sys.stderr)
        return 130


def check_out(out, option="--out"):
    """Raise :class:`UsageError` when the output folder ``out`` names something that is not a folder."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"{option} {out}: exists and is not a folder; name a folder (it is created if missing)")


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


def check_layers(model, label, names, option="--layers"):
    """``names``, checked to be layers of ``model`` with a channel axis (any layer, by its Keras name).

    Names are read on the prepared model (:func:`tfvis.graph.prepared`), so a fused activation's
    ``<layer>_relu`` is valid too.
    """
    from tfvis.graph import prepared
    from tfvis.layers import layer_info

    net_model = prepared(model)
    known = {layer.name for layer in net_model.layers}
    bad = [n for n in names if n not in known]
    if bad:
        shown = [n for n, _ in layer_info(net_model)]
        raise UsageError(f"{option}: {label} has no layer {', '.join(bad)}; choose from: {', '.join(shown)} (or any other layer by its Keras name)")
    return names


def image_source(args, size):
    """``(source, label, limit)`` of ``--images`` / ``--num-images``: an :class:`~tfvis.images.ImageSource`.

    ``--images`` names a folder (walked recursively) or a glob pattern (quote it); default the
    sample photos and crops of them. The source is read by index, so shards of a run read only
    their own images; ``limit`` is always None (the source holds only the images asked for).
    """
    from tfvis import images

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir() and not any(ch in args.images for ch in "*?["):
            raise UsageError(f"--images {args.images}: not a folder (nor a glob pattern such as 'photos/*.jpg')")
        source = images.FileSource(args.images, size, limit=args.num_images)
        if not folder.is_dir() and not len(source):
            raise UsageError(f"--images {args.images}: no files match")
        next(images.iter_images(folder if folder.is_dir() else source, size=size))  # no readable image: fails here, before any output
        return source, f"{args.images} (centre-cropped to {size} px)", None
    count = args.num_images or DEFAULT_SAMPLE_IMAGES
    label = f"{count} scikit-image sample photos and crops ({size} px)"
    return images.SampleSource(count, size=size, seed=args.seed), label, None


def first_images(source, size, count, option="--images"):
    """``(ids, images)``: the first ``count`` images of ``source`` at ``size`` px, as a float32 batch.

    ``source`` is a folder (a path), anything :func:`tfvis.images.iter_images` reads, or None for
    scikit-image's sample photos. The one reader of "the first N images" for every command.
    """
    from tfvis import images

    if isinstance(source, str) and not Path(source).is_dir() and any(ch in source for ch in "*?["):
        source = images.FileSource(source, size)  # a glob pattern
    if isinstance(source, images.ImageSource):
        _, ids, batch = source.read(range(min(count, len(source))))
        if not ids:
            raise UsageError(f"{option}: none of the first {count} images could be read")
        return list(ids), batch.astype(np.float32)
    if source is None:
        source = images.sample_images(size=size)
    elif isinstance(source, (str, Path)):
        if not Path(source).is_dir():
            raise UsageError(f"{option} {source}: not a folder")
        source = Path(source)
    pairs = list(itertools.islice(images.iter_images(source, size=size), count))
    if not pairs:
        where = source if isinstance(source, Path) else "the image source"
        raise UsageError(f"{option} {where}: no readable images")
    return [str(i) for i, _ in pairs], np.stack([image for _, image in pairs]).astype(np.float32)
