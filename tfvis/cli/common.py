"""What every command shares: option checks, models named on the command line, image sources.

Each command is a module of this package (``report``: ``python -m tfvis.vgg|alex|inception``;
``saliency``, ``caricature``, ``compare``); a bad option value raises :class:`UsageError`, which the
command prints on one line before exiting with status 2.
"""
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
    """``(source, label, limit)`` of ``--images`` / ``--num-images``: a folder, or the sample photos and crops."""
    from tfvis import images

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise UsageError(f"--images {args.images}: not a folder")
        next(images.iter_images(folder, size=size))  # a folder without one readable image fails here, before any output
        return folder, f"{folder} (centre-cropped to {size} px)", args.num_images
    count = args.num_images or DEFAULT_SAMPLE_IMAGES
    ids, batch = images.sample_dataset(count, size=size, seed=args.seed)
    label = f"{count} scikit-image sample photos and crops ({size} px)"
    return dict(zip(ids, batch)), label, None


def first_images(source, size, count, option="--images"):
    """``(ids, images)``: the first ``count`` images of ``source`` at ``size`` px, as a float32 batch.

    ``source`` is a folder (a path), anything :func:`tfvis.images.iter_images` reads, or None for
    scikit-image's sample photos. The one reader of "the first N images" for every command.
    """
    from tfvis import images

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
