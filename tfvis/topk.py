"""The strongest activations of each channel over a dataset, streamed (Zeiler & Fergus, figure 2).

One forward pass per batch serves every channel of every requested layer: the compiled step
returns only each channel's maximum and its position per image, and a running top-k per channel
is merged on the host. Only the images that currently hold a top-k place are kept, so memory is
bounded by the batch size and k x channels, not by the dataset.

The forward passes run in float32 (the default) unless ``precision="bfloat16"``, or ``"auto"``
on a CPU with native bfloat16 (:data:`AUTO_BFLOAT16`), is asked for (:mod:`tfvis.precision`):
bfloat16 keeps about three significant digits, so channels whose k-th and (k+1)-th values are
close can swap places, and top-k results are no longer equal across precisions and machines.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from . import precision as precision_
from .deconv import reconstruct_units
from .display import RECONSTRUCTION_PERCENTILE, html_images, to_image
from .graph import as_list, cached, feature_net, prepared
from .images import IndexedBatch, NoImagesError, iter_batches
from .receptive_field import receptive_field
from .targets import resolve


@dataclass
class LayerTopK:
    """Top-k activations of some channels of one layer.

    Arrays have the channels as first axis and the rank (strongest first) as second.
    :func:`top_k` keeps at most one rank per image read: over fewer images than k, ``k`` is the
    number of images (with a warning). Ranks left unfilled, as in a report whose images could not
    all be read, have value ``-inf`` and id ``""``.
    """

    layer: str
    channels: np.ndarray  #: (C,) channel indices
    values: np.ndarray  #: (C, k) max activation of the channel over positions, per image
    image_ids: np.ndarray  #: (C, k) ids of the images, as str
    positions: np.ndarray  #: (C, k, 2) (y, x) of the max unit in the layer's map
    boxes: np.ndarray  #: (C, k, 4) top, left, bottom, right of the unit's receptive field, clipped to the image
    patches: np.ndarray  #: (C, k, ry, rx, 3) uint8 image patches centred on the unit, grey outside the image
    reconstructions: dict = dataclasses.field(default_factory=dict)  #: method to (C, k, ry, rx, 3) reconstructions, same boxes
    receptive_field: object = dataclasses.field(default=None, repr=False)  #: the layer's ReceptiveField
    image_index: np.ndarray | None = dataclasses.field(default=None, repr=False)  #: (C, k) position in the stream, -1 if unfilled

    @property
    def k(self):
        return self.values.shape[1]

    def index(self, channel):
        """Row of ``channel`` in the arrays."""
        rows = np.flatnonzero(self.channels == channel)
        if not len(rows):
            raise KeyError(f"channel {channel} of {self.layer} was not computed; computed: {self.channels.tolist()}")
        return int(rows[0])

    def _repr_html_(self, max_channels=16):
        """Inline display in notebooks: per channel, its top-k patches, then each method's reconstructions."""
        parts = []
        for row, channel in enumerate(self.channels[:max_channels]):
            filled = [rank for rank in range(self.k) if self.image_ids[row, rank]]
            labels = [f"{self.image_ids[row, r]} ({self.values[row, r]:.3g})" for r in filled]
            parts.append(html_images([self.patches[row, r] for r in filled], labels, width=64, title=f"{self.layer}:{channel}"))
            for method, maps in sorted(self.reconstructions.items()):
                parts.append(
                    html_images(
                        [to_image(maps[row, r], percentile=RECONSTRUCTION_PERCENTILE) for r in filled],
                        [method] * len(filled),
                        width=64,
                    )
                )
        more = len(self.channels) - max_channels
        if more > 0:
            parts.append(f"<div>... and {more} more channels</div>")
        return "".join(parts)


