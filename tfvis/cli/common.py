"""What every command shares: option checks, models named on the command line, image sources.

Each command is a module of this package (``report``: ``python -m tfvis.report --model SPEC`` and
its zoo presets ``python -m tfvis.vgg|alex|inception``; ``saliency``, ``caricature``, ``compare``); a bad option value raises :class:`UsageError`, which the
command prints on one line before exiting with status 2.
"""

import argparse
import contextlib
import errno
import itertools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_CHANNELS = "8"
DEFAULT_SAMPLE_IMAGES = 64
DEFAULT_FV_STEPS = 256
DEFAULT_FV_SIZE = 128
DEFAULT_FV_BATCH = 8
#: ``--max-pixels``' default: :data:`tfvis.images.MAX_PIXELS` (a test checks they agree), written here since importing
#: :mod:`tfvis.images` imports TensorFlow, which ``--help`` does without.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: The zoo's model names in ``--model``'s help: the keys of :data:`tfvis.models.ZOO` (a test checks they agree), written
#: here for the same reason.
ZOO_NAMES = ("alexnet", "vgg16", "inceptionv1")


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
            if int(spec) == 0:
                raise UsageError(
                    "--channels 0: names no channel; give a count of at least 1, 'all', 'a-b' or a list like '3,7,12'"
                )
            return list(range(min(int(spec), count)))
        channels = []
        for part in filter(None, spec.split(",")):
            first, _, last = part.partition("-")
            first, last = int(first), int(last or first)
            if last < first:
                raise UsageError(f"--channels {spec!r}: {part} is an empty range; write {last}-{first}")
            channels.extend(range(first, last + 1))
    except ValueError:
        raise UsageError(f"--channels {spec!r}: use 'all', a count N (the first N), 'a-b' or a list like '3,7,12'") from None
    if not channels:
        raise UsageError(
            f"--channels {spec!r}: names no channel; use 'all', a count N (the first N), 'a-b' or a list like '3,7,12'"
        )
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise UsageError(f"--channels {spec!r}: layer {layer} has channels 0-{count - 1}; got {bad}")
    return sorted(set(channels))


def dataset_options(images_help, count_help):
    """Parent parser: ``--images``, ``--num-images`` and ``--max-pixels`` (the images a command reads)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--images", help=images_help)
    parent.add_argument("--num-images", type=int, help=count_help)
    parent.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help=f"skip image files that declare more than N pixels, checked before decoding (default: {DEFAULT_MAX_PIXELS:,}, 8192 x 8192)",
    )
    return parent


def featurevis_options(steps_flags=("--fv-steps",)):
    """Parent parser: the feature visualizations of channels (``--fv-steps``, ``--fv-size``, ``--fv-batch``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        *steps_flags,
        dest="fv_steps",
        type=int,
        default=DEFAULT_FV_STEPS,
        help=f"feature visualization steps (default: {DEFAULT_FV_STEPS})",
    )
    parent.add_argument(
        "--fv-size", type=int, default=DEFAULT_FV_SIZE, help=f"feature visualization side in pixels (default: {DEFAULT_FV_SIZE})"
    )
    parent.add_argument(
        "--fv-batch", type=int, default=DEFAULT_FV_BATCH, help=f"channels rendered together (default: {DEFAULT_FV_BATCH})"
    )
    return parent


def run_options(
    out_default, batch_default, batch_help, seed_help, force_help="recompute what is already in the output folder", out_help=None
):
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


def add_engine_options(parser, shard_units=None):
    """``--engine``, ``--address``, ``--workers``: where a command's work units run.

    ``shard_units`` names the units that ``--shard-images`` sizes (``"top-k"``, ``"CKA"``); None: the
    command shards nothing and has no ``--shard-images``.
    """
    group = parser.add_argument_group("engine (where the work runs)")
    group.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: in this process (default); ray: Ray workers, one model each (pip install 'tfvis[ray]')",
    )
    group.add_argument("--address", help="with --engine ray: HOST:PORT of a running Ray cluster (default: start a local one)")
    group.add_argument("--workers", type=int, help="with --engine ray: workers to start (default: one per GPU, else per CPU)")
    if shard_units:
        group.add_argument(
            "--shard-images",
            type=int,
            default=512,
            help=f"images per {shard_units} unit, rounded up to whole batches (default: 512); any sharding gives "
            "the same results",
        )
    return parser


