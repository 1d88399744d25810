"""Sanity checks for saliency maps (Adebayo et al. 2018): do the maps change when the model's weights do?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, *Sanity Checks for Saliency Maps* (NeurIPS
2018), randomize a trained model's weights layer by layer and compare each method's maps on the
trained model with its maps on the randomized one. A map that stays the same when the weights it
is meant to explain are random cannot explain them. Two kinds of randomization:

* **cascading**: the top weighted layer, then the top two, ... down to the first;
* **independent**: one layer at a time, every other layer trained.

Per randomization, method and image three similarities between the trained map and the
randomized one, as in the paper:

* ``spearman_abs``: Spearman rank correlation of the absolute maps;
* ``spearman``: Spearman rank correlation of the signed maps;
* ``ssim``: structural similarity (:func:`skimage.metrics.structural_similarity`) of the absolute
  maps scaled to [0, 1] (divided by their 99th percentile, clipped).

Which maps. A method whose attributions have colour channels (the gradient, guided backprop, the
deconvnet's rule, Gradient x Input, Integrated Gradients) gives its absolute map as tfvis shows
it, ``max_c |a|``, and its signed map as the sum over colour channels ``sum_c a``. Any other
method of :data:`tfvis.saliency.methods.METHODS` (Grad-CAM, SmoothGrad's magnitude, occlusion,
RISE) has one map, compared as it is (signed) and as its absolute value.

Beyond the paper, which checks saliency maps only, two of the field's other pictures of a unit can
be checked the same way: the deconvnet reconstruction of the target channel's strongest unit
(:func:`tfvis.deconv.reconstruct`, ``reconstructions=True``; Zeiler & Fergus's picture, which
Nie, Zhang & Patel 2018 showed to be mostly image recovery) and the feature visualization of the
target channel (:func:`tfvis.featurevis.render`, ``visualizations=True``), compared by the
Spearman correlation of their grey levels and the SSIM of their RGB pictures.

Randomization works on one copy of the model (``keras.models.clone_model``, the trained weights
set on it): the user's model is never changed, and each step only assigns weights to the copy,
so every compiled function is traced once for all the steps. A layer's random weights are those
:func:`tfvis.models.spec.reinitialise_layers` draws with the same seed (Keras' own initialisers
on a clone built right after ``keras.utils.set_random_seed(seed)``), so a layer holds the same
random weights in every step, and ``ModelSpec(..., reinit=layers, reinit_seed=seed)`` rebuilds
exactly the randomized model in any process (the report's units do).

Examples
--------
>>> result = sanity_check(model, photos, "block5_conv3:12", methods=("vanilla", "guided"))  # doctest: +SKIP
>>> result.to_csv("sanity.csv"); result.plot("sanity.png")                                  # doctest: +SKIP
"""

import csv
import io
from dataclasses import dataclass

import keras
import numpy as np
from scipy.stats import rankdata
from skimage.metrics import structural_similarity
from tqdm.auto import tqdm

from .. import fileio
from ..activations import activations
from ..deconv import reconstruct
from ..featurevis import render
from ..layers import get_layer
from ..targets import LOGITS, parse
from .gradcam import default_layer
from .gradient import gradients
from .integrated import integrated_gradients
from .methods import method as saliency_method
from .perturbation import gradient_x_input

