"""Layer activations of a model over images, in memory or streamed over a dataset.

Images are RGB pixels in [0, 255] (declare a model's input convention to feed it its own
values); arrays follow :func:`tfvis.images.pixel_values`, the rule :func:`tfvis.top_k` and every
other method read them by, so the same array gives the same activations everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from .graph import as_list, cached, feature_net, prepared
from .images import iter_batches, pixel_values
from .topk import check_batch_size


def _compiled_features(model, layers):
    """A compiled ``images -> [outputs]`` for ``layers`` of the prepared model, one trace per input shape."""
    net_model = prepared(model)

    def build():
        extractor = feature_net(net_model, list(layers))

        @tf.function(reduce_retracing=True)
        def run(images):
            return as_list(extractor(images, training=False))

        return run

    return cached(net_model, ("activations", tuple(layers)), build)


def stream_activations(
    model: keras.Model, layers: str | Sequence[str], source, batch_size: int = 32, size: int | tuple | None = None
) -> Iterator[tuple[list, dict[str, np.ndarray]]]:
    """Yield ``(ids, {layer: activations})`` batch by batch, for datasets that do not fit in memory.

    Parameters
    ----------
    model : keras.Model
    layers : list of str
        Layer names (of the prepared model: ``c`` is a fused layer's pre-activation output,
        ``c_relu`` its post-activation output; see :func:`tfvis.graph.prepared`).
    source : ndarray, list of files, directory or tf.data.Dataset
        Images, see :func:`tfvis.images.iter_images`.
    batch_size : int
    size : int, optional
        Resize and centre-crop every image to ``size`` x ``size`` (needed for folders of mixed sizes).

    Yields
    ------
    ids : list of str
    activations : dict of str to ndarray
        One array per layer, first axis the batch.
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    check_batch_size(batch_size)
    run = _compiled_features(model, layers)
    for batch in iter_batches(source, batch_size=batch_size, size=size):
        outputs = run(tf.constant(batch.images))
        yield batch.ids, {name: out.numpy() for name, out in zip(layers, outputs)}


def activations(
    model: keras.Model, layers: str | Sequence[str], images: np.ndarray, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Activations of ``layers`` for in-memory ``images``, computed in batches.

    Parameters
    ----------
    model : keras.Model
    layers : str or list of str
    images : ndarray, shape (N, H, W, C)
        RGB pixels in [0, 255], as given (:func:`tfvis.images.pixel_values`: never rescaled or
        clipped; a float array whose largest value is at most 1 gets a warning).
    batch_size : int

    Returns
    -------
    dict of str to ndarray
        Layer name to activations of shape (N, ...).

    Examples
    --------
    >>> acts = activations(model, ["block1_conv1"], photos)  # doctest: +SKIP
    >>> acts["block1_conv1"].shape                          # doctest: +SKIP
    (4, 224, 224, 64)
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    images = pixel_values(images, "images")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C); got {images.shape}")
    if not len(images):
        raise ValueError(f"images is an empty batch (shape {images.shape}); give at least one image, N >= 1")
    check_batch_size(batch_size)
    run = _compiled_features(model, layers)
    chunks = {name: [] for name in layers}
    for start in range(0, len(images), batch_size):
        for name, out in zip(layers, run(tf.constant(images[start : start + batch_size]))):
            chunks[name].append(out.numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}
