"""tfvis.compare: CKA against hand-written NumPy formulas, minibatch CKA, model_cka, visualization similarity."""

import importlib

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvis  # noqa: E402
from tfvis.compare import (  # noqa: E402
    LayerPairsCKA,
    MinibatchCKA,
    cka,
    dead_channels,
    gram_distance,
    hsic_unbiased,
    model_cka,
    plot_cka,
    visualization_similarity,
    write_dead_csv,
)

cka_module = importlib.import_module("tfvis.compare.cka")  # the module; tfvis.compare.cka is the function
VGG_CONV = [f"block{b}_conv{c}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for c in range(1, n + 1)]


# --------------------------------------------------------------------------------------------
# Independent NumPy references, written from the formulas
# --------------------------------------------------------------------------------------------


def reference_rbf_cka(x, y, sigma):
    """RBF CKA by loops: K_ij = exp(-d_ij^2 / (2 (sigma * median_{i<j} d_ij)^2)), tr(KHLH) normalised."""
    n = len(x)

    def kernel(z):
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                d[i, j] = np.sqrt(np.sum((z[i] - z[j]) ** 2))
        median = np.median([d[i, j] for i in range(n) for j in range(i + 1, n)])
        return np.exp(-(d**2) / (2 * (sigma * median) ** 2))

    h = np.eye(n) - np.ones((n, n)) / n
    k, l = kernel(x.reshape(n, -1)), kernel(y.reshape(n, -1))
    kl, kk, ll = np.trace(k @ h @ l @ h), np.trace(k @ h @ k @ h), np.trace(l @ h @ l @ h)
    return kl / np.sqrt(kk * ll)


def reference_hsic1(k, l):
    """Song et al.'s HSIC_1 with explicit sums over indices."""
    n = len(k)
    kt = [[0.0 if i == j else k[i][j] for j in range(n)] for i in range(n)]
    lt = [[0.0 if i == j else l[i][j] for j in range(n)] for i in range(n)]
    trace = sum(kt[i][j] * lt[j][i] for i in range(n) for j in range(n))
    sum_k = sum(kt[i][j] for i in range(n) for j in range(n))
    sum_l = sum(lt[i][j] for i in range(n) for j in range(n))
    cross = sum(kt[i][j] * lt[j][q] for i in range(n) for j in range(n) for q in range(n))
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross) / (n * (n - 3))


def correlated(rng, n, d=12, noise=1.0):
    x = rng.normal(size=(n, d))
    return x, x @ rng.normal(size=(d, d)) + noise * rng.normal(size=(n, d))


# --------------------------------------------------------------------------------------------
# cka()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_of_a_representation_with_itself_is_one(kernel, debiased):
    x = np.random.default_rng(0).normal(size=(40, 9))
    assert cka(x, x, kernel=kernel, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(kernel, debiased):
    rng = np.random.default_rng(1)
    x, y = correlated(rng, 60, d=8)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    base = cka(x, y, kernel=kernel, debiased=debiased)
    assert 0.2 < base < 0.99
    assert cka(x @ q, y, kernel=kernel, debiased=debiased) == pytest.approx(base, abs=1e-10)
    assert cka(3.7 * x, 0.01 * y, kernel=kernel, debiased=debiased) == pytest.approx(base, abs=1e-10)


def test_cka_is_not_invariant_to_general_invertible_linear_maps():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 6))
    stretch = np.diag([30.0, 1, 1, 1, 1, 0.05]) @ rng.normal(size=(6, 6))
    assert abs(np.linalg.det(stretch)) > 1e-6  # invertible
    assert cka(x, x @ stretch) < 0.9
    assert cka(x, x @ stretch, debiased=True) < 0.9


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_feature_space_form_equals_gram_form(debiased):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 7)) + 5.0, rng.normal(size=(50, 4))  # an offset: centring matters
    y[:, :3] += x[:, :3]
    gram = cka(x, y, debiased=debiased, method="gram")
    feature = cka(x, y, debiased=debiased, method="feature")
    assert 0.1 < gram < 0.99
    assert feature == pytest.approx(gram, abs=1e-12)
    assert cka(x, y, debiased=debiased) == pytest.approx(gram, abs=1e-12)


def test_auto_method_picks_the_cheaper_form():
    assert cka_module._pick_method("auto", n=1000, dx=10, dy=20) == "feature"
    assert cka_module._pick_method("auto", n=10, dx=4096, dy=4096) == "gram"


