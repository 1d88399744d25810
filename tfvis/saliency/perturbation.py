"""Input-times-gradient and the perturbation methods: occlusion (Zeiler & Fergus 2014) and RISE (Petsiuk et al. 2018).

**Gradient x Input** (:func:`gradient_x_input`) multiplies the score's gradient by the image,
``a = x * dS/dx``; for a linear score ``S = w . x + b`` it is each input's contribution ``w x``.

**Occlusion** (:func:`occlusion`) slides a ``patch`` over the image by ``stride``, replaces the
pixels under it by a baseline, and records the drop of the score, ``S(x) - S(x_occluded)``. A
pixel's value is the mean of the drops of the patches that cover it (Captum's convention);
pixels that no patch covers (when the patch positions do not reach the last rows or columns)
are 0.

**RISE** (:func:`rise`) scores the image under random soft masks ``M``: binary ``cell x cell``
grids, each cell 1 with probability ``p``, upsampled bilinearly to ``(cell + 1)`` cells of the
image's size and cropped at a random shift (:func:`rise_masks`). The map is
``sum_m S(x * M_m) M_m / (masks * p)``, the score's expectation given that a pixel is kept.

The perturbation methods read scores through one compiled, gradient-free function
(:func:`score_function`) of the target machinery of :mod:`.gradient`, so every target kind
(a class, ``"layer:channel"``, ``"layer:channel@y,x"``) works; the occluded copies and masked
images go through it ``batch_size`` at a time.
"""

import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached
from .gradient import (
    check_reduce,
    image_spec,
    input_gradients,
    reduce_channels,
    row_specs,
    run_gradients,
    setup,
    target_net,
    target_scores,
)
from .integrated import baselines_for
from .methods import Attribution

#: Masks that :func:`rise` draws and scores per chunk (memory, not the result, depends on it).
RISE_CHUNK = 256


# --------------------------------------------------------------------------------------------
# Gradient x Input
# --------------------------------------------------------------------------------------------


def input_gradient_attribution(model, net, target):
    """SmoothGrad's view of Gradient x Input (:class:`tfvis.saliency.methods.Attribution`): ``x * dS/dx`` per row.

    ``model`` is the user's model, ``net`` the prepared one, ``target`` the resolved target of
    the rows.
    """

    def build():
        gradient_net = target_net(net, target, "gradient")

        def attribute(rows, references, channels, positions):
            return rows * input_gradients(gradient_net, target, rows, channels, positions)[0]

        return attribute

    return Attribution(("gradient_x_input",), build)


def gradient_x_input(model, images, target, batch_size=16, reduce="sum"):
    """Gradient x Input: the image times the gradient of the target score, ``a = x * dS/dx``.

    Parameters
    ----------
    model, images, target
        As in :func:`tfvis.saliency.vanilla`.
    batch_size : int
        Images per compiled call.
    reduce : {"sum", "max", None}
        ``"sum"``: the signed sum over colour channels (N, H, W), a pixel's contribution;
        ``"max"``: ``max_c |a|`` (N, H, W); None: the attributions (N, H, W, C).

    Returns
    -------
    Maps or ndarray, float32
        Maps (N, H, W) for ``reduce="sum"`` or ``"max"``; the attributions (N, H, W, C) for None
        (without the leading axis for one image).

    Raises
    ------
    ValueError
        ``reduce`` is not one of the choices; the errors of :func:`tfvis.saliency.vanilla`.

    Examples
    --------
    >>> maps = gradient_x_input(model, photos, 281)                  # doctest: +SKIP
    >>> a = gradient_x_input(model, photos, 281, reduce=None)        # doctest: +SKIP
    """
    check_reduce(reduce)
    images, single, net, rows = setup(model, images, target, batch_size)
    grads, _ = run_gradients(net, rows, images, batch_size)
    out = reduce_channels(images * grads, reduce)
    out = out[0] if single else out
    return out if reduce is None else as_maps(out)


