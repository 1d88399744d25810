"""Finding, downloading and assigning pretrained weight files.

The format readers live beside each model definition (``alexnet.py``, ``vgg16.py``,
``inceptionv1.py``); this module holds what they share: where files are looked for, a download
that checks a pinned hash and never leaves a half-written file, clear errors when a file is
missing, corrupt or of the wrong shape, and the assignment of arrays to layers by name.
"""
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
KERAS_CACHE_DIR = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


class WeightsError(Exception):
    """Base class of the errors raised while loading weights."""


class WeightsUnavailableError(WeightsError, FileNotFoundError):
    """A weight file is neither on disk nor downloadable (offline, or the download failed).

    ``weight_file`` is the :class:`WeightFile` and ``reason`` a short cause.
    """

    def __init__(self, message, weight_file=None, reason=""):
        super().__init__(message)
        self.weight_file = weight_file
        self.reason = reason


class WeightsHashError(WeightsError, ValueError):
    """A weight file's hash differs from the pinned one."""


class WeightsFormatError(WeightsError, ValueError):
    """A weight file cannot be read, or its arrays do not fit the model."""


@dataclass(frozen=True)
class WeightFile:
    """A public weight file: its name on disk, where to get it and its pinned hash.

    ``md5`` is None where no hash has been pinned yet; such files are accepted and their arrays'
    shapes are checked against the model instead.
    """

    filename: str
    url: str
    md5: str | None
    description: str
    size_mb: int


