"""Reading untrusted weight and model files without running their code or exhausting memory.

Two guarantees, for every weight file a zoo model reads and every Keras model file a command loads:

* **No code runs.** Pickled ``.npy`` files (``bvlc_alexnet.npy``) are read by
  :func:`read_pickled_npy`, whose unpickler builds only plain containers, numeric or object NumPy
  arrays and their dtypes, each from a state it checks first; a pickle that names any other
  function or class is refused by that name (:class:`~tfvis.models.weights.WeightsUnsafeError`).
* **No bombs.** Before a file's data is read, :func:`check_weight_file` adds up what it declares:
  the uncompressed sizes of a zip archive's members (``.keras``, ``.npz``), the shapes times item
  sizes of an HDF5 file's datasets, the array headers inside ``.npz`` members. A file declaring
  more than :func:`max_weight_bytes`, or a large zip member inflating more than
  :data:`MAX_COMPRESSION_RATIO` times, is refused
  (:class:`~tfvis.models.weights.WeightsTooLargeError`).

The limits are module constants, overridable through the environment variables
``TFVIS_MAX_WEIGHT_BYTES`` and ``TFVIS_MAX_COMPRESSION_RATIO``.
"""

import _compat_pickle
import io
import math
import os
import pickle
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np

from .errors import WeightsError, WeightsTooLargeError, WeightsUnsafeError, read_error

#: Most bytes a weight or model file may declare when the model's size is unknown (a Keras model
#: file given with ``--model``); ``$TFVIS_MAX_WEIGHT_BYTES`` replaces it and every zoo limit.
MAX_WEIGHT_BYTES = 4 << 30
MAX_WEIGHT_BYTES_ENV = "TFVIS_MAX_WEIGHT_BYTES"
#: A zoo model's file may declare at most this many times its float32 parameters' bytes (room for
#: float64 files and saved optimizer state), plus :data:`ZOO_SLACK_BYTES`.
ZOO_SIZE_FACTOR = 4
ZOO_SLACK_BYTES = 64 << 20
#: Keras and NumPy store archive members uncompressed and DEFLATE reaches about 1000:1 on zeros, so
#: a member over :data:`COMPRESSION_CHECK_MIN_BYTES` inflating more than this is a bomb.
MAX_COMPRESSION_RATIO = 100
MAX_COMPRESSION_RATIO_ENV = "TFVIS_MAX_COMPRESSION_RATIO"
COMPRESSION_CHECK_MIN_BYTES = 16 << 20

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"


def _env_number(name, default, kind):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = kind(value.replace("_", ""))
    except ValueError:
        number = -1
    if number <= 0:
        raise WeightsError(f"${name}={value!r}: expected a positive number")
    return number


def max_weight_bytes(params=None):
    """Most uncompressed bytes a weight file may declare.

    Parameters
    ----------
    params : int, optional
        Parameter count of the model the file is for (its largest variant); None when unknown.

    Returns
    -------
    int
        ``$TFVIS_MAX_WEIGHT_BYTES`` when set; else ``ZOO_SIZE_FACTOR * 4 * params + ZOO_SLACK_BYTES``
        capped at :data:`MAX_WEIGHT_BYTES`, or :data:`MAX_WEIGHT_BYTES` when ``params`` is None.

    Raises
    ------
    WeightsError
        ``$TFVIS_MAX_WEIGHT_BYTES`` is not a positive integer.
    """
    override = _env_number(MAX_WEIGHT_BYTES_ENV, None, int)
    if override is not None:
        return override
    if params is None:
        return MAX_WEIGHT_BYTES
    return min(MAX_WEIGHT_BYTES, ZOO_SIZE_FACTOR * 4 * int(params) + ZOO_SLACK_BYTES)


def _size(n):
    return f"{n / 2**20:,.1f} MiB ({n:,} bytes)"


