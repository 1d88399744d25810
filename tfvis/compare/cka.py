"""Centered kernel alignment (CKA): how similar two layers' representations are.

Kornblith, Norouzi, Lee & Hinton (2019) compare two representations of the same ``n`` examples,
activation matrices ``X`` (n x d1) and ``Y`` (n x d2), through their Gram matrices
``K = X X^T`` and ``L = Y Y^T`` (or RBF kernels)::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),   HSIC(K, L) = tr(K H L H) / (n - 1)^2

with ``H = I - 1 1^T / n``. CKA is 1 for identical representations, invariant to orthogonal
transforms and isotropic scaling of either, but not to general invertible linear maps. Linear CKA
also has a feature-space form, ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` with centred
columns, cheaper when the feature counts are small against ``n``.

The debiased variant replaces HSIC with Song et al.'s (2012) unbiased estimator::

    HSIC_1(K, L) = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3))

where ``K~``, ``L~`` are the Gram matrices with zeroed diagonals. Because it is unbiased, sums of
HSIC_1 over minibatches estimate the full-data value: Nguyen, Raghu & Kornblith (2021) accumulate
HSIC_1 of (K, L), (K, K), (L, L) batch by batch and divide at the end (:class:`MinibatchCKA`),
which :func:`model_cka` does for every pair of layers of two models in one pass over the data.

Everything is computed in float64, except the per-batch Gram matrices of :func:`model_cka`, which
TensorFlow forms in float32 from per-batch-centred activations (HSIC_1 of a linear kernel does
not change when the features are shifted by a constant vector, so centring is exact) and which
are then promoted to float64.
"""

import math
import sys
import warnings
from typing import NamedTuple

import numpy as np

#: Kernels of :func:`cka`: ``"rbf"`` sets the bandwidth as Kornblith et al.'s reference code does,
#: ``"rbf_pairs"`` from the median distance over the pairs ``i != j`` (see :func:`rbf_from_linear`).
KERNELS = ("linear", "rbf", "rbf_pairs")
_RBF = ("rbf", "rbf_pairs")
#: How :func:`cka` computes linear CKA: ``"auto"`` picks the cheaper of the two.
METHODS = ("auto", "gram", "feature")


# --------------------------------------------------------------------------------------------
# Inputs and kernels
# --------------------------------------------------------------------------------------------


