"""How alike two sets of feature visualizations are, and which visualizations are dead.

A feature visualization is an image a network produced (float RGB in [0, 1]). Two are compared
through a *base* network that sees them as ordinary images:

* :func:`visualization_similarity`: the cosine similarity of their activations at a layer
  (flattened), 1 for identical images.
* :func:`gram_distance`: the distance between their normalised Gram (style) matrices at a
  layer, 0 for identical images; insensitive to where in the image a pattern sits.

:func:`layout_correlation` asks a cheaper, network-free question: do two images have their edges
in the same places (a caricature keeping its photo's layout, say)?

:func:`dead_channels` flags grey or flat visualizations, the mark of channels that never fire (a
visualization that optimisation could not move from its grey start), and :func:`write_dead_csv`
writes the verdicts for a command-line report.
"""

import csv
import io
from typing import NamedTuple

import numpy as np

#: Default :func:`dead_channels` threshold on the standard deviation of a [0, 1] image.
DEAD_THRESHOLD = 0.01


def edge_layout(image, res=16):
    """Where an image's edges are: the grey level's gradient magnitude averaged on a ``res`` x ``res`` grid.

    Parameters
    ----------
    image : array_like, shape (S, S, 3) or (S, S)
        Any value range; ``S`` is cut down to a multiple of ``res``.
    res : int

    Returns
    -------
    ndarray, shape (res * res,)

    Examples
    --------
    >>> image = np.zeros((32, 32)); image[:, 16:] = 1.0
    >>> layout = edge_layout(image, res=4).reshape(4, 4)
    >>> bool(layout[:, 1:3].min() > 0), bool(layout[:, [0, 3]].max() == 0)
    (True, True)
    """
    image = np.asarray(image, np.float64)
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    gy, gx = np.gradient(grey)
    side = grey.shape[0] // res
    magnitude = np.hypot(gx, gy)[: res * side, : res * side]
    return magnitude.reshape(res, side, res, side).mean(axis=(1, 3)).ravel()


def layout_correlation(image_a, image_b, res=16):
    """Pearson correlation of two images' :func:`edge_layout`: 1 when their edges sit in the same places.

    Independent of value ranges and colours (an image and its negative correlate 1); two unrelated
    photos correlate about 0.1.

    Parameters
    ----------
    image_a, image_b : array_like, shape (S, S, 3) or (S, S)
    res : int

    Returns
    -------
    float

    Examples
    --------
    >>> image = np.random.default_rng(0).uniform(size=(64, 64, 3))
    >>> round(layout_correlation(image, 1 - image), 6)
    1.0
    """
    a, b = edge_layout(image_a, res), edge_layout(image_b, res)
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _visualizations(images, name, value_range):
    """``images`` (numpy or tf) as float32 (N, H, W, 3) in [0, 1], checked."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        raise ValueError(f"{name} must be a batch (N, H, W, 3); got one image of shape {images.shape}: add a first axis")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, H, W, 3); got {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{name} is empty")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low; got {value_range!r}")
    return (images - low) / (high - low)


def _pairs(images_a, images_b, value_range):
    a = _visualizations(images_a, "images_a", value_range)
    b = _visualizations(images_b, "images_b", value_range)
    if a.shape != b.shape:
        raise ValueError(f"images_a and images_b must pair up: shapes {a.shape} and {b.shape}")
    return a, b


def _embed(base_model, layer, images, batch_size):
    """Activations (N, ...) of ``base_model`` at ``layer`` for [0, 1] images, fed as [0, 255]."""
    from ..activations import activations

    return activations(base_model, [layer], images * 255.0, batch_size=batch_size)[layer].astype(np.float64)


def visualization_similarity(base_model, layer, images_a, images_b, value_range=(0.0, 1.0), batch_size=32):
    """Cosine similarity of each pair of visualizations, embedded by a base model at a layer.

    Parameters
    ----------
    base_model : keras.Model
        A model taking float32 RGB in [0, 255] (every zoo model).
    layer : str
        The layer whose (flattened) output embeds an image.
    images_a, images_b : array_like, shape (N, H, W, 3)
        Visualizations to compare pairwise, ``images_a[i]`` with ``images_b[i]``.
    value_range : (float, float)
        The range of the visualizations' values, mapped to [0, 255].
    batch_size : int

    Returns
    -------
    ndarray of float64, shape (N,)
        In [-1, 1]; 1 for identical images, NaN where an embedding is all zero.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights="hed", include_top=False)  # doctest: +SKIP
    >>> visualization_similarity(model, "block4_conv3", vis_seed0, vis_seed1)  # doctest: +SKIP
    array([0.61, 0.87, ...])
    """
    a, b = _pairs(images_a, images_b, value_range)
    ea = _embed(base_model, layer, a, batch_size).reshape(len(a), -1)
    eb = _embed(base_model, layer, b, batch_size).reshape(len(b), -1)
    norms = np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, np.einsum("ij,ij->i", ea, eb) / np.where(norms > 0, norms, 1.0), np.nan)


def normalized_grams(features):
    """Normalised Gram (style) matrices of feature maps.

    ``G = F^T F / (h w)`` with ``F`` the (h w, c) matrix of an example's map, then divided by its
    Frobenius norm, so that ``||G||_F = 1`` (an all-zero map gives an all-zero matrix).

    Parameters
    ----------
    features : ndarray, shape (N, H, W, C)

    Returns
    -------
    ndarray of float64, shape (N, C, C)

    Examples
    --------
    >>> g = normalized_grams(np.ones((1, 2, 2, 3)))
    >>> round(float(np.linalg.norm(g[0])), 6)
    1.0
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 4:
        raise ValueError(f"Gram matrices need spatial maps (N, H, W, C); got shape {features.shape}")
    n, h, w, c = features.shape
    flat = features.reshape(n, h * w, c)
    grams = np.einsum("npi,npj->nij", flat, flat) / (h * w)
    norms = np.linalg.norm(grams, axis=(1, 2), keepdims=True)
    return grams / np.where(norms > 0, norms, 1.0)