class _RunningTopK:
    """Running top-k over images for the channels of one layer, merged batch by batch.

    The arrays hold k ranks (unfilled ones ``-inf``), or with ``grow=True`` only as many as
    entries were merged, up to k: a k far beyond the images then costs nothing.
    """

    def __init__(self, channels, k, grow=False):
        self.channels = np.asarray(channels)
        self.k = k
        rows, n = 0 if grow else k, len(self.channels)
        self.values = np.full((rows, n), -np.inf, np.float32)
        self.images = np.full((rows, n), -1, np.int64)
        self.flat_positions = np.zeros((rows, n), np.int64)

    def merge(self, values, flat_positions, first_index):
        """Merge one batch: ``values`` and ``flat_positions`` (batch, channels) of images ``first_index...``."""
        images = np.arange(first_index, first_index + len(values))[:, None].repeat(len(self.channels), 1)
        self.merge_entries(values, images, flat_positions)

    def merge_entries(self, values, images, flat_positions):
        """Merge candidate entries (rows of (n, channels) arrays): keep the k best per channel.

        Order: larger value first, ties broken by smaller image index, so that merging per-shard
        top-k lists in any grouping gives exactly the top-k of one pass (:func:`merge_top_k`).
        """
        values = np.concatenate([self.values, values])
        images = np.concatenate([self.images, images])
        positions = np.concatenate([self.flat_positions, flat_positions])
        unfilled = np.where(images < 0, np.iinfo(np.int64).max, images)  # empty ranks last among equal (-inf) values
        order = np.lexsort((unfilled, -values), axis=0)[: self.k]
        self.values = np.take_along_axis(values, order, 0)
        self.images = np.take_along_axis(images, order, 0)
        self.flat_positions = np.take_along_axis(positions, order, 0)

    def referenced(self):
        return set(self.images[self.images >= 0].tolist())


#: Where ``precision="auto"`` (asked for; the default is float32) runs top-k forward passes in
#: bfloat16: on CPUs with ``avx512_bf16`` or ``amx_bf16`` and no GPU in use, as for feature
#: visualizations. Measured with ``benchmarks/topk_precision.py`` (VGG16-hed ``block4_conv3``, all
#: 512 channels, 128 sample images): 98.6% of the top-9 images are float32's, but only 52% of the
#: channels keep their exact top-9 list, which is why float32 is the default.
AUTO_BFLOAT16 = "cpu"


def _extractor(net_model, layers, precision):
    """The feature net of ``layers`` in ``precision`` (a bfloat16 copy has its weights synced at each call)."""
    extractor = feature_net(net_model, list(layers))
    return extractor if precision == "float32" else precision_.bfloat16_model(extractor)


def _channel_max_step(net_model, layers, channels, precision="float32"):
    """A compiled step: per layer, each selected channel's max over positions and its flat index."""
    extractor = _extractor(net_model, layers, precision)
    selections = [tf.constant(c, tf.int32) for c in channels]

    @tf.function(input_signature=[tf.TensorSpec([None, *net_model.inputs[0].shape[1:]], tf.float32)])
    def step(images):
        outputs = as_list(extractor(images, training=False))
        results = []
        for out, selection in zip(outputs, selections):
            out = tf.gather(out, selection, axis=-1)
            flat = tf.reshape(out, [tf.shape(out)[0], -1, tf.shape(out)[-1]])
            results.append((tf.reduce_max(flat, axis=1), tf.argmax(flat, axis=1, output_type=tf.int64)))
        return results

    return step


def _resolve_channels(net_model, layer, channels):
    count = resolve(net_model, layer).channels
    if channels is None:
        return np.arange(count)
    channels = np.atleast_1d(np.asarray(channels, dtype=np.int64))
    bad = channels[(channels < 0) | (channels >= count)]
    if len(bad):
        raise ValueError(f"layer {layer!r} has channels 0..{count - 1}; got {bad.tolist()}")
    return channels


