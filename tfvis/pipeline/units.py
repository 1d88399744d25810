"""Work units: a kind and JSON-able parameters, named by a key that hashes both."""

import hashlib
import json
from dataclasses import dataclass, field

#: Bump when a unit's computation changes, so that stores written by older code are not reused.
FORMAT = 1


def digest(obj, length=20):
    """A short stable hash of a JSON-able object (dict keys sorted)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Unit:
    """One idempotent piece of work.

    Parameters
    ----------
    kind : str
        Which compute function runs it (:data:`tfvis.pipeline.work.COMPUTE`).
    params : dict
        Everything its result depends on (JSON-able): the model, the images, the settings.
    label : str
        A human-readable name for progress and errors (not part of the key).

    Examples
    --------
    >>> a = Unit("featurevis", {"layer": "conv1", "channels": [0, 1]})
    >>> b = Unit("featurevis", {"channels": [0, 1], "layer": "conv1"}, label="conv1:0-1")
    >>> a.key == b.key, a.key == Unit("featurevis", {"layer": "conv1", "channels": [0, 2]}).key
    (True, False)
    """

    kind: str
    params: dict = field(hash=False, compare=False)
    label: str = field(default="", hash=False, compare=False)
    key: str = field(default="", init=False)

    def __post_init__(self):
        object.__setattr__(self, "key", f"{self.kind}-{digest({'kind': self.kind, 'format': FORMAT, 'params': self.params})}")