# --------------------------------------------------------------------------------------------
# Scores without gradients
# --------------------------------------------------------------------------------------------


def score_function(model, target):
    """Compiled ``(images, channels, positions) -> S`` on the prepared ``model``, no gradient taken.

    One per (prepared model, target key), kept by :func:`tfvis.graph.cached`.
    """

    def build():
        net = target_net(model, target, "gradient")

        @tf.function(input_signature=[image_spec(model)] + row_specs(target))
        def run(images, channels, positions):
            return target_scores(net(images, training=False), target, channels, positions)

        return run

    return cached(model, ("saliency.scores",) + target.key, build)


def _scores(run, images, rows, batch_size):
    """Scores (N,) of ``images`` whose targets are ``rows``, ``batch_size`` per call of ``run``."""
    out = np.zeros(len(images), np.float32)
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        out[chunk] = run(tf.constant(images[chunk]), *rows.tensors(chunk)).numpy()
    return out


# --------------------------------------------------------------------------------------------
# Occlusion
# --------------------------------------------------------------------------------------------


def _pair(value, name):
    """``value`` (an int or a pair of ints) as ``(rows, columns)``; ``ValueError`` naming ``name`` when below 1."""
    message = f"{name} must be a positive int or a pair of them (rows, columns); got {value!r}"
    if isinstance(value, str) or np.ndim(value) > 1 or np.size(value) not in (1, 2):
        raise ValueError(message)
    pair = tuple(int(v) for v in np.broadcast_to(np.asarray(value), (2,)))
    if min(pair) < 1 or not np.all(np.asarray(value) == np.asarray(pair[: np.size(value)])):
        raise ValueError(message)
    return pair


def patch_positions(size, patch, stride):
    """Top-left corners ``(tops, lefts)`` of the occlusion patches on an image of ``size`` (H, W).

    A grid of every ``stride`` pixels from 0 while the patch fits: ``(H - ph) // sh + 1`` rows of
    ``(W - pw) // sw + 1`` positions, row-major.

    Parameters
    ----------
    size : (int, int)
        The image's height and width.
    patch, stride : int or (int, int)
        The patch's size and the step between positions, in pixels.

    Returns
    -------
    tops, lefts : ndarray of int32, shape (P,)

    Raises
    ------
    ValueError
        ``patch`` or ``stride`` below 1, or ``patch`` larger than the image.

    Examples
    --------
    >>> tops, lefts = patch_positions((4, 5), 2, 2)
    >>> tops.tolist(), lefts.tolist()
    ([0, 0, 2, 2], [0, 2, 0, 2])
    """
    (ph, pw), (sh, sw) = _pair(patch, "patch"), _pair(stride, "stride")
    height, width = size
    if ph > height or pw > width:
        raise ValueError(f"patch {(ph, pw)} is larger than the image {(height, width)}; choose a smaller patch")
    tops, lefts = np.meshgrid(np.arange(0, height - ph + 1, sh), np.arange(0, width - pw + 1, sw), indexing="ij")
    return tops.reshape(-1).astype(np.int32), lefts.reshape(-1).astype(np.int32)


def _spans(starts, length, size):
    """Indicators (P, size) of ``[start, start + length)`` for each start (float32)."""
    index = np.arange(size)
    return ((index >= starts[:, None]) & (index < starts[:, None] + length)).astype(np.float32)


def occlusion_baselines(images, baseline):
    """The occlusion baseline of each image, shape like ``images``: a value, ``"mean"`` (each image's mean colour) or an array.

    Raises
    ------
    ValueError
        A string other than ``"mean"``.
    """
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(f"baseline={baseline!r}; use a number, an array or 'mean'")
        return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).astype(np.float32)
    try:
        return baselines_for(images, 0.0 if baseline is None else baseline)
    except ValueError:
        raise ValueError(
            f"baseline of shape {np.shape(baseline)} does not fit images of shape {images.shape}; "
            "use a number, 'mean', one image (H, W, C) or one per image (N, H, W, C)"
        ) from None