#: Saliency methods checked by default (entries of :data:`tfvis.saliency.methods.METHODS`).
DEFAULT_METHODS = ("vanilla", "gradient_x_input", "integrated", "guided", "grad_cam", "smoothgrad")
#: The kinds of randomization.
MODES = ("cascading", "independent")
#: Similarities of two maps: Spearman of the absolute maps, of the signed maps, SSIM of the scaled absolute maps.
METRICS = ("spearman_abs", "spearman", "ssim")
#: Similarities of two feature visualizations: Spearman of their grey levels, SSIM of their RGB pictures.
VISUALIZATION_METRICS = ("spearman", "ssim")
#: The table's name of the deconvnet reconstructions of the target channel (:func:`tfvis.deconv.reconstruct`).
RECONSTRUCTION = "deconvnet_reconstruction"
#: The table's name of the feature visualizations of the target channel (:func:`tfvis.featurevis.render`).
VISUALIZATION = "feature_visualization"
#: Titles of the two checks that are not saliency methods.
EXTRA_TITLES = {RECONSTRUCTION: "Deconvnet reconstruction", VISUALIZATION: "Feature visualization"}
#: Options given to the methods unless ``options`` says otherwise: fewer Integrated Gradients steps and
#: SmoothGrad copies than their defaults, since every method runs once per randomized model.
DEFAULT_OPTIONS = {"steps": 32, "samples": 16, "noise": 0.15}
#: Percentile of each absolute map that :func:`scaled` maps to 1.
SCALE_PERCENTILE = 99.0
#: The key of the trained model's maps in :attr:`SanityResult.examples`.
TRAINED = "trained"

#: Methods whose attributions have colour channels, and the function giving them (N, H, W, C).
_ATTRIBUTIONS = {
    "vanilla": lambda model, images, target, batch_size, options: gradients(model, images, target, batch_size, "vanilla"),
    "guided": lambda model, images, target, batch_size, options: gradients(model, images, target, batch_size, "guided"),
    "deconvnet": lambda model, images, target, batch_size, options: gradients(model, images, target, batch_size, "deconvnet"),
    "gradient_x_input": lambda model, images, target, batch_size, options: gradient_x_input(
        model, images, target, batch_size, reduce=None
    ),
    "integrated": lambda model, images, target, batch_size, options: integrated_gradients(
        model, images, target, batch_size=batch_size, reduce=None, **saliency_method("integrated").options_for(options)
    ),
}


@dataclass(frozen=True)
class Step:
    """One randomization of the model.

    Attributes
    ----------
    mode : {"cascading", "independent"}
    layer : str
        The layer the step is named by: the lowest layer randomized (cascading) or the one layer
        randomized (independent).
    randomized : tuple of str
        Every layer whose weights are random in this step, top first.
    """

    mode: str
    layer: str
    randomized: tuple


def weighted_layers(model):
    """The names of ``model``'s layers that hold weights, input side first (what :func:`sanity_check` randomizes)."""
    return [layer.name for layer in model.layers if layer.weights]


def randomization_steps(layers, modes=MODES):
    """The steps of each mode over ``layers`` (input side first): cascading from the top down, then independent.

    Parameters
    ----------
    layers : sequence of str
        Weighted layers, in the model's order (input side first).
    modes : sequence of str
        Some of :data:`MODES`.

    Returns
    -------
    list of Step

    Examples
    --------
    >>> [s.randomized for s in randomization_steps(["a", "b", "c"], ["cascading"])]
    [('c',), ('c', 'b'), ('c', 'b', 'a')]
    >>> [s.randomized for s in randomization_steps(["a", "b", "c"], ["independent"])]
    [('c',), ('b',), ('a',)]
    """
    modes = _check_modes(modes)
    top_down = list(layers)[::-1]
    steps = []
    for mode in modes:
        for depth, layer in enumerate(top_down, 1):
            randomized = tuple(top_down[:depth]) if mode == "cascading" else (layer,)
            steps.append(Step(mode, layer, randomized))
    return steps


def _check_modes(modes):
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes={modes!r}: choose one or both of: {', '.join(MODES)}")
    return modes


def _check_layers(model, layers):
    weighted = weighted_layers(model)
    if layers is None:
        if not weighted:
            raise ValueError(f"model {model.name!r} has no layer with weights to randomize")
        return weighted
    layers = [layers] if isinstance(layers, str) else list(layers)
    bad = [name for name in layers if name not in weighted]
    if bad or not layers:
        raise ValueError(f"layers={bad or layers!r}: not weighted layers of {model.name!r}; choose from: {', '.join(weighted)}")
    order = {name: i for i, name in enumerate(weighted)}
    return sorted(dict.fromkeys(layers), key=order.__getitem__)