def test_rbf_cka_matches_a_direct_implementation():
    rng = np.random.default_rng(4)
    x, y = correlated(rng, 15, d=5)
    for sigma in (0.4, 0.8, 2.0):
        assert cka(x, y, kernel="rbf_pairs", sigma=sigma) == pytest.approx(reference_rbf_cka(x, y, sigma), abs=1e-10)


def test_debiased_hsic_matches_its_formula_by_loops():
    rng = np.random.default_rng(5)
    for n in (4, 5, 9):
        x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
        k, l = x @ x.T, y @ y.T
        assert hsic_unbiased(k, l) == pytest.approx(reference_hsic1(k, l), rel=1e-10, abs=1e-12)
    k = cka_module.gram_rbf(x)
    assert hsic_unbiased(k, l) == pytest.approx(reference_hsic1(k, l), rel=1e-10, abs=1e-12)
    # debiased CKA is the ratio of the three estimates
    expected = reference_hsic1(x @ x.T, y @ y.T) / np.sqrt(reference_hsic1(x @ x.T, x @ x.T) * reference_hsic1(y @ y.T, y @ y.T))
    assert cka(x, y, debiased=True) == pytest.approx(expected, abs=1e-10)


def test_maps_are_flattened_per_example_and_tensors_accepted():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(20, 3, 4, 5)), rng.normal(size=(20, 2, 2, 8))
    expected = cka(x.reshape(20, -1), y.reshape(20, -1))
    assert cka(x, y) == pytest.approx(expected, abs=1e-12)
    assert cka(tf.constant(x, tf.float32), tf.constant(y, tf.float32)) == pytest.approx(expected, abs=1e-6)


