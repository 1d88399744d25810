"""The units of the report's sanity-check page (``--methods sanity``): one model x the page images each.

Adebayo et al.'s model-randomization test (:mod:`tfvis.saliency.sanity`) as work units on the
report's engine:

1. the driver fixes each page image's target on the trained model (its strongest channel of the
   target layer, :func:`tfvis.saliency.sanity.strongest_channel_targets`) and the randomization
   steps (:func:`tfvis.saliency.sanity.randomization_steps`);
2. ``page_sanity``: one unit for the trained model and one per distinct set of randomized layers
   (a cascading step and an independent one that randomize the same layers share it), each
   computing every method's absolute and signed maps of the page images
   (:func:`tfvis.saliency.sanity.explanations`). The randomized models are named in the
   :class:`~tfvis.pipeline.context.Context` by :func:`randomized_name` and built by their
   :class:`~tfvis.models.spec.ModelSpec` (``reinit`` the layers, ``reinit_seed`` the seed), so any
   worker rebuilds exactly the weights :func:`tfvis.saliency.sanity_check` draws;
3. the driver compares the stored maps (:func:`sanity_result`) and renders the page
   (:mod:`tfvis.sanity_pages`).
"""

import dataclasses

import numpy as np

from ..saliency.sanity import (
    DEFAULT_OPTIONS,
    SanityResult,
    check_methods,
    explanations,
    randomization_steps,
    strongest_channel_targets,
    weighted_layers,
)
from .units import Unit

SANITY_KIND = "page_sanity"


def randomized_name(randomized):
    """The context's name of the model whose layers ``randomized`` are random (``""``: the trained model)."""
    return "randomized:" + ",".join(sorted(randomized)) if randomized else ""


def _check_prefixes(model, steps):
    """``ValueError`` when a randomized layer's name begins another weighted layer's (``reinit`` matches prefixes)."""
    weighted = weighted_layers(model)
    for step in steps:
        matched = {name for name in weighted if any(name.startswith(prefix) for prefix in step.randomized)}
        extra = sorted(matched - set(step.randomized))
        if extra:
            raise ValueError(
                f"cannot randomize {', '.join(step.randomized)} by name: ModelSpec.reinit also matches {', '.join(extra)} "
                "(a layer name that begins another); choose other layers"
            )


@dataclasses.dataclass
class SanityPlan:
    """What the sanity page computes: the steps, the models by name, the targets and the units."""

    steps: list
    specs: dict
    targets: list
    units: list
    seed: int


def sanity_plan(
    model,
    spec,
    images,
    indices,
    target_layer,
    methods,
    layers=None,
    modes=("cascading", "independent"),
    options=None,
    seed=1,
    batch_size=16,
    reconstructions=True,
    visualizations=False,
    visualization_size=64,
    visualization_steps=64,
    describe_images=None,
):
    """Plan the sanity page: targets on the trained ``model``, the randomized models' specs and the units.

    Parameters
    ----------
    model : keras.Model
        The trained model, loaded here (the targets are read from it).
    spec : ModelSpec
        Its spec; each randomized model is this spec with ``reinit`` and ``reinit_seed``.
    images : ndarray, shape (N, H, W, 3)
        The page images (to fix the targets).
    indices : list of int
        Their indices in the context's image source.
    target_layer : str
        Each image's target is its strongest channel of this layer.
    methods, layers, modes, options, batch_size, reconstructions, visualizations
        As in :func:`tfvis.saliency.sanity.sanity_check`.
    seed : int
        Seed of the random weights (``reinit_seed``) and of SmoothGrad and the visualizations.
    visualization_size, visualization_steps : int
    describe_images : dict, optional
        The image source's description (part of every key).

    Returns
    -------
    SanityPlan
        ``specs`` are to be added to the run's :class:`~tfvis.pipeline.context.Context`; the
        units need the context that names them.
    """
    methods = check_methods(methods)
    weighted = weighted_layers(model)
    layers = weighted if layers is None else list(layers)
    bad = [name for name in layers if name not in weighted]
    if bad:
        raise ValueError(f"layers {', '.join(bad)}: not weighted layers of {model.name}; choose from: {', '.join(weighted)}")
    layers = [name for name in weighted if name in layers]
    steps = randomization_steps(layers, modes)
    _check_prefixes(model, steps)
    targets = strongest_channel_targets(model, images, target_layer, batch_size)
    specs = {
        randomized_name(step.randomized): dataclasses.replace(spec, reinit=tuple(step.randomized), reinit_seed=int(seed))
        for step in steps
    }
    settings = {
        "indices": [int(i) for i in indices],
        "targets": targets,
        "methods": list(methods),
        "options": {**DEFAULT_OPTIONS, **(options or {})},
        "seed": int(seed),
        "batch_size": int(batch_size),
        "reconstructions": bool(reconstructions),
        "visualizations": bool(visualizations),
        "visualization_size": int(visualization_size),
        "visualization_steps": int(visualization_steps),
        "images": describe_images,
    }
    units = [Unit(SANITY_KIND, {**settings, "model": spec.describe(model), "model_name": ""}, label="sanity: trained model")]
    for name, randomized in specs.items():
        units.append(
            Unit(
                SANITY_KIND,
                {**settings, "model": randomized.describe(), "model_name": name},
                label=f"sanity: {', '.join(randomized.reinit)} random",
            )
        )
    return SanityPlan(steps, specs, targets, units, int(seed))


def page_sanity(context, params, progress=False):
    """``page_sanity``: every method's absolute and signed maps of the page images on one model.

    Returns ``abs_<name>`` and ``signed_<name>`` per method (for the feature visualizations, the
    RGB pictures and their grey levels), and ``meta`` with the image ids and the names.
    """
    model = context.model_for(params)
    read, ids, images = context.source.read(params["indices"])
    if len(read) != len(params["indices"]):
        missing = sorted(set(params["indices"]) - set(int(i) for i in read))
        raise RuntimeError(f"images {missing} of the dataset could not be read again (changed since the run was planned?)")
    found = explanations(
        model,
        np.asarray(images, np.float32),
        list(params["targets"]),
        params["methods"],
        params["options"],
        params["batch_size"],
        params["seed"],
        params["reconstructions"],
        params["visualizations"],
        params["visualization_size"],
        params["visualization_steps"],
    )
    result = {}
    for name, (absolute, signed) in found.items():
        result[f"abs_{name}"], result[f"signed_{name}"] = absolute.astype(np.float32), signed.astype(np.float32)
    result["meta"] = {"ids": [str(i) for i in ids], "names": list(found)}
    return result


def _explanations(stored):
    return {name: (stored[f"abs_{name}"], stored[f"signed_{name}"]) for name in stored["meta"]["names"]}


def sanity_result(store, plan):
    """The :class:`~tfvis.saliency.sanity.SanityResult` of a :class:`SanityPlan` whose units are all stored."""
    by_name = {unit.params["model_name"]: unit for unit in plan.units}
    trained = _explanations(store.load(by_name[""]))
    randomized = [_explanations(store.load(by_name[randomized_name(step.randomized)])) for step in plan.steps]
    return SanityResult.from_explanations(plan.steps, trained, randomized, plan.targets)


#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {SANITY_KIND: page_sanity}