def weights_dir():
    """The folder where weight files are placed and downloaded.

    ``$TFVIS_WEIGHTS_DIR`` if set; else the project's ``weights/`` folder when tfvis runs from a
    checkout; else ``~/.cache/tfvis/weights``.
    """
    env = os.environ.get("TFVIS_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    if PROJECT_WEIGHTS_DIR.is_dir():
        return PROJECT_WEIGHTS_DIR
    return Path.home() / ".cache" / "tfvis" / "weights"


def candidate_paths(weight_file):
    """Where ``weight_file`` is looked for, in order: the weights folder, then Keras' cache."""
    return [weights_dir() / weight_file.filename, KERAS_CACHE_DIR / weight_file.filename]


def file_md5(path, chunk_size=1 << 20):
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_get(weight_file):
    return (
        f"Download {weight_file.filename} ({weight_file.description}, about {weight_file.size_mb} MB) "
        f"from {weight_file.url}"
        + (f" (md5 {weight_file.md5})" if weight_file.md5 else "")
        + f" and place it at {weights_dir() / weight_file.filename}"
        " (or set TFVIS_WEIGHTS_DIR, or pass the file's path as weights=...)."
    )


def check_hash(path, weight_file):
    """Raise :class:`WeightsHashError` if ``path`` does not have ``weight_file``'s pinned hash."""
    if weight_file.md5 is None:
        return
    actual = file_md5(path)
    if actual != weight_file.md5:
        raise WeightsHashError(
            f"{path} has md5 {actual}, expected {weight_file.md5}: the file is damaged or not "
            f"{weight_file.filename}. " + _how_to_get(weight_file)
        )


def downloads_allowed():
    """False when ``$TFVIS_OFFLINE`` is set to a true value (tests, air-gapped machines)."""
    return os.environ.get("TFVIS_OFFLINE", "").lower() not in ("1", "true", "yes")


def download(weight_file, dest, timeout=30, progress=True):
    """Download ``weight_file`` to ``dest`` through a temporary file, checking the pinned hash.

    The file appears at ``dest`` only once it is complete and verified.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(weight_file.url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            from tqdm.auto import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=weight_file.filename, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        check_hash(tmp, weight_file)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def locate(weight_file, allow_download=True):
    """Path of ``weight_file`` on disk, downloading it into :func:`weights_dir` when missing.

    Raises
    ------
    WeightsUnavailableError
        The file is not on disk and cannot be downloaded; the message says where to get it and
        where to put it.
    WeightsHashError
        The file on disk or the downloaded one does not match the pinned hash.
    """
    for path in candidate_paths(weight_file):
        if path.is_file():
            check_hash(path, weight_file)
            return path
    if not (allow_download and downloads_allowed()):
        raise WeightsUnavailableError(
            f"{weight_file.filename} was not found and downloads are off (TFVIS_OFFLINE). " + _how_to_get(weight_file),
            weight_file,
            "not found, downloads off",
        )
    dest = weights_dir() / weight_file.filename
    try:
        return download(weight_file, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise WeightsUnavailableError(
            f"{weight_file.filename} was not found and could not be downloaded ({err}). " + _how_to_get(weight_file),
            weight_file,
            "not found, download failed",
        ) from err


def is_available(weight_file):
    """True if ``weight_file`` is already on disk (no download is tried)."""
    return any(path.is_file() for path in candidate_paths(weight_file))


def assign(model, arrays, source):
    """Set layers' weights by name from ``{layer_name: [array, ...]}``, checking every shape first.

    Nothing is assigned unless every array fits, so a bad file never leaves a half-loaded model.

    Raises
    ------
    WeightsFormatError
        A named layer is missing from the model, or an array's shape differs from the layer's.
    """
    plan = []
    for name, values in arrays.items():
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise WeightsFormatError(f"{source}: the model has no layer {name!r} to receive its weights") from None
        current = layer.get_weights()
        if len(current) != len(values):
            raise WeightsFormatError(
                f"{source}: layer {name!r} holds {len(current)} arrays, the file gives {len(values)}"
            )
        for kind, old, new in zip(("kernel", "bias", "array 3", "array 4"), current, values):
            if tuple(old.shape) != tuple(np.shape(new)):
                raise WeightsFormatError(
                    f"{source}: layer {name!r} {kind} has shape {tuple(old.shape)} in the model "
                    f"but {tuple(np.shape(new))} in the file"
                )
        plan.append((layer, [np.asarray(v, dtype=old.dtype) for v, old in zip(values, current)]))
    for layer, values in plan:
        layer.set_weights(values)


def require_layers(arrays, names, source):
    """Raise :class:`WeightsFormatError` unless ``arrays`` has every layer in ``names``."""
    missing = [n for n in names if n not in arrays]
    if missing:
        raise WeightsFormatError(f"{source}: no weights for layer(s) {', '.join(missing)}")


def read_error(path, err, expected):
    """A :class:`WeightsFormatError` for a file that could not be parsed as ``expected``."""
    return WeightsFormatError(f"{path} could not be read as {expected}: {type(err).__name__}: {err}")


def read_keras_weights(path):
    """Read a Keras weight file into ``{layer_name: [array, ...]}``.

    Understands Keras 3 ``.weights.h5`` files (each layer's ``vars`` group carries the layer's
    name), ``.keras`` archives (which hold such a file), and the legacy Keras 2 HDF5 layout of the
    files ``keras.applications`` downloads (``layer_names`` and ``weight_names`` attributes).
    """
    import io
    import zipfile

    import h5py

    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = io.BytesIO(archive.read("model.weights.h5"))
            with h5py.File(data, "r") as f:
                return _read_keras3_groups(f)
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:
                return _read_legacy_groups(root)
            return _read_keras3_groups(f)
    except Exception as err:  # any failure to parse means a corrupt or foreign file
        raise read_error(path, err, "a Keras weight file (.weights.h5, .keras or legacy .h5)") from err


def _decode(name):
    return name.decode("utf8") if isinstance(name, bytes) else str(name)


def _read_legacy_groups(root):
    arrays = {}
    for layer_name in map(_decode, root.attrs["layer_names"]):
        group = root[layer_name]
        names = [_decode(n) for n in group.attrs.get("weight_names", [])]
        if names:
            arrays[layer_name] = [np.asarray(group[n]) for n in names]
    return arrays


def _read_keras3_groups(f):
    arrays = {}

    def visit(_, obj):
        if obj.name.endswith("/vars") and "name" in obj.attrs and len(obj):
            values = [np.asarray(obj[str(i)]) for i in range(len(obj))]
            arrays[_decode(obj.attrs["name"])] = values

    f.visititems(visit)
    return arrays
