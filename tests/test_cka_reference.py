"""RBF CKA against the formula of Kornblith et al.'s reference code, written out in NumPy here."""

import numpy as np
import pytest

from tfvis.compare import cka
from tfvis.compare.cka import LayerPairsCKA, gram_linear, rbf_from_linear


def kornblith_gram_rbf(x, threshold):
    """The ``gram_rbf(x, threshold)`` of the CKA notebook (Kornblith et al. 2019), line by line."""
    dot_products = x.dot(x.T)
    sq_norms = np.diag(dot_products)
    sq_distances = -2 * dot_products + sq_norms[:, None] + sq_norms[None, :]
    sq_median_distance = np.median(sq_distances)  # the whole n x n matrix, zero diagonal included
    return np.exp(-sq_distances / (2 * threshold**2 * sq_median_distance))


def kornblith_cka(gram_x, gram_y):
    """Their ``cka(gram_x, gram_y)``: centred Grams, HSIC by the Frobenius product, normalised."""
    n = len(gram_x)
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = h @ gram_x @ h, h @ gram_y @ h
    return np.sum(kx * ky) / (np.linalg.norm(kx) * np.linalg.norm(ky))


def _pair(seed, n=20):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    return x, np.tanh(x @ rng.normal(size=(6, 4))) + 0.3 * rng.normal(size=(n, 4))


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8, 1.0])
def test_rbf_is_the_reference_definition(threshold):
    x, y = _pair(1)
    np.testing.assert_allclose(rbf_from_linear(gram_linear(x), threshold), kornblith_gram_rbf(x, threshold), rtol=1e-12)
    want = kornblith_cka(kornblith_gram_rbf(x, threshold), kornblith_gram_rbf(y, threshold))
    assert cka(x, y, kernel="rbf", sigma=threshold) == pytest.approx(want, abs=1e-12)


def test_the_pairs_median_is_a_different_bandwidth():
    x, y = _pair(2)
    reference, pairs = cka(x, y, kernel="rbf", sigma=0.8), cka(x, y, kernel="rbf_pairs", sigma=0.8)
    assert abs(reference - pairs) > 1e-4  # the two definitions differ measurably
    # by hand: with the diagonal's n zeros in the n^2 entries the median of d^2 falls, so does the bandwidth
    sq = np.square(x[:, None] - x[None]).sum(-1)
    assert np.median(sq) < np.median(sq[~np.eye(len(x), dtype=bool)])


def test_minibatch_rbf_uses_the_reference_bandwidth_per_batch():
    x, y = _pair(3, n=12)
    acc = LayerPairsCKA(kernel="rbf", sigma=0.5)
    acc.update([x], [y])
    gx, gy = kornblith_gram_rbf(x, 0.5), kornblith_gram_rbf(y, 0.5)
    single = cka(x, y, kernel="rbf", sigma=0.5, debiased=True)
    assert acc.result()[0, 0] == pytest.approx(single, abs=1e-10)
    assert np.isfinite(kornblith_cka(gx, gy))


def test_constant_representation_warns_and_returns_nan():
    x = np.ones((10, 3))
    y = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.warns(RuntimeWarning, match="x is constant over the 10 examples"):
        assert np.isnan(cka(x, y))
    with pytest.warns(RuntimeWarning, match="y is constant"):
        assert np.isnan(cka(y, np.zeros((10, 2)), kernel="rbf"))