def _too_large(path, what, declared, limit):
    return WeightsTooLargeError(
        f"{path}: {what} declares {_size(declared)} uncompressed, over the limit of {_size(limit)} "
        f"for this file; refused before reading it (set {MAX_WEIGHT_BYTES_ENV} to allow more)"
    )


def check_file_size(path, max_bytes):
    """Raise :class:`WeightsTooLargeError` if the file at ``path`` is larger than ``max_bytes``."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise _too_large(path, "the file", size, max_bytes)


def check_weight_file(path, max_bytes):
    """Refuse a weight or model file that declares more than ``max_bytes``, without reading its data.

    Zip archives (``.keras``, ``.npz``) are checked by :func:`check_zip`, HDF5 files by
    :func:`check_h5`; any other file by its size on disk, and a ``.npy`` file's array header
    must declare no more data than the file holds.

    Parameters
    ----------
    path : str or Path
        The file.
    max_bytes : int
        Limit on the bytes it may declare (see :func:`max_weight_bytes`).

    Raises
    ------
    WeightsTooLargeError
        The file declares more than ``max_bytes``, or holds a decompression bomb.
    WeightsFormatError
        The file's directory or headers cannot be read.
    """
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(len(_HDF5_SIGNATURE))
    if zipfile.is_zipfile(path):
        check_zip(path, max_bytes)
    elif magic == _HDF5_SIGNATURE:
        try:
            with h5py.File(path, "r") as f:
                check_h5(f, path, max_bytes)
        except WeightsError:
            raise
        except Exception as err:  # h5py raises OSError, KeyError, ValueError, ... for broken files
            raise read_error(path, err, "an HDF5 file") from err
    else:
        check_file_size(path, max_bytes)
        if magic.startswith(_NPY_MAGIC):
            try:
                with open(path, "rb") as f:
                    shape, _, dtype = _read_npy_header(f, np.lib.format.read_magic(f))
                    header_bytes = f.tell()
            except Exception as err:  # numpy raises ValueError for a broken header
                raise read_error(path, err, "a NumPy .npy file") from err
            declared = math.prod(shape) * dtype.itemsize
            if declared > path.stat().st_size - header_bytes:
                raise WeightsTooLargeError(
                    f"{path}: declares an array of shape {shape} {dtype} ({_size(declared)}) "
                    f"but holds {_size(path.stat().st_size)}; refused before reading it"
                )


def check_zip(path, max_bytes):
    """Refuse a zip archive whose members declare too much, before inflating any of them.

    Every member counts with its declared uncompressed size (Python's :mod:`zipfile` never
    inflates a member past that size). NumPy arrays inside (``.npy`` members of an ``.npz``) must
    declare no more data than their member holds, and HDF5 members (a ``.keras`` archive's
    ``model.weights.h5``) are checked by :func:`check_h5`.

    Parameters
    ----------
    path : str or Path
        The archive.
    max_bytes : int
        Limit on the sum of the members' uncompressed sizes.

    Raises
    ------
    WeightsTooLargeError
        The members add up to more than ``max_bytes``, one inflates more than
        :data:`MAX_COMPRESSION_RATIO` times while larger than :data:`COMPRESSION_CHECK_MIN_BYTES`,
        or a member's own headers declare more than it holds.
    WeightsFormatError
        The archive or a member's header cannot be read.
    """
    max_ratio = _env_number(MAX_COMPRESSION_RATIO_ENV, MAX_COMPRESSION_RATIO, float)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            for info in members:
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > COMPRESSION_CHECK_MIN_BYTES and ratio > max_ratio:
                    raise WeightsTooLargeError(
                        f"{path}: member {info.filename!r} declares {_size(info.file_size)} uncompressed from "
                        f"{_size(info.compress_size)} stored (ratio {ratio:,.0f}:1, over {max_ratio:,.0f}:1): "
                        f"a decompression bomb, refused before inflating it "
                        f"(set {MAX_COMPRESSION_RATIO_ENV} to allow more)"
                    )
            total = sum(info.file_size for info in members)
            if total > max_bytes:
                raise _too_large(path, f"the archive ({len(members)} members)", total, max_bytes)
            for info in members:
                name = info.filename.lower()
                if name.endswith(".npy"):
                    _check_npy_member(archive, info, path)
                elif name.endswith(".h5"):
                    _check_h5_member(archive, info, path, max_bytes)
    except WeightsError:
        raise
    except Exception as err:  # zipfile raises BadZipFile, OSError, NotImplementedError, ...
        raise read_error(path, err, "a zip archive") from err


def _check_npy_member(archive, info, path):
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        shape, _, dtype = _read_npy_header(member, version)
        header_bytes = member.tell()
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size - header_bytes:
        raise WeightsTooLargeError(
            f"{path}: member {info.filename!r} declares an array of shape {shape} {dtype} "
            f"({_size(declared)}) but holds {_size(info.file_size)}; refused before reading it"
        )


def _read_npy_header(f, version):
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version} is not supported")


class _ArchiveSlice(io.RawIOBase):
    """The bytes ``[start, start + length)`` of an open file, as a seekable read-only file."""

    def __init__(self, f, start, length):
        super().__init__()
        self._f, self._start, self._length, self._pos = f, start, length, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        count = max(0, min(len(buffer), self._length - self._pos))
        self._f.seek(self._start + self._pos)
        data = self._f.read(count)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _check_h5_member(archive, info, path, max_bytes):
    source = f"{path} (member {info.filename!r})"
    if info.compress_type == zipfile.ZIP_STORED:
        # Read the HDF5 metadata in place: seeking within a zip member re-reads it from its start.
        raw = archive.fp
        raw.seek(info.header_offset)
        local_header = raw.read(30)
        if local_header[:4] != b"PK\x03\x04":
            raise ValueError(f"member {info.filename!r} has no local header")
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        start = info.header_offset + 30 + name_length + extra_length
        member = _ArchiveSlice(raw, start, info.file_size)
    else:  # already bounded by check_zip's limits
        member = io.BytesIO(archive.read(info))
    with h5py.File(member, "r") as f:
        check_h5(f, source, max_bytes)


def check_h5(f, source, max_bytes):
    """Refuse an open HDF5 file whose datasets declare too much, before reading any of them.

    Parameters
    ----------
    f : h5py.File
        The open file.
    source : str or Path
        Names the file in messages.
    max_bytes : int
        Limit on the sum over datasets of their element count times item size.

    Raises
    ------
    WeightsTooLargeError
        The datasets add up to more than ``max_bytes``.
    WeightsUnsafeError
        A dataset reads its data from another file (external storage or a virtual dataset), or
        the file links to another file.
    """
    total = 0
    largest = None

    def visit(name):
        # Returns an error to stop the walk: h5py cannot raise through its visitor.
        nonlocal total, largest
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            return WeightsUnsafeError(f"{source}: {name!r} links to another file ({link.filename}); refused")
        if not isinstance(link, h5py.HardLink):
            return None
        obj = f.get(name)
        if not isinstance(obj, h5py.Dataset):
            return None
        if obj.external or obj.is_virtual:
            return WeightsUnsafeError(f"{source}: dataset {name!r} reads its data from other files; refused")
        size = (math.prod(obj.shape) if obj.shape is not None else 0) * obj.dtype.itemsize
        total += size
        if largest is None or size > largest[1]:
            largest = (name, size, obj.shape, obj.dtype)
        return None

    error = f.visit_links(visit)
    if error is not None:
        raise error
    if total > max_bytes:
        name, _, shape, dtype = largest
        raise _too_large(source, f"its datasets (the largest {name!r}, {shape} {dtype})", total, max_bytes)


# --- Pickled .npy files: a restricted unpickler --------------------------------------------------

_ARRAY_RECONSTRUCT_NAMES = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_DTYPE_KINDS = "biufcO"  # bool, integers, floats, complex, object: what weight files hold


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module, name):
        # Python 2 names (__builtin__.eval, commands.call) are told by what Python 3 would import.
        mapped = _compat_pickle.NAME_MAPPING.get((module, name)) or (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        self.qualified_name = ".".join(mapped)
        if mapped != (module, name):
            self.qualified_name += f" (named {module}.{name} in the file)"
        super().__init__(self.qualified_name)


class _BadState(pickle.UnpicklingError):
    """A pickled array or dtype whose state is not that of a plain array or dtype."""


class _ArrayClass:
    """Stands for ``numpy.ndarray`` as the pickle's argument to ``_reconstruct``; cannot be called."""