def make_run_engine(args):
    """The engine ``--engine``, ``--address`` and ``--workers`` ask for; one that cannot start is a :class:`UsageError`."""
    from tfvis.pipeline import make_engine
    from tfvis.pipeline.engines import EngineError

    try:
        return make_engine(args.engine, address=args.address, workers=args.workers, progress=not args.quiet)
    except EngineError as err:
        raise UsageError(f"--engine {args.engine}: {err}") from None


def check_positive(args, names):
    """Raise :class:`UsageError` for the first option of ``names`` (attribute names) set below 1."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


#: What a file system answers when a file cannot be written there: one line naming the path, not a traceback.
WRITE_ERRORS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EFBIG,
        errno.ENAMETOOLONG,
    }
)


def run_command(parser, runner, argv):
    """Parse ``argv``, run ``runner(args)`` and return its status; a :class:`UsageError` prints one line and gives 2.

    So does an :class:`OSError` of :data:`WRITE_ERRORS` (a full disk, a read-only file system): the
    line names the file and the reason; every file already written is complete, so the same
    command resumes once the cause is fixed.
    """
    args = parser.parse_args(argv)  # first: --help and option errors need no TensorFlow
    from tfvis.images import NoImagesError

    try:
        check_out(getattr(args, "out", None))
        return runner(args)
    except (UsageError, NoImagesError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        print(f"{parser.prog}: error: {write_error_text(err, getattr(args, 'out', None))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; every file written is complete: run the same command again to resume", file=sys.stderr
        )
        return 130


def write_error_text(err, out=None, option="--out"):
    """One line for an :class:`OSError` of :data:`WRITE_ERRORS`: the output folder (when the file is in it), the file, the reason."""
    name = err.filename
    inside = out is not None and (name is None or Path(out).resolve() in Path(name).resolve().parents)
    where = f"{option} {out}: " if inside else ""
    writing = err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)  # the others (EACCES...) may come from a read
    target = "cannot write there" if name is None else f"cannot write {name}" if writing else str(name)
    advice = "; free some space and run the same command again to resume" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}{target}: {err.strerror or err}{advice}"


def check_out(out, option="--out"):
    """Raise :class:`UsageError` unless the output folder ``out`` can be created and written.

    A probe file is written and removed, so a read-only or full file system, or a file where a
    folder should be (``a_file/sub``), is refused before any work. Folders created for the probe
    are removed again: a run refused later leaves nothing behind.
    """
    if out is None:
        return
    folder = Path(out)
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{option} {out}: exists and is not a folder; name a folder (it is created if missing)")
        blocking = next((parent for parent in folder.parents if parent.exists() and not parent.is_dir()), None)
        if blocking is not None:
            raise UsageError(f"{option} {out}: cannot write there: {blocking} is a file, not a folder")
        created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
        try:
            folder.mkdir(parents=True, exist_ok=True)
            descriptor, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
            try:
                os.write(descriptor, b"tfvis")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
                os.remove(probe)
        finally:
            for path in created:
                with contextlib.suppress(OSError):
                    path.rmdir()
    except OSError as err:
        raise UsageError(f"{option} {out}: cannot write there: {err.strerror or err}") from None


def parse_layers(spec, option="--layers"):
    """The layer names of a comma-separated ``spec``, each once in the order given; empty parts are dropped.

    Raises :class:`UsageError` when ``spec`` names no layer (``","``).
    """
    names = list(dict.fromkeys(name.strip() for name in str(spec).split(",") if name.strip()))
    if not names:
        raise UsageError(f"{option} {spec!r}: names no layer; give one or more layer names, separated by commas")
    return names


def memory_allowed():
    """``(bytes, what)``: the memory this process may use, the least of the machine's, its cgroup's and its address-space limit."""
    import resource

    limits = [(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine allows")]
    with contextlib.suppress(OSError, ValueError):
        limits.append((int(Path("/sys/fs/cgroup/memory.max").read_text()), "this container allows"))  # "max": no limit
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append((soft, "the address-space limit (ulimit -v) allows"))
    return min(limits)


def run_memory(model, layers, size, batch_size):
    """Bytes a batch needs, roughly: the model's weights plus twice the float32 activations up to the deepest layer.

    Every layer up to the deepest of ``layers`` (in the prepared model's order; None: every
    layer) counts, for ``batch_size`` images of ``size`` x ``size`` px; twice, because
    reconstructions and saliency keep the forward activations for the backward pass and hold a
    gradient of each. None when the shapes cannot be worked out (the caller then skips the check).
    """
    import keras

    from tfvis.graph import prepared

    try:
        net_model = prepared(model)
        order = [layer.name for layer in net_model.layers]
        deepest = len(order) - 1 if layers is None else max(order.index(name) for name in layers)
        outputs = [layer.output for layer in net_model.layers[1 : deepest + 1]]
        channels = net_model.inputs[0].shape[-1]
        specs = keras.Model(net_model.inputs, outputs).compute_output_spec(keras.KerasTensor((batch_size, size, size, channels)))
        elements = batch_size * size * size * channels + sum(int(np.prod(spec.shape)) for spec in keras.tree.flatten(specs))
    except Exception:  # noqa: BLE001 - an estimate only: a model whose shapes Keras cannot trace is not refused for it
        return None
    weights = sum(int(np.prod(weight.shape)) * 4 for weight in model.weights)
    return weights + 2 * 4 * elements


def check_memory(model, layers, size, batch_size, images=None):
    """Raise :class:`UsageError` when a batch at ``size`` px would need more memory than this process may use.

    ``images`` (the number of images, when known) caps the batch. The check runs before any forward
    pass: without it, a size too large ends in a MemoryError traceback, or in a crash with no
    message under an address-space limit.
    """
    batch = min(batch_size, images) if images else batch_size
    needed = run_memory(model, layers, size, batch)
    if needed is None:
        return
    allowed, what = memory_allowed()
    if needed > allowed:
        batch_text = f"--batch-size {batch}" if batch == batch_size else f"batches of {batch} images"
        raise UsageError(
            f"--size {size} with {batch_text} needs about {_gib(needed)} of memory; {what} {_gib(allowed)}: "
            "lower --size or --batch-size"
        )


def _gib(count):
    return f"{count / 2**30:.1f} GiB" if count < 10 * 2**30 else f"{count / 2**30:.0f} GiB"


#: Help of ``--input``: the input conventions a model file may declare.
INPUT_HELP = (
    "the input convention a model file was trained for, applied as its first layer: caffe (BGR minus the "
    "ImageNet mean), tf (x/127.5 - 1), torch (x/255, ImageNet mean and std), 0-1 (x/255), 0-255 (as is), or "
    "values such as 'scale=1/255 mean=0.5 std=0.5' or 'range=-1,1' (default: RGB in [0, 255], with a notice)"
)
#: Help of ``--labels``.
LABELS_HELP = (
    "class names: a JSON list, a JSON object of names to indices (Keras' class_indices.json) or of indices to "
    "names, or a text file with one name a line"
)


def add_model_options(parser, spec_flags=("--model",), spec_help=None, input_flags=("--input",), labels=True, **spec_kwargs):
    """``--model`` (if ``spec_flags``), ``--input`` (if ``input_flags``) and ``--labels``: the model a command runs on."""
    if spec_flags:
        spec_help = spec_help or (
            f"a zoo model ({', '.join(ZOO_NAMES)}, optionally with ':weights'), a saved Keras model file "
            "(.keras, .h5) or an ONNX file (.onnx)"
        )
        if spec_kwargs.get("default"):
            spec_help += f" (default: {spec_kwargs['default']})"
        parser.add_argument(*spec_flags, help=spec_help, **spec_kwargs)
    if input_flags:
        parser.add_argument(
            *input_flags, dest=input_flags[0].lstrip("-").replace("-", "_"), metavar="CONVENTION", help=INPUT_HELP
        )
    if labels:
        parser.add_argument("--labels", metavar="FILE", help=LABELS_HELP)
    return parser


def load_model_spec(spec, seed=0, include_top=False, option="--model", weights="auto", input=None, input_option="--input"):
    """``(model, label)`` for ``name``, ``name:weights`` (a zoo model), a saved Keras model file or an ONNX file.

    :func:`model_spec_of` then :func:`load_spec`, the one path by which every command loads a
    model: :class:`tfvis.models.ModelSpec` (the loader of the library and of the pipeline's
    workers) does the loading. ``weights`` applies when the spec names none. ``input`` is a model
    file's input convention (``--input``). The label names files and pictures: ``vgg16``, or
    ``vgg16-hed`` when the spec gives weights, or the file's stem. A model file is checked before
    it is read (:func:`tfvis.models.safeload.check_weight_file`: declared sizes within
    :func:`~tfvis.models.safeload.max_weight_bytes`, no decompression bomb) and a Keras file is
    loaded in Keras' safe mode, which refuses to deserialize code (``Lambda`` layers).
    """
    model_spec, label = model_spec_of(spec, seed, include_top, option, weights, input, input_option)
    return load_spec(model_spec, spec, option), label


def model_spec_of(spec, seed=0, include_top=False, option="--model", weights="auto", input=None, input_option="--input"):
    """``(ModelSpec, label)`` of a command's model options, checked (see :func:`load_model_spec`)."""
    from tfvis.models import ZOO, ModelSpec

    name, colon, named = str(spec).partition(":")
    zoo = name in ZOO and not Path(spec).is_file()
    if not zoo and not Path(spec).is_file():
        raise UsageError(
            f"{option} {spec}: not a zoo model ({', '.join(sorted(ZOO))}, optionally with ':weights') nor a model file "
            "(.keras, .h5, .onnx)"
        )
    if zoo and input is not None:
        raise UsageError(
            f"{input_option} {input}: {name} is a zoo model, which takes RGB in [0, 255] and preprocesses "
            "inside; --input is for model files"
        )
    if not zoo and weights not in ("auto", None):
        raise UsageError(f"--weights {weights}: {option} {spec} is a model file and holds its own weights")
    try:
        model_spec = ModelSpec(spec, weights, include_top, seed, input=input)
    except ValueError as err:
        raise UsageError(f"{input_option} {input}: {err}") from None
    label = (f"{name}-{named}" if named else name) if zoo else Path(spec).stem
    return model_spec, label