def check_methods(methods):
    """``methods`` (names or aliases of :data:`tfvis.saliency.methods.METHODS`) as canonical names; ``ValueError`` naming the choices."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    return tuple(dict.fromkeys(saliency_method(name).name for name in methods))


class RandomizedCopy:
    """One copy of a model whose weighted layers can be set, layer by layer, to trained or random weights.

    Parameters
    ----------
    model : keras.Model
        The trained model (never changed).
    layers : sequence of str
        The layers that may be randomized.
    seed : int
        Seed of the random weights, as :func:`tfvis.models.spec.reinitialise_layers` takes it.

    Attributes
    ----------
    model : keras.Model
        The copy, holding the weights of the last :meth:`randomize`.
    """

    def __init__(self, model, layers, seed=0):
        self.model = keras.models.clone_model(model)
        self.model.set_weights(model.get_weights())
        for attribute in ("tfvis_info", "tfvis_layout"):  # what tfvis reads of the model besides its layers
            if hasattr(model, attribute):
                setattr(self.model, attribute, getattr(model, attribute))
        self._trained = {name: model.get_layer(name).get_weights() for name in layers}
        keras.utils.set_random_seed(int(seed))
        fresh = keras.models.clone_model(model)  # as reinitialise_layers draws them
        self._random = {name: fresh.get_layer(name).get_weights() for name in layers}
        self._current = ()
        same = [name for name in layers if _drawn_again(self._trained[name], self._random[name])]
        if same:
            raise ValueError(
                f"seed={seed} draws the trained weights of {', '.join(same)} again (the model was initialised "
                "with this seed and not trained?); pass another seed"
            )

    def randomize(self, names=()):
        """Give the layers ``names`` their random weights and every other layer its trained ones; returns the copy."""
        names = tuple(names)
        unknown = [name for name in names if name not in self._random]
        if unknown:
            raise ValueError(f"cannot randomize {', '.join(unknown)}: choose from {', '.join(self._random)}")
        for name in set(self._current) | set(names):
            weights = self._random[name] if name in names else self._trained[name]
            self.model.get_layer(name).set_weights(weights)
        self._current = names
        return self.model


def _drawn_again(trained, random):
    """Whether a layer's random arrays are its trained ones, where any is random at all (not a constant such as zero biases)."""
    drawn = any(np.ptp(array) > 0 for array in random) if random else False
    return drawn and all(np.array_equal(a, b) for a, b in zip(trained, random))


def strongest_channel_targets(model, images, layer, batch_size=16):
    """Each image's channel of ``layer`` with the largest mean activation, as ``"layer:channel"`` targets.

    A target for models without trained classifiers (the offline VGG16's conv weights): the
    channel the trained model finds most in each image.

    Examples
    --------
    >>> strongest_channel_targets(model, photos, "block5_conv3")  # doctest: +SKIP
    ['block5_conv3:12', 'block5_conv3:40']
    """
    act = activations(model, [layer], np.asarray(images, np.float32), batch_size=batch_size)[layer]
    means = act.reshape(len(act), -1, act.shape[-1]).mean(axis=1)
    return [f"{layer}:{int(c)}" for c in means.argmax(axis=1)]


def cam_layer(model, target):
    """Where Grad-CAM reads a target's maps: the target's own layer when it outputs a map (a channel target), else :func:`default_layer`."""
    first = parse(target[0] if isinstance(target, (list, tuple)) else target)
    if first.layer != LOGITS and len(get_layer(model, first.layer).output.shape) == 4:
        return first.layer
    return default_layer(model)


