"""Finding, downloading and assigning pretrained weight files.

The format readers live beside each model definition (``alexnet.py``, ``vgg16.py``,
``inceptionv1.py``); this module holds what they share: where files are looked for, a download
that checks a pinned hash and never leaves a half-written file, clear errors when a file is
missing, corrupt or of the wrong shape, and the assignment of arrays to layers by name.
"""

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .errors import (  # a leaf module, so that safeload.py raises them without importing this one
    WeightsError,
    WeightsFormatError,
    WeightsHashError,
    WeightsTooLargeError,
    WeightsUnavailableError,
    WeightsUnsafeError,
    read_error,
)
from .safeload import check_h5, check_weight_file, max_weight_bytes

PROJECT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
KERAS_CACHE_DIR = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


@dataclass(frozen=True)
class WeightFile:
    """A public weight file: its name on disk, where to get it and its pinned hash.

    ``md5`` (and ``sha256``) are None where no hash has been pinned yet; the file's hashes are then
    those of :data:`PINNED_HASHES`, and a file with none is accepted and its arrays' shapes are
    checked against the model instead.
    """

    filename: str
    url: str
    md5: str | None
    description: str
    size_mb: int
    sha256: str | None = None

    @property
    def hashes(self):
        """``{algorithm: hex digest}`` the file must match: :data:`PINNED_HASHES`, then its own fields."""
        hashes = dict(PINNED_HASHES.get(self.filename, {}))
        hashes.update({name: value for name, value in (("md5", self.md5), ("sha256", self.sha256)) if value})
        return hashes


#: Published hashes of the public weight files, by file name (``hashlib`` algorithm: hex digest).
#: A downloaded or placed file must match every hash listed for its name; a name with none is
#: accepted and its arrays' shapes checked. Add a file's SHA-256 here once it is known.
PINNED_HASHES = {
    # keras/src/applications/vgg16.py (Keras 3.15)
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5": {"md5": "64373286793e3c8b2b4e3219cbf3544b"},
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": {"md5": "6d6bbae143d832006294945121d1f1fc"},
    # Not published yet: pin them once a user reports them.
    "bvlc_alexnet.npy": {},
    "vgg16_weights.npz": {},
    "InceptionV1.pb": {},
}

#: A download stops, and is discarded, past this many times the file's stated size (plus 16 MiB):
#: a wrong or hostile server cannot fill the disk.
MAX_DOWNLOAD_FACTOR = 2


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
    return file_digests(path, ("md5",), chunk_size)["md5"]


def file_digests(path, algorithms, chunk_size=1 << 20):
    """``{algorithm: hex digest}`` of a file for each ``hashlib`` algorithm, in one pass."""
    digests = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            for digest in digests.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _how_to_get(weight_file):
    return (
        f"Download {weight_file.filename} ({weight_file.description}, about {weight_file.size_mb} MB) "
        f"from {weight_file.url}"
        + "".join(f" ({name} {value})" for name, value in weight_file.hashes.items())
        + f" and place it at {weights_dir() / weight_file.filename}"
        " (or set TFVIS_WEIGHTS_DIR, or pass the file's path as weights=...)."
    )


def check_hash(path, weight_file):
    """Raise :class:`WeightsHashError` unless ``path`` has every pinned hash of ``weight_file``."""
    expected = weight_file.hashes
    if not expected:
        return
    actual = file_digests(path, expected)
    for name, value in expected.items():
        if actual[name] != value.lower():
            raise WeightsHashError(
                f"{path} has {name} {actual[name]}, expected {value}: the file is damaged or not "
                f"{weight_file.filename}. " + _how_to_get(weight_file)
            )


def downloads_allowed():
    """False when ``$TFVIS_OFFLINE`` is set to a true value (tests, air-gapped machines)."""
    return os.environ.get("TFVIS_OFFLINE", "").lower() not in ("1", "true", "yes")


def download(weight_file, dest, timeout=30, progress=True):
    """Download ``weight_file`` to ``dest`` through a temporary file, checking the pinned hash.

    The file appears at ``dest`` only once it is complete and verified. An ``https`` download
    that is redirected to plain ``http``, or that runs past :data:`MAX_DOWNLOAD_FACTOR` times the
    file's stated size, is abandoned (:class:`WeightsUnavailableError`).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    limit = MAX_DOWNLOAD_FACTOR * weight_file.size_mb * (1 << 20) + (16 << 20)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(weight_file.url, timeout=timeout) as response:
            if weight_file.url.startswith("https:") and not response.geturl().startswith("https:"):
                raise _download_refused(weight_file, f"redirected to {response.geturl()}, which is not https")
            total = int(response.headers.get("Content-Length") or 0) or None
            if total and total > limit:
                raise _download_refused(weight_file, f"the server announces {total:,} bytes, far more than expected")
            from tqdm.auto import tqdm

            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=weight_file.filename, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    received += len(chunk)
                    if received > limit:
                        raise _download_refused(weight_file, f"the server sent more than {limit:,} bytes")
                    out.write(chunk)
                    bar.update(len(chunk))
        check_hash(tmp, weight_file)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _download_refused(weight_file, reason):
    return WeightsUnavailableError(
        f"{weight_file.filename}: download from {weight_file.url} abandoned: {reason}. " + _how_to_get(weight_file),
        weight_file,
        "download abandoned",
    )


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
            raise WeightsFormatError(f"{source}: layer {name!r} holds {len(current)} arrays, the file gives {len(values)}")
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


def read_keras_weights(path, max_bytes=None):
    """Read a Keras weight file into ``{layer_name: [array, ...]}``.

    Understands Keras 3 ``.weights.h5`` files (each layer's ``vars`` group carries the layer's
    name), ``.keras`` archives (which hold such a file), and the legacy Keras 2 HDF5 layout of the
    files ``keras.applications`` downloads (``layer_names`` and ``weight_names`` attributes).

    Parameters
    ----------
    path : str or Path
        The file.
    max_bytes : int, optional
        Most bytes its archive members and datasets may declare; default
        :func:`tfvis.models.safeload.max_weight_bytes`. Checked before any data is read.

    Returns
    -------
    dict
        Arrays by layer name.

    Raises
    ------
    WeightsTooLargeError
        The file declares more than ``max_bytes`` or holds a decompression bomb.
    WeightsFormatError
        The file cannot be read as a Keras weight file.
    """
    path = Path(path)
    max_bytes = max_weight_bytes() if max_bytes is None else max_bytes
    check_weight_file(path, max_bytes)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = io.BytesIO(archive.read("model.weights.h5"))
            with h5py.File(data, "r") as f:
                check_h5(f, path, max_bytes)
                return _read_keras3_groups(f)
        with h5py.File(path, "r") as f:
            check_h5(f, path, max_bytes)
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:
                return _read_legacy_groups(root)
            return _read_keras3_groups(f)
    except WeightsError:
        raise
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


__all__ = [
    "KERAS_CACHE_DIR",
    "MAX_DOWNLOAD_FACTOR",
    "PINNED_HASHES",
    "PROJECT_WEIGHTS_DIR",
    "WeightFile",
    "WeightsError",
    "WeightsFormatError",
    "WeightsHashError",
    "WeightsTooLargeError",
    "WeightsUnavailableError",
    "WeightsUnsafeError",
    "assign",
    "candidate_paths",
    "check_hash",
    "download",
    "downloads_allowed",
    "file_digests",
    "file_md5",
    "is_available",
    "locate",
    "read_error",
    "read_keras_weights",
    "require_layers",
    "weights_dir",
]
