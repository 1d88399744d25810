"""Lucid-style feature visualization (Olah et al., Distill 2017) for Keras 3 models.

:func:`render` optimises images to maximise an objective (:mod:`~tfvis.featurevis.objectives`)
through a parameterization (:mod:`~tfvis.featurevis.param`: Fourier spectrum, decorrelated
colours) and random transforms (:mod:`~tfvis.featurevis.transforms`); :func:`caricature`
(:mod:`~tfvis.featurevis.caricatures`) renders what a layer sees in an image; :func:`describe`
words a render's settings for reports. Results display inline in notebooks.

Examples
--------
>>> from tfvis import featurevis, load_model  # doctest: +SKIP
>>> model = load_model("vgg16", weights="hed", include_top=False)  # doctest: +SKIP
>>> images = featurevis.render(model, [f"block4_conv3:{c}" for c in range(8)])  # doctest: +SKIP
"""

from . import caricatures, objectives, param, transforms
from .caricatures import caricature, reference_activations
from .objectives import Objective, alignment, channel, class_logit, deepdream, direction, diversity, layer, neuron
from .render import FeatureNet, RenderResult, describe, flat_or_nan, input_range, objective_value, render

__all__ = [
    "FeatureNet",
    "Objective",
    "RenderResult",
    "alignment",
    "caricature",
    "caricatures",
    "channel",
    "class_logit",
    "deepdream",
    "describe",
    "direction",
    "diversity",
    "flat_or_nan",
    "input_range",
    "layer",
    "neuron",
    "objectives",
    "param",
    "reference_activations",
    "objective_value",
    "render",
    "transforms",
]