def load_spec(model_spec, spec=None, option="--model", retry=None):
    """``model_spec.load()``, its errors as :class:`UsageError` naming ``option``.

    Parameters
    ----------
    model_spec : tfvis.models.ModelSpec
    spec : str, optional
        The text the user gave (default ``model_spec.name``), quoted after ``option``.
    option : str or None
        The option that named the model; None: the message names none (a command whose model is
        its own, such as ``python -m tfvis.vgg``).
    retry : str, optional
        What the message for unavailable weights suggests instead (default ``try it now with
        <model>:random``).

    Returns
    -------
    keras.Model
    """
    from tfvis.models import WeightsError, WeightsUnavailableError

    spec = model_spec.name if spec is None else spec
    prefix = f"{option} {spec}: " if option else ""
    retry = retry or f"try it now with {model_spec.name}:random"
    try:
        return model_spec.load()
    except WeightsUnavailableError as err:
        raise UsageError(f"{prefix}{err} Or {retry}.") from None
    except (WeightsError, ValueError) as err:
        raise UsageError(f"{prefix}{err}") from None


def apply_labels(model, path, option="--labels"):
    """Attach the class names of the labels file ``path`` (None: none) to ``model``; returns ``model``.

    Raises :class:`UsageError` for an unreadable file, or one naming a different number of classes
    than the model's class output has.
    """
    from tfvis.models import attach_class_names, read_labels

    if path is None:
        return model
    try:
        names = read_labels(path)
    except ValueError as err:
        raise UsageError(f"{option} {err}") from None
    classes = class_count(model)
    if classes is not None and len(names) != classes:
        raise UsageError(f"{option} {path}: {len(names)} class names, but {model.name} has {classes} classes")
    return attach_class_names(model, names)