def _features(x, name="x"):
    """``x`` (numpy or tf, shape (n, ...)) as a float64 (n, d) matrix, one row per example."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a first axis of examples; got a scalar")
    _check_finite(x, name)
    if x.ndim == 1:
        x = x[:, None]
    return x.reshape(len(x), -1)


def _check_finite(x, name):
    """Raise ValueError when ``x`` holds NaN or inf: one such value makes every CKA involving it NaN, silently."""
    bad = x.size - np.count_nonzero(np.isfinite(x))
    if bad:
        raise ValueError(
            f"{name} holds {bad} NaN or inf value(s) (of {x.size}); CKA needs finite activations "
            "(a diverged model, or images with NaN)"
        )


def _check_kernel(kernel, sigma):
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of: {', '.join(KERNELS)}")
    if kernel in _RBF and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number; got {sigma!r}")


def _check_n(n, debiased, what="examples"):
    if debiased and n < 4:
        raise ValueError(f"debiased HSIC needs at least 4 {what}; got {n}")
    if n < 2:
        raise ValueError(f"CKA needs at least 2 {what}; got {n}")


#: Gram matrices of at most this many examples are formed with single-threaded BLAS (see :func:`_blas_limit`).
SMALL_GRAM = 512
_CONTROLLER = []


def _blas_limit(n):
    """A context running NumPy's BLAS on one thread for a Gram matrix of ``n`` examples, when small.

    A batch-sized Gram matrix (few rows, many features) gains little from BLAS threads, and
    threaded OpenBLAS can stall for a second per product when the cores are shared (with
    TensorFlow's thread pool, or other jobs). Needs threadpoolctl; without it, a no-op.
    """
    import contextlib

    if n > SMALL_GRAM:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except ImportError:
            _CONTROLLER.append(None)
    controller = _CONTROLLER[0]
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


def gram_linear(x):
    """The linear kernel ``X X^T`` of a representation, one row per example.

    Parameters
    ----------
    x : array_like, shape (n, ...)
        Activations; each example is flattened.

    Returns
    -------
    ndarray of float64, shape (n, n)

    Examples
    --------
    >>> gram_linear(np.eye(2))
    array([[1., 0.],
           [0., 1.]])
    """
    x = _features(x)
    with _blas_limit(len(x)):
        return x @ x.T


def rbf_from_linear(gram, sigma=0.8, median="reference"):
    """The RBF kernel of a representation, given its linear Gram matrix.

    ``K_ij = exp(-d_ij^2 / (2 s^2))``, ``d_ij = ||x_i - x_j||``, with one of two bandwidths:

    * ``median="reference"`` (the default): ``s^2 = sigma^2 * median(d^2)``, the median taken over
      the whole n x n matrix of squared distances, its zero diagonal included. This is the
      ``gram_rbf(x, threshold)`` of Kornblith et al.'s CKA notebook (``threshold`` is ``sigma``),
      which their published figures and most ports use.
    * ``median="pairs"``: ``s = sigma * m``, ``m`` the median Euclidean distance over the pairs
      ``i != j`` (tfvis' definition before 0.2; the two differ in the third decimal of CKA).

    When the median is zero (e.g. all examples coincide) every entry is 1.

    Parameters
    ----------
    gram : ndarray, shape (n, n) or (layers, n, n)
        Linear Gram matrices ``X X^T``.
    sigma : float
        Bandwidth as a fraction of the median distance.
    median : {"reference", "pairs"}

    Returns
    -------
    ndarray of float64, the shape of ``gram``

    Examples
    --------
    >>> rbf_from_linear(gram_linear([[0.0], [1.0], [3.0]]), sigma=1.0, median="pairs").round(3)
    array([[1.   , 0.882, 0.325],
           [0.882, 1.   , 0.607],
           [0.325, 0.607, 1.   ]])
    >>> rbf_from_linear(gram_linear([[0.0], [1.0], [3.0]]), sigma=1.0).round(3)  # median of d^2: 1
    array([[1.   , 0.607, 0.011],
           [0.607, 1.   , 0.135],
           [0.011, 0.135, 1.   ]])
    """
    if median not in ("reference", "pairs"):
        raise ValueError(f"median={median!r}; choose 'reference' or 'pairs'")
    gram = np.asarray(gram, dtype=np.float64)
    single = gram.ndim == 2
    gram = gram[None] if single else gram
    n = gram.shape[-1]
    norms = np.einsum("lii->li", gram)
    sq = np.maximum(norms[:, :, None] + norms[:, None, :] - 2.0 * gram, 0.0)
    if median == "reference":
        width = 2.0 * sigma**2 * np.median(sq.reshape(len(sq), -1), axis=-1)
    else:
        off = ~np.eye(n, dtype=bool)
        distance = np.median(np.sqrt(sq[:, off]), axis=-1) if n > 1 else np.zeros(len(gram))
        width = 2.0 * (sigma * distance) ** 2
    width = np.where(width > 0, width, np.inf)  # coincident examples: exp(-0/inf) = 1 everywhere
    kernel = np.exp(-sq / width[:, None, None])
    return kernel[0] if single else kernel


def _kernel_grams(grams, kernel, sigma):
    """The Gram matrices of ``kernel`` from linear ones."""
    if kernel == "linear":
        return grams
    return rbf_from_linear(grams, sigma, "reference" if kernel == "rbf" else "pairs")


def gram_rbf(x, sigma=0.8, median="reference"):
    """The RBF kernel of a representation (Kornblith et al.'s ``gram_rbf(x, threshold=sigma)`` by default).

    See :func:`rbf_from_linear` for the two bandwidth definitions.

    Parameters
    ----------
    x : array_like, shape (n, ...)
    sigma : float
    median : {"reference", "pairs"}

    Returns
    -------
    ndarray of float64, shape (n, n)

    Examples
    --------
    >>> gram_rbf(np.random.default_rng(0).normal(size=(5, 3))).shape
    (5, 5)
    """
    return rbf_from_linear(gram_linear(x), sigma, median)


def center_gram(gram):
    """Double-centre a Gram matrix: ``H K H`` with ``H = I - 1 1^T / n``.

    Parameters
    ----------
    gram : ndarray, shape (n, n)

    Returns
    -------
    ndarray of float64, shape (n, n)

    Examples
    --------
    >>> center_gram(np.ones((3, 3)))
    array([[0., 0., 0.],
           [0., 0., 0.],
           [0., 0., 0.]])
    """
    gram = np.asarray(gram, dtype=np.float64)
    gram = gram - gram.mean(axis=0, keepdims=True)
    return gram - gram.mean(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# HSIC
# --------------------------------------------------------------------------------------------


def hsic(k, l):
    """The biased HSIC estimator ``tr(K H L H) / (n - 1)^2`` of two Gram matrices.

    Parameters
    ----------
    k, l : ndarray, shape (n, n)

    Returns
    -------
    float

    Examples
    --------
    >>> k = gram_linear(np.arange(4.0))
    >>> round(hsic(k, k), 4)
    2.7778
    """
    k, l = np.asarray(k, dtype=np.float64), np.asarray(l, dtype=np.float64)
    _check_finite(k, "k")
    _check_finite(l, "l")
    n = len(k)
    return float(np.sum(center_gram(k) * center_gram(l)) / (n - 1) ** 2)


def _zero_diagonal(grams):
    grams = np.array(grams, dtype=np.float64)  # a copy
    n = grams.shape[-1]
    grams[..., np.arange(n), np.arange(n)] = 0.0
    return grams


def hsic_unbiased_pairs(grams_a, grams_b):
    """Song et al.'s unbiased HSIC_1 between every Gram matrix of one stack and every one of another.

    Each Gram matrix is formed once; the ``A x B`` estimates then cost a few contractions.

    Parameters
    ----------
    grams_a : ndarray, shape (A, n, n)
    grams_b : ndarray, shape (B, n, n)
        Symmetric Gram matrices of the same ``n >= 4`` examples.

    Returns
    -------
    ndarray of float64, shape (A, B)

    Examples
    --------
    >>> k = gram_linear(np.random.default_rng(0).normal(size=(6, 2)))
    >>> hsic_unbiased_pairs(k[None], np.stack([k, 2 * k])).shape
    (1, 2)
    """
    ka, kb = _zero_diagonal(grams_a), _zero_diagonal(grams_b)
    n = ka.shape[-1]
    if kb.shape[-1] != n:
        raise ValueError(f"Gram matrices of {n} and {kb.shape[-1]} examples")
    _check_n(n, debiased=True)
    trace = np.einsum("aij,bij->ab", ka, kb)  # tr(K~ L~), both symmetric
    rows_a, rows_b = ka.sum(axis=2), kb.sum(axis=2)
    total = np.outer(rows_a.sum(axis=1), rows_b.sum(axis=1)) / ((n - 1) * (n - 2))
    cross = rows_a @ rows_b.T * (2.0 / (n - 2))  # 1^T K~ L~ 1 = (K~ 1) . (L~ 1)
    return (trace + total - cross) / (n * (n - 3))


def _hsic_unbiased_self(grams):
    """HSIC_1(K, K) for each Gram matrix of a stack (A, n, n): the diagonal of the pairs matrix."""
    k = _zero_diagonal(grams)
    n = k.shape[-1]
    rows = k.sum(axis=2)
    sums = rows.sum(axis=1)
    value = np.einsum("aij,aij->a", k, k) + sums**2 / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * np.einsum("ai,ai->a", rows, rows)
    return value / (n * (n - 3))


def hsic_unbiased(k, l):
    """Song et al.'s (2012) unbiased HSIC_1 estimator of two Gram matrices.

    ``[tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3))``, with the
    diagonals of ``K~`` and ``L~`` zeroed.

    Parameters
    ----------
    k, l : ndarray, shape (n, n)
        Symmetric Gram matrices, ``n >= 4``.

    Returns
    -------
    float

    Examples
    --------
    >>> k = gram_linear(np.random.default_rng(0).normal(size=(8, 3)))
    >>> hsic_unbiased(k, k) > 0
    True
    """
    k, l = np.asarray(k, dtype=np.float64), np.asarray(l, dtype=np.float64)
    _check_finite(k, "k")
    _check_finite(l, "l")
    if k.shape != l.shape or k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"expected two square Gram matrices of the same size; got {k.shape} and {l.shape}")
    return float(hsic_unbiased_pairs(k[None], l[None])[0, 0])


def _hsic_unbiased_features(x, y):
    """HSIC_1 of the linear kernels of ``x`` and ``y`` without forming an n x n matrix.

    ``tr(K~ L~) = ||X^T Y||^2 - sum_i |x_i|^2 |y_i|^2``, ``K~ 1 = X X^T 1 - diag(K)``.
    """
    n = len(x)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)  # HSIC_1 of a linear kernel is shift-invariant
    norms_x, norms_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    trace = np.sum((x.T @ y) ** 2) - norms_x @ norms_y
    rows_x = x @ x.sum(axis=0) - norms_x
    rows_y = y @ y.sum(axis=0) - norms_y
    value = trace + rows_x.sum() * rows_y.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (rows_x @ rows_y)
    return value / (n * (n - 3))


# --------------------------------------------------------------------------------------------
# CKA of two activation matrices
# --------------------------------------------------------------------------------------------


def _ratio(cross, self_a, self_b):
    """``cross / sqrt(self_a self_b)``; NaN where a representation is constant (zero self-HSIC)."""
    denominator = np.sqrt(np.maximum(self_a, 0.0) * np.maximum(self_b, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, cross / np.where(denominator > 0, denominator, 1.0), np.nan)


def _pick_method(method, n, dx, dy):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if method != "auto":
        return method
    feature_cost = dx * dy + dx * dx + dy * dy  # times n: X^T Y, X^T X, Y^T Y
    gram_cost = n * (dx + dy)  # times n: X X^T, Y Y^T
    return "feature" if feature_cost <= gram_cost else "gram"


def cka(x, y, kernel="linear", sigma=0.8, debiased=False, method="auto"):
    """Centered kernel alignment of two representations of the same examples.

    Parameters
    ----------
    x, y : array_like, shape (n, ...)
        Activations (numpy or tf), one example per row; ``(n, h, w, c)`` maps are flattened per
        example. Computed in float64.
    kernel : {"linear", "rbf", "rbf_pairs"}
        ``"rbf"``: Kornblith et al.'s reference bandwidth, ``sigma^2`` times the median squared
        distance over the whole n x n matrix; ``"rbf_pairs"``: ``sigma`` times the median distance
        over the pairs ``i != j`` (:func:`rbf_from_linear`).
    sigma : float
        The RBF bandwidth as a fraction of the median distance.
    debiased : bool
        Use the unbiased HSIC_1 estimator (Song et al. 2012) instead of the biased one; needs n >= 4.
    method : {"auto", "gram", "feature"}
        Linear kernel only: the n x n Gram form or the feature-space form (d x d matrices);
        ``"auto"`` picks the cheaper. Both give the same value.

    Returns
    -------
    float
        In [0, 1] for the biased estimator (the debiased one can fall slightly below 0); NaN, with a
        ``RuntimeWarning`` that names the constant input, when a representation is constant over the
        examples (a dead layer): CKA is then undefined.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(100, 10))
    >>> round(cka(x, 3 * x), 6)
    1.0
    """
    value = _cka(x, y, kernel, sigma, debiased, method)
    if np.isnan(value):
        constant = [name for name, rep in (("x", x), ("y", y)) if np.ptp(_features(rep, name), axis=0).max(initial=0.0) == 0.0]
        which = " and ".join(constant) or "a kernel"
        warnings.warn(
            f"cka: {which} is constant over the {len(_features(x))} examples (no variance to align): CKA is undefined, "
            "returned NaN (a dead layer, or too few distinct examples)",
            RuntimeWarning,
            stacklevel=2,
        )
    return value


def _cka(x, y, kernel, sigma, debiased, method):
    _check_kernel(kernel, sigma)
    x, y = _features(x, "x"), _features(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same examples; got n={len(x)} and n={len(y)}")
    n = len(x)
    _check_n(n, debiased)
    if kernel == "linear" and _pick_method(method, n, x.shape[1], y.shape[1]) == "feature":
        if debiased:
            cross, self_x, self_y = _hsic_unbiased_features(x, y), _hsic_unbiased_features(x, x), _hsic_unbiased_features(y, y)
        else:
            x, y = x - x.mean(axis=0), y - y.mean(axis=0)
            cross = np.sum((y.T @ x) ** 2)
            self_x, self_y = np.linalg.norm(x.T @ x) ** 2, np.linalg.norm(y.T @ y) ** 2
        return float(_ratio(cross, self_x, self_y))
    if kernel in _RBF and method not in ("auto", "gram"):
        raise ValueError(f"method={method!r} is only for the linear kernel; the RBF kernel uses 'gram'")
    k, l = _kernel_grams(gram_linear(x), kernel, sigma), _kernel_grams(gram_linear(y), kernel, sigma)
    if debiased:
        grams = np.stack([k, l])
        pairs = hsic_unbiased_pairs(grams, grams)
        return float(_ratio(pairs[0, 1], pairs[0, 0], pairs[1, 1]))
    kc, lc = center_gram(k), center_gram(l)
    return float(_ratio(np.sum(kc * lc), np.sum(kc * kc), np.sum(lc * lc)))


# --------------------------------------------------------------------------------------------
# Minibatch accumulators
# --------------------------------------------------------------------------------------------


class LayerPairsCKA:
    """Minibatch CKA between every layer of one set and every layer of another, batch by batch.

    For each batch, give each layer's Gram matrix once (:meth:`update_grams`, e.g. from
    TensorFlow) or its activations (:meth:`update`); the accumulator adds the unbiased HSIC_1 of
    every pair, and of every layer with itself, to running sums (Nguyen et al. 2021). Memory is
    constant in the number of batches.

    Parameters
    ----------
    kernel : {"linear", "rbf", "rbf_pairs"}
    sigma : float
        RBF bandwidth as a fraction of each batch's median pairwise distance.

    Examples
    --------
    >>> acc = LayerPairsCKA()
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(50):
    ...     x = rng.normal(size=(32, 4))
    ...     acc.update([x, x[:, :2]], [2 * x])
    >>> acc.result().round(1)[:, 0]
    array([1. , 0.7])
    """

    def __init__(self, kernel="linear", sigma=0.8):
        _check_kernel(kernel, sigma)
        self.kernel, self.sigma = kernel, sigma
        self.reset()

    def reset(self):
        """Forget every batch."""
        self.cross = self.self_a = self.self_b = None
        self.n_batches = self.n_examples = 0

    def update_grams(self, grams_a, grams_b):
        """Add one batch, given the linear Gram matrices of its layers.

        Parameters
        ----------
        grams_a : array_like, shape (A, n, n)
            ``X X^T`` for each layer of the first set (numpy or tf).
        grams_b : array_like, shape (B, n, n)
            The same for the second set, on the same ``n >= 4`` examples.
        """
        grams_a, grams_b = np.asarray(grams_a, dtype=np.float64), np.asarray(grams_b, dtype=np.float64)
        _check_finite(grams_a, "grams_a")
        _check_finite(grams_b, "grams_b")
        if (
            grams_a.ndim != 3
            or grams_b.ndim != 3
            or grams_a.shape[1:] != grams_b.shape[1:]
            or grams_a.shape[1] != grams_a.shape[2]
        ):
            raise ValueError(f"expected Gram stacks (A, n, n) and (B, n, n); got {grams_a.shape} and {grams_b.shape}")
        if self.cross is not None and self.cross.shape != (len(grams_a), len(grams_b)):
            raise ValueError(f"this accumulator holds {self.cross.shape} layers; got {len(grams_a)} x {len(grams_b)}")
        _check_n(grams_a.shape[1], debiased=True, what="examples per batch")
        grams_a, grams_b = _kernel_grams(grams_a, self.kernel, self.sigma), _kernel_grams(grams_b, self.kernel, self.sigma)
        cross = hsic_unbiased_pairs(grams_a, grams_b)
        self_a, self_b = _hsic_unbiased_self(grams_a), _hsic_unbiased_self(grams_b)
        if self.cross is None:
            self.cross, self.self_a, self.self_b = cross, self_a, self_b
        else:
            self.cross, self.self_a, self.self_b = self.cross + cross, self.self_a + self_a, self.self_b + self_b
        self.n_batches += 1
        self.n_examples += grams_a.shape[1]

    def update(self, acts_a, acts_b):
        """Add one batch, given each layer's activations (lists of arrays, first axis the batch)."""
        acts_a = [_features(a, f"acts_a[{i}]") for i, a in enumerate(acts_a)]
        acts_b = [_features(b, f"acts_b[{i}]") for i, b in enumerate(acts_b)]
        sizes = {len(a) for a in acts_a + acts_b}
        if len(sizes) != 1:
            raise ValueError(f"every layer must hold the same examples; got batch sizes {sorted(sizes)}")
        # centred per batch: HSIC_1 of a linear kernel is shift-invariant, and centred Grams are better conditioned
        grams_a = np.stack([gram_linear(a - a.mean(axis=0)) for a in acts_a])
        grams_b = np.stack([gram_linear(b - b.mean(axis=0)) for b in acts_b])
        self.update_grams(grams_a, grams_b)

    def result(self):
        """The CKA matrix so far, ``sum HSIC_1(K, L) / sqrt(sum HSIC_1(K, K) sum HSIC_1(L, L))``.

        Returns
        -------
        ndarray of float64, shape (A, B)
        """
        if self.cross is None:
            raise ValueError("no batches yet: call update() first")
        return _ratio(self.cross, self.self_a[:, None], self.self_b[None, :])


