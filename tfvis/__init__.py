"""tfvis: see what convolutional networks learn, in TensorFlow 2 / Keras 3.

The model zoo (:func:`load_model`), layer tools (:func:`layer_info`, :func:`activations`,
:func:`set_weights`, :func:`split_activations`, :func:`receptive_field`), images
(:mod:`tfvis.images`), the deconvnet (:mod:`tfvis.deconv`, :func:`top_k`), saliency maps
(:mod:`tfvis.saliency`), inversion (:mod:`tfvis.inversion`), feature visualization
(:mod:`tfvis.featurevis`), model comparison (:mod:`tfvis.compare`) and HTML reports
(:mod:`tfvis.report`, ``python -m tfvis.vgg``).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter; set it yourself to see it

from . import compare, featurevis, images, inversion, saliency  # noqa: E402
from .activations import activations, stream_activations  # noqa: E402
from .layers import feature_model, layer_info  # noqa: E402
from .models import load_model  # noqa: E402
from .models.surgery import set_weights, split_activations  # noqa: E402
from .receptive_field import receptive_field, receptive_fields  # noqa: E402
from .topk import top_k, top_k_layers  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "activations",
    "compare",
    "feature_model",
    "featurevis",
    "images",
    "inversion",
    "layer_info",
    "load_model",
    "saliency",
    "receptive_field",
    "receptive_fields",
    "set_weights",
    "split_activations",
    "stream_activations",
    "top_k",
    "top_k_layers",
]
