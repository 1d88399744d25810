"""Activation atlases (Carter et al., Distill 2019): what a layer's activation space holds, laid out in 2-D.

The method, in four steps, each a function of its own (the pipeline runs them as work units,
:mod:`tfvis.pipeline.activation_atlas_units`):

1. :func:`sample_activations`: a layer's activation vectors (all channels at one spatial position)
   at a few random positions of each image. The positions of image ``i`` are drawn from a
   generator keyed by ``(seed, i)`` alone (:func:`sample_positions`), so any sharding of the
   images samples the same positions.
2. :func:`layout`: the vectors placed in 2-D by UMAP (``umap-learn``, when installed) or t-SNE
   (scikit-learn), both comparing directions (cosine) and seeded, on one thread (a thread count
   changes the order of float sums, and a layout must be the same in any worker), then normalised
   to ``[0, 1]^2`` (:func:`normalize_layout`).
3. :func:`grid_cells`: the layout cut into ``grid x grid`` cells; for each cell holding at least
   ``min_count`` samples, its count, the mean of its activation vectors, and the samples nearest
   its centre (the dataset patches shown beside its icon).
4. :func:`render_cells`: each cell's mean vector rendered as an icon, by maximising
   :func:`direction_cossim` (Lucid's ``direction_neuron`` with ``cossim_pow``: the dot product of
   the centre unit's activation vector with the mean vector, times their cosine similarity to a
   power) through :func:`~tfvis.featurevis.render`'s loop (Fourier parameterization, decorrelated
   colours, random transforms).

:func:`activation_atlas` runs the four in memory on a batch of images.

The activations are read after the layer's activation function
(:func:`tfvis.featurevis.caricatures.activated_layer`: ``block4_conv3`` is read at
``block4_conv3_relu``), as Lucid's are: rectified vectors are sparse and non-negative, and the
direction of a mean of them is a mix of features the layer represents.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .. import graph, optim
from .. import precision as precision_
from ..images import model_batch
from . import objectives
from . import param as param_
from . import transforms as transforms_
from .caricatures import activated_layer
from .render import AUTO_BFLOAT16, FeatureNet, _as_result, _transforms_key, flat_or_nan, input_range, render_loop

#: The layout methods (``"auto"``: UMAP if ``umap-learn`` is installed, else t-SNE).
LAYOUTS = ("auto", "umap", "tsne")
#: Default exponent of the cosine similarity in :func:`direction_cossim` (Lucid's activation atlas: 4).
COSSIM_POWER = 4.0
#: Samples kept per cell as its nearest dataset examples.
NEAREST = 6
#: Vectors are reduced to this many principal components before t-SNE.
PCA_COMPONENTS = 50


def _umap_available():
    try:
        import umap  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


def layout_method(method="auto"):
    """The layout method ``method`` names: ``"umap"`` or ``"tsne"`` (``"auto"``: UMAP when installed).

    Raises
    ------
    ValueError
        An unknown method, or ``"umap"`` without ``umap-learn``.

    Examples
    --------
    >>> layout_method("tsne")
    'tsne'
    """
    if method not in LAYOUTS:
        raise ValueError(f"layout method {method!r}; choose from: {', '.join(LAYOUTS)}")
    if method == "auto":
        return "umap" if _umap_available() else "tsne"
    if method == "umap" and not _umap_available():
        raise ValueError("layout method 'umap' needs umap-learn: pip install umap-learn (or use 'tsne')")
    return method


def sample_positions(image_index, map_hw, count, seed=0):
    """The ``count`` spatial positions sampled in image ``image_index``'s map of ``map_hw`` units.

    Drawn without replacement from a generator keyed by ``(seed, image_index)`` only, so the same
    image gets the same positions whichever shard or batch reads it. Sorted row-major.

    Parameters
    ----------
    image_index : int
        The image's index in its dataset.
    map_hw : (int, int)
        The layer's map size.
    count : int
        Positions wanted (all of the map's when it has fewer).
    seed : int

    Returns
    -------
    ys, xs : ndarray of int32

    Examples
    --------
    >>> ys, xs = sample_positions(7, (4, 4), 3, seed=1)
    >>> len(ys), bool(np.array_equal(ys, sample_positions(7, (4, 4), 3, seed=1)[0]))
    (3, True)
    """
    h, w = (int(v) for v in map_hw)
    rng = np.random.default_rng([int(seed), int(image_index)])
    flat = np.sort(rng.choice(h * w, size=min(int(count), h * w), replace=False))
    return (flat // w).astype(np.int32), (flat % w).astype(np.int32)


@dataclass
class Samples:
    """Activation vectors sampled from images, and where each came from.

    Attributes
    ----------
    vectors : ndarray, float32, shape (N, C)
    image_index : ndarray, int64, shape (N,)
        The dataset index of each sample's image.
    y, x : ndarray, int32, shape (N,)
        Each sample's position in the layer's map.
    layer : str
        The layer read (after its activation function).
    map_hw : (int, int)
        The layer's map size on these images.
    """

    vectors: np.ndarray
    image_index: np.ndarray
    y: np.ndarray
    x: np.ndarray
    layer: str = ""
    map_hw: tuple = (0, 0)

    @classmethod
    def concatenate(cls, parts):
        """One :class:`Samples` of ``parts`` (in order)."""
        parts = list(parts)
        if not parts:
            raise ValueError("no samples to concatenate")
        return cls(
            np.concatenate([p.vectors for p in parts]).astype(np.float32),
            np.concatenate([p.image_index for p in parts]).astype(np.int64),
            np.concatenate([p.y for p in parts]).astype(np.int32),
            np.concatenate([p.x for p in parts]).astype(np.int32),
            parts[0].layer,
            tuple(parts[0].map_hw),
        )

    def __len__(self):
        return len(self.vectors)


def _feature_run(model, name):
    """The compiled forward pass to ``name`` of ``model``, traced once per process (cached per model)."""

    def build():
        features = FeatureNet(model, [name])
        return tf.function(lambda x: features(x)[name], reduce_retracing=True)

    return graph.cached(model, ("activation_atlas_features", name), build)


def sample_activations(model, images, layer, samples_per_image=8, seed=0, indices=None, batch_size=16, progress=False):
    """Activation vectors of ``layer`` at ``samples_per_image`` random positions of each image.

    Parameters
    ----------
    model : keras.Model
    images : array_like, shape (N, H, W, 3)
        In the model's input space (RGB in [0, 255] for the zoo).
    layer : str
        A layer of :func:`tfvis.graph.prepared` ``(model)``, read after its activation function
        (:func:`~tfvis.featurevis.caricatures.activated_layer`). It must have a spatial map.
    samples_per_image : int
    seed : int
    indices : sequence of int, optional
        The images' indices in their dataset (what keys their positions); default ``0..N-1``.
    batch_size : int
    progress : bool

    Returns
    -------
    Samples
    """
    images, _ = model_batch(model, images)
    if not len(images):
        raise ValueError("no images to sample activations from")
    indices = np.arange(len(images)) if indices is None else np.asarray(indices, np.int64)
    if len(indices) != len(images):
        raise ValueError(f"{len(indices)} indices for {len(images)} images")
    if int(samples_per_image) < 1:
        raise ValueError(f"samples_per_image={samples_per_image}: give at least 1")
    name = activated_layer(model, layer)
    run = _feature_run(model, name)
    vectors, image_index, ys, xs, map_hw = [], [], [], [], (0, 0)
    starts = range(0, len(images), int(batch_size))
    for start in tqdm(starts, desc=f"sampling {name}", unit="batch", disable=not progress):
        acts = run(tf.constant(images[start : start + int(batch_size)])).numpy()
        if acts.ndim != 4:
            raise ValueError(
                f"layer {name!r} has no 2-D spatial map (output shape {acts.shape[1:]}); choose a convolutional layer"
            )
        map_hw = acts.shape[1:3]
        for act, index in zip(acts, indices[start : start + int(batch_size)]):
            y, x = sample_positions(index, map_hw, samples_per_image, seed)
            vectors.append(act[y, x].astype(np.float32))
            image_index.append(np.full(len(y), index, np.int64))
            ys.append(y)
            xs.append(x)
    return Samples(
        np.concatenate(vectors),
        np.concatenate(image_index),
        np.concatenate(ys),
        np.concatenate(xs),
        name,
        tuple(map(int, map_hw)),
    )


def normalize_layout(points, low=1.0, high=99.0):
    """``points`` (N, 2) mapped to ``[0, 1]^2``: each axis' ``low``-th to ``high``-th percentile spread over it, outliers clipped.

    Examples
    --------
    >>> normalize_layout(np.array([[0.0, 10.0], [2.0, 30.0], [1.0, 20.0]]), 0, 100).tolist()
    [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]]
    """
    points = np.asarray(points, np.float64)
    lo, hi = np.percentile(points, low, axis=0), np.percentile(points, high, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.clip((points - lo) / span, 0.0, 1.0)


def layout(vectors, method="auto", seed=0, neighbors=20, min_dist=0.01, perplexity=30.0):
    """Place activation vectors in 2-D by their directions: UMAP or t-SNE, normalised to ``[0, 1]^2``.

    The vectors are made unit length (an atlas groups vectors by the mix of channels, not by
    their size). UMAP reads them with the cosine metric; t-SNE reads their first
    :data:`PCA_COMPONENTS` principal components. Both are seeded and run on one thread (BLAS
    and OpenMP limited), so a seed gives the same layout in any process, a Ray worker included.

    Parameters
    ----------
    vectors : array_like, shape (N, C)
    method : {"auto", "umap", "tsne"}
        ``"auto"``: UMAP if ``umap-learn`` is installed, else t-SNE (scikit-learn).
    seed : int
    neighbors : int
        UMAP's ``n_neighbors`` (Lucid's atlases: 20).
    min_dist : float
        UMAP's ``min_dist`` (Lucid's: 0.01, tight clusters).
    perplexity : float
        t-SNE's perplexity (at most a third of the samples).

    Returns
    -------
    ndarray, float64, shape (N, 2)
        ``(x, y)`` in ``[0, 1]^2`` (:func:`normalize_layout`).
    """
    method = layout_method(method)
    x = np.asarray(vectors, np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"vectors of shape {x.shape}: a layout needs (N, C) with at least 4 samples")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # umap: "n_jobs value 1 overridden to 1 by setting random_state"
        warnings.simplefilter("ignore", FutureWarning)
        if method == "umap":
            import umap

            reducer = umap.UMAP(
                n_components=2,
                n_neighbors=min(int(neighbors), n - 1),
                min_dist=float(min_dist),
                metric="cosine",
                random_state=int(seed),
                init="spectral" if n > 32 else "random",
            )
            points = reducer.fit_transform(x.astype(np.float32))
        else:
            from sklearn.decomposition import PCA
            from sklearn.manifold import TSNE

            dims = min(PCA_COMPONENTS, x.shape[1], n)
            reduced = PCA(dims, svd_solver="full").fit_transform(x) if dims < x.shape[1] else x
            tsne = TSNE(
                n_components=2,
                perplexity=min(float(perplexity), (n - 1) / 3.0),
                init="pca",
                learning_rate="auto",
                random_state=int(seed),
            )
            points = tsne.fit_transform(reduced)
    return normalize_layout(points)


@dataclass
class GridCells:
    """The non-empty cells of an atlas grid, row-major.

    Attributes
    ----------
    grid : int
        Cells per side.
    rows, cols : ndarray, int32, shape (K,)
        Each cell's row (from the layout's y, top first) and column (x).
    counts : ndarray, int64, shape (K,)
        Samples in each cell.
    means : ndarray, float32, shape (K, C)
        The mean activation vector of each cell.
    nearest : ndarray, int64, shape (K, nearest)
        Indices of the samples nearest each cell's centre in the layout, nearest first; -1 pads
        cells holding fewer.
    """

    grid: int
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    nearest: np.ndarray = field(default_factory=lambda: np.zeros((0, NEAREST), np.int64))

    def __len__(self):
        return len(self.counts)


def cell_of(points, grid):
    """``(rows, cols)``: the grid cell of each point of ``points`` (N, 2) in ``[0, 1]^2`` (x, y), ``grid`` cells a side.

    Examples
    --------
    >>> [r.tolist() for r in cell_of(np.array([[0.0, 0.0], [1.0, 0.49], [0.5, 0.99]]), 2)]
    [[0, 0, 1], [0, 1, 1]]
    """
    points = np.asarray(points, np.float64)
    cells = np.clip(np.floor(points * int(grid)).astype(np.int64), 0, int(grid) - 1)
    return cells[:, 1], cells[:, 0]


def grid_cells(points, vectors, grid=20, min_count=3, nearest=NEAREST):
    """Cut the layout ``points`` into ``grid x grid`` cells: counts, mean vectors and nearest samples of each cell.

    Parameters
    ----------
    points : array_like, shape (N, 2)
        The layout in ``[0, 1]^2`` (x, y).
    vectors : array_like, shape (N, C)
    grid : int
    min_count : int
        Cells with fewer samples are dropped (their mean is noise).
    nearest : int
        Samples kept per cell, nearest its centre first.

    Returns
    -------
    GridCells
    """
    if int(grid) < 1 or int(min_count) < 1:
        raise ValueError(f"grid={grid}, min_count={min_count}: both must be at least 1")
    grid = int(grid)
    points = np.asarray(points, np.float64)
    vectors = np.asarray(vectors, np.float32)
    rows, cols = cell_of(points, grid)
    flat = rows * grid + cols
    counts = np.bincount(flat, minlength=grid**2)
    kept = np.flatnonzero(counts >= int(min_count))
    sums = np.zeros((grid**2, vectors.shape[1]), np.float64)
    np.add.at(sums, flat, vectors)
    means = (sums[kept] / counts[kept, None]).astype(np.float32)
    close = np.full((len(kept), int(nearest)), -1, np.int64)
    for k, cell in enumerate(kept):
        members = np.flatnonzero(flat == cell)
        centre = np.array([(cell % grid + 0.5) / grid, (cell // grid + 0.5) / grid])
        distance = np.linalg.norm(points[members] - centre, axis=1)
        order = members[np.lexsort((members, distance))][: int(nearest)]
        close[k, : len(order)] = order
    return GridCells(
        grid, (kept // grid).astype(np.int32), (kept % grid).astype(np.int32), counts[kept].astype(np.int64), means, close
    )


def direction_cossim(name, vectors, power=COSSIM_POWER, neuron=True):
    """Image ``i`` of the batch towards direction ``vectors[i]``: ``dot(a, v) * max(cossim(a, v), 0.1) ** power``, summed.

    ``a`` is the activation vector at the centre of ``name``'s map (``neuron=True``, Lucid's
    ``direction_neuron``: an atlas icon shows one unit's view) or, with ``neuron=False``, at every
    position (the per-position values averaged). The plain
    :func:`~tfvis.featurevis.objectives.direction` rewards any large activation with some component
    along ``v``; the cosine's power rewards the activation's direction matching ``v``, the mix of
    channels a cell stands for. The floor at 0.1 keeps a power defined and a wrong direction
    unrewarded.

    Parameters
    ----------
    name : str
        Layer name (on :func:`tfvis.graph.prepared`).
    vectors : array_like, shape (B, C), or a tf.Variable of that shape
        One direction per image of the batch (a variable is read when the objective runs, so it
        can change between runs of one compiled loop).
    power : float
    neuron : bool

    Returns
    -------
    Objective

    Examples
    --------
    >>> direction_cossim("block4_conv3", np.ones((2, 512))).name
    'direction_cossim(block4_conv3, power=4)'
    """
    held = vectors if isinstance(vectors, tf.Variable) else tf.constant(np.asarray(vectors, np.float32))
    text = f"direction_cossim({name}, power={float(power):g})"

    def check(shapes):
        if len(shapes[name]) != 3:
            raise ValueError(f"{text}: layer {name!r} has no 2-D spatial map (output shape {shapes[name]})")
        if shapes[name][-1] != held.shape[-1]:
            raise ValueError(f"{text}: vectors have {held.shape[-1]} entries, layer {name!r} has {shapes[name][-1]} channels")

    @tf.autograph.experimental.do_not_convert
    def value(acts):
        act = acts[name]
        v = tf.cast(tf.convert_to_tensor(held), act.dtype)
        act = act[: tf.shape(v)[0]]
        if neuron:
            a = act[:, tf.shape(act)[1] // 2, tf.shape(act)[2] // 2, :]
            dot = tf.reduce_sum(a * v, axis=-1)
            cos = dot / (tf.norm(a, axis=-1) * tf.norm(v, axis=-1) + 1e-6)
            return tf.reduce_sum(dot * tf.maximum(cos, 0.1) ** float(power))
        dot = tf.einsum("bhwc,bc->bhw", act, v)
        cos = dot / (tf.norm(act, axis=-1) * tf.norm(v, axis=-1)[:, None, None] + 1e-6)
        return tf.reduce_sum(tf.reduce_mean(dot * tf.maximum(cos, 0.1) ** float(power), axis=[1, 2]))

    return objectives.Objective(value, [name], text, [check])


def atlas_transforms(size):
    """The icons' random transforms, Lucid's atlas set scaled to ``size``: pad, two jitters, scale, rotate 10 degrees, jitter.

    Examples
    --------
    >>> atlas_transforms(64)(tf.zeros([1, 64, 64, 3]), tf.constant([0, 0])).shape[0]
    1
    """
    unit = max(1, int(size) // 32)
    return transforms_.compose(
        transforms_.pad(2 * unit),
        transforms_.jitter(2 * unit),
        transforms_.jitter(2 * unit),
        transforms_.scale(transforms_.STANDARD_SCALES),
        transforms_.rotate(10),
        transforms_.jitter(unit),
    )


#: Render settings of :func:`render_cells` besides its own, with their defaults (those of :func:`~tfvis.featurevis.render`).
_DEFAULTS = {"param": "fft", "decorrelate": True, "learning_rate": 0.05, "precision": "float32", "flat_tolerance": 0.01}


def render_cells(
    model, layer, vectors, size=64, steps=256, seed=0, batch=None, power=COSSIM_POWER, transforms=None, progress=False, **kwargs
):
    """Render one icon per direction of ``vectors``: :func:`direction_cossim` maximised through :func:`~tfvis.featurevis.render`'s loop.

    The compiled loop is cached per model, layer, batch and settings, with the directions in a
    variable, so every batch of cells of an atlas reuses one trace. A shorter last batch is filled
    up with its last direction (and those icons dropped).

    Parameters
    ----------
    model : keras.Model
    layer : str
        The layer (read after its activation function, like :func:`sample_activations`).
    vectors : array_like, shape (K, C)
    size : int
    steps : int
    seed : int
    batch : int, optional
        Icons rendered together (default all K).
    power : float
    transforms : callable, optional
        Default :func:`atlas_transforms` ``(size)``.
    progress : bool
    **kwargs
        ``param`` ("fft"), ``decorrelate`` (True), ``learning_rate`` (0.05), ``precision``
        ("float32"), ``flat_tolerance`` (0.01).

    Returns
    -------
    RenderResult
        ``(K, size, size, 3)`` in [0, 1]; ``values``: the objective at each step, averaged over
        the batches.
    """
    unknown = sorted(set(kwargs) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"render_cells() got unexpected keyword(s) {', '.join(unknown)}; render settings: {', '.join(_DEFAULTS)}")
    settings = {key: kwargs.get(key, default) for key, default in _DEFAULTS.items()}
    settings["precision"] = precision_.resolve_precision(settings["precision"], AUTO_BFLOAT16)
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or not len(vectors):
        raise ValueError(f"vectors of shape {vectors.shape}: give (K, C) directions, K >= 1")
    name = activated_layer(model, layer)
    batch = int(batch or len(vectors))
    size, steps = int(size), int(steps)
    transform = transforms if transforms is not None else atlas_transforms(size)
    low, high = (float(v) for v in input_range(model))

    def build():
        hw = transforms_.output_size(transform, size)
        features = FeatureNet(model, [name], input_hw=hw, precision=settings["precision"])
        held = tf.Variable(tf.zeros((batch, vectors.shape[1])), trainable=False)
        objective = direction_cossim(name, held, power)
        objective.check(features.shapes(hw), batch)
        image_param = param_.image(size, batch, param=settings["param"], decorrelate=settings["decorrelate"], seed=seed)
        loop = render_loop(
            features, lambda acts, aux: objective(acts), image_param, transform, (low, high), settings["learning_rate"]
        )
        loop.held = held
        return loop

    key = (
        "activation_atlas",
        name,
        batch,
        size,
        vectors.shape[1],
        float(power),
        _transforms_key(transforms) if transforms is not None else ("atlas", size),
        (low, high),
        *(float(settings[k]) if k == "learning_rate" else settings[k] for k in _DEFAULTS),
    )
    loop = optim.cached_loop(model, key, build)
    images, values = [], []
    try:
        loop.features.sync(model)
        chunks = range(0, len(vectors), batch)
        for start in tqdm(chunks, desc=f"icons {name}", unit="batch", disable=not progress or len(chunks) < 2):
            chunk = vectors[start : start + batch]
            loop.held.assign(np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)]))
            loop.start(seed)
            history, _ = optim.optimize(loop, steps, seed, progress=progress and len(chunks) < 2, desc=f"icons {name}")
            images.append(loop.image_param().numpy()[: len(chunk)])
            values.append(history)
    finally:
        loop.lock.release()
    images = np.concatenate(images)
    failed = flat_or_nan(images, settings["flat_tolerance"])
    names = [f"direction_cossim({name}, cell {i})" for i in range(len(images))]
    return _as_result(images, failed, names, np.mean(values, axis=0), steps, loop.features.precision)


@dataclass
class AtlasResult:
    """An activation atlas in memory (:func:`activation_atlas`).

    Attributes
    ----------
    samples : Samples
    points : ndarray, shape (N, 2)
        The layout in ``[0, 1]^2``, one point per sample.
    cells : GridCells
    renders : RenderResult
        One icon per cell, ``(K, size, size, 3)`` in [0, 1].
    method : str
        The layout method used.
    """

    samples: Samples
    points: np.ndarray
    cells: GridCells
    renders: np.ndarray
    method: str


def activation_atlas(
    model,
    images,
    layer,
    samples_per_image=8,
    grid=20,
    min_count=3,
    method="auto",
    seed=0,
    steps=256,
    size=64,
    batch=16,
    power=COSSIM_POWER,
    progress=True,
):
    """An activation atlas of ``layer`` over ``images``: sample, lay out, grid, render.

    Parameters
    ----------
    model : keras.Model
    images : array_like, shape (N, H, W, 3)
        In the model's input space (RGB in [0, 255] for the zoo).
    layer : str
    samples_per_image : int
    grid : int
        Cells per side.
    min_count : int
        Cells with fewer samples are not rendered.
    method : {"auto", "umap", "tsne"}
    seed : int
        Seeds the positions, the layout and the icons.
    steps, size, batch : int
        Of the icons' renders.
    power : float
        Of :func:`direction_cossim`.
    progress : bool

    Returns
    -------
    AtlasResult

    Examples
    --------
    >>> atlas = activation_atlas(model, photos, "block4_conv3", grid=10)  # doctest: +SKIP
    >>> atlas.renders.shape  # doctest: +SKIP
    (61, 64, 64, 3)
    """
    method = layout_method(method)
    samples = sample_activations(model, images, layer, samples_per_image, seed, progress=progress)
    points = layout(samples.vectors, method, seed)
    cells = grid_cells(points, samples.vectors, grid, min_count)
    if not len(cells):
        raise ValueError(f"no cell of the {grid} x {grid} grid holds {min_count} samples; lower min_count or grid")
    renders = render_cells(model, layer, cells.means, size, steps, seed, batch, power, progress=progress)
    return AtlasResult(samples, points, cells, renders, method)


__all__ = [
    "LAYOUTS",
    "AtlasResult",
    "GridCells",
    "Samples",
    "activation_atlas",
    "atlas_transforms",
    "cell_of",
    "direction_cossim",
    "grid_cells",
    "layout",
    "layout_method",
    "normalize_layout",
    "render_cells",
    "sample_activations",
    "sample_positions",
]