def _occluded_function(model, target, patch):
    """Compiled scores of occluded copies: ``(images, baselines, owners, tops, lefts, channels, positions) -> S``.

    Row ``r`` is image ``owners[r]`` with the ``patch`` at ``(tops[r], lefts[r])`` replaced by
    its baseline; the copies are built in the graph.
    """
    ph, pw = patch

    def build():
        net = target_net(model, target, "gradient")
        spec = image_spec(model)
        index = tf.TensorSpec([None], tf.int32)

        @tf.function(input_signature=[spec, spec, index, index, index] + row_specs(target))
        def run(images, baselines, owners, tops, lefts, channels, positions):
            height, width = tf.shape(images)[1], tf.shape(images)[2]
            ys, xs = tf.range(height)[None], tf.range(width)[None]
            in_rows = (ys >= tops[:, None]) & (ys < tops[:, None] + ph)  # (B, H)
            in_cols = (xs >= lefts[:, None]) & (xs < lefts[:, None] + pw)  # (B, W)
            covered = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)[..., None]
            copies = tf.gather(images, owners) * (1 - covered) + tf.gather(baselines, owners) * covered
            return target_scores(net(copies, training=False), target, channels, positions)

        return run

    return cached(model, ("saliency.occlusion", ph, pw) + target.key, build)


def occlusion(model, images, target, patch=16, stride=8, baseline=0.0, batch_size=16):
    """Occlusion (Zeiler & Fergus 2014): the drop of the target score when a patch is replaced by a baseline.

    Every patch position (:func:`patch_positions`) gives one occluded copy; a pixel's value is
    the mean of ``S(x) - S(x_occluded)`` over the patches that cover it (Captum's convention),
    0 where none does. Positive: hiding the pixel lowers the score.

    Parameters
    ----------
    model, images, target
        As in :func:`tfvis.saliency.vanilla`.
    patch : int or (int, int)
        The patch's size in pixels (rows, columns).
    stride : int or (int, int)
        The step between patch positions in pixels.
    baseline : float, "mean" or ndarray
        What replaces the occluded pixels, in the model's input space: a value (0: black), the
        image's mean colour (``"mean"``), or an image (H, W, C) or one per image (N, H, W, C).
    batch_size : int
        Occluded copies per compiled call (copies of several images share a call).

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Raises
    ------
    ValueError
        ``patch`` or ``stride`` below 1, ``patch`` larger than the image, an unknown string
        ``baseline``; the errors of :func:`tfvis.saliency.vanilla`.

    Examples
    --------
    >>> maps = occlusion(model, photos, 281, patch=32, stride=16)          # doctest: +SKIP
    >>> maps = occlusion(model, photos, 281, baseline="mean")              # doctest: +SKIP
    """
    images, single, net, rows = setup(model, images, target, batch_size)
    batch_size = int(batch_size)
    (ph, pw), height, width = _pair(patch, "patch"), images.shape[1], images.shape[2]
    tops, lefts = patch_positions((height, width), patch, stride)
    baselines = occlusion_baselines(images, baseline)
    clean = _scores(score_function(net, rows.target), images, rows, batch_size)
    run = _occluded_function(net, rows.target, (ph, pw))
    row_spans, col_spans = _spans(tops, ph, height), _spans(lefts, pw, width)  # (P, H), (P, W)
    count = np.einsum("ph,pw->hw", row_spans, col_spans)  # patches covering each pixel
    n, positions = len(images), len(tops)
    owners, which = np.divmod(np.arange(n * positions), positions)  # every (image, patch) row
    copy_rows = rows.repeat(positions)
    total = np.zeros((n, height, width), np.float64)
    for start in range(0, n * positions, batch_size):
        part = slice(start, start + batch_size)
        first, last = owners[part][0], owners[part][-1] + 1  # the images this call needs
        group = slice(first, last)
        scores = run(
            tf.constant(images[group]),
            tf.constant(baselines[group]),
            tf.constant((owners[part] - first).astype(np.int32)),
            tf.constant(tops[which[part]]),
            tf.constant(lefts[which[part]]),
            *copy_rows.tensors(part),
        ).numpy()
        drops = clean[owners[part]] - scores
        owner_onehot = (owners[part][:, None] == np.arange(first, last)[None]).astype(np.float64)
        total[group] += np.einsum("bn,b,bh,bw->nhw", owner_onehot, drops, row_spans[which[part]], col_spans[which[part]])
    maps = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
    return as_maps(maps[0] if single else maps)