def class_count(model):
    """The number of classes of ``model``'s output, or None when it has no class output (no classifier)."""
    from tfvis.saliency import has_class_output

    if not has_class_output(model):
        return None
    shape = model.outputs[0].shape
    return int(shape[-1]) if shape[-1] is not None else None


def check_layers(model, label, names, option="--layers"):
    """``names`` (each once, in the order given), checked to be layers of ``model`` (any layer, by its Keras name).

    Names are read on the prepared model (:func:`tfvis.graph.prepared`), so a fused activation's
    ``<layer>_relu`` is valid too.
    """
    from tfvis.graph import prepared
    from tfvis.layers import layer_info

    net_model = prepared(model)
    known = {layer.name for layer in net_model.layers}
    names = list(dict.fromkeys(names))  # a layer named twice is reported once
    if not names:
        raise UsageError(f"{option}: names no layer; give one or more layer names, separated by commas")
    bad = [n for n in names if n not in known]
    if bad:
        shown = [n for n, _ in layer_info(net_model)]
        raise UsageError(
            f"{option}: {label} has no layer {', '.join(bad)}; choose from: {', '.join(shown)} (or any other layer by its Keras name)"
        )
    return names


def image_source(args, size):
    """``(source, label)`` of ``--images`` / ``--num-images``: an :class:`~tfvis.images.ImageSource` and its description.

    ``--images`` names a folder (walked recursively) or a glob pattern (quote it); default the
    sample photos and crops of them. The source is read by index, so shards of a run read only
    their own images.
    """
    from tfvis import images

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir() and not any(ch in args.images for ch in "*?["):
            raise UsageError(f"--images {args.images}: not a folder (nor a glob pattern such as 'photos/*.jpg')")
        max_pixels = _max_pixels(getattr(args, "max_pixels", None))
        source = images.FileSource(args.images, size, limit=args.num_images, max_pixels=max_pixels)
        if not folder.is_dir() and not len(source):
            raise UsageError(f"--images {args.images}: no files match")
        # No readable image fails here, before any output: a folder raises NoImagesError itself.
        if next(images.iter_images(folder if folder.is_dir() else source, size=size, max_pixels=max_pixels), None) is None:
            raise images.NoImagesError(
                f"{args.images}: no readable images: all {len(source)} matching file(s) skipped (see the warnings above)"
            )
        return source, f"{args.images} (centre-cropped to {size} px)"
    count = args.num_images or DEFAULT_SAMPLE_IMAGES
    label = f"{count} scikit-image sample photos and crops ({size} px)"
    return images.SampleSource(count, size=size, seed=args.seed), label