class _PendingArray:
    """An array under construction: ``_reconstruct`` makes it, the pickle's BUILD gives its state.

    Building it here instead of in ``ndarray.__setstate__`` lets the state be checked first:
    NumPy trusts a state's list length for object arrays (a short list crashes the process).
    """

    def __init__(self, reader):
        self._reader = reader
        self.array = np.empty(0, np.int8)  # what _reconstruct returns before any state

    def __setstate__(self, state):
        self.array = self._reader.build_array(state)


class _PendingDtype:
    """A dtype under construction: made by ``numpy.dtype(typestr, ...)``, checked at its BUILD."""

    def __init__(self, typestr):
        if isinstance(typestr, bytes):
            typestr = typestr.decode("latin1")
        if not isinstance(typestr, str):
            raise _BadState(f"dtype from {type(typestr).__name__}")
        try:
            dtype = np.dtype(typestr)
        except TypeError as err:
            raise _BadState(f"dtype {typestr!r}: {err}") from None
        if dtype.kind not in _DTYPE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise _BadState(f"dtype {typestr!r} is not a plain numeric or object dtype")
        self.dtype = dtype

    def __setstate__(self, state):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) >= 5 and state[2:5] == (None, None, None)):
            raise _BadState(f"dtype state {state!r:.200} is not that of a plain dtype")
        byteorder = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
        if byteorder in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(byteorder)
        elif byteorder not in ("|", "="):
            raise _BadState(f"dtype byte order {byteorder!r}")