def test_cka_errors_are_clear():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="n=10 and n=9"):
        cka(x, np.zeros((9, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        cka(x[:3], x[:3], debiased=True)
    with pytest.raises(ValueError, match="choose one of: linear, rbf"):
        cka(x, x, kernel="cosine")
    with pytest.raises(ValueError, match="auto, gram, feature"):
        cka(x, x, method="fast")
    with pytest.raises(ValueError, match="sigma"):
        cka(x, x, kernel="rbf", sigma=0)
    assert np.isnan(cka(x, np.random.default_rng(0).normal(size=(10, 3))))  # constant: undefined


# --------------------------------------------------------------------------------------------
# Minibatch CKA
# --------------------------------------------------------------------------------------------


def test_minibatch_cka_approaches_the_full_unbiased_value_on_random_data():
    rng = np.random.default_rng(7)
    x, y = correlated(rng, 20 * 100, d=12, noise=2.0)
    full = cka(x, y, debiased=True)
    accumulator = MinibatchCKA()
    for start in range(0, len(x), 100):
        accumulator.update(x[start : start + 100], y[start : start + 100])
    assert accumulator.n_batches == 20 and accumulator.n_examples == 2000
    assert 0.2 < full < 0.9
    assert accumulator.result() == pytest.approx(full, abs=0.01)


def test_minibatch_cka_errors():
    accumulator = MinibatchCKA()
    with pytest.raises(ValueError, match="no batches"):
        accumulator.result()
    with pytest.raises(ValueError, match="at least 4"):
        accumulator.update(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="n=5 and n=6"):
        accumulator.update(np.ones((5, 2)), np.ones((6, 2)))


def test_layer_pairs_accumulator_equals_one_minibatch_cka_per_pair():
    rng = np.random.default_rng(8)
    pairs = LayerPairsCKA(kernel="rbf")
    singles = [[MinibatchCKA(kernel="rbf") for _ in range(2)] for _ in range(3)]
    for _ in range(4):
        a = [rng.normal(size=(10, d)) for d in (3, 4, 5)]
        b = [a[0] @ rng.normal(size=(3, 6)), rng.normal(size=(10, 2, 2, 2))]
        pairs.update(a, b)
        for i in range(3):
            for j in range(2):
                singles[i][j].update(a[i], b[j])
    expected = np.array([[s.result() for s in row] for row in singles])
    np.testing.assert_allclose(pairs.result(), expected, atol=1e-12)


@pytest.fixture(scope="module")
def vgg(vgg16_hed):
    """The session's hed VGG16 (conftest.py; read-only)."""
    return vgg16_hed


@pytest.fixture(scope="module")
def vgg_block5_reinit(vgg16_random):
    """A second hed VGG16, its own (its weights change), whose block5 holds seeded random weights."""
    ablated = tfvis.load_model("vgg16", weights="hed", include_top=False)
    for name in ("block5_conv1", "block5_conv2", "block5_conv3"):
        tfvis.set_weights(ablated, name, vgg16_random)
    return ablated


@pytest.fixture(scope="module")
def photos():
    """640 images at 32 px: random crops of the sample photos (shrunk to 96 px first, for speed)."""
    shrunk = tfvis.images.sample_images(size=96).values()
    crops = [tfvis.images.random_crops(photo, 32, 46, seed=i) for i, photo in enumerate(shrunk)]
    # shuffled: a minibatch compares images only within it, so batches must be random samples
    return np.random.default_rng(0).permutation(np.concatenate(crops))[:640]


@pytest.mark.slow
def test_minibatch_cka_approaches_the_full_unbiased_value_on_vgg_activations(vgg, photos):
    acts = tfvis.activations(vgg, ["block2_conv2", "block3_conv3"], photos, batch_size=64)
    x, y = acts["block2_conv2"], acts["block3_conv3"]
    full = cka(x, y, debiased=True)
    accumulator = MinibatchCKA()
    for start in range(0, len(x), 32):  # 20 batches
        accumulator.update(x[start : start + 32], y[start : start + 32])
    assert accumulator.n_batches == 20
    assert 0.2 < full < 0.98
    assert accumulator.result() == pytest.approx(full, abs=0.01)


# --------------------------------------------------------------------------------------------
# model_cka
# --------------------------------------------------------------------------------------------


def _tiny_cnn(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.ReLU(name="c1_relu")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(x)
    x = keras.layers.ReLU(name="c2_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(5, name="fc")(x)
    return keras.Model(inputs, x, name=f"tiny{seed}")


def test_model_cka_of_a_model_with_itself_has_ones_on_the_diagonal():
    model = _tiny_cnn(0)
    images = np.random.default_rng(9).uniform(0, 255, (40, 12, 12, 3)).astype(np.float32)
    result = model_cka(model, model, images, ["c1", "c2", "fc"], batch_size=10, progress=False)
    assert result.layers_a == result.layers_b == ["c1", "c2", "fc"]
    assert (result.n_images, result.n_batches) == (40, 4)
    np.testing.assert_allclose(np.diag(result.matrix), 1.0, atol=1e-6)
    np.testing.assert_allclose(result.matrix, result.matrix.T, atol=1e-6)
    assert np.all(result.matrix[~np.eye(3, dtype=bool)] < 0.999)


def test_model_cka_equals_minibatch_cka_on_the_same_batches_for_any_source():
    """Exact: the same images in the same batches give the same matrix (array, dataset, limit)."""
    model_a, model_b = _tiny_cnn(0), _tiny_cnn(1)
    images = np.random.default_rng(10).uniform(0, 255, (30, 12, 12, 3)).astype(np.float32)
    result = model_cka(model_a, model_b, images, ["c1", "c2"], ["c2", "fc"], batch_size=8, limit=28, progress=False)
    assert result.matrix.shape == (2, 2) and result.n_images == 28
    acts_a = tfvis.activations(model_a, ["c1", "c2"], images[:28])
    acts_b = tfvis.activations(model_b, ["c2", "fc"], images[:28])
    reference = LayerPairsCKA()
    for start in range(0, 28, 8):
        reference.update(
            [acts_a[n][start : start + 8] for n in ("c1", "c2")], [acts_b[n][start : start + 8] for n in ("c2", "fc")]
        )
    np.testing.assert_allclose(result.matrix, reference.result(), atol=1e-5)
    streamed = model_cka(
        model_a,
        model_b,
        tf.data.Dataset.from_tensor_slices(images[:28]),
        ["c1", "c2"],
        ["c2", "fc"],
        batch_size=8,
        progress=False,
    )
    np.testing.assert_allclose(streamed.matrix, result.matrix, atol=1e-12)


def test_model_cka_leaves_out_a_final_batch_too_small_for_hsic1():
    model = _tiny_cnn(0)
    images = np.random.default_rng(11).uniform(0, 255, (10, 8, 8, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="left out the last 2"):
        result = model_cka(model, model, images, ["c1"], batch_size=8, progress=False)
    assert result.n_images == 8
    with pytest.raises(ValueError, match="at least 4"):
        model_cka(model, model, images, ["c1"], batch_size=2, progress=False)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        model_cka(model, model, images, ["nope"], progress=False)


def test_vgg_cka_against_itself_with_block5_reinitialised(vgg, vgg_block5_reinit, photos):
    images = photos[:64]
    result = model_cka(vgg, vgg_block5_reinit, images, VGG_CONV, batch_size=16, progress=False)
    diagonal = np.diag(result.matrix)
    np.testing.assert_allclose(diagonal[:10], 1.0, atol=1e-5)  # block1..block4: the same weights
    assert np.all(diagonal[10:] < 0.9), diagonal[10:]  # block5: random weights
    # streaming: another batch size is another minibatch estimate of the same quantity
    other = model_cka(vgg, vgg_block5_reinit, images, VGG_CONV[8:], batch_size=32, progress=False)
    np.testing.assert_allclose(np.diag(other.matrix)[:2], 1.0, atol=1e-5)
    np.testing.assert_allclose(other.matrix, result.matrix[8:, 8:], atol=0.1)


def test_plot_cka_draws_a_labelled_heatmap(tmp_path):
    matrix = np.array([[1.0, 0.5, np.nan], [0.25, 0.75, 0.1]])
    fig = plot_cka(matrix, ["a1", "a2"], ["b1", "b2", "b3"], title="A vs B")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b1", "b2", "b3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a1", "a2"]
    assert ax.get_title() == "A vs B"
    assert {t.get_text() for t in ax.texts} == {"1.00", "0.50", "nan", "0.25", "0.75", "0.10"}
    fig.savefig(tmp_path / "cka.png")
    assert (tmp_path / "cka.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="2 x 2 labels"):
        plot_cka(matrix, ["a1", "a2"], ["b1", "b2"])


# --------------------------------------------------------------------------------------------
# Similarity of visualizations
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def visualizations():
    rng = np.random.default_rng(12)
    return rng.uniform(0, 1, (3, 32, 32, 3)).astype(np.float32), rng.uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)


def test_visualization_similarity(vgg, visualizations):
    a, b = visualizations
    np.testing.assert_allclose(visualization_similarity(vgg, "block3_conv1", a, a), 1.0, atol=1e-6)
    different = visualization_similarity(vgg, "block3_conv1", a, b)
    assert different.shape == (3,) and np.all(different < 0.999)
    scaled = visualization_similarity(vgg, "block3_conv1", a * 255, b * 255, value_range=(0, 255))
    np.testing.assert_allclose(scaled, different, atol=1e-6)
    # agrees with the cosine of the embeddings at [0, 255]
    acts = tfvis.activations(vgg, ["block3_conv1"], np.concatenate([a, b]) * 255)["block3_conv1"].reshape(6, -1)
    cosine = np.sum(acts[:3] * acts[3:], axis=1) / (np.linalg.norm(acts[:3], axis=1) * np.linalg.norm(acts[3:], axis=1))
    np.testing.assert_allclose(different, cosine, atol=1e-5)


def test_gram_distance(vgg, visualizations):
    a, b = visualizations
    np.testing.assert_allclose(gram_distance(vgg, "block2_conv1", a, a), 0.0, atol=1e-7)
    distance = gram_distance(vgg, "block2_conv1", a, b)
    assert distance.shape == (3,) and np.all(distance > 0) and np.all(distance <= np.sqrt(2))
    # a Gram matrix ignores where a texture sits: a flipped image is closer in style than a new one
    flipped = gram_distance(vgg, "block2_conv1_relu", a, a[:, ::-1])
    assert np.all(flipped < gram_distance(vgg, "block2_conv1_relu", a, b) + 1e-3)
    # definition: ||G_a/|G_a| - G_b/|G_b|||_F with G = F^T F / (h w)
    fa = tfvis.activations(vgg, ["block2_conv1"], a * 255)["block2_conv1"].astype(np.float64)
    fb = tfvis.activations(vgg, ["block2_conv1"], b * 255)["block2_conv1"].astype(np.float64)
    for i in range(3):
        ga = fa[i].reshape(-1, fa.shape[-1]).T @ fa[i].reshape(-1, fa.shape[-1])
        gb = fb[i].reshape(-1, fb.shape[-1]).T @ fb[i].reshape(-1, fb.shape[-1])
        expected = np.linalg.norm(ga / np.linalg.norm(ga) - gb / np.linalg.norm(gb))
        assert distance[i] == pytest.approx(expected, abs=1e-5)


def test_similarity_errors_are_clear(vgg, visualizations):
    a, b = visualizations
    with pytest.raises(ValueError, match="must pair up"):
        visualization_similarity(vgg, "block1_conv1", a, b[:2])
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        gram_distance(vgg, "block1_conv1", a[..., :2], b[..., :2])
    with pytest.raises(ValueError, match="add a first axis"):
        visualization_similarity(vgg, "block1_conv1", a[0], b[0])
    with pytest.raises(ValueError, match="no layer 'nope'"):
        visualization_similarity(vgg, "nope", a, b)
    with pytest.raises(ValueError, match="value_range"):
        dead_channels(a, value_range=(1, 1))


def test_dead_channels_flags_flat_and_nan_images(tmp_path):
    rng = np.random.default_rng(13)
    grey = np.full((16, 16, 3), 0.5)
    red = np.zeros((16, 16, 3))
    red[..., 0] = 1.0
    nan = rng.uniform(size=(16, 16, 3))
    nan[3, 4, 1] = np.nan
    textured = rng.uniform(size=(16, 16, 3))
    faint = 0.5 + 0.003 * rng.normal(size=(16, 16, 3))
    images = np.stack(
        [grey, textured, nan, faint, 0.5 + 0.25 * np.sin(np.arange(16) / 2.0)[None, :, None] * np.ones((16, 16, 3))]
    )
    found = dead_channels(images)
    np.testing.assert_array_equal(found.indices, [0, 2, 3])
    np.testing.assert_array_equal(found.flags, [True, False, True, True, False])
    assert found.scores[0] == 0.0 and np.isnan(found.scores[2]) and found.scores[1] > 0.2
    # a uniform saturated colour (a colour detector's picture) varies across colours: not dead
    assert dead_channels(red[None]).scores[0] == pytest.approx(np.std([1.0, 0.0, 0.0]))
    assert dead_channels(images * 255, value_range=(0, 255)).indices.tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="threshold"):
        dead_channels(images, threshold=-1)
    path = write_dead_csv(tmp_path / "out" / "dead.csv", [f"c:{i}" for i in range(5)], found.scores, found.flags)
    lines = path.read_text().splitlines()
    assert lines[0] == "name,score,dead"
    assert lines[1] == "c:0,0,1" and lines[3] == "c:2,nan,1" and lines[2].endswith(",0")
    assert not list(path.parent.glob(".*tmp"))
    with pytest.raises(ValueError, match="one entry each"):
        write_dead_csv(tmp_path / "x.csv", ["a"], [0.1, 0.2], [True, False])


def test_study_cka_of_two_models_equals_layer_pairs_cka_and_is_symmetric():
    """StudyCKA's (model, layer) blocks against LayerPairsCKA fed the same minibatches' activations."""
    from tfvis.compare import LayerPairsCKA, StudyCKA

    rng = np.random.default_rng(3)
    study = StudyCKA({"a": ["x", "y"], "b": ["z"], "c": ["x", "z"]})
    pairs = LayerPairsCKA()
    for _ in range(6):
        base = rng.normal(size=(10, 4))
        acts = {"a": [base, base @ rng.normal(size=(4, 3))], "b": [np.tanh(base)], "c": [2 * base, rng.normal(size=(10, 2))]}
        study.update({name: np.stack([x @ x.T for x in layers]) for name, layers in acts.items()})
        pairs.update(acts["a"], acts["b"] + acts["c"])
    expected = pairs.result()  # rows: a's layers; columns: b's, then c's
    np.testing.assert_allclose(study.matrix("a", "b"), expected[:, :1], rtol=1e-10)
    np.testing.assert_allclose(study.matrix("a", "c"), expected[:, 1:], rtol=1e-10)
    np.testing.assert_allclose(study.matrix("c", "a"), study.matrix("a", "c").T, rtol=1e-12)
    np.testing.assert_allclose(study.same_layer("x", ["a", "c"]), 1.0, rtol=1e-10)  # 2 * base is base, rescaled
    assert study.n_batches == 6 and study.n_examples == 60