def first_images(source, size, count, option="--images", max_pixels=None):
    """``(ids, images)``: the first ``count`` images of ``source`` at ``size`` px, as a float32 batch.

    ``source`` is a folder (a path), anything :func:`tfvis.images.iter_images` reads, or None for
    scikit-image's sample photos. The one reader of "the first N images" for every command.
    ``max_pixels`` (``--max-pixels``, default :data:`tfvis.images.MAX_PIXELS`) applies to files
    read here; an :class:`~tfvis.images.ImageSource` keeps its own.
    """
    from tfvis import images

    max_pixels = _max_pixels(max_pixels)
    if isinstance(source, str) and not Path(source).is_dir() and any(ch in source for ch in "*?["):
        source = images.FileSource(source, size, max_pixels=max_pixels)  # a glob pattern
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
    pairs = list(itertools.islice(images.iter_images(source, size=size, max_pixels=max_pixels), count))
    if not pairs:
        where = source if isinstance(source, Path) else "the image source"
        raise UsageError(f"{option} {where}: no readable images")
    return [str(i) for i, _ in pairs], np.stack([image for _, image in pairs]).astype(np.float32)


def _max_pixels(value):
    """``--max-pixels`` checked, or :data:`tfvis.images.MAX_PIXELS` when not given."""
    from tfvis.images import MAX_PIXELS

    if value is not None and value < 1:
        raise UsageError(f"--max-pixels must be at least 1, got {value}")
    return MAX_PIXELS if value is None else int(value)
