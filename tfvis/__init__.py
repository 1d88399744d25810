"""tfvis: see what convolutional networks learn, in TensorFlow 2 / Keras 3.

The model zoo (:func:`load_model`, :func:`model_info`), the core every method stands on (targets:
:mod:`tfvis.targets`; the prepared model, graph rewrites and caches: :mod:`tfvis.graph`; backward
rules: :mod:`tfvis.rules`; display: :mod:`tfvis.display`), layer tools (:func:`layer_info`, :func:`activations`,
:func:`set_weights`, :func:`split_activations`, :func:`receptive_field`), images
(:mod:`tfvis.images`), the deconvnet (:mod:`tfvis.deconv`, :func:`top_k`), saliency maps
(:mod:`tfvis.saliency`), inversion (:mod:`tfvis.inversion`), feature visualization
(:mod:`tfvis.featurevis`), model comparison (:mod:`tfvis.compare`) and HTML reports
(:mod:`tfvis.report`, ``python -m tfvis.vgg``).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter; set it yourself to see it

from .startup import import_tensorflow  # noqa: E402

import_tensorflow()  # without the no-GPU lines a CUDA build prints on every start (tfvis.startup)

from . import compare, deconv, display, featurevis, graph, images, inversion, models, optim, rules, saliency, targets  # noqa: E402
from .activations import activations, stream_activations  # noqa: E402
from .deconv import reconstruct, reconstruct_units  # noqa: E402
from .display import to_image  # noqa: E402
from .graph import prepared, set_class_output, set_image_input  # noqa: E402
from .layers import feature_model, layer_info  # noqa: E402
from .models import ModelInfo, load_model, model_info  # noqa: E402
from .models.surgery import set_weights, split_activations  # noqa: E402
from .receptive_field import receptive_field, receptive_fields  # noqa: E402
from .targets import Target, parse_target, resolve_target  # noqa: E402
from .topk import LayerTopK, top_k, top_k_layers  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "LayerTopK",
    "ModelInfo",
    "Target",
    "activations",
    "compare",
    "deconv",
    "display",
    "feature_model",
    "featurevis",
    "graph",
    "images",
    "inversion",
    "layer_info",
    "load_model",
    "model_info",
    "models",
    "optim",
    "parse_target",
    "prepared",
    "receptive_field",
    "receptive_fields",
    "reconstruct",
    "reconstruct_units",
    "resolve_target",
    "rules",
    "saliency",
    "set_class_output",
    "set_image_input",
    "set_weights",
    "split_activations",
    "stream_activations",
    "targets",
    "to_image",
    "top_k",
    "top_k_layers",
]