def top_k_layers(
    model: keras.Model,
    images,
    layers: dict[str, Sequence[int] | None],
    k: int = 9,
    batch_size: int = 32,
    size: int | None = None,
    limit: int | None = None,
    methods: Sequence[str] = ("deconvnet", "guided"),
    progress: bool = True,
    precision: str = "float32",
) -> dict[str, LayerTopK]:
    """Stream ``images`` once and keep the top-k activations of many layers' channels.

    Parameters
    ----------
    model : keras.Model
    images : ndarray, dict of id to image, list of files, directory or tf.data.Dataset
        The dataset, read once, batch by batch (see :func:`tfvis.images.iter_images`); arrays are
        pixels in [0, 255] as given (:func:`tfvis.images.pixel_values`).
    layers : dict of str to channels
        Layer name to the channels to keep (a list of ints, or None for all of them).
    k : int
        Activations kept per channel, each from a different image; at least 1. Over fewer images
        than k, every image is kept (a ``UserWarning`` says so): nothing is allocated for the rest.
    batch_size : int
    size : int, optional
        Resize and centre-crop each image to ``size`` x ``size`` (needed for folders of mixed sizes).
    limit : int, optional
        Read at most this many images.
    methods : sequence of {"deconvnet", "guided", "gradient"}
        Reconstructions to compute for each kept unit (batched over channels); empty for none.
    progress : bool
        Show progress bars.
    precision : {"float32", "bfloat16", "auto"}
        What the forward passes that rank the images compute in (see the module's notes;
        ``"auto"`` resolves to float32). Reconstructions stay float32.

    Returns
    -------
    dict of str to LayerTopK
    """
    check_k(k)
    check_batch_size(batch_size)
    names = list(layers)
    net_model = prepared(model)  # layer names mean what they mean in every method (tfvis.graph)
    channels = {name: _resolve_channels(net_model, name, layers[name]) for name in names}
    batches = (
        IndexedBatch(np.arange(seen, seen + len(b.ids)), b.ids, b.images)
        for seen, b in _numbered(iter_batches(images, batch_size=batch_size, size=size, limit=limit))
    )
    running, kept, ids = scan(model, batches, channels, k, keep_images=True, progress=progress, precision=precision)
    if not ids and not any((state.images >= 0).any() for state in running.values()):
        raise NoImagesError(f"the image source ({type(images).__name__}) yielded no images")
    read = min((len(state.values) for state in running.values()), default=k)
    if read < k:
        warnings.warn(f"top_k: k={k} is more than the {read} images read; each channel keeps {read}", UserWarning, stacklevel=3)
    return {
        name: assemble(model, name, state, kept, ids, methods=methods, batch_size=batch_size, progress=progress)
        for name, state in running.items()
    }


def check_k(k):
    """Raise ValueError unless ``k`` (activations kept per channel) is an integer of at least 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (activations kept per channel) must be an integer of at least 1; got {k!r}")


def check_batch_size(batch_size):
    """Raise ValueError unless ``batch_size`` is an integer of at least 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer of at least 1; got {batch_size!r}")


def _numbered(batches):
    seen = 0
    for batch in batches:
        yield seen, batch
        seen += len(batch.ids)


