"""Gradient saliency maps, SmoothGrad, Integrated Gradients, Grad-CAM and class model visualization.

Simonyan, Vedaldi & Zisserman (2014) rank the pixels of an image by how much the score of a
target changes when they change: the map ``M_ij = max_c |dS/dI_{i,j,c}|``, where ``S`` is the
*unnormalised* class score (the logit, before the softmax) or a unit's activation. One module per
method, all on the core of :mod:`tfvis.targets`, :mod:`tfvis.graph` and :mod:`tfvis.rules`:

=====================  =====================================================================
:mod:`.gradient`       :func:`score`, :func:`gradients`, :func:`vanilla`, :func:`guided`,
                       :func:`deconvnet` (the backward rules of :mod:`tfvis.rules`)
:mod:`.methods`        the table of methods (:data:`SALIENCY_METHODS`): name, title,
                       function, options; what commands and pages list
:mod:`.smoothing`      :func:`smoothgrad` over any method of the table
:mod:`.integrated`     :func:`integrated_gradients` and its integration :data:`RULES`
:mod:`.gradcam`        :func:`grad_cam` and its :func:`default_layer`
:mod:`.cams`           :func:`grad_cam_plus_plus`, :func:`layer_cam`, :func:`score_cam`
:mod:`.perturbation`   :func:`gradient_x_input`, :func:`occlusion`, :func:`rise` and its
                       seeded :func:`rise_masks`
:mod:`.classmodel`     :func:`class_model`, :func:`mean_image`
:mod:`.faithfulness`   :func:`deletion_auc`, :func:`insertion_auc`, :func:`mu_fidelity` and
                       :func:`faithfulness_table` of every method's maps
:mod:`.sanity`         :func:`sanity_check`: Adebayo et al.'s model randomization test of
                       every method, the deconvnet and feature visualizations
=====================  =====================================================================

Targets
-------
Every function takes a *target* (the syntax of :mod:`tfvis.targets`), the scalar score whose
gradient is taken, per image:

* an ``int`` ``c`` (or ``"logits:c"``): the unnormalised score of class ``c``, the output of the
  last Dense layer before the model's final softmax (:func:`tfvis.targets.logits_layer`; a
  fused softmax is replaced by its pre-activation). A model ending in a linear Dense layer is
  taken to output logits.
* ``"layer:channel"``: the mean of the channel's map over all positions (Lucid's ``channel``
  objective); for a dense layer, the unit itself.
* ``"layer:channel@y,x"``: one unit of the channel's map.
* a list with one of these per image, all of one layer and kind (e.g. each image's own top
  class, or each image's strongest channel of a layer): still one compiled call per batch.

Layer names are those of the prepared model (:func:`tfvis.graph.prepared`): a fused activation
is split out, so ``"c:3"`` names the pre-activation output of ``c`` and ``"c_relu:3"`` the
post-activation one, as in the zoo where ``c_relu`` follows ``c``.

Every gradient is taken by one ``tf.function`` per (prepared model, target layer and kind,
method), kept by :func:`tfvis.graph.cached` for the model's lifetime, that serves whole batches.
Maps are returned as :class:`tfvis.display.Maps`, NumPy arrays that show as heatmaps in
notebooks; :func:`overlay` and :func:`figure` come from :mod:`tfvis.display`.

Importing the package is light (PEP 562): each name below is imported from its module on first
access, so that ``python -m tfvis.saliency --help`` answers without TensorFlow.
"""

import importlib

#: Each public name and the submodule it comes from (imported on first access).
_NAMES = {
    "figure": "..display",
    "overlay": "..display",
    "class_model": ".classmodel",
    "mean_image": ".classmodel",
    "grad_cam_plus_plus": ".cams",
    "layer_cam": ".cams",
    "score_cam": ".cams",
    "gradient_x_input": ".perturbation",
    "occlusion": ".perturbation",
    "rise": ".perturbation",
    "rise_masks": ".perturbation",
    "default_layer": ".gradcam",
    "grad_cam": ".gradcam",
    "class_scores": ".gradient",
    "deconvnet": ".gradient",
    "gradients": ".gradient",
    "guided": ".gradient",
    "has_class_output": ".gradient",
    "score": ".gradient",
    "vanilla": ".gradient",
    "RULES": ".integrated",
    "integrated_gradients": ".integrated",
    "deletion_auc": ".faithfulness",
    "faithfulness_table": ".faithfulness",
    "insertion_auc": ".faithfulness",
    "mu_fidelity": ".faithfulness",
    "FAITHFULNESS_METRICS": ".faithfulness",
    "SALIENCY_METHODS": ".methods",
    "SaliencyMethod": ".methods",
    "METHODS": ".smoothing",
    "SMOOTHABLE_METHODS": ".smoothing",
    "smoothgrad": ".smoothing",
    "smoothgrad_noise": ".smoothing",
    "SanityResult": ".sanity",
    "sanity_check": ".sanity",
    "strongest_channel_targets": ".sanity",
}
#: Names whose value has another name in its module.
_RENAMED = {"SALIENCY_METHODS": "METHODS", "FAITHFULNESS_METRICS": "METRICS"}


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name], __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = sorted(_NAMES)