def _latin1_encode(text, encoding="latin1"):
    """What pickles of protocol 2 call to rebuild ``bytes`` (``_codecs.encode(text, "latin1")``)."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise _BadState(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles containers of NumPy arrays and refuses every other global by name."""

    def __init__(self, file, max_bytes):
        super().__init__(file, encoding="latin1")  # Python 2's str: arrays' bytes and dict keys
        self.budget = max_bytes
        self.max_bytes = max_bytes

    def find_class(self, module, name):
        if (module, name) in _ARRAY_RECONSTRUCT_NAMES:
            return self.reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return _ArrayClass
        if (module, name) == ("numpy", "dtype"):
            return self.make_dtype
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise _RefusedGlobal(module, name)

    def reconstruct(self, subtype, shape, typecode):
        if subtype is not _ArrayClass:
            raise _BadState(f"_reconstruct of {subtype!r:.100}")
        return _PendingArray(self)

    @staticmethod
    def make_dtype(typestr, align=False, copy=True):
        return _PendingDtype(typestr)

    def build_array(self, state):
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]  # (version, shape, dtype, is_fortran, data); old pickles lack version
        if not (isinstance(state, tuple) and len(state) == 4):
            raise _BadState(f"array state {state!r:.200}")
        shape, dtype, fortran, data = state
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise _BadState(f"array shape {shape!r:.200}")
        if not isinstance(dtype, _PendingDtype):
            raise _BadState(f"array dtype {dtype!r:.100}")
        dtype, count = dtype.dtype, math.prod(shape)
        self.budget -= count * dtype.itemsize
        if self.budget < 0:
            raise WeightsTooLargeError(f"its arrays declare more than the limit of {_size(self.max_bytes)}")
        order = "F" if fortran else "C"
        if dtype.kind == "O":
            if not (isinstance(data, list) and len(data) == count):
                raise _BadState(
                    f"object array of {count} elements from {type(data).__name__} of {len(data) if isinstance(data, list) else '?'}"
                )
            array = np.empty(count, dtype=object)
            for i, item in enumerate(data):
                array[i] = _resolve(item)
            return array.reshape(shape, order=order)
        if isinstance(data, str):
            data = data.encode("latin1")
        if not (isinstance(data, bytes) and len(data) == count * dtype.itemsize):
            raise _BadState(
                f"array of {count} {dtype} from {len(data) if isinstance(data, bytes) else type(data).__name__} bytes"
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order=order)