class MinibatchCKA(LayerPairsCKA):
    """CKA of two representations accumulated over minibatches (Nguyen et al. 2021).

    Sums the unbiased HSIC_1 of (K, L), (K, K) and (L, L) over batches; :meth:`result` divides.
    Each batch needs at least 4 examples.

    Parameters
    ----------
    kernel : {"linear", "rbf", "rbf_pairs"}
    sigma : float

    Examples
    --------
    >>> acc = MinibatchCKA()
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(10):
    ...     x = rng.normal(size=(32, 8))
    ...     acc.update(x, x @ rng.normal(size=(8, 8)) + rng.normal(size=(32, 8)))
    >>> 0 < acc.result() < 1
    True
    """

    def update(self, x, y):
        """Add one batch: activations ``x`` and ``y`` of the same ``n >= 4`` examples."""
        x, y = _features(x, "x"), _features(y, "y")
        if len(x) != len(y):
            raise ValueError(f"x and y must hold the same examples; got n={len(x)} and n={len(y)}")
        super().update([x], [y])

    def result(self):
        """The CKA estimate so far (float)."""
        return float(super().result()[0, 0])


# --------------------------------------------------------------------------------------------
# Whole models
# --------------------------------------------------------------------------------------------


class CKAResult(NamedTuple):
    """What :func:`model_cka` returns: the matrix, its row and column layers, and the data used."""

    matrix: np.ndarray  #: (len(layers_a), len(layers_b)) CKA values
    layers_a: list
    layers_b: list
    n_images: int  #: images that entered the estimate
    n_batches: int


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _tf_grams(outputs):
    """Stacked float32 linear Gram matrices (L, n, n) of per-batch-centred, flattened activations."""
    import tensorflow as tf

    grams = []
    for out in outputs:
        flat = tf.reshape(tf.cast(out, tf.float32), [tf.shape(out)[0], -1])
        flat = flat - tf.reduce_mean(flat, axis=0, keepdims=True)
        grams.append(tf.matmul(flat, flat, transpose_b=True))
    return tf.stack(grams)