def explanations(
    model,
    images,
    target,
    methods=DEFAULT_METHODS,
    options=None,
    batch_size=16,
    seed=0,
    reconstructions=True,
    visualizations=False,
    visualization_size=64,
    visualization_steps=64,
):
    """Every map :func:`sanity_check` compares, for one model.

    Parameters
    ----------
    model, images, target, methods, batch_size, seed, reconstructions, visualizations
        As in :func:`sanity_check`.
    options : dict, optional
        The methods' options (each reads those it takes), over :data:`DEFAULT_OPTIONS`.
    visualization_size, visualization_steps : int
        Side and optimisation steps of the feature visualizations.

    Returns
    -------
    dict
        ``{name: (absolute, signed)}`` float32 maps (N, H, W) for each method and for
        :data:`RECONSTRUCTION`; for :data:`VISUALIZATION`, ``(images, grey)``: the RGB
        visualizations in [0, 1] (N, s, s, 3) and their grey levels (N, s, s).
    """
    images = np.asarray(images, np.float32)
    settings = {**DEFAULT_OPTIONS, **(options or {}), "seed": int(seed)}
    if "layer" not in settings and any(saliency_method(name).options_for({"layer": None}) for name in methods):
        settings["layer"] = cam_layer(model, target)
    found = {}
    for name in check_methods(methods):
        if name in _ATTRIBUTIONS:
            raw = np.asarray(_ATTRIBUTIONS[name](model, images, target, batch_size, settings), np.float32)
            found[name] = (np.abs(raw).max(axis=-1), raw.sum(axis=-1))
        else:
            maps = np.asarray(saliency_method(name)(model, images, target, batch_size=batch_size, **settings), np.float32)
            found[name] = (np.abs(maps), maps)
    if reconstructions:
        raw = np.asarray(reconstruct(model, images, target, "deconvnet", position="max", batch_size=batch_size), np.float32)
        found[RECONSTRUCTION] = (np.abs(raw).max(axis=-1), raw.sum(axis=-1))
    if visualizations:
        targets = target if isinstance(target, (list, tuple)) else [target] * len(images)
        pictures = render(
            model,
            list(targets),
            size=int(visualization_size),
            steps=int(visualization_steps),
            seed=int(seed),
            progress=False,
        )
        pictures = np.clip(np.asarray(pictures, np.float32), 0.0, 1.0)
        found[VISUALIZATION] = (pictures, pictures.mean(axis=-1))
    return found


# --------------------------------------------------------------------------------------------
# Similarities
# --------------------------------------------------------------------------------------------


def rank_correlation(a, b):
    """Spearman rank correlation of each pair of maps ``a[i]``, ``b[i]`` (ties get their average rank).

    Parameters
    ----------
    a, b : ndarray, shape (N, ...)

    Returns
    -------
    ndarray of float64, shape (N,)
        Where a map is constant (a dead channel's Grad-CAM) its ranks have no spread and the
        correlation is undefined: 0 when one map of the pair is constant (it orders no pixel
        before another, so it shares no order with the other map), 1 when both are.

    Examples
    --------
    >>> float(rank_correlation(np.array([[1.0, 2, 3, 4]]), np.array([[10.0, 20, 40, 30]]))[0])
    0.8
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    spread_a, spread_b = (ra**2).sum(axis=1), (rb**2).sum(axis=1)
    norms = np.sqrt(spread_a * spread_b)
    undefined = np.where((spread_a == 0) & (spread_b == 0), 1.0, 0.0)
    return np.where(norms > 0, (ra * rb).sum(axis=1) / np.where(norms > 0, norms, 1.0), undefined)


def scaled(maps, percentile=SCALE_PERCENTILE):
    """Absolute ``maps`` (N, H, W) divided by each map's ``percentile``-th percentile and clipped to [0, 1] (zero maps stay 0)."""
    maps = np.abs(np.asarray(maps, np.float64))
    top = np.percentile(maps.reshape(len(maps), -1), percentile, axis=1).reshape(-1, *([1] * (maps.ndim - 1)))
    top = np.where(top > 0, top, maps.reshape(len(maps), -1).max(axis=1).reshape(top.shape))
    return np.clip(maps / np.where(top > 0, top, 1.0), 0.0, 1.0)


def _window(shape):
    side = min(7, *shape)
    return side if side % 2 else side - 1


