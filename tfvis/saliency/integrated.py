"""Integrated Gradients (Sundararajan et al. 2017), with its integration rules.

The attribution of input ``x`` against a baseline ``x'`` is ``(x - x') * mean_alpha dS/dI(x' + alpha (x - x'))``,
the mean taken by a quadrature rule (:data:`RULES`) over points of the straight path. Its
attributions sum, over pixels and channels, to ``S(x) - S(x')`` up to the rule's error
(completeness).

The path is built, differentiated and summed inside one compiled function
(:func:`path_function`, graph code in :func:`path_gradient_sum`), which SmoothGrad also calls on
its noisy copies (:func:`tfvis.saliency.smoothgrad` with ``method="integrated"``). The gradient
along the path may be any gradient method of :mod:`.gradient` (``gradient="guided"``...).
"""

import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached
from .gradient import backward_method, check_reduce, image_spec, input_gradients, reduce_channels, row_specs, setup, target_net
from .methods import Attribution

#: Integration rules of :func:`integrated_gradients`.
RULES = ("trapezoid", "midpoint")


def path_points(steps, rule="trapezoid"):
    """``(alphas, weights)``: the path points and their quadrature weights.

    Parameters
    ----------
    steps : int
        Intervals of the path.
    rule : {"trapezoid", "midpoint"}
        Riemann trapezoid rule (``steps + 1`` points ``k / steps``, end points weighted 1/2) or
        midpoint rule (``steps`` points ``(k + 1/2) / steps``).

    Returns
    -------
    alphas : ndarray, float32, shape (P,)
    weights : ndarray, float64, shape (P,)
        They sum to 1.

    Examples
    --------
    >>> alphas, weights = path_points(2)
    >>> alphas.tolist(), weights.tolist()
    ([0.0, 0.5, 1.0], [0.25, 0.5, 0.25])
    >>> path_points(2, "midpoint")[0].tolist()
    [0.25, 0.75]
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    if rule not in RULES:
        raise ValueError(f"rule={rule!r}; use one of: {', '.join(RULES)}")
    steps = int(steps)
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
    else:
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    return alphas.astype(np.float32), weights


def baselines_for(images, baseline):
    """One baseline per image: zeros for None, else ``baseline`` broadcast to ``images``' shape (float32)."""
    if baseline is None:
        return np.zeros_like(images)
    return np.broadcast_to(np.asarray(baseline, np.float32), images.shape).astype(np.float32)


def path_gradient_sum(net, target, images, baselines, alphas, weights, channels, positions):
    """``sum_k weights_k dS/dI(x' + alphas_k (x - x'))`` per image, float64 (graph code).

    ``images`` and ``baselines`` are ``(n, H, W, C)``, ``alphas`` (P,) and ``weights`` (P,)
    float64; ``channels`` and ``positions`` have one row per image. All ``n * P`` path points go
    through ``net`` at once.
    """
    rank = images.shape.rank
    n, points = tf.shape(images)[0], tf.shape(alphas)[0]
    size = tf.shape(images)[1:]
    delta = images - baselines
    alphas = tf.reshape(alphas, [1, -1] + [1] * (rank - 1))
    path = tf.reshape(baselines[:, None] + alphas * delta[:, None], tf.concat([[-1], size], 0))
    grads, _ = input_gradients(net, target, path, tf.repeat(channels, points), tf.repeat(positions, points, axis=0))
    grads = tf.cast(tf.reshape(grads, tf.concat([[n, points], size], 0)), tf.float64)
    return tf.tensordot(weights, grads, axes=[[0], [1]])


def path_attributions(net, target, images, baselines, alphas, weights, channels, positions):
    """The Integrated Gradients attributions ``(x - x') * path_gradient_sum``, float32 (graph code)."""
    total = path_gradient_sum(net, target, images, baselines, alphas, weights, channels, positions)
    return tf.cast(tf.cast(images - baselines, tf.float64) * total, tf.float32)


def path_function(model, target, method="gradient"):
    """Compiled ``(images, baselines, alphas, weights, channels, positions) -> path_gradient_sum``.

    One per (prepared model, target key, backward method), kept by :func:`tfvis.graph.cached`.
    A subset of the path points may be passed: the sums of disjoint subsets add up.
    """

    def build():
        net = target_net(model, target, method)
        spec = image_spec(model)
        points = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float64)]

        @tf.function(input_signature=[spec, spec] + points + row_specs(target))
        def run(images, baselines, alphas, weights, channels, positions):
            return path_gradient_sum(net, target, images, baselines, alphas, weights, channels, positions)

        return run

    return cached(model, ("saliency.integrated", method) + target.key, build)