def gram_distance(base_model, layer, images_a, images_b, value_range=(0.0, 1.0), batch_size=32):
    """Style distance of each pair of visualizations: their normalised Gram matrices at a layer.

    ``d = ||G_a - G_b||_F`` with ``G`` from :func:`normalized_grams` (``F^T F / (h w)`` divided by
    its Frobenius norm). 0 for identical images; at most ``sqrt(2)`` (Gram matrices are positive
    semi-definite, so ``<G_a, G_b> >= 0``). Use a ``<layer>_relu`` layer of the zoo for Gatys et
    al.'s rectified features.

    Parameters
    ----------
    base_model : keras.Model
        A model taking float32 RGB in [0, 255].
    layer : str
        A layer with spatial output (N, H, W, C).
    images_a, images_b : array_like, shape (N, H, W, 3)
        Visualizations to compare pairwise.
    value_range : (float, float)
        The range of the visualizations' values, mapped to [0, 255].
    batch_size : int

    Returns
    -------
    ndarray of float64, shape (N,)

    Examples
    --------
    >>> gram_distance(model, "block3_conv1_relu", vis_seed0, vis_seed1)  # doctest: +SKIP
    array([0.21, 0.08, ...])
    """
    a, b = _pairs(images_a, images_b, value_range)
    ga = normalized_grams(_embed(base_model, layer, a, batch_size))
    gb = normalized_grams(_embed(base_model, layer, b, batch_size))
    return np.linalg.norm(ga - gb, axis=(1, 2))


class DeadChannels(NamedTuple):
    """What :func:`dead_channels` returns."""

    indices: np.ndarray  #: indices of the dead visualizations
    scores: np.ndarray  #: (N,) standard deviation over pixels and colours; NaN if any value is
    flags: np.ndarray  #: (N,) bool, True for dead


def dead_channels(images, threshold=DEAD_THRESHOLD, value_range=(0.0, 1.0)):
    """Flag grey or flat visualizations, the mark of channels that never fire.

    The score of an image is the standard deviation of all its values (over pixels and colours,
    after mapping ``value_range`` to [0, 1]): 0 for a uniform image of any colour, low for a nearly
    flat one. An image is dead when its score is below ``threshold`` or it holds a NaN or an
    infinity (a failed optimisation).

    Parameters
    ----------
    images : array_like, shape (N, H, W, 3)
        Visualizations, one per channel.
    threshold : float
        Scores below this are dead.
    value_range : (float, float)
        The range of the values.

    Returns
    -------
    DeadChannels
        ``indices`` of the dead images, their ``scores`` and boolean ``flags``.

    Examples
    --------
    >>> grey = np.full((1, 8, 8, 3), 0.5)
    >>> noise = np.random.default_rng(0).uniform(size=(1, 8, 8, 3))
    >>> dead_channels(np.concatenate([grey, noise])).indices
    array([0])
    """
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a non-negative number; got {threshold!r}")
    images = _visualizations(images, "images", value_range).astype(np.float64)
    flat = images.reshape(len(images), -1)
    finite = np.isfinite(flat).all(axis=1)
    scores = np.where(finite, np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0).std(axis=1), np.nan)
    flags = ~finite | (np.nan_to_num(scores, nan=0.0) < threshold)
    return DeadChannels(np.flatnonzero(flags), scores, flags)


def write_dead_csv(path, names, scores, flags):
    """Write dead-channel verdicts as CSV (columns ``name,score,dead``), atomically.

    Parameters
    ----------
    path : str or Path
    names : sequence of str
        One per visualization, e.g. ``"block4_conv3:12"``.
    scores, flags : sequence
        From :func:`dead_channels`; a NaN score is written as ``nan``.

    Returns
    -------
    Path

    Examples
    --------
    >>> found = dead_channels(visualizations)                                  # doctest: +SKIP
    >>> write_dead_csv("out/dead.csv", names, found.scores, found.flags)       # doctest: +SKIP
    """
    from ..fileio import write_text

    names, scores, flags = list(names), list(scores), list(flags)
    if not len(names) == len(scores) == len(flags):
        raise ValueError(f"names, scores and flags must have one entry each: got {len(names)}, {len(scores)}, {len(flags)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "score", "dead"])
    for name, score, flag in zip(names, scores, flags):
        writer.writerow([name, f"{float(score):.6g}", int(bool(flag))])
    return write_text(path, buffer.getvalue())