def structural_similarities(a, b, channel_axis=None):
    """SSIM of each pair of pictures in [0, 1]: :func:`skimage.metrics.structural_similarity` with ``data_range=1``.

    A 7 x 7 uniform window (scikit-image's default; smaller, odd, for pictures under 7 px).

    Parameters
    ----------
    a, b : ndarray, shape (N, H, W) or (N, H, W, C) with ``channel_axis=-1``

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    window = _window(np.shape(a)[1:3])
    return np.array(
        [
            structural_similarity(
                np.asarray(x, np.float64), np.asarray(y, np.float64), data_range=1.0, win_size=window, channel_axis=channel_axis
            )
            for x, y in zip(a, b)
        ]
    )


def similarities(name, trained, randomized):
    """``{metric: per-image values}`` between the trained and the randomized model's maps of ``name``."""
    if name == VISUALIZATION:
        return {
            "spearman": rank_correlation(trained[1], randomized[1]),
            "ssim": structural_similarities(trained[0], randomized[0], channel_axis=-1),
        }
    return {
        "spearman_abs": rank_correlation(trained[0], randomized[0]),
        "spearman": rank_correlation(trained[1], randomized[1]),
        "ssim": structural_similarities(scaled(trained[0]), scaled(randomized[0])),
    }


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


def title(name):
    """The title of a checked method, reconstruction or visualization."""
    return EXTRA_TITLES.get(name) or saliency_method(name).title


