"""A Ray Data dataset as an image source of the pipeline.

Units read images by their index in the dataset: the exact top-k merge orders ties by index, and
the channel units read again exactly the images that hold a top-k place. A Ray Data dataset has no
read by index, so :class:`RayDataSource` materializes it once in the cluster's object store (its
blocks stay on the cluster, spilled to disk if need be, not on the driver) and reads a run of
consecutive indices as one slice of it (``split_at_indices``), in the dataset's order.
"""

import numpy as np

from ..images import ImageSource, fit_image, to_rgb_array


class RayDataSource(ImageSource):
    """The images of a Ray Data dataset, read by index, resized and centre-cropped to ``size``.

    Parameters
    ----------
    dataset : ray.data.Dataset
        One row per image (e.g. :func:`ray.data.read_images`): an array of shape (H, W), (H, W, 1),
        (H, W, 3) or (H, W, 4), uint8 or float, in ``image_column``.
    name : str
        Names the dataset in every unit's key (with its row count and ``size``): give another name
        when its contents change.
    size : int
        Side of the square images fed to the model.
    image_column : str
    id_column : str, optional
        Column of the image ids shown in reports (default ``<name>_<index>``).

    Examples
    --------
    >>> import ray.data                                                         # doctest: +SKIP
    >>> source = RayDataSource(ray.data.read_images("s3://bucket/val/"), "val", size=224)  # doctest: +SKIP
    >>> layer_report.top_k(RayEngine(), Context(spec, source), store, ["block4_conv3"], 9, 16)  # doctest: +SKIP
    """

    def __init__(self, dataset, name, size=224, image_column="image", id_column=None):
        self.dataset = dataset.materialize()
        self.name, self.size, self.image_column, self.id_column = str(name), int(size), image_column, id_column
        self.count = self.dataset.count()
        columns = self.dataset.columns() or []
        missing = [c for c in (image_column, id_column) if c is not None and c not in columns]
        if missing:
            raise ValueError(f"Ray dataset {name!r} has no column {missing[0]!r}; its columns: {', '.join(columns)}")

    def __len__(self):
        return self.count

    def describe(self):
        return {"ray_data": self.name, "count": self.count, "size": self.size, "column": self.image_column}

    def _rows(self, start, stop):
        """The rows ``start..stop-1``, in order."""
        cuts = [i for i in (start, stop) if 0 < i < self.count]
        parts = self.dataset.split_at_indices(cuts) if cuts else [self.dataset]
        part = parts[1] if start > 0 else parts[0]
        return part.iter_rows()

    def read(self, indices):
        """``(indices, ids, images)`` of ``indices``, each run of consecutive indices read as one slice."""
        indices = sorted({int(i) for i in indices if 0 <= int(i) < self.count})
        found = {}
        runs = np.split(np.asarray(indices, np.int64), np.nonzero(np.diff(indices) != 1)[0] + 1) if indices else []
        for run in runs:
            for index, row in zip(range(int(run[0]), int(run[-1]) + 1), self._rows(int(run[0]), int(run[-1]) + 1)):
                image_id = str(row[self.id_column]) if self.id_column else f"{self.name}_{index}"
                found[index] = (image_id, fit_image(to_rgb_array(np.asarray(row[self.image_column])), self.size))
        ids = [found[i][0] for i in indices]
        images = np.stack([found[i][1] for i in indices]) if indices else np.zeros((0, self.size, self.size, 3), np.float32)
        return np.array(indices, np.int64), ids, images
