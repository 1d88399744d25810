"""What methods need to know about a model besides its graph: input range, mean, sizes, report layers.

Each zoo module declares its :class:`ModelInfo` (``INFO``); :func:`tfvis.load_model` attaches it
to the model it builds, with the mean of the weights it loaded. For any other Keras model
:func:`model_info` infers the same facts: RGB in [0, 255] (tfvis' convention), the mean of a
layer named ``preprocess`` if there is one, the fixed input size if there is one, and the
spatial layers as report layers. Every method reads them here: SmoothGrad's noise scale,
the class model's and inversion's mean image, feature visualization's value range, the command
lines' default sizes and layers.
"""
import dataclasses
from dataclasses import dataclass

import numpy as np


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
    """

    name: str
    value_range: tuple = (0.0, 255.0)
    mean_rgb: tuple = (0.0, 0.0, 0.0)
    default_size: int | None = None
    min_size: int = 1
    report_layers: tuple = ()

    def mean_image(self, shape):
        """An image of ``shape`` (H, W, C) filled with :attr:`mean_rgb` (float32)."""
        image = np.zeros(tuple(shape), np.float32)
        mean = np.asarray(self.mean_rgb, np.float32).reshape(-1)
        if mean.size == image.shape[-1]:
            image += mean
        return image


def preprocess_mean_rgb(model):
    """The mean the model's preprocessing subtracts, in RGB input order; zeros when there is none.

    Read from the layer named ``preprocess`` (:class:`~tfvis.models.custom_layers.ImagePreprocess`,
    or any layer with ``mean`` and ``bgr`` attributes): its mean is in the network's channel order,
    flipped back for ``bgr``.
    """
    layers = [layer for layer in model.layers if layer.name == "preprocess"]
    layers += [layer for layer in model.layers if hasattr(layer, "bgr") and hasattr(layer, "mean") and layer not in layers]
    for layer in layers:
        mean = getattr(layer, "mean", None)
        if mean is not None:
            mean = np.asarray(mean, np.float32).reshape(-1)
            return tuple(float(v) for v in (mean[::-1] if getattr(layer, "bgr", False) else mean))
    channels = model.inputs[0].shape[-1] if model.inputs else 3
    return (0.0,) * int(channels or 3)


def _fixed_size(model):
    shape = tuple(model.inputs[0].shape[1:3]) if model.inputs and len(model.inputs[0].shape) == 4 else ()
    return int(shape[0]) if len(shape) == 2 and shape[0] is not None and shape[0] == shape[1] else None


def _inferred(model):
    from ..layers import conv_layer_names

    size = _fixed_size(model)
    return ModelInfo(
        name=model.name,
        mean_rgb=preprocess_mean_rgb(model),
        default_size=size,
        min_size=size or 1,
        report_layers=tuple(conv_layer_names(model)),
    )


def model_info(model):
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


def attach(model, info):
    """Attach ``info``, with the mean read from ``model``'s preprocessing, to ``model``."""
    model.tfvis_info = dataclasses.replace(info, mean_rgb=preprocess_mean_rgb(model))
    return model


__all__ = ["ModelInfo", "attach", "model_info", "preprocess_mean_rgb"]
