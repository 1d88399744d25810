"""Faithfulness of saliency maps: deletion and insertion curves (Petsiuk et al. 2018) and MuFidelity (Bhatt et al. 2020).

A map claims that some pixels matter more than others for the target's score; these metrics
perturb the image where the map points and watch the score.

**Deletion** (:func:`deletion_auc`, RISE paper section 4) ranks the pixels by the map (largest
first) and replaces them with a baseline, ``steps`` equal steps from none to all of them,
scoring the target after each step. A faithful map makes the score fall fast: a *low* area under
the curve of the score against the fraction of pixels removed.

**Insertion** (:func:`insertion_auc`) starts from a blurred copy of the image (the paper's
default, :func:`gaussian_blur`) and puts the pixels back in the same order: a faithful map makes
the score rise fast, a *high* area.

Both areas are taken by the trapezoid rule over the fraction of pixels in [0, 1]; step ``k`` of
``steps`` changes the ``round(k P / steps)`` first pixels of the ranking (``P = H W``; ties in
the map are broken by pixel order, row-major), so the last step changes every pixel.

**MuFidelity** (:func:`mu_fidelity`, as xplique's ``MuFidelity``) cuts the image into a
``grid x grid`` grid of cells, sets random subsets of ``round(subset_fraction grid^2)`` cells to
the baseline, and correlates (Pearson, over ``samples`` subsets) the sum of the map over the
subset with the drop of the score ``S(x) - S(x_subset)``. A pixel ``(y, x)`` belongs to cell
``(floor(y grid / H), floor(x grid / W))``; cells differ by a pixel per side where ``grid`` does
not divide the image, and then even a constant map correlates a little with the drops (more
pixels removed, a larger drop): choose a ``grid`` that divides the side where it matters. For a
linear score and Gradient x Input with a zero baseline the correlation is exactly 1. The subsets
come from ``np.random.default_rng(seed)`` and are the same for every image. Unlike xplique 2's
``MuFidelity``, whose subsets have a random size (each cell with probability
``subset_percent``), every subset has the same number of cells: with a random size the map's sum
and the drop both grow with the size, and a constant map scores about 0.6 on VGG16 (measured in
``benchmarks/faithfulness.py``).

**Scores.** The paper scores the class probability: ``score="probability"`` is the softmax over
the logits (:func:`tfvis.targets.logits_layer`) of the target class, ``score="logit"`` the logit
itself. Targets that are not classes (``"layer:channel"``: the channel's mean,
``"layer:channel@y,x"``: one unit) are scored raw whatever ``score`` says.

**Baselines** (what replaces a pixel), in the model's input space:

=============  ================================================================================
``"zero"``     the image the model's preprocessing maps to zeros: its mean colour
               (:attr:`tfvis.models.info.ModelInfo.mean_rgb`, e.g. VGG16's ImageNet mean), 0 for
               a model that declares no preprocessing; the paper's zeros of a normalised input
``"black"``    the low end of the input range (:attr:`~tfvis.models.info.ModelInfo.value_range`)
``"mean"``     each image's own mean colour
``"blur"``     each image blurred (:func:`gaussian_blur`, ``sigma`` :data:`BLUR_SIGMA` pixels)
a number       that value everywhere
an array       a colour (C,), one image (H, W, C) or one per image (N, H, W, C)
=============  ================================================================================

Deletion and MuFidelity default to ``"zero"``, insertion to ``"blur"``.

**Batching.** Every perturbed copy is built inside one compiled function per (prepared model,
target, score) from the images, their baselines and a boolean mask per copy; copies of several
images share a call, ``batch_size`` copies at a time, and the masks are computed per chunk with
NumPy from the pixels' ranks (or the subsets' cells), so nothing loops over pixels.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ..graph import cached
from ..models.info import model_info
from ..targets import apply_head
from .gradient import check_batch_size, image_spec, row_specs, setup, target_net, target_scores
from .methods import METHODS as METHOD_TABLE
from .methods import method as saliency_method

#: The metrics of :func:`faithfulness_table`, by name.
METRICS = ("deletion", "insertion", "mu_fidelity")
#: Titles of the metrics on pages and tables, with which way is better.
METRIC_TITLES = {
    "deletion": "Deletion AUC (lower is better)",
    "insertion": "Insertion AUC (higher is better)",
    "mu_fidelity": "MuFidelity (higher is better)",
}
#: Values of MuFidelity's ``correlation`` argument: Bhatt et al.'s Pearson, or Spearman's (xplique 2's).
CORRELATIONS = ("pearson", "spearman")
#: Values of the ``score`` argument.
SCORES = ("probability", "logit")
#: Named baselines (see the module docstring).
BASELINES = ("zero", "black", "mean", "blur")
#: Standard deviation, in pixels, of the insertion's blur (the RISE authors' sigma, at 224 px).
BLUR_SIGMA = 5.0
#: Steps of the deletion and insertion curves by default (2% of the pixels per step).
STEPS = 50
#: MuFidelity's defaults: grid cells per side, fraction of the cells per subset, subsets per image.
GRID, SUBSET_FRACTION, SAMPLES = 9, 0.2, 128


@dataclass(frozen=True)
class Curves:
    """Deletion or insertion curves of a batch of images and their areas.

    Attributes
    ----------
    metric : str
        ``"deletion"`` or ``"insertion"``.
    values : ndarray, float64, shape (N,)
        The area under each image's curve (trapezoid rule over ``fractions``).
    fractions : ndarray, float64, shape (steps + 1,)
        The fraction of pixels changed at each step, 0 to 1.
    scores : ndarray, float32, shape (N, steps + 1)
        The target's score at each step.
    """

    metric: str
    values: np.ndarray
    fractions: np.ndarray
    scores: np.ndarray

    @property
    def auc(self):
        """The areas under the curves, :attr:`values`."""
        return self.values


@dataclass(frozen=True)
class Fidelity:
    """MuFidelity of a batch of images, with what it correlates.

    Attributes
    ----------
    metric : str
        ``"mu_fidelity"``.
    values : ndarray, float64, shape (N,)
        Each image's Pearson correlation between :attr:`attributions` and :attr:`drops` (NaN
        where either is constant).
    attributions : ndarray, float64, shape (N, samples)
        The sum of the map over each subset.
    drops : ndarray, float64, shape (N, samples)
        ``S(x) - S(x with the subset set to the baseline)``.
    """

    metric: str
    values: np.ndarray
    attributions: np.ndarray
    drops: np.ndarray


@dataclass(frozen=True)
class FaithfulnessRow:
    """One line of :func:`faithfulness_table`' table: a method's values of one metric.

    Attributes
    ----------
    method : str
        The method's name (a key of :data:`tfvis.saliency.methods.METHODS`, or of the maps given).
    metric : str
        One of :data:`METRICS`.
    mean : float
        The mean of :attr:`values` over the images where it is defined (NaN where none is).
    values : ndarray, float64, shape (N,)
        Each image's value.
    """

    method: str
    metric: str
    mean: float
    values: np.ndarray


# --------------------------------------------------------------------------------------------
# Checks and baselines
# --------------------------------------------------------------------------------------------


def check_metrics(metrics):
    """``metrics`` (a name, ``"all"``, or a sequence of names) as a tuple; ``ValueError`` naming the valid ones."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if names == ["all"]:
        return METRICS
    bad = [name for name in names if name not in METRICS]
    if bad or not names:
        raise ValueError(f"unknown metric {', '.join(map(repr, bad)) or '(none)'}; choose from: {', '.join(METRICS)}, all")
    return tuple(dict.fromkeys(names))


