"""Gradient saliency maps, SmoothGrad, Integrated Gradients, Grad-CAM and class model visualization.

Simonyan, Vedaldi & Zisserman (2014) rank the pixels of an image by how much the score of a
target changes when they change: the map ``M_ij = max_c |dS/dI_{i,j,c}|``, where ``S`` is the
*unnormalised* class score (the logit, before the softmax) or a unit's activation. One module per
method, all on the core of :mod:`tfvis.targets`, :mod:`tfvis.graph` and :mod:`tfvis.rules`:

=====================  =====================================================================
:mod:`.gradient`       :func:`score`, :func:`gradients`, :func:`vanilla`, :func:`guided`,
                       :func:`deconvnet` (the backward rules of :mod:`tfvis.rules`)
:mod:`.smoothing`      :func:`smoothgrad` over any of them, or over Integrated Gradients
:mod:`.integrated`     :func:`integrated_gradients` and its integration :data:`RULES`
:mod:`.gradcam`        :func:`grad_cam` and its :func:`default_layer`
:mod:`.classmodel`     :func:`class_model`, :func:`mean_image`
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
"""
from ..display import figure, overlay
from .classmodel import class_model, mean_image
from .gradcam import default_layer, grad_cam
from .gradient import class_scores, deconvnet, gradients, guided, has_class_output, score, vanilla
from .integrated import RULES, integrated_gradients
from .smoothing import METHODS, smoothgrad, smoothgrad_noise

__all__ = [
    "METHODS",
    "RULES",
    "class_model",
    "class_scores",
    "deconvnet",
    "default_layer",
    "figure",
    "grad_cam",
    "gradients",
    "guided",
    "has_class_output",
    "integrated_gradients",
    "mean_image",
    "overlay",
    "score",
    "smoothgrad",
    "smoothgrad_noise",
    "vanilla",
]
