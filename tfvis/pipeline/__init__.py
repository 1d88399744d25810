"""The report pipeline: plan idempotent work units, compute them on an engine, write pages from a store.

- :mod:`~tfvis.pipeline.units`: a :class:`Unit` is a kind and its parameters; its key hashes
  both, so changed settings make new units and unchanged ones are found done.
- :mod:`~tfvis.pipeline.store`: one ``.npz`` per finished unit, written atomically.
- :mod:`~tfvis.pipeline.work`: what a worker holds (the model and the images, loaded once) and
  the compute function of each kind of unit.
- :mod:`~tfvis.pipeline.plan`: the units of a layer report, and the exact merge of per-shard
  top-k lists.
- :mod:`~tfvis.pipeline.engines`: where units run: :class:`LocalEngine` (in-process, the
  default) or :class:`RayEngine` (Ray tasks on a local or remote cluster, ``pip install tfvis[ray]``).
- :mod:`~tfvis.pipeline.raydata`: :class:`RayDataSource`, a Ray Data dataset as the images.
"""

from .engines import ENGINES, LocalEngine, RayEngine, make_engine
from .raydata import RayDataSource
from .store import Store
from .units import Unit

__all__ = ["ENGINES", "LocalEngine", "RayDataSource", "RayEngine", "Store", "Unit", "make_engine"]