def gram_function(model_a, layers_a, model_b=None, layers_b=None):
    """A compiled function from an image batch to the Gram stacks of two models' layers.

    Both models run once per batch (a single model once when ``model_b`` is ``model_a`` or None);
    the activations stay inside the graph, only the (layers, n, n) Gram matrices come out.

    Parameters
    ----------
    model_a, model_b : keras.Model
    layers_a, layers_b : list of str

    Returns
    -------
    callable
        ``images -> (grams_a, grams_b)``, float32 tensors of shapes (A, n, n) and (B, n, n).

    Examples
    --------
    >>> run = gram_function(model, ["block1_conv1"], other, ["block1_conv1"])  # doctest: +SKIP
    """
    import tensorflow as tf

    from ..graph import feature_net, prepared

    def feature_model(model, names):  # the names as every method reads them (tfvis.graph.prepared)
        return feature_net(prepared(model), list(names))

    model_b = model_a if model_b is None else model_b
    layers_b = list(layers_a) if layers_b is None else list(layers_b)
    if model_b is model_a:
        union = list(dict.fromkeys(list(layers_a) + layers_b))
        features = feature_model(model_a, union)
        index_a, index_b = [union.index(n) for n in layers_a], [union.index(n) for n in layers_b]

        @tf.function(reduce_retracing=True)
        def run(images):
            grams = _tf_grams(_as_list(features(images, training=False)))
            return tf.gather(grams, index_a), tf.gather(grams, index_b)

        return run
    features_a, features_b = feature_model(model_a, list(layers_a)), feature_model(model_b, layers_b)

    @tf.function(reduce_retracing=True)
    def run(images):
        grams_a = _tf_grams(_as_list(features_a(images, training=False)))
        grams_b = _tf_grams(_as_list(features_b(images, training=False)))
        return grams_a, grams_b

    return run


