"""The errors raised while finding, checking and reading weight and model files.

A leaf of :mod:`tfvis.models`: :mod:`~tfvis.models.weights` (finding and reading files) and
:mod:`~tfvis.models.safeload` (checking them before they are read) both raise these, and
import them from here rather than from each other.
"""


class WeightsError(Exception):
    """Base class of the errors raised while loading weights."""


class WeightsUnavailableError(WeightsError, FileNotFoundError):
    """A weight file is neither on disk nor downloadable (offline, or the download failed).

    ``weight_file`` is the :class:`~tfvis.models.weights.WeightFile` and ``reason`` a short cause.
    """

    def __init__(self, message, weight_file=None, reason=""):
        super().__init__(message)
        self.weight_file = weight_file
        self.reason = reason


class WeightsHashError(WeightsError, ValueError):
    """A weight file's hash differs from the pinned one."""


class WeightsFormatError(WeightsError, ValueError):
    """A weight file cannot be read, or its arrays do not fit the model."""


class WeightsUnsafeError(WeightsFormatError):
    """A weight file asks to run code while it is read (a pickle naming a function or class that
    a dict of NumPy arrays does not need); nothing from it was run."""


class WeightsTooLargeError(WeightsFormatError):
    """A weight or model file declares more data than the limit (a decompression bomb, or a file
    far larger than the model it claims to hold); it was refused before its data was read."""


def read_error(path, err, expected):
    """A :class:`WeightsFormatError` for a file that could not be parsed as ``expected``."""
    return WeightsFormatError(f"{path} could not be read as {expected}: {type(err).__name__}: {err}")


__all__ = [
    "WeightsError",
    "WeightsFormatError",
    "WeightsHashError",
    "WeightsTooLargeError",
    "WeightsUnavailableError",
    "WeightsUnsafeError",
    "read_error",
]