def integrated_attribution(model, net, target, steps=64, rule="trapezoid", gradient="vanilla"):
    """SmoothGrad's view of Integrated Gradients (:class:`tfvis.saliency.methods.Attribution`): per row, from its reference.

    The path points are constants of the graph; each row's path runs from its reference (the
    baseline, never noised) to the row.
    """
    backward = backward_method(gradient)
    alphas, weights = path_points(steps, rule)

    def build():
        path_net = target_net(net, target, backward)
        points = tf.constant(alphas), tf.constant(weights, tf.float64)

        def attribute(rows, references, channels, positions):
            return path_attributions(path_net, target, rows, references, *points, channels, positions)

        return attribute

    return Attribution(("integrated", backward, int(steps), rule), build, rows=len(alphas))


def integrated_gradients(
    model, images, target, baseline=None, steps=64, reduce="max", batch_size=16, rule="trapezoid", gradient="vanilla"
):
    """Integrated Gradients (Sundararajan et al. 2017): ``(x - x') * mean_alpha dS/dI(x' + alpha (x - x'))``.

    The attributions sum, over pixels and channels, to ``S(x) - S(x')`` up to the integration
    error of the rule (completeness).

    Parameters
    ----------
    model, images, target
        As in :func:`tfvis.saliency.vanilla`.
    baseline : None, float or ndarray
        The reference image ``x'``: None is the black image (zeros in the model's input space);
        a scalar, one image (H, W, C) for all, or one per image (N, H, W, C).
    steps : int
        Intervals of the path.
    reduce : {"max", "sum", None}
        ``"max"``: ``max_c |a|`` (N, H, W); ``"sum"``: the signed sum over channels (N, H, W);
        None: the raw attributions (N, H, W, C).
    batch_size : int
        Path points per compiled call. The whole paths of ``batch_size // points`` images go
        through one call when ``batch_size`` allows; otherwise one image's path is spread over
        consecutive calls of ``batch_size`` points.
    rule : {"trapezoid", "midpoint"}
        See :func:`path_points`.
    gradient : {"vanilla", "gradient", "guided", "deconvnet"}
        The gradient taken along the path (:data:`tfvis.saliency.gradient.BACKWARD_RULES`); completeness
        holds for the plain gradient only.

    Returns
    -------
    Maps or ndarray, float32
        Maps (N, H, W) for ``reduce="max"`` or ``"sum"``; the attributions (N, H, W, C) for None
        (without the leading axis for one image).

    Examples
    --------
    >>> a = integrated_gradients(model, photos, 281, reduce=None)  # doctest: +SKIP
    >>> a.sum(axis=(1, 2, 3))  # ~ score(model, photos, 281) - score(model, 0 * photos, 281)  # doctest: +SKIP
    """
    alphas, weights = path_points(steps, rule)
    check_reduce(reduce)
    backward = backward_method(gradient)
    images, single, net, rows = setup(model, images, target, batch_size)
    baselines = baselines_for(images, baseline)
    run = path_function(net, rows.target, backward)
    batch_size, points = int(batch_size), len(alphas)
    per_call = max(batch_size // points, 1)  # images whose whole paths fit in one call
    parts = [slice(None)] if points <= batch_size else [slice(k, k + batch_size) for k in range(0, points, batch_size)]
    result = np.zeros(images.shape, np.float32)
    for start in range(0, len(images), per_call):
        group = slice(start, start + per_call)
        x, x0 = tf.constant(images[group]), tf.constant(baselines[group])
        channels, positions = rows.tensors(group)
        total = sum(run(x, x0, tf.constant(alphas[p]), tf.constant(weights[p]), channels, positions).numpy() for p in parts)
        result[group] = ((images[group] - baselines[group]) * total).astype(np.float32)
    out = reduce_channels(result, reduce)
    out = out[0] if single else out
    return out if reduce is None else as_maps(out)


__all__ = [
    "RULES",
    "baselines_for",
    "integrated_attribution",
    "integrated_gradients",
    "path_attributions",
    "path_function",
    "path_gradient_sum",
    "path_points",
]
