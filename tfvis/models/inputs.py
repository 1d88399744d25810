"""Input conventions: what a network expects of its input, declared once and applied as its first layer.

Every tfvis method feeds a model RGB pixels in [0, 255]. A model trained on other values (Keras
applications' ``preprocess_input`` modes, torchvision's normalisation, ``x / 255``) declares its
:class:`InputConvention`; :func:`wrap_model` puts it in front of the model as an
:class:`~tfvis.models.custom_layers.ImagePreprocess` layer named :data:`LAYER_NAME`, so the wrapped
model takes [0, 255] pixels like every zoo model.

A convention is written as a preset (:data:`PRESETS`: ``caffe``, ``tf``, ``torch``, ``0-1``,
``0-255``), as explicit values (``"scale=1/255 mean=0.485,0.456,0.406 std=0.229,0.224,0.225"``,
``"range=-1,1"``, ``"bgr mean=103.939,116.779,123.68"``), as a dict of the same keys, or as an
:class:`InputConvention`.
"""

import re
from dataclasses import dataclass

import keras
import numpy as np

from .custom_layers import ImagePreprocess

#: Name of the preprocessing layer :func:`wrap_model` puts in front of a model.
LAYER_NAME = "tfvis_input"


@dataclass(frozen=True)
class InputConvention:
    """How RGB pixels in [0, 255] become a network's input: ``(swap(pixels) * scale - mean) / std``.

    Parameters
    ----------
    scale : float
        Factor applied to the pixels first (``1/255`` for networks trained on [0, 1]).
    mean : tuple of float
        Subtracted after scaling, in scaled units and in the network's channel order (BGR when
        ``bgr``); one value for every channel, or one per channel.
    std : tuple of float
        Divides the result; one value, or one per channel (network order).
    bgr : bool
        Reverse the channel order first (Caffe-trained networks take BGR).
    name : str, optional
        The preset it came from (shown on pages).

    Examples
    --------
    >>> torch = input_convention("torch")
    >>> [round(v, 3) for v in torch.zero_pixel]          # the RGB pixel the network sees as zero
    [123.675, 116.28, 103.53]
    >>> input_convention("scale=1/255").text, input_convention({"range": (-1, 1)}) == input_convention("tf")
    ('0-1', True)
    """

    scale: float = 1.0
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    bgr: bool = False
    name: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "mean", _values(self.mean, "mean"))
        object.__setattr__(self, "std", _values(self.std, "std"))
        object.__setattr__(self, "bgr", bool(self.bgr))
        if not np.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"input convention: scale must be a finite non-zero number, got {self.scale}")
        if any(s == 0 for s in self.std):
            raise ValueError(f"input convention: std must not be 0, got {self.std}")
        if self.name is None:  # a convention written out that equals a preset is shown by the preset's name
            match = (
                next((n for n, p in PRESETS.items() if p._values() == self._values()), None) if "PRESETS" in globals() else None
            )
            object.__setattr__(self, "name", match)

    def _values(self):
        channels = max(len(self.mean), len(self.std))
        mean = np.broadcast_to(self.mean, channels)
        std = np.broadcast_to(self.std, channels)
        return (round(self.scale, 12), tuple(np.round(mean, 9)), tuple(np.round(std, 9)), self.bgr)

    @property
    def is_identity(self):
        """Whether the network takes the pixels as they are (``0-255``)."""
        return self.scale == 1 and not self.bgr and all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)

    @property
    def zero_pixel(self):
        """The RGB pixel values whose network input is zero (the mean image, in pixel units), one per channel given."""
        channels = max(len(self.mean), len(self.std))
        pixel = np.broadcast_to(np.asarray(self.mean, np.float64), channels) / self.scale
        return [float(v) for v in (pixel[::-1] if self.bgr else pixel)]

    @property
    def text(self):
        """The preset name, or the explicit form that :func:`input_convention` reads back to this convention."""
        if self.name:
            return self.name
        parts = [f"scale={_scale_text(self.scale)}"]
        if any(m != 0 for m in self.mean):
            parts.append("mean=" + ",".join(_number(m) for m in self.mean))
        if any(s != 1 for s in self.std):
            parts.append("std=" + ",".join(_number(s) for s in self.std))
        return ("bgr " if self.bgr else "") + " ".join(parts)

    def describe(self):
        """One line for pages: what the model's first layer does to the [0, 255] pixels."""
        steps = ["RGB to BGR"] if self.bgr else []
        if self.scale != 1:
            reciprocal = _scale_text(self.scale)
            steps.append(f"x / {reciprocal[2:]}" if reciprocal.startswith("1/") else f"x * {reciprocal}")
        if any(m != 0 for m in self.mean):
            steps.append(f"minus {_tuple(self.mean)}")
        if any(s != 1 for s in self.std):
            steps.append(f"over {_tuple(self.std)}")
        what = ", ".join(steps) or "pixels as they are"
        return f"{self.name}: {what}" if self.name else what

    def layer_arguments(self):
        """Keyword arguments of :class:`~tfvis.models.custom_layers.ImagePreprocess` that apply this convention."""
        channels = max(len(self.mean), len(self.std))
        mean = np.broadcast_to(np.asarray(self.mean, np.float64), channels) / self.scale
        scale = self.scale / np.broadcast_to(np.asarray(self.std, np.float64), channels)
        return {
            "bgr": self.bgr,
            "mean": [float(v) for v in mean],
            "scale": float(scale[0]) if channels == 1 else [float(v) for v in scale],
        }

    def preprocess(self, pixels):
        """Apply the convention to an array of pixels (NumPy, for checks): the network's input."""
        x = np.asarray(pixels, np.float64)
        x = x[..., ::-1] if self.bgr else x
        return (x * self.scale - np.asarray(self.mean)) / np.asarray(self.std)

    @classmethod
    def from_layer(cls, layer):
        """The convention an :class:`~tfvis.models.custom_layers.ImagePreprocess` layer applies."""
        scale = np.atleast_1d(np.asarray(layer.scale, np.float64))
        first = float(scale[0])
        mean = np.asarray(layer.mean, np.float64) * first
        std = first / scale
        return cls(scale=first, mean=tuple(mean), std=tuple(std) if np.any(std != 1) else (1.0,), bgr=layer.bgr)