class SanityResult:
    """What :func:`sanity_check` found: the similarities of every step, method and metric, and the maps.

    Attributes
    ----------
    rows : list of dict
        One per (mode, layer, method, metric), in step order: ``mode``, ``layer``,
        ``randomized`` (how many layers are random), ``method``, ``metric``, ``mean`` (over the
        images, NaN ones left out) and ``values`` (ndarray, one per image).
    steps : list of Step
    names : list of str
        The methods checked, then :data:`RECONSTRUCTION` and :data:`VISUALIZATION` when checked.
    targets : list
        Each image's target.
    examples : dict
        ``{name: {TRAINED or (mode, layer): pictures}}``: the absolute maps (N, H, W) of every
        method and reconstruction, and the visualizations (N, s, s, 3), of the trained model
        and of each step.
    """

    def __init__(self, rows, steps, names, targets, examples):
        self.rows, self.steps, self.names, self.targets, self.examples = rows, list(steps), list(names), list(targets), examples

    @classmethod
    def from_explanations(cls, steps, trained, randomized, targets):
        """Compare ``trained`` (:func:`explanations` of the trained model) with ``randomized[i]`` (of ``steps[i]``)."""
        names = list(trained)
        rows = []
        examples = {name: {TRAINED: trained[name][0]} for name in names}
        for step, found in zip(steps, randomized):
            for name in names:
                examples[name][(step.mode, step.layer)] = found[name][0]
                for metric, values in similarities(name, trained[name], found[name]).items():
                    finite = values[np.isfinite(values)]
                    rows.append(
                        {
                            "mode": step.mode,
                            "layer": step.layer,
                            "randomized": len(step.randomized),
                            "method": name,
                            "metric": metric,
                            "mean": float(finite.mean()) if len(finite) else float("nan"),
                            "values": values,
                        }
                    )
        return cls(rows, steps, names, targets, examples)

    @property
    def modes(self):
        """The modes checked, in order."""
        return list(dict.fromkeys(step.mode for step in self.steps))

    @property
    def metrics(self):
        """The metrics of the table, in :data:`METRICS` order."""
        found = {row["metric"] for row in self.rows}
        return [metric for metric in METRICS if metric in found]

    def layers(self, mode):
        """The layers of ``mode``'s steps, top first (the plot's x axis)."""
        return [step.layer for step in self.steps if step.mode == mode]

    def curve(self, mode, name, metric):
        """The mean similarity of ``name`` by ``metric`` at each step of ``mode`` (NaN where not computed)."""
        means = {
            row["layer"]: row["mean"] for row in self.rows if (row["mode"], row["method"], row["metric"]) == (mode, name, metric)
        }
        return np.array([means.get(layer, np.nan) for layer in self.layers(mode)])

    def value(self, mode, layer, name, metric):
        """The mean similarity of one row (KeyError when the table has no such row)."""
        for row in self.rows:
            if (row["mode"], row["layer"], row["method"], row["metric"]) == (mode, layer, name, metric):
                return row["mean"]
        raise KeyError((mode, layer, name, metric))

    def csv_text(self):
        """The table as CSV: mode, layer, randomized, method, metric, mean, then one column per image."""
        images = max((len(row["values"]) for row in self.rows), default=0)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["mode", "layer", "randomized", "method", "metric", "mean"] + [f"image_{i}" for i in range(images)])
        for row in self.rows:
            values = [f"{v:.6g}" for v in row["values"]]
            writer.writerow(
                [row["mode"], row["layer"], row["randomized"], row["method"], row["metric"], f"{row['mean']:.6g}"] + values
            )
        return out.getvalue()

    def to_csv(self, path):
        """Write :meth:`csv_text` to ``path`` (atomically); returns the path."""
        return fileio.write_text(path, self.csv_text())

    def figure(self, names=None):
        """The paper's figure: a panel per (mode, metric), x the layers randomized top-down, one line per method.

        The first point, ``trained``, is 1: every map is identical to itself.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        names = [n for n in (names or self.names) if n in self.names]
        modes, metrics = self.modes, self.metrics
        labels = {"spearman_abs": "Spearman, absolute maps", "spearman": "Spearman, signed maps", "ssim": "SSIM"}
        widest = max(len(self.layers(mode)) for mode in modes)
        fig = Figure(figsize=(max(4.2, 0.3 * widest + 1.6) * len(metrics), 4.0 * len(modes) + 0.4), layout="constrained")
        axes = fig.subplots(len(modes), len(metrics), squeeze=False, sharey=True)
        colours = matplotlib.colormaps["tab10"]
        for row, mode in enumerate(modes):
            layers = self.layers(mode)
            x = np.arange(len(layers) + 1)
            for column, metric in enumerate(metrics):
                ax = axes[row, column]
                for i, name in enumerate(names):
                    curve = self.curve(mode, name, metric)
                    if np.isnan(curve).all():
                        continue
                    style = "--" if name in EXTRA_TITLES else "-"
                    ax.plot(x, np.concatenate([[1.0], curve]), style, marker="o", ms=3, color=colours(i % 10), label=title(name))
                ax.axhline(0, color="0.6", lw=0.6)
                ax.set_xticks(x, [TRAINED] + layers, rotation=70, fontsize=7)
                ax.set_ylim(-0.45, 1.05)
                ax.set_title(f"{mode}: {labels[metric]}", fontsize=9)
                if column == 0:
                    ax.set_ylabel("similarity to the trained model's map")
        handles, labels_ = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels_, fontsize=8, loc="outside right upper")
        fig.supxlabel("layers randomized, from the top down", fontsize=9)
        return fig

    def plot(self, path=None, names=None, dpi=110):
        """Draw :meth:`figure` and save it as a PNG at ``path`` (atomically); returns the figure."""
        fig = self.figure(names)
        if path is not None:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=dpi)
            fileio.write_bytes(path, buffer.getvalue())
        return fig

    def __repr__(self):
        return f"SanityResult({len(self.steps)} steps, {len(self.names)} methods, {len(self.rows)} rows)"


def read_csv(path):
    """The :class:`SanityResult` of a table written by :meth:`SanityResult.to_csv`, without example maps (to plot it again)."""
    with open(path, newline="", encoding="utf8") as handle:
        lines = list(csv.reader(handle))
    rows, steps, names = [], {}, {}
    for mode, layer, randomized, name, metric, mean, *values in lines[1:]:
        steps.setdefault((mode, layer), int(randomized))
        names.setdefault(name)
        values = np.array([float(v) for v in values])
        rows.append(
            {
                "mode": mode,
                "layer": layer,
                "randomized": int(randomized),
                "method": name,
                "metric": metric,
                "mean": float(mean),
                "values": values,
            }
        )
    ordered, above = [], {}
    for (mode, layer), count in steps.items():  # cascading steps randomize every layer before them too
        chain = above.setdefault(mode, [])
        chain.append(layer)
        ordered.append(Step(mode, layer, tuple(chain[:count]) if mode == "cascading" else (layer,)))
    return SanityResult(rows, ordered, list(names), [], {})


def sanity_check(
    model,
    images,
    target,
    methods=DEFAULT_METHODS,
    layers=None,
    modes=MODES,
    seed=0,
    batch_size=16,
    reconstructions=True,
    visualizations=False,
    options=None,
    visualization_size=64,
    visualization_steps=64,
    progress=True,
):
    """Adebayo et al.'s model-randomization test of saliency maps, reconstructions and feature visualizations.

    Parameters
    ----------
    model : keras.Model
        The trained model (not changed: the randomized models are a copy's weights).
    images : ndarray, shape (N, H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo).
    target : int, str or list
        A target of :mod:`tfvis.targets` for every image, or one per image (e.g.
        :func:`strongest_channel_targets`); the same targets on every randomized model.
        Reconstructions and visualizations need channel (or class) targets.
    methods : sequence of str
        Entries of :data:`tfvis.saliency.methods.METHODS` (default :data:`DEFAULT_METHODS`).
    layers : sequence of str, optional
        The layers randomized (default: every layer with weights, :func:`weighted_layers`);
        steps go from the top one down.
    modes : sequence of str
        ``"cascading"`` and/or ``"independent"`` (:func:`randomization_steps`).
    seed : int
        Seed of the random weights (and of SmoothGrad's noise and the visualizations' start).
    batch_size : int
        Images per compiled call.
    reconstructions : bool
        Also check the deconvnet reconstruction of each target's strongest unit.
    visualizations : bool
        Also check the feature visualization of each target.
    options : dict, optional
        The methods' options over :data:`DEFAULT_OPTIONS` (``steps`` of Integrated Gradients,
        ``samples`` and ``noise`` of SmoothGrad, ``layer`` of Grad-CAM, ...).
    visualization_size, visualization_steps : int
        Side and optimisation steps of the feature visualizations (small: one per image and step).
    progress : bool
        Show a progress bar over the randomized models.

    Returns
    -------
    SanityResult

    Raises
    ------
    ValueError
        An unknown method or mode (the message lists the choices), layers that hold no weights,
        and the errors of the methods themselves (a bad target).

    Examples
    --------
    >>> targets = strongest_channel_targets(model, photos, "block5_conv3")       # doctest: +SKIP
    >>> result = sanity_check(model, photos, targets, modes=["cascading"])        # doctest: +SKIP
    >>> result.value("cascading", "block1_conv1", "guided", "spearman_abs")       # doctest: +SKIP
    """
    methods = check_methods(methods)
    modes = _check_modes(modes)
    layers = _check_layers(model, layers)
    steps = randomization_steps(layers, modes)
    copy = RandomizedCopy(model, layers, seed)

    def explain(randomized):
        return explanations(
            copy.randomize(randomized),
            images,
            target,
            methods,
            options,
            batch_size,
            seed,
            reconstructions,
            visualizations,
            visualization_size,
            visualization_steps,
        )

    trained = explain(())
    randomized = [explain(step.randomized) for step in tqdm(steps, desc="sanity check", unit="model", disable=not progress)]
    targets = list(target) if isinstance(target, (list, tuple)) else [target] * len(images)
    return SanityResult.from_explanations(steps, trained, randomized, targets)


__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_OPTIONS",
    "METRICS",
    "MODES",
    "RECONSTRUCTION",
    "VISUALIZATION",
    "RandomizedCopy",
    "SanityResult",
    "Step",
    "check_methods",
    "explanations",
    "randomization_steps",
    "rank_correlation",
    "read_csv",
    "sanity_check",
    "scaled",
    "similarities",
    "strongest_channel_targets",
    "structural_similarities",
    "weighted_layers",
]