def model_cka(
    model_a,
    model_b,
    images,
    layers_a,
    layers_b=None,
    batch_size=32,
    size=None,
    limit=None,
    kernel="linear",
    sigma=0.8,
    progress=True,
):
    """Minibatch CKA between layers of two models, in one streaming pass over the images.

    Each batch goes through both models once; each layer's Gram matrix is formed once inside a
    compiled graph, and the unbiased HSIC_1 of every pair of layers is added to running sums
    (:class:`LayerPairsCKA`). No activations are kept, so memory does not grow with the data.

    The estimate depends on how the images fall into batches (each batch is one minibatch of
    Nguyen et al.'s estimator), not on anything else: the same images in the same batches give
    the same matrix. A minibatch compares images only with each other, so batches should be
    random samples of the data: shuffle a source sorted by class or by photo, or the matrix
    estimates within-group similarity. A final batch of fewer than 4 images is left out, with a
    warning.

    Parameters
    ----------
    model_a, model_b : keras.Model
        Models with the same input (e.g. float32 RGB in [0, 255] for the zoo); may be the same.
    images : ndarray, list of files, directory or tf.data.Dataset
        Anything :func:`tfvis.images.iter_batches` reads.
    layers_a : list of str
        Layers of ``model_a``, the rows.
    layers_b : list of str, optional
        Layers of ``model_b``, the columns; default the names of ``layers_a``.
    batch_size : int
        Images per batch and per CKA minibatch (at least 4).
    size : int, optional
        Resize and centre-crop every image to this size.
    limit : int, optional
        Stop after this many images.
    kernel : {"linear", "rbf", "rbf_pairs"}
    sigma : float
        RBF bandwidth as a fraction of each batch's median pairwise distance.
    progress : bool
        Show a progress bar.

    Returns
    -------
    CKAResult
        ``matrix`` (len(layers_a), len(layers_b)), ``layers_a``, ``layers_b``, ``n_images``, ``n_batches``.

    Examples
    --------
    >>> result = model_cka(vgg, vgg_ablated, "photos/", ["block4_conv3", "block5_conv3"], size=128)  # doctest: +SKIP
    >>> result.matrix.shape                                                                       # doctest: +SKIP
    (2, 2)
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    from ..images import iter_batches

    _check_kernel(kernel, sigma)
    layers_a = [layers_a] if isinstance(layers_a, str) else list(layers_a)
    layers_b = list(layers_a) if layers_b is None else ([layers_b] if isinstance(layers_b, str) else list(layers_b))
    if not layers_a or not layers_b:
        raise ValueError("give at least one layer for each model")
    if int(batch_size) < 4:
        raise ValueError(f"batch_size must be at least 4 (the unbiased HSIC needs 4 examples per batch); got {batch_size}")
    run = gram_function(model_a, layers_a, model_b, layers_b)
    accumulator = LayerPairsCKA(kernel=kernel, sigma=sigma)
    bar = tqdm(desc="CKA: images", unit="img", disable=not progress, file=sys.stderr)
    for batch in iter_batches(images, batch_size=int(batch_size), size=size, limit=limit):
        if len(batch.ids) < 4:
            warnings.warn(f"CKA: left out the last {len(batch.ids)} image(s): a minibatch needs at least 4", stacklevel=2)
            continue
        grams_a, grams_b = run(tf.constant(batch.images))
        accumulator.update_grams(grams_a.numpy(), grams_b.numpy())
        bar.update(len(batch.ids))
    bar.close()
    if not accumulator.n_batches:
        raise ValueError("no images to compare: CKA needs at least one batch of 4 or more images")
    return CKAResult(accumulator.result(), layers_a, layers_b, accumulator.n_examples, accumulator.n_batches)


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


def plot_cka(matrix, labels_a, labels_b, ax=None, title="CKA", annotate=None):
    """A labelled heatmap of a CKA matrix (rows: ``labels_a``, columns: ``labels_b``).

    Parameters
    ----------
    matrix : array_like, shape (A, B)
    labels_a, labels_b : sequence of str
    ax : matplotlib.axes.Axes, optional
        Draw here; default a new figure.
    title : str
    annotate : bool, optional
        Write the values in the cells; default when the matrix has at most 16 x 16 cells.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_cka(result.matrix, result.layers_a, result.layers_b)  # doctest: +SKIP
    >>> fig.savefig("cka.png")                                          # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape != (len(labels_a), len(labels_b)):
        raise ValueError(f"matrix of shape {matrix.shape} for {len(labels_a)} x {len(labels_b)} labels")
    if ax is None:
        side = 0.45
        fig, ax = plt.subplots(figsize=(max(4.0, 2.5 + side * len(labels_b)), max(3.5, 2.0 + side * len(labels_a))))
    fig = ax.figure
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.set_xticks(range(len(labels_b)), [str(s) for s in labels_b], rotation=90)
    ax.set_yticks(range(len(labels_a)), [str(s) for s in labels_a])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if annotate is None:
        annotate = max(matrix.shape) <= 16
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            text = "nan" if not math.isfinite(value) else f"{value:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if value > 0.6 else "white")
    fig.tight_layout()
    return fig