def _resolve(obj, seen=None):
    """``obj`` with every :class:`_PendingArray` replaced by its array, in containers too."""
    if isinstance(obj, _PendingArray):
        return obj.array
    if isinstance(obj, _PendingDtype) or obj is _ArrayClass:
        raise _BadState("a bare dtype or array class outside an array")
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, list):
        obj[:] = [_resolve(item, seen) for item in obj]
    elif isinstance(obj, tuple):
        obj = tuple(_resolve(item, seen) for item in obj)
    elif isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _resolve(obj[key], seen)
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        for index in np.ndindex(obj.shape):
            obj[index] = _resolve(obj[index], seen)
    return obj


def read_pickled_npy(path, max_bytes, expected="a NumPy .npy file"):
    """Read a ``.npy`` file that may hold a pickled object array, without running its code.

    The header is parsed with :mod:`numpy.lib.format`; a pickled payload (an object array, such
    as ``np.save`` writes for a dict) is read by an unpickler that admits only NumPy's array
    reconstructor, ``numpy.ndarray``, ``numpy.dtype`` (plain numeric and object dtypes) and the
    ``_codecs.encode`` of protocol-2 ``bytes``, and checks each array's state before building it.
    Python 2 pickles are read with ``encoding="latin1"``, as NumPy's own loader needs.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file.
    max_bytes : int
        Limit on the file's size and on the bytes of the arrays it builds.
    expected : str
        What the file should be, for error messages.

    Returns
    -------
    object
        The object held by a 0-d object array (``np.save`` of a dict gives the dict), else the
        array, with every nested array a plain ``numpy.ndarray``.

    Raises
    ------
    WeightsUnsafeError
        The pickle names a function or class outside that list; nothing from the file was run.
    WeightsTooLargeError
        The file or its arrays exceed ``max_bytes``.
    WeightsFormatError
        The file is not a readable ``.npy`` file.
    """
    check_file_size(path, max_bytes)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = _read_npy_header(f, version)
            if not dtype.hasobject:
                declared = math.prod(shape) * dtype.itemsize
                if declared > max_bytes:
                    raise _too_large(path, f"its array ({shape} {dtype})", declared, max_bytes)
                f.seek(0)
                return np.lib.format.read_array(f, allow_pickle=False)
            if dtype != np.dtype(object):
                raise ValueError(f"dtype {dtype} mixes objects with other fields")
            result = _resolve(_ArrayUnpickler(f, max_bytes).load())
    except _RefusedGlobal as err:
        raise WeightsUnsafeError(
            f"{path} refuses to load {err.qualified_name}: the file's pickle asks for it, and {expected} "
            "holds only NumPy arrays (nothing from the file was run)"
        ) from None
    except WeightsTooLargeError as err:
        raise WeightsTooLargeError(f"{path}: {err}") from None
    except WeightsError:
        raise
    except Exception as err:  # pickle, numpy and the file raise many types for broken files
        raise read_error(path, err, expected) from err
    if isinstance(result, np.ndarray) and result.dtype == object and result.shape == ():
        return result.item()
    return result