def _values(values, what):
    values = np.atleast_1d(np.asarray(values, np.float64)).reshape(-1)
    if not values.size or not np.isfinite(values).all():
        raise ValueError(f"input convention: {what} must be finite numbers, got {values.tolist()}")
    return tuple(float(v) for v in values)


def _number(value):
    """The shortest text that reads back to ``value``: ``0.5``, ``1``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _scale_text(scale):
    """``scale`` as ``1/255`` or ``1/127.5`` when it is such a reciprocal (exactly, as read back), else as a number."""
    divisor = _number(round(1 / scale, 6))
    return f"1/{divisor}" if abs(scale) < 1 and 1 / float(divisor) == scale else _number(scale)


def _tuple(values):
    return _number(values[0]) if len(values) == 1 else "(" + ", ".join(_number(v) for v in values) + ")"


#: The conventions of the ecosystem, by the names Keras applications and torchvision use.
PRESETS = {
    "caffe": InputConvention(mean=(103.939, 116.779, 123.68), bgr=True, name="caffe"),
    "tf": InputConvention(scale=1 / 127.5, mean=(1.0,), name="tf"),
    "torch": InputConvention(scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), name="torch"),
    "0-1": InputConvention(scale=1 / 255, name="0-1"),
    "0-255": InputConvention(name="0-255"),
}

_KEYS = ("scale", "mean", "std", "bgr", "range")
_SYNTAX = (
    "a preset (caffe, tf, torch, 0-1, 0-255) or values such as 'scale=1/255 mean=0.485,0.456,0.406 "
    "std=0.229,0.224,0.225', 'range=-1,1' or 'bgr mean=103.939,116.779,123.68'"
)


def _number_text(text, key):
    text = text.strip()
    try:
        if "/" in text:
            top, bottom = text.split("/", 1)
            return float(top) / float(bottom)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"input convention {key}={text!r}: not a number; write e.g. 0.5 or 1/255") from None


def _parse_text(text):
    values = {}
    # A new key starts after a comma, semicolon or space; commas inside a key's value separate its numbers.
    for part in filter(None, (p.strip() for p in re.split(r"[\s,;]+(?=[A-Za-z_]+\s*(?:=|$|[\s,;]))", text.strip()))):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key not in _KEYS:
            raise ValueError(f"input convention {text!r}: unknown {key!r}; give {_SYNTAX}")
        if key == "bgr":
            values["bgr"] = value.strip().lower() not in ("0", "false", "no") if eq else True
        else:
            numbers = [_number_text(v, key) for v in re.split(r"[\s,]+", value.strip()) if v]
            if not numbers:
                raise ValueError(f"input convention {text!r}: {key}= has no value")
            values[key] = numbers[0] if key == "scale" else numbers
    return values


def input_convention(value):
    """Read an input convention from any of its written forms.

    Parameters
    ----------
    value : None, str, dict or InputConvention
        ``None`` (undeclared); a preset name of :data:`PRESETS`; explicit values, as a string of
        ``key=value`` parts (separated by spaces, commas or semicolons; a value's numbers by
        commas) or a dict: ``scale`` (a number or a fraction such as ``1/255``), ``mean`` and
        ``std`` (one number, or one per channel in the network's order), ``bgr`` (a flag), or
        ``range=lo,hi`` (pixels [0, 255] mapped linearly onto [lo, hi], as Lucid's
        ``image_value_range``; not with ``scale`` or ``mean``).

    Returns
    -------
    InputConvention or None

    Raises
    ------
    ValueError
        An unknown preset or key, or a value that is not a number; the message lists the forms.

    Examples
    --------
    >>> input_convention("range=-117,138").zero_pixel
    [117.0]
    >>> input_convention("bgr mean=103.939,116.779,123.68").name
    'caffe'
    """
    if value is None or isinstance(value, InputConvention):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in PRESETS:
            return PRESETS[text.lower()]
        if "=" not in text and text.lower() != "bgr":
            raise ValueError(f"unknown input convention {value!r}; give {_SYNTAX}")
        values = _parse_text(text)
    elif isinstance(value, dict):
        unknown = [k for k in value if k not in _KEYS]
        if unknown:
            raise ValueError(f"input convention {value!r}: unknown {', '.join(map(str, unknown))}; keys: {', '.join(_KEYS)}")
        values = dict(value)
    else:
        raise TypeError(
            f"input convention: expected a preset name, a string, a dict or an InputConvention, got {type(value).__name__}"
        )
    if "range" in values:
        if "scale" in values or "mean" in values:
            raise ValueError(f"input convention {value!r}: give range=lo,hi or scale/mean, not both")
        low, high = (float(v) for v in np.reshape(values.pop("range"), -1)[:2]) if np.size(values["range"]) == 2 else (None, None)
        if low is None or low == high:
            raise ValueError(f"input convention {value!r}: range needs two different numbers lo,hi")
        values["scale"] = (high - low) / 255.0
        values["mean"] = (-low,)
    return InputConvention(
        scale=float(values.get("scale", 1.0)),
        mean=values.get("mean", (0.0,)),
        std=values.get("std", (1.0,)),
        bgr=values.get("bgr", False),
    )


def preprocess_layer(model):
    """The :class:`~tfvis.models.custom_layers.ImagePreprocess` that :func:`wrap_model` put in ``model``, or None."""
    try:
        layer = model.get_layer(LAYER_NAME)
    except ValueError:
        return None
    return layer if isinstance(layer, ImagePreprocess) else None


def wrap_model(model, convention):
    """``model`` behind a first layer that applies ``convention``: a model that takes RGB pixels in [0, 255].

    Functional and Sequential models are rebuilt flat (every layer keeps its name and weights, the
    preprocessing layer :data:`LAYER_NAME` sits between the input and the first layers); other
    models are called as one layer. Only image inputs (rank 4) are preprocessed.

    Parameters
    ----------
    model : keras.Model
    convention : InputConvention or anything :func:`input_convention` reads

    Returns
    -------
    keras.Model
        A new model named as ``model`` (the same model when the convention is ``0-255``).

    Examples
    --------
    >>> import keras
    >>> tiny = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="c1")], name="tiny")
    >>> [layer.name for layer in wrap_model(tiny, "0-1").layers]
    ['tiny_pixels', 'tfvis_input', 'c1']
    """
    convention = input_convention(convention)
    if convention is None or convention.is_identity:
        return model
    if preprocess_layer(model) is not None:
        raise ValueError(f"model {model.name!r} already applies an input convention (its layer {LAYER_NAME!r}); declare none")
    layer = ImagePreprocess(**convention.layer_arguments(), name=LAYER_NAME)
    if isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph"):  # Functional
        try:
            return _rebuilt(model, layer)
        except (ValueError, TypeError, AttributeError):  # a graph Keras cannot clone: call the model as one layer
            pass
    pixels = keras.Input(batch_shape=model.inputs[0].shape, name=f"{model.name}_pixels")
    return keras.Model(pixels, model(layer(pixels)), name=model.name)


def _rebuilt(model, layer):
    """A flat copy of a graph ``model`` with ``layer`` applied to each image input, the weights copied."""
    if isinstance(model, keras.Sequential):
        if not model.inputs:
            raise ValueError(f"Sequential model {model.name!r} has no input shape")
        pixels = keras.Input(batch_shape=model.inputs[0].shape, name=f"{model.name}_pixels")
        x = layer(pixels)
        fresh = []
        for original in model.layers:
            copy = original.__class__.from_config(original.get_config())
            x = copy(x)
            fresh.append((original, copy))
        rebuilt = keras.Model(pixels, x, name=model.name)
        for original, copy in fresh:
            copy.set_weights(original.get_weights())
        return rebuilt
    preprocessed = {}

    def call(cloned, *args, **kwargs):
        def swap(tensor):
            history = getattr(tensor, "_keras_history", None)
            if history is not None and isinstance(history.operation, keras.layers.InputLayer) and len(tensor.shape) == 4:
                if id(tensor) not in preprocessed:
                    preprocessed[id(tensor)] = layer(tensor)
                return preprocessed[id(tensor)]
            return tensor

        return cloned(*keras.tree.map_structure(swap, args), **kwargs)

    rebuilt = keras.models.clone_model(model, call_function=call)
    if not preprocessed:
        raise ValueError(f"model {model.name!r} has no image input to preprocess")
    for copy in rebuilt.layers:
        if copy.weights:
            copy.set_weights(model.get_layer(copy.name).get_weights())
    return rebuilt


__all__ = ["LAYER_NAME", "PRESETS", "InputConvention", "input_convention", "preprocess_layer", "wrap_model"]
