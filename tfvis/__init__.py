"""tfvis: see what convolutional networks learn, in TensorFlow 2 / Keras 3.

The model zoo (:func:`load_model`), layer tools (:func:`layer_info`, :func:`activations`,
:func:`set_weights`, :func:`split_activations`) and images (:mod:`tfvis.images`).
"""
from . import images
from .activations import activations, stream_activations
from .layers import feature_model, layer_info
from .models import load_model
from .models.surgery import set_weights, split_activations

__version__ = "0.1.0"

__all__ = [
    "activations",
    "feature_model",
    "images",
    "layer_info",
    "load_model",
    "set_weights",
    "split_activations",
    "stream_activations",
]
