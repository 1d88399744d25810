"""Atomic file writing: every file appears complete or not at all (temp file, then rename)."""

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .display import to_uint8


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    On any error (a full disk, a read-only file system) the temporary file is removed and the
    :class:`OSError` names ``path`` rather than the temporary file (or nothing, as a failed
    ``write`` does), so the caller can say which file could not be written.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the mode open() would
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None or Path(err.filename).name.startswith(f".{path.name}."):
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def remove_stale_temporaries(folder):
    """Delete the temporary files that a killed run (``kill -9``) left under ``folder``; returns how many.

    :func:`write_bytes` names them ``.<name>.<random>.tmp``; the finished files are never touched.
    """
    stale = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_text(path, text):
    """Write UTF-8 ``text`` atomically."""
    return write_bytes(path, text.encode("utf8"))


def write_json(path, obj):
    """Write ``obj`` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_json(path, default=None):
    """Read a JSON file; ``default`` if it is missing or unreadable (an interrupted older run)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return default


def save_npy(path, array):
    """Save ``array`` as ``.npy`` atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return write_bytes(path, buffer.getvalue())


def save_png(path, image, scale=1):
    """Save an image in [0, 1] (float) or uint8 as PNG atomically, optionally enlarged ``scale`` times (nearest)."""
    from PIL import Image  # here, as in tfvis.display: the commands' --help reads this module

    pixels = to_uint8(image)
    if scale > 1:
        pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return write_bytes(path, buffer.getvalue())


def save_npz(path, arrays):
    """Save a dict of arrays as one compressed ``.npz`` atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    return write_bytes(path, buffer.getvalue())
