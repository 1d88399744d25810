"""tfvis: see what convolutional networks learn, in TensorFlow 2 / Keras 3.

The model zoo (:func:`load_model`, :func:`model_info`), the core every method stands on (targets:
:mod:`tfvis.targets`; the prepared model, graph rewrites and caches: :mod:`tfvis.graph`; backward
rules: :mod:`tfvis.rules`; display: :mod:`tfvis.display`), layer tools (:func:`layer_info`, :func:`activations`,
:func:`set_weights`, :func:`split_activations`, :func:`receptive_field`), images
(:mod:`tfvis.images`), the deconvnet (:mod:`tfvis.deconv`, :func:`top_k`), saliency maps
(:mod:`tfvis.saliency`), inversion (:mod:`tfvis.inversion`), feature visualization
(:mod:`tfvis.featurevis`), model comparison (:mod:`tfvis.compare`) and HTML reports
(:mod:`tfvis.report`, ``python -m tfvis.vgg``).

Importing the package is light: it imports no TensorFlow and no submodule. Each name of
``__all__`` is imported on first access (``tfvis.graph``, ``from tfvis import top_k``; PEP 562),
so that the commands (``python -m tfvis.vgg --help``, ``tfvis --help``) parse their options, and
answer ``--help``, without TensorFlow. The quiet start-up still holds: ``import tfvis`` installs
:func:`tfvis.startup.install_import_hook`, so that the process' first TensorFlow import -- by a
tfvis submodule, by ``import keras`` or by the user's own ``import tensorflow`` -- goes through
:func:`tfvis.startup.import_tensorflow`'s filter; ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 as before.
Where TensorFlow came first (``import keras, tfvis``), ``import tfvis`` lists its devices quietly.
"""

import importlib
import importlib.util
import os
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter; set it yourself to see it

from . import startup  # noqa: E402  (standard library only)
from .startup import import_tensorflow  # noqa: E402, F401

startup.install_import_hook()  # the first TensorFlow import, whoever makes it, without the no-GPU lines (tfvis.startup)

#: Submodules and the module each re-exported name comes from; each is imported on first access (PEP 562).
_SUBMODULES = (
    "compare",
    "deconv",
    "display",
    "featurevis",
    "graph",
    "images",
    "inversion",
    "models",
    "optim",
    "rules",
    "saliency",
    "targets",
)
_NAMES = {
    "activations": "activations",
    "stream_activations": "activations",
    "reconstruct": "deconv",
    "reconstruct_units": "deconv",
    "to_image": "display",
    "prepared": "graph",
    "set_class_output": "graph",
    "set_image_input": "graph",
    "feature_model": "layers",
    "layer_info": "layers",
    "ModelInfo": "models",
    "load_model": "models",
    "model_info": "models",
    "set_weights": "models.surgery",
    "split_activations": "graph",
    "receptive_field": "receptive_field",
    "receptive_fields": "receptive_field",
    "Target": "targets",
    "parse_target": "targets",
    "resolve_target": "targets",
    "LayerTopK": "topk",
    "top_k": "topk",
    "top_k_layers": "topk",
}


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # any other submodule (tfvis.topk), as an eager import gave
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps the functions named like their modules (``activations``, ``receptive_field``): importing
    ``tfvis.activations`` binds the package attribute to the submodule; the function stays there, as before."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _NAMES.get(name) == name and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
