"""Lucid-style feature visualization (Olah et al., Distill 2017) for Keras 3 models.

:func:`render` optimises images to maximise an objective (:mod:`~tfvis.featurevis.objectives`)
through a parameterization (:mod:`~tfvis.featurevis.param`: Fourier spectrum, decorrelated
colours) and random transforms (:mod:`~tfvis.featurevis.transforms`); :func:`caricature` renders
what a layer sees in an image.

Examples
--------
>>> from tfvis import featurevis, load_model  # doctest: +SKIP
>>> model = load_model("vgg16", weights="hed", include_top=False)  # doctest: +SKIP
>>> images = featurevis.render(model, [f"block4_conv3:{c}" for c in range(8)])  # doctest: +SKIP
"""
from . import objectives, param, transforms
from .caricature import caricature
from .objectives import Objective, alignment, channel, class_logit, deepdream, diversity, direction, layer, neuron
from .render import RenderResult, flat_or_nan, render

__all__ = [
    "Objective",
    "RenderResult",
    "alignment",
    "caricature",
    "channel",
    "class_logit",
    "deepdream",
    "direction",
    "diversity",
    "flat_or_nan",
    "layer",
    "neuron",
    "objectives",
    "param",
    "render",
    "transforms",
]