def as_uint8(image):
    """An image in [0, 255] rounded to uint8: how top-k keeps the images its patches come from."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def scan(model, batches, channels, k, keep_images=False, progress=False, precision="float32"):
    """One pass over ``batches``: the running top-k of ``channels`` of each layer.

    Parameters
    ----------
    model : keras.Model
    batches : iterable of :class:`tfvis.images.IndexedBatch`
        Images with their index in the dataset (the tie-breaker of equal values).
    channels : dict of str to array of int
        Layer name to channels (already checked).
    k : int
    keep_images : bool
        Keep the images (as uint8) that hold a top-k place at the end; else only their ids.
    progress : bool
    precision : {"float32", "bfloat16", "auto"}
        See :func:`top_k_layers`.

    Returns
    -------
    running : dict of str to _RunningTopK
    kept : dict of int to ndarray
        Index to image, for the images still referenced (empty unless ``keep_images``).
    ids : dict of int to str
        Index to id of every referenced image.
    """
    net_model = prepared(model)
    names = list(channels)
    selections = [np.asarray(channels[name]) for name in names]
    precision = precision_.resolve_precision(precision, AUTO_BFLOAT16)
    key = ("top_k_step", tuple(names), tuple(tuple(int(v) for v in c) for c in selections), precision)
    step = cached(net_model, key, lambda: _channel_max_step(net_model, names, selections, precision))
    if precision != "float32":
        _extractor(net_model, names, precision)  # copies the model's current weights into the cached bfloat16 net
    check_k(k)
    running = {name: _RunningTopK(c, k, grow=True) for name, c in zip(names, selections)}
    kept, ids = {}, {}
    bar = tqdm(desc="top-k: images", unit="img", disable=not progress)
    for batch in batches:
        outputs = step(tf.constant(batch.images, tf.float32))
        rows = np.asarray(batch.indices)[:, None]
        for state, (values, positions) in zip(running.values(), outputs):
            state.merge_entries(values.numpy(), rows.repeat(len(state.channels), 1), positions.numpy())
        needed = set().union(*(state.referenced() for state in running.values()))
        for index, image_id, image in zip(batch.indices, batch.ids, batch.images):
            if int(index) in needed:
                ids[int(index)] = image_id
                if keep_images:
                    kept[int(index)] = as_uint8(image)
        for index in [i for i in ids if i not in needed]:
            del ids[index]
            kept.pop(index, None)
        bar.update(len(batch.ids))
    bar.close()
    return running, kept, ids


def assemble(model, layer, state, kept, ids, methods=("deconvnet", "guided"), batch_size=32, progress=False):
    """The :class:`LayerTopK` of one layer from its running top-k and the kept images, with reconstructions."""
    net_model = prepared(model)
    if not kept:
        raise NoImagesError(f"no image holds a top-{state.k} place of {layer}")
    input_shape = next(iter(kept.values())).shape[:2]
    result = _assemble(net_model, layer, state, kept, ids, input_shape)
    if methods:
        result.reconstructions = _reconstruct(model, result, kept, batch_size, methods, progress)
    return result


def _assemble(model, layer, state, kept, ids, input_shape):
    rf = receptive_field(model, layer, input_size=tuple(input_shape))
    map_width = 1 if rf.is_global else rf.output_size[1]
    n_channels, k = len(state.channels), len(state.values)  # ranks held: fewer than state.k when fewer images
    positions = np.stack([state.flat_positions // map_width, state.flat_positions % map_width], -1)
    ry, rx = rf.size
    patches = np.full((n_channels, k, ry, rx, 3), 128, np.uint8)
    boxes = np.zeros((n_channels, k, 4), np.int64)
    image_ids = np.full((n_channels, k), "", dtype=object)
    for rank in range(k):
        for row in range(n_channels):
            index = state.images[rank, row]
            if index < 0:
                continue
            y, x = positions[rank, row]
            patches[row, rank] = rf.crop(kept[index], y, x, fill=128)
            boxes[row, rank] = rf.box(y, x, image_shape=input_shape)
            image_ids[row, rank] = ids[index]
    return LayerTopK(
        layer=layer,
        channels=state.channels,
        values=state.values.T.copy(),
        image_ids=image_ids,
        positions=positions.transpose(1, 0, 2).copy(),
        boxes=boxes,
        patches=patches,
        receptive_field=rf,
        image_index=state.images.T.copy(),
    )


def _crops_are_exact(model):
    """True when reconstructing on an aligned crop around a unit's field gives the full-image result.

    A unit depends only on the pixels of its receptive field. A crop that contains the field and
    starts on a multiple of the layer's total stride keeps every pooling and stride grid aligned,
    so the units in the field's cone compute the same values, unless a strided layer pads by an
    amount that depends on the input size ("same" padding with stride > 1, as InceptionV1's).
    """
    for layer in model.layers:
        strides = getattr(layer, "strides", None)
        if strides is not None and any(s > 1 for s in np.atleast_1d(strides)) and getattr(layer, "padding", "valid") != "valid":
            return False
    return True


def _fixed_input_size(model):
    """True when the model takes one image size only (a crop would not fit it)."""
    return any(d is not None for d in tuple(model.inputs[0].shape[1:3]))


def _crop_windows(rf, positions, image_shape):
    """Per unit, an aligned window ``(top, left)`` of one common side per axis holding its field.

    Returns ``(starts, sides)`` with ``starts`` shaped (N, 2), or None when some unit's field
    does not fit such a window (the caller then uses the whole image).
    """
    sides, starts = [], []
    for axis in range(2):
        jump, height = rf.stride[axis], image_shape[axis]
        # At least r + j (slack to align the start), and height - side a multiple of the jump so
        # that a window clamped to the far edge still starts on the grid.
        side = min(height, height - (height - rf.size[axis] - jump) // jump * jump)
        first = rf.start[axis] + positions[:, axis] * jump  # unclipped field start
        last_start = height - side
        start = np.minimum(np.maximum(first, 0) // jump * jump, last_start)
        stop = np.minimum(first + rf.size[axis], height)
        if side == height:
            start = np.zeros_like(start)
        elif np.any(stop > start + side) or np.any(np.maximum(first, 0) < start):
            return None
        sides.append(side)
        starts.append(start)
    return np.stack(starts, -1), tuple(sides)


def _reconstruct(model, result, kept, batch_size, methods, progress):
    """Reconstructions of every kept unit of ``result`` per method, batched over channels and ranks.

    Where exact (see :func:`_crops_are_exact`), each unit is reconstructed on a small aligned crop
    around its receptive field instead of the whole image.
    """
    rf = result.receptive_field
    entries = sorted(zip(*np.nonzero(result.image_index >= 0)), key=lambda e: result.image_index[e])
    ry, rx = rf.size
    out = {method: np.zeros((len(result.channels), result.k, ry, rx, 3), np.float32) for method in methods}
    if not entries:
        return out
    image_shape = next(iter(kept.values())).shape
    positions = np.array([result.positions[row, rank] for row, rank in entries])
    crops = not rf.is_global and _crops_are_exact(model) and not _fixed_input_size(model)
    windows = _crop_windows(rf, positions, image_shape) if crops else None
    if windows is None:
        starts, (side_y, side_x) = np.zeros((len(entries), 2), np.int64), image_shape[:2]
    else:
        starts, (side_y, side_x) = windows
    stride = np.array(rf.stride if not rf.is_global else (1, 1))
    bar = tqdm(total=len(entries) * len(methods), desc=f"{result.layer}: reconstructions", unit="patch", disable=not progress)
    for begin in range(0, len(entries), batch_size):
        chunk = entries[begin : begin + batch_size]
        offsets = starts[begin : begin + batch_size]
        if windows is None:  # whole images: units of one image share its forward pass
            sources = [result.image_index[row, rank] for row, rank in chunk]
            distinct, image_index = np.unique(sources, return_inverse=True)
            crops = np.stack([kept[i] for i in distinct]).astype(np.float32)
        else:
            crops = np.stack(
                [
                    kept[result.image_index[row, rank]][top : top + side_y, left : left + side_x]
                    for (row, rank), (top, left) in zip(chunk, offsets)
                ]
            ).astype(np.float32)
            image_index = np.arange(len(chunk))
        targets = [f"{result.layer}:{result.channels[row]}" for row, _ in chunk]
        units = [tuple(int(v) for v in pos) for pos in positions[begin : begin + batch_size] - offsets // stride]
        maps = reconstruct_units(model, crops, image_index, targets, units, methods=methods, batch_size=batch_size)
        for method in methods:
            for (row, rank), (top, left), crop_map in zip(chunk, offsets, maps[method]):
                canvas = np.zeros(image_shape, np.float32)
                canvas[top : top + side_y, left : left + side_x] = crop_map
                y, x = result.positions[row, rank]
                out[method][row, rank] = rf.crop(canvas, y, x, fill=0.0)
        bar.update(len(chunk) * len(methods))
    bar.close()
    return out


def top_k(
    model: keras.Model,
    images,
    layer: str,
    channels: Sequence[int] | None = None,
    k: int = 9,
    batch_size: int = 32,
    size: int | None = None,
    methods: Sequence[str] = ("deconvnet", "guided"),
    progress: bool = True,
    precision: str = "float32",
) -> LayerTopK:
    """The k strongest activations of a layer's channels over a dataset, with patches and reconstructions.

    For every channel, the k images whose maximum over positions is largest (so the k come from k
    different images), the position of that maximum, the image patch under the unit's receptive
    field, and its reconstructions (deconvnet and guided backprop by default) cropped from the
    same box.

    Parameters
    ----------
    model : keras.Model
    images : ndarray, dict of id to image, list of files, directory or tf.data.Dataset
        Streamed once; memory does not grow with the dataset. RGB pixels in [0, 255]: arrays as
        given (:func:`tfvis.images.pixel_values`, the rule of :func:`tfvis.activations` too),
        files decoded to [0, 255].
    layer : str
    channels : sequence of int, optional
        Default every channel of the layer.
    k : int
        At least 1; see :func:`top_k_layers`.
    batch_size : int
    size : int, optional
        Resize and centre-crop each image (needed for folders of mixed sizes).
    methods : sequence of {"deconvnet", "guided", "gradient"}
        Reconstructions to compute; ``()`` for none.
    progress : bool
    precision : {"float32", "bfloat16", "auto"}
        See :func:`top_k_layers`.

    Returns
    -------
    LayerTopK

    Examples
    --------
    >>> result = top_k(model, "photos/", "block3_conv1", channels=range(8), size=224)  # doctest: +SKIP
    >>> result.patches.shape, sorted(result.reconstructions)                          # doctest: +SKIP
    ((8, 9, 24, 24, 3), ['deconvnet', 'guided'])
    """
    return top_k_layers(
        model,
        images,
        {layer: channels},
        k=k,
        batch_size=batch_size,
        size=size,
        methods=methods,
        progress=progress,
        precision=precision,
    )[layer]