def _check_score(score):
    if score not in SCORES:
        raise ValueError(f"score={score!r}; choose one of: {', '.join(SCORES)}")
    return score


def _check_steps(steps):
    if isinstance(steps, bool) or int(steps) != steps or int(steps) < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    return int(steps)


def check_maps(maps, images, single):
    """``maps`` as float64 (N, H, W) fitting ``images`` (N, H, W, C); ``ValueError`` saying what is wrong."""
    maps = np.asarray(maps, np.float64)
    if single and maps.ndim == 2:
        maps = maps[None]
    expected = images.shape[:3]
    if maps.shape != expected:
        raise ValueError(
            f"maps of shape {maps.shape} do not fit images of shape {images.shape}; give one map (H, W) per "
            f"image, shape {expected}"
        )
    if not np.all(np.isfinite(maps)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(maps))[:, 0]})
        raise ValueError(f"maps of images {bad} hold NaN or inf values")
    return maps


def gaussian_blur(images, sigma=BLUR_SIGMA):
    """Each image blurred by a normalised Gaussian of ``sigma`` pixels, separable, edges reflected.

    The kernel spans ``2 * ceil(sigma) + 1`` pixels per side: 11 for the default, the size and
    sigma of the RISE authors' kernel, which they crop from a wider Gaussian without
    renormalising (it darkens the image); this one sums to 1, so a flat image stays flat.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, C)
    sigma : float
        Standard deviation in pixels; 0 returns the images unchanged.

    Returns
    -------
    ndarray, float32, shape (N, H, W, C)

    Examples
    --------
    >>> flat = np.full((1, 6, 6, 3), 7.0)
    >>> bool(np.allclose(gaussian_blur(flat, 2.0), 7.0))
    True
    """
    images = np.asarray(images, np.float64)
    sigma = float(sigma)
    if sigma < 0:
        raise ValueError(f"sigma must be at least 0; got {sigma}")
    if sigma == 0:
        return images.astype(np.float32)
    radius = int(np.ceil(sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    out = images
    for axis in (1, 2):
        size = out.shape[axis]
        index = np.arange(size)[:, None] + offsets[None]  # (size, taps)
        index = np.abs(index)  # reflect at 0 (without repeating the edge)
        index = np.where(index > size - 1, 2 * (size - 1) - index, index)
        index = np.clip(index, 0, size - 1)  # images narrower than the kernel
        gathered = np.take(out, index, axis=axis)  # (..., size, taps, ...)
        out = np.tensordot(gathered, kernel, axes=([axis + 1], [0]))
    return out.astype(np.float32)


def baseline_images(model, images, baseline, sigma=BLUR_SIGMA):
    """What replaces the pixels of each image: ``baseline`` (see the module docstring) shaped like ``images``.

    Parameters
    ----------
    model : keras.Model
        Read for ``"zero"`` (its preprocessing's mean) and ``"black"`` (its input range).
    images : ndarray, shape (N, H, W, C)
    baseline : {"zero", "black", "mean", "blur"}, float or ndarray
        A name, a number, a colour (C,), one image (H, W, C) or one per image (N, H, W, C).
    sigma : float
        The blur of ``"blur"``, in pixels.

    Returns
    -------
    ndarray, float32, shape (N, H, W, C)

    Raises
    ------
    ValueError
        An unknown name (the message lists the valid ones), an array that does not fit the
        images, non-finite values.
    """
    if isinstance(baseline, str):
        if baseline == "zero":
            fill = model_info(model).mean_image(images.shape[1:])
        elif baseline == "black":
            fill = np.float32(model_info(model).value_range[0])
        elif baseline == "mean":
            fill = images.mean(axis=(1, 2), keepdims=True)
        elif baseline == "blur":
            fill = gaussian_blur(images, sigma)
        else:
            raise ValueError(f"baseline={baseline!r}; use one of {', '.join(map(repr, BASELINES))}, a number or an array")
        return np.broadcast_to(np.asarray(fill, np.float32), images.shape).astype(np.float32)
    try:
        if baseline is None:
            raise ValueError("no baseline")
        value = np.asarray(baseline, np.float32)
        if value.ndim not in (0, 1, images.ndim - 1, images.ndim):
            raise ValueError(f"a baseline of rank {value.ndim}")
        filled = np.broadcast_to(value, images.shape).astype(np.float32)
    except (TypeError, ValueError):
        raise ValueError(
            f"baseline of shape {np.shape(baseline)} does not fit images of shape {images.shape}; use "
            f"{', '.join(map(repr, BASELINES))}, a number, a colour (C,), one image (H, W, C) or one per image (N, H, W, C)"
        ) from None
    if not np.all(np.isfinite(filled)):
        raise ValueError("baseline holds NaN or inf values")
    return filled


# --------------------------------------------------------------------------------------------
# Scoring perturbed copies
# --------------------------------------------------------------------------------------------


def _score_kind(target, score):
    """``"probability"`` for a class target scored by probability, else ``"raw"`` (the target's own score)."""
    return "probability" if _check_score(score) == "probability" and target.kind == "class" else "raw"


def perturbed_score_function(model, target, score="probability"):
    """Compiled scores of perturbed copies: ``(sources, replacements, owners, masks, channels, positions) -> S``.

    Row ``r`` is image ``owners[r]`` of ``sources`` with the pixels where ``masks[r]`` is True
    taken from the same image of ``replacements``; ``S`` is the target's probability (a class
    target with ``score="probability"``) or its score. One per (prepared ``model``, score kind,
    target key), kept by :func:`tfvis.graph.cached`.
    """
    kind = _score_kind(target, score)

    def probability(act, channels, positions):
        probabilities = tf.nn.softmax(apply_head(act, target.head), axis=-1)
        return tf.gather(probabilities, channels, axis=1, batch_dims=1)

    def raw(act, channels, positions):
        return target_scores(act, target, channels, positions)

    def build():
        net = target_net(model, target, "gradient")
        spec = image_spec(model)
        masks_spec = tf.TensorSpec([None] + list(spec.shape[1:3]), tf.bool)
        read = probability if kind == "probability" else raw

        @tf.function(input_signature=[spec, spec, tf.TensorSpec([None], tf.int32), masks_spec] + row_specs(target))
        def score_copies(sources, replacements, owners, masks, channels, positions):
            copies = tf.where(masks[..., None], tf.gather(replacements, owners), tf.gather(sources, owners))
            return read(net(copies, training=False), channels, positions)

        return score_copies

    return cached(model, ("saliency.faithfulness", kind) + target.key, build)


def _score_copies(run, sources, replacements, rows, copies, masks_of, batch_size, desc, progress):
    """Scores (N * copies,) of ``copies`` perturbed copies per image, row-major, ``batch_size`` per call.

    ``masks_of(owners, which)`` gives the boolean masks (B, H, W) of the rows ``(image, copy)``.
    """
    n = len(sources)
    owners, which = np.divmod(np.arange(n * copies), copies)
    copy_rows = rows.repeat(copies)
    out = np.zeros(n * copies, np.float32)
    with tqdm(total=n * copies, desc=desc, unit="copy", disable=not progress) as bar:
        for start in range(0, n * copies, batch_size):
            part = slice(start, start + batch_size)
            first, last = owners[part][0], owners[part][-1] + 1  # the images this call needs
            out[part] = run(
                tf.constant(sources[first:last]),
                tf.constant(replacements[first:last]),
                tf.constant((owners[part] - first).astype(np.int32)),
                tf.constant(masks_of(owners[part], which[part])),
                *copy_rows.tensors(part),
            ).numpy()
            bar.update(len(owners[part]))
    return out.reshape(n, copies)


# --------------------------------------------------------------------------------------------
# Deletion and insertion
# --------------------------------------------------------------------------------------------


def pixel_ranks(maps):
    """Each pixel's place in its map's ranking, largest value first (0), ties in row-major order; int64 (N, H, W)."""
    flat = np.asarray(maps).reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks.reshape(np.shape(maps))


def step_counts(pixels, steps):
    """Pixels changed after each step: ``round(k * pixels / steps)`` for ``k = 0..steps`` (halves up), int64.

    Examples
    --------
    >>> step_counts(10, 4).tolist()
    [0, 3, 5, 8, 10]
    """
    k = np.arange(steps + 1, dtype=np.int64)
    return (2 * k * pixels + steps) // (2 * steps)


def trapezoid_auc(fractions, scores):
    """The area under ``scores`` (..., K) over ``fractions`` (K,) by the trapezoid rule, float64."""
    fractions, scores = np.asarray(fractions, np.float64), np.asarray(scores, np.float64)
    return ((scores[..., 1:] + scores[..., :-1]) * np.diff(fractions) / 2).sum(axis=-1)


def _curves(metric, model, images, maps, target, steps, baseline, score, batch_size, progress):
    steps = _check_steps(steps)
    _check_score(score)
    batch_size = check_batch_size(batch_size)
    images, single, net, rows = setup(model, images, target, batch_size)
    maps = check_maps(maps, images, single)
    filled = baseline_images(model, images, baseline)
    # deletion moves pixels from the image to the baseline, insertion from the baseline to the image
    sources, replacements = (images, filled) if metric == "deletion" else (filled, images)
    ranks = pixel_ranks(maps)
    counts = step_counts(ranks[0].size, steps)

    def masks_of(owners, which):
        return ranks[owners] < counts[which][:, None, None]

    run = perturbed_score_function(net, rows.target, score)
    scores = _score_copies(run, sources, replacements, rows, steps + 1, masks_of, batch_size, metric, progress)
    fractions = counts / ranks[0].size
    values = trapezoid_auc(fractions, scores)
    return Curves(metric, values, fractions, scores)


def deletion_auc(model, images, maps, target, steps=STEPS, baseline="zero", score="probability", batch_size=16, progress=False):
    """Deletion (Petsiuk et al. 2018): the area under the score as the map's pixels are replaced, most salient first.

    Parameters
    ----------
    model : keras.Model
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo).
    maps : ndarray, shape (N, H, W) or (H, W)
        One saliency map per image; larger values are removed first.
    target : int, str or list
        A target of :mod:`tfvis.targets` with a class, channel or unit, or one per image.
    steps : int
        Equal steps from no pixel to every pixel replaced (``steps + 1`` scores per image).
    baseline : {"zero", "black", "mean", "blur"}, float or ndarray
        What replaces the pixels (see the module docstring); ``"zero"``: the image the model's
        preprocessing maps to zeros (the ImageNet mean for the zoo).
    score : {"probability", "logit"}
        A class target's softmax probability (the paper's) or its logit; other targets are
        scored raw.
    batch_size : int
        Perturbed copies per compiled call.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Curves
        ``values`` (the areas, lower is more faithful), ``fractions`` and ``scores``; one row
        per image (one for a single image).

    Raises
    ------
    ValueError
        Maps that do not fit the images, an unknown baseline or score, ``steps`` below 1; the
        errors of :func:`tfvis.saliency.vanilla`.

    Examples
    --------
    >>> curves = deletion_auc(model, photos, vanilla(model, photos, 281), 281)  # doctest: +SKIP
    >>> curves.values.mean()                                                   # doctest: +SKIP
    """
    return _curves("deletion", model, images, maps, target, steps, baseline, score, batch_size, progress)


def insertion_auc(model, images, maps, target, steps=STEPS, baseline="blur", score="probability", batch_size=16, progress=False):
    """Insertion (Petsiuk et al. 2018): the area under the score as the map's pixels are put back into a blurred image.

    The image starts as the ``baseline`` (default: blurred, :func:`gaussian_blur`) and gets its
    own pixels back, most salient first, in ``steps`` equal steps. The parameters, returns and
    errors are those of :func:`deletion_auc`; a *higher* area is more faithful.

    Examples
    --------
    >>> insertion_auc(model, photos, maps, 281, steps=100).values  # doctest: +SKIP
    """
    return _curves("insertion", model, images, maps, target, steps, baseline, score, batch_size, progress)


# --------------------------------------------------------------------------------------------
# MuFidelity
# --------------------------------------------------------------------------------------------


def grid_cells(size, grid):
    """The grid cell of each pixel of an image of ``size`` (H, W): ``floor(y grid / H) * grid + floor(x grid / W)``, (H, W) int64."""
    height, width = size
    rows = np.arange(height) * grid // height
    cols = np.arange(width) * grid // width
    return rows[:, None] * grid + cols[None]


def random_subsets(grid, subset_fraction=SUBSET_FRACTION, samples=SAMPLES, seed=0):
    """MuFidelity's subsets: ``samples`` rows of ``grid^2`` booleans, each with ``round(subset_fraction grid^2)`` (at least 1) True.

    Drawn by ``np.random.default_rng(seed)``: the same subsets for a seed on every machine.

    Examples
    --------
    >>> random_subsets(3, 0.34, 4).sum(axis=1).tolist()
    [3, 3, 3, 3]
    """
    cells = int(grid) ** 2
    size = max(1, int(np.floor(subset_fraction * cells + 0.5)))
    order = np.argsort(np.random.default_rng(int(seed)).random((int(samples), cells)), axis=1)
    chosen = np.zeros((int(samples), cells), bool)
    np.put_along_axis(chosen, order[:, :size], True, axis=1)
    return chosen


def average_ranks(values):
    """The ranks (1 to K) of each row of ``values`` (N, K), tied values sharing their mean rank (float64)."""
    values = np.asarray(values, np.float64)
    rows = values.reshape(-1, values.shape[-1])
    ranks = np.empty_like(rows)
    for row, (row_values, row_order) in enumerate(zip(rows, np.argsort(rows, axis=-1, kind="stable"))):
        ordered = row_values[row_order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first place of each run of ties
        ends = np.r_[starts[1:], len(ordered)]
        ranks[row, row_order] = np.repeat((starts + ends + 1) / 2, ends - starts)  # ranks starts+1..ends, averaged
    return ranks.reshape(values.shape)


def pearson(a, b):
    """Pearson correlation of the rows of ``a`` and ``b`` (N, K), float64; NaN where a row is constant."""
    a = np.asarray(a, np.float64) - np.mean(a, axis=-1, keepdims=True)
    b = np.asarray(b, np.float64) - np.mean(b, axis=-1, keepdims=True)
    norm = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(-1) / np.where(norm > 0, norm, 1), np.nan)


def _check_fidelity(grid, subset_fraction, samples, size, correlation):
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation={correlation!r}; choose one of: {', '.join(CORRELATIONS)}")
    if isinstance(grid, bool) or int(grid) != grid or not 1 <= int(grid) <= min(size):
        raise ValueError(f"grid must be an int from 1 to the image's side {min(size)}; got {grid!r}")
    if not 0 < float(subset_fraction) < 1:
        raise ValueError(f"subset_fraction must be in the open interval (0, 1); got {subset_fraction!r}")
    if isinstance(samples, bool) or int(samples) != samples or int(samples) < 2:
        raise ValueError(f"samples must be an int of at least 2 (a correlation needs two points); got {samples!r}")


def mu_fidelity(
    model,
    images,
    maps,
    target,
    grid=GRID,
    subset_fraction=SUBSET_FRACTION,
    samples=SAMPLES,
    baseline="zero",
    score="probability",
    seed=0,
    batch_size=16,
    progress=False,
    correlation="pearson",
):
    """MuFidelity (Bhatt et al. 2020): the correlation of the map's sum over random subsets with the score's drop.

    Parameters
    ----------
    model, images, maps, target
        As in :func:`deletion_auc`.
    grid : int
        Cells per side of the grid the subsets are made of (:func:`grid_cells`).
    subset_fraction : float
        The fraction of the cells in each subset, in (0, 1).
    samples : int
        Subsets per image (at least 2), the same for every image (:func:`random_subsets`).
    baseline : {"zero", "black", "mean", "blur"}, float or ndarray
        What the subset's pixels are set to (see the module docstring).
    score : {"probability", "logit"}
        As in :func:`deletion_auc`.
    seed : int
        Seed of the subsets.
    batch_size : int
        Perturbed copies per compiled call.
    progress : bool
        Show a progress bar.
    correlation : {"pearson", "spearman"}
        Bhatt et al.'s Pearson correlation, or Spearman's rank correlation (ties averaged), which
        xplique 2 uses.

    Returns
    -------
    Fidelity
        ``values``: each image's correlation (higher is more faithful; NaN where the map's
        sums or the drops are constant), with the ``attributions`` and ``drops`` correlated.

    Raises
    ------
    ValueError
        Maps that do not fit the images; ``grid`` outside 1 to the image's side,
        ``subset_fraction`` outside (0, 1), ``samples`` below 2; an unknown baseline, score or
        correlation.

    Examples
    --------
    >>> mu_fidelity(model, photos, maps, 281, seed=1).values  # doctest: +SKIP
    """
    _check_score(score)
    batch_size = check_batch_size(batch_size)
    images, single, net, rows = setup(model, images, target, batch_size)
    maps = check_maps(maps, images, single)
    _check_fidelity(grid, subset_fraction, samples, images.shape[1:3], correlation)
    grid, samples = int(grid), int(samples)
    filled = baseline_images(model, images, baseline)
    cells = grid_cells(images.shape[1:3], grid)
    chosen = random_subsets(grid, subset_fraction, samples, seed)
    # copy 0 of each image is the image itself, copies 1.. its subsets
    copy_masks = np.concatenate([np.zeros((1, grid * grid), bool), chosen])[:, cells]  # (samples + 1, H, W)

    def masks_of(owners, which):
        return copy_masks[which]

    run = perturbed_score_function(net, rows.target, score)
    scores = _score_copies(run, images, filled, rows, samples + 1, masks_of, batch_size, "MuFidelity", progress)
    drops = scores[:, :1].astype(np.float64) - scores[:, 1:]
    cell_sums = np.zeros((len(maps), grid * grid))
    np.add.at(cell_sums, (slice(None), cells.reshape(-1)), maps.reshape(len(maps), -1))
    attributions = cell_sums @ chosen.T.astype(np.float64)
    if correlation == "spearman":
        values = pearson(average_ranks(attributions), average_ranks(drops))
    else:
        values = pearson(attributions, drops)
    return Fidelity("mu_fidelity", values, attributions, drops)


# --------------------------------------------------------------------------------------------
# Every method and metric
# --------------------------------------------------------------------------------------------


def _mean(values):
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def metric_values(
    metric,
    model,
    images,
    maps,
    target,
    steps=STEPS,
    score="probability",
    deletion_baseline="zero",
    insertion_baseline="blur",
    fidelity_baseline="zero",
    grid=GRID,
    subset_fraction=SUBSET_FRACTION,
    samples=SAMPLES,
    seed=0,
    batch_size=16,
    progress=False,
):
    """The :class:`Curves` or :class:`Fidelity` of one of :data:`METRICS` (its name checked), with each metric's options."""
    (metric,) = check_metrics([metric])
    if metric == "deletion":
        return deletion_auc(model, images, maps, target, steps, deletion_baseline, score, batch_size, progress)
    if metric == "insertion":
        return insertion_auc(model, images, maps, target, steps, insertion_baseline, score, batch_size, progress)
    return mu_fidelity(
        model, images, maps, target, grid, subset_fraction, samples, fidelity_baseline, score, seed, batch_size, progress
    )


def faithfulness_table(
    model,
    images,
    target,
    methods=("vanilla", "smoothgrad", "guided", "grad_cam"),
    metrics=METRICS,
    maps=None,
    method_options=None,
    steps=STEPS,
    score="probability",
    deletion_baseline="zero",
    insertion_baseline="blur",
    fidelity_baseline="zero",
    grid=GRID,
    subset_fraction=SUBSET_FRACTION,
    samples=SAMPLES,
    seed=0,
    batch_size=16,
    progress=False,
):
    """Each metric of each method's maps: a table of :class:`FaithfulnessRow`.

    Parameters
    ----------
    model, images, target
        As in :func:`deletion_auc`.
    methods : sequence of str
        Methods of :data:`tfvis.saliency.methods.METHODS`, whose maps are computed here, or names
        of ``maps``.
    metrics : sequence of str or "all"
        Of :data:`METRICS`.
    maps : dict of str to ndarray, optional
        Maps already computed, by method name (used instead of computing them; a name need not
        be in the table, e.g. ``"random"``).
    method_options : dict, optional
        Options of the methods (``{"samples": 25, "layer": "block5_conv3", "masks": 1000}``);
        each method reads those it takes. ``seed`` is added.
    steps, score, deletion_baseline, insertion_baseline, fidelity_baseline
        The curves' steps, the score and each metric's baseline (:func:`deletion_auc`,
        :func:`insertion_auc`, :func:`mu_fidelity`).
    grid, subset_fraction, samples, seed
        MuFidelity's (the seed also goes to the methods).
    batch_size : int
    progress : bool
        A progress bar over the methods.

    Returns
    -------
    list of FaithfulnessRow
        Method by method, metric by metric in the order given.

    Raises
    ------
    ValueError
        An unknown method (naming the table's) or metric (naming :data:`METRICS`); the errors of
        the metrics.

    Examples
    --------
    >>> rows = faithfulness_table(model, photos, 281, ["vanilla", "grad_cam"], ["deletion"])  # doctest: +SKIP
    >>> [(row.method, round(row.mean, 3)) for row in rows]                              # doctest: +SKIP
    """
    metrics = check_metrics(metrics)
    given = dict(maps or {})
    methods = [methods] if isinstance(methods, str) else list(methods)
    for name in methods:
        if name not in given:
            saliency_method(name)  # ValueError naming the table's methods
    if not methods:
        raise ValueError(f"no methods given; choose from: {', '.join(METHOD_TABLE)}")
    settings = {"seed": seed, **(method_options or {})}
    options = dict(
        steps=steps,
        score=score,
        deletion_baseline=deletion_baseline,
        insertion_baseline=insertion_baseline,
        fidelity_baseline=fidelity_baseline,
        grid=grid,
        subset_fraction=subset_fraction,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
    )
    table = []
    for name in tqdm(methods, desc="faithfulness", unit="method", disable=not progress):
        if name in given:
            method_maps = given[name]
        else:
            method_maps = saliency_method(name)(model, images, target, batch_size=batch_size, **settings)
        for metric in metrics:
            values = np.atleast_1d(metric_values(metric, model, images, np.asarray(method_maps), target, **options).values)
            table.append(FaithfulnessRow(name, metric, _mean(values), values))
    return table


def table_text(rows):
    """``rows`` of :func:`faithfulness_table` as a plain-text table of means, one line per method, one column per metric."""
    metrics = list(dict.fromkeys(row.metric for row in rows))
    methods = list(dict.fromkeys(row.method for row in rows))
    means = {(row.method, row.metric): row.mean for row in rows}
    width = max([len("method")] + [len(m) for m in methods])
    lines = ["  ".join([f"{'method':<{width}}"] + [f"{metric:>11}" for metric in metrics])]
    for name in methods:
        cells = [f"{means.get((name, metric), float('nan')):>11.4g}" for metric in metrics]
        lines.append("  ".join([f"{name:<{width}}"] + cells))
    return "\n".join(lines)


__all__ = [
    "BASELINES",
    "BLUR_SIGMA",
    "Curves",
    "FaithfulnessRow",
    "Fidelity",
    "METRICS",
    "METRIC_TITLES",
    "SCORES",
    "CORRELATIONS",
    "average_ranks",
    "baseline_images",
    "check_maps",
    "check_metrics",
    "deletion_auc",
    "faithfulness_table",
    "gaussian_blur",
    "grid_cells",
    "insertion_auc",
    "metric_values",
    "mu_fidelity",
    "pearson",
    "perturbed_score_function",
    "pixel_ranks",
    "random_subsets",
    "step_counts",
    "table_text",
    "trapezoid_auc",
]