# --------------------------------------------------------------------------------------------
# RISE
# --------------------------------------------------------------------------------------------


def _check_rise(masks, cell, p):
    if int(masks) < 1:
        raise ValueError(f"masks must be at least 1; got {masks}")
    if int(cell) < 1:
        raise ValueError(f"cell must be at least 1; got {cell}")
    if not 0 < float(p) < 1:
        raise ValueError(f"p must be in the open interval (0, 1); got {p}")


def _bilinear_weights(cells, size):
    """Weights (size, cells) of bilinear upsampling of ``cells`` values to ``size`` (half-pixel centres, edges held)."""
    source = np.clip((np.arange(size) + 0.5) * cells / size - 0.5, 0, cells - 1)
    below = np.floor(source).astype(int)
    above = np.minimum(below + 1, cells - 1)
    fraction = source - below
    weights = np.zeros((size, cells))
    np.add.at(weights, (np.arange(size), below), 1 - fraction)
    np.add.at(weights, (np.arange(size), above), fraction)
    return weights


def rise_mask_chunks(size, masks=2000, cell=7, p=0.5, seed=0, chunk=RISE_CHUNK):
    """RISE's random masks in chunks of ``chunk``, the same masks whatever ``chunk`` (Petsiuk et al. 2018).

    Mask ``m`` is a ``cell x cell`` grid of cells that are 1 with probability ``p``, upsampled
    bilinearly (half-pixel centres, edge values held) to ``(cell + 1) * ceil(H / cell)`` by
    ``(cell + 1) * ceil(W / cell)`` pixels and cropped to ``H x W`` at a shift drawn uniformly
    from ``[0, ceil(H / cell)) x [0, ceil(W / cell))``. The grids and the shifts are drawn from
    two streams of ``np.random.default_rng(seed)``'s seed sequence, in mask order, so the masks
    depend only on ``(size, cell, p, seed)`` and their index.

    Parameters
    ----------
    size : (int, int)
        The image's height and width.
    masks : int
        How many masks.
    cell : int
        Grid cells per side.
    p : float
        Probability that a cell is kept, in (0, 1).
    seed : int
    chunk : int
        Masks per yielded array.

    Yields
    ------
    ndarray, float32, shape (min(chunk, left), H, W)
        Values in [0, 1].

    Raises
    ------
    ValueError
        ``masks``, ``cell`` or ``chunk`` below 1, ``p`` outside (0, 1).
    """
    _check_rise(masks, cell, p)
    if int(chunk) < 1:
        raise ValueError(f"chunk must be at least 1; got {chunk}")
    height, width = (int(v) for v in size)
    masks, cell, chunk = int(masks), int(cell), int(chunk)
    cell_height, cell_width = -(-height // cell), -(-width // cell)
    row_weights = _bilinear_weights(cell, (cell + 1) * cell_height)
    col_weights = _bilinear_weights(cell, (cell + 1) * cell_width)
    grid_stream, shift_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(2))
    for start in range(0, masks, chunk):
        count = min(chunk, masks - start)
        grids = (grid_stream.random((count, cell, cell)) < p).astype(np.float64)
        shifts = np.floor(shift_stream.random((count, 2)) * [cell_height, cell_width]).astype(int)
        rows = row_weights[shifts[:, :1] + np.arange(height)]  # (count, H, cell)
        cols = col_weights[shifts[:, 1:] + np.arange(width)]  # (count, W, cell)
        yield np.matmul(rows @ grids, cols.transpose(0, 2, 1)).astype(np.float32)


