"""Where unit results live: ``<root>/<kind>/<key>.npz``, one file per finished unit.

A result is a dict of NumPy arrays plus JSON-able metadata (under ``"meta"``). Each file is
written to a temporary name and renamed (:func:`tfvis.fileio.write_bytes`), so a unit is either
done, with its whole result, or not done: a killed run leaves nothing half-written. Results
that stay (top-k shards) are compressed; transient ones, which leave the store as soon as the
report holds them (channel groups, feature visualizations), are written plain: compressing them
cost about 3% of the default report's time for nothing.
"""

import io
import json
from pathlib import Path

import numpy as np

from .. import fileio

META = "__meta__"


class Store:
    """A folder of unit results, keyed by :attr:`tfvis.pipeline.Unit.key`.

    Examples
    --------
    >>> import tempfile
    >>> from tfvis.pipeline import Unit
    >>> store = Store(tempfile.mkdtemp())
    >>> unit = Unit("demo", {"n": 3})
    >>> store.has(unit)
    False
    >>> _ = store.save(unit, {"values": np.arange(3, dtype=np.float16), "meta": {"ids": ["a", "b", "c"]}})
    >>> result = store.load(unit)
    >>> result["values"].tolist(), result["meta"]["ids"]
    ([0.0, 1.0, 2.0], ['a', 'b', 'c'])
    """

    #: Unit kinds written uncompressed (see the module's notes).
    TRANSIENT = ("channels", "featurevis")

    def __init__(self, root):
        self.root = Path(root)

    def path(self, unit):
        return self.root / unit.kind / f"{unit.key}.npz"

    def has(self, unit):
        return self.path(unit).is_file()

    def save(self, unit, result):
        """Write ``result`` (arrays, and JSON-able ``"meta"``) as the unit's file; returns its path."""
        arrays = {name: np.asarray(value) for name, value in result.items() if name != "meta"}
        arrays[META] = np.array(json.dumps({"unit": unit.kind, "label": unit.label, **result.get("meta", {})}))
        buffer = io.BytesIO()
        (np.savez if unit.kind in self.TRANSIENT else np.savez_compressed)(buffer, **arrays)
        return fileio.write_bytes(self.path(unit), buffer.getvalue())

    def load(self, unit):
        """The result saved for ``unit`` (a dict of arrays and ``"meta"``)."""
        with np.load(self.path(unit), allow_pickle=False) as data:
            result = {name: data[name] for name in data.files if name != META}
            result["meta"] = json.loads(str(data[META]))
        return result

    def discard(self, unit):
        """Remove a unit's result (once what it computed lives elsewhere, e.g. in a report's channel files)."""
        self.path(unit).unlink(missing_ok=True)

    def bytes(self, kind=None):
        """Total size of the stored results (of one kind, or all)."""
        folder = self.root / kind if kind else self.root
        return sum(p.stat().st_size for p in folder.rglob("*.npz")) if folder.is_dir() else 0
