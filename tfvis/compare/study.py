"""Minibatch CKA between every layer of every model of a study, from per-model Gram matrices.

A study compares N models on the same images. Each model's Gram matrices of a minibatch are
computed on their own (one model per worker, :mod:`tfvis.pipeline.study_units`); :class:`StudyCKA`
then adds, minibatch by minibatch, Song et al.'s unbiased HSIC_1 of every pair of (model, layer)
Gram matrices to running sums, and divides at the end as :class:`~tfvis.compare.LayerPairsCKA`
does for two models (Nguyen et al. 2021). HSIC_1 is bilinear in the zero-diagonal Gram
matrices ``K~``, ``L~``::

    n (n - 3) HSIC_1(K, L) = vec(K~) . vec(L~) + s_K s_L / ((n-1)(n-2)) - 2/(n-2) (K~ 1) . (L~ 1)

with ``s_K = 1^T K~ 1``, so one minibatch's estimates for all M = sum of the models' layer counts
Gram matrices are two (M, n^2) and (M, n) matrix products. Memory is that of one minibatch's
Gram matrices and the (M, M) sums, whatever the number of images.
"""

import numpy as np

from .cka import _check_finite, _ratio


def hsic_unbiased_all_pairs(grams):
    """Unbiased HSIC_1 between every pair of a stack of Gram matrices, as matrix products.

    Parameters
    ----------
    grams : array_like, shape (M, n, n)
        Symmetric Gram matrices of the same ``n >= 4`` examples.

    Returns
    -------
    ndarray of float64, shape (M, M)
        Equal to ``hsic_unbiased_pairs(grams, grams)`` up to float rounding.

    Examples
    --------
    >>> from tfvis.compare import gram_linear, hsic_unbiased_pairs
    >>> rng = np.random.default_rng(0)
    >>> grams = np.stack([gram_linear(rng.normal(size=(8, 3))) for _ in range(3)])
    >>> bool(np.allclose(hsic_unbiased_all_pairs(grams), hsic_unbiased_pairs(grams, grams)))
    True
    """
    grams = np.array(grams, dtype=np.float64)  # a copy: the diagonal is zeroed below
    if grams.ndim != 3 or grams.shape[1] != grams.shape[2]:
        raise ValueError(f"grams must be a stack of square matrices (M, n, n); got shape {grams.shape}")
    n = grams.shape[-1]
    if n < 4:
        raise ValueError(f"debiased HSIC needs at least 4 examples per minibatch; got {n}")
    grams[:, np.arange(n), np.arange(n)] = 0.0
    flat = grams.reshape(len(grams), n * n)
    rows = grams.sum(axis=2)  # K~ 1
    sums = rows.sum(axis=1)  # 1^T K~ 1
    value = flat @ flat.T + np.outer(sums, sums) / ((n - 1) * (n - 2)) - (2.0 / (n - 2)) * (rows @ rows.T)
    return value / (n * (n - 3))


class StudyCKA:
    """Minibatch linear CKA between every layer of every model, accumulated minibatch by minibatch.

    Parameters
    ----------
    layers : dict of str to list of str
        Each model's name and the layers of its Gram matrices, in the order :meth:`update` gets them.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> study = StudyCKA({"a": ["x"], "b": ["x"]})
    >>> for _ in range(20):
    ...     x = rng.normal(size=(16, 4))
    ...     study.update({"a": (x @ x.T)[None], "b": (4 * x @ x.T)[None]})
    >>> study.same_layer("x").round(6)
    array([[1., 1.],
           [1., 1.]])
    """

    def __init__(self, layers):
        self.layers = {name: list(names) for name, names in layers.items()}
        self.offsets, start = {}, 0
        for name, names in self.layers.items():
            if not names:
                raise ValueError(f"model {name!r} has no layers")
            self.offsets[name] = start
            start += len(names)
        self.sums = np.zeros((start, start))
        self.n_batches = self.n_examples = 0

    def update(self, grams):
        """Add one minibatch: ``grams[name]``, shape (layers, n, n), for every model, on the same ``n`` images."""
        missing = [name for name in self.layers if name not in grams]
        if missing:
            raise ValueError(f"no Gram matrices of model(s) {', '.join(missing)} for this minibatch")
        stacks = []
        for name, names in self.layers.items():
            stack = np.asarray(grams[name], dtype=np.float64)
            _check_finite(stack, f"grams[{name!r}]")
            if stack.ndim != 3 or len(stack) != len(names):
                raise ValueError(f"grams[{name!r}] must have shape ({len(names)}, n, n); got {stack.shape}")
            stacks.append(stack)
        sizes = {stack.shape[1:] for stack in stacks}
        if len(sizes) != 1:
            raise ValueError(f"every model's Gram matrices must be of the same images; got shapes {sorted(sizes)}")
        self.sums += hsic_unbiased_all_pairs(np.concatenate(stacks))
        self.n_batches += 1
        self.n_examples += stacks[0].shape[1]

    def _block(self, name):
        start = self.offsets[name]
        return slice(start, start + len(self.layers[name]))

    def matrix(self, name_a, name_b):
        """CKA between the layers of model ``name_a`` (rows) and those of ``name_b`` (columns).

        Returns
        -------
        ndarray of float64, shape (layers of a, layers of b)
            NaN where a layer is constant over the images.
        """
        if not self.n_batches:
            raise ValueError("no minibatches yet: call update() first")
        rows, columns = self._block(name_a), self._block(name_b)
        diagonal = np.diag(self.sums)
        return _ratio(self.sums[rows, columns], diagonal[rows][:, None], diagonal[columns][None, :])

    def same_layer(self, layer, names=None):
        """The (N, N) CKA between the models (``names``, default all) at ``layer``, a layer each of them has."""
        names = list(self.layers) if names is None else list(names)
        lacking = [name for name in names if layer not in self.layers[name]]
        if lacking:
            raise ValueError(f"layer {layer!r} is not among the CKA layers of model(s) {', '.join(lacking)}")
        index = [self.offsets[name] + self.layers[name].index(layer) for name in names]
        diagonal = np.diag(self.sums)[index]
        return _ratio(self.sums[np.ix_(index, index)], diagonal[:, None], diagonal[None, :])


__all__ = ["StudyCKA", "hsic_unbiased_all_pairs"]