def rise_masks(size, masks=2000, cell=7, p=0.5, seed=0):
    """All of :func:`rise_mask_chunks`' masks at once, shape (masks, H, W) float32.

    Examples
    --------
    >>> rise_masks((8, 8), masks=3, cell=2).shape
    (3, 8, 8)
    """
    return np.concatenate(list(rise_mask_chunks(size, masks, cell, p, seed)))


def _rise_function(model, target):
    """Compiled ``(images (n,...), masks (M, H, W), channels, positions) -> sum_m S(x * M_m) M_m`` (n, H, W)."""

    def build():
        net = target_net(model, target, "gradient")
        masks_spec = tf.TensorSpec([None] + list(image_spec(model).shape[1:3]), tf.float32)

        @tf.function(input_signature=[image_spec(model), masks_spec] + row_specs(target))
        def run(images, masks, channels, positions):
            n, count = tf.shape(images)[0], tf.shape(masks)[0]
            masked = images[:, None] * masks[None, :, :, :, None]
            masked = tf.reshape(masked, tf.concat([[-1], tf.shape(images)[1:]], 0))
            scores = target_scores(
                net(masked, training=False), target, tf.repeat(channels, count), tf.repeat(positions, count, axis=0)
            )
            return tf.einsum("nm,mhw->nhw", tf.reshape(scores, [n, count]), masks)

        return run

    return cached(model, ("saliency.rise",) + target.key, build)


def rise(model, images, target, masks=2000, cell=7, p=0.5, seed=0, batch_size=16):
    """RISE (Petsiuk et al. 2018): the target score under random masks, averaged with the masks as weights.

    ``sum_m S(x * M_m) M_m / (masks * p)`` over the masks of :func:`rise_mask_chunks`: the
    expected score given that a pixel is kept. The masks are drawn :data:`RISE_CHUNK` at a time
    (memory does not grow with ``masks``), the same masks for every image.

    Parameters
    ----------
    model, images, target
        As in :func:`tfvis.saliency.vanilla`. The score is the target's (a class's logit, not its
        softmax probability as in the paper).
    masks : int
        Random masks per image.
    cell : int
        Grid cells per side of a mask (the paper's ``s``).
    p : float
        Probability that a cell is kept, in (0, 1).
    seed : int
        Seed of the masks (:func:`rise_mask_chunks`), the same on every machine.
    batch_size : int
        Masked images per compiled call (the masks of several images share a call when
        ``batch_size`` exceeds the chunk).

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Raises
    ------
    ValueError
        ``masks`` or ``cell`` below 1, ``p`` outside (0, 1); the errors of
        :func:`tfvis.saliency.vanilla`.

    Examples
    --------
    >>> maps = rise(model, photos, 281, masks=4000, cell=7, seed=1)  # doctest: +SKIP
    """
    _check_rise(masks, cell, p)
    images, single, net, rows = setup(model, images, target, batch_size)
    batch_size = int(batch_size)
    run = _rise_function(net, rows.target)
    total = np.zeros(images.shape[:3], np.float64)
    for chunk in rise_mask_chunks(images.shape[1:3], masks, cell, p, seed, RISE_CHUNK):
        count = min(len(chunk), batch_size)  # masks of one image per call
        per_call = max(batch_size // count, 1)  # images per call
        for first in range(0, len(images), per_call):
            group = slice(first, first + per_call)
            for start in range(0, len(chunk), count):
                part = tf.constant(chunk[start : start + count])
                total[group] += run(tf.constant(images[group]), part, *rows.tensors(group)).numpy()
    maps = (total / (int(masks) * float(p))).astype(np.float32)
    return as_maps(maps[0] if single else maps)


__all__ = [
    "RISE_CHUNK",
    "gradient_x_input",
    "input_gradient_attribution",
    "occlusion",
    "occlusion_baselines",
    "patch_positions",
    "rise",
    "rise_mask_chunks",
    "rise_masks",
    "score_function",
]
