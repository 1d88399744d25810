"""One model spec for every command and the library: a zoo name with its weights, or a model file.

``vgg16``, ``vgg16:hed`` (a zoo model and its weights), ``model.keras`` or ``model.h5`` (a saved
Keras model), ``model.onnx`` (an ONNX file, through :mod:`tfvis.models.onnx_import`), with the
input convention the model was trained for (:mod:`tfvis.models.inputs`). :class:`ModelSpec` is the
one loader: :func:`tfvis.load_model`, every command and every Ray worker build the model from it,
so workers rebuild exactly the driver's model, declared input included.
"""

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

import keras

from ..layer_names import allow_any_layer_name
from .info import attach, model_info, weights_label
from .inputs import input_convention, preprocess_layer, wrap_model
from .onnx_import import load_onnx
from .safeload import check_weight_file, max_weight_bytes
from .surgery import set_weights

#: Suffixes read as ONNX files; every other file is read as a saved Keras model.
ONNX_SUFFIXES = (".onnx",)
#: Models already told they have no declared input convention (the notice is printed once per model).
_NOTICED = set()


def zoo_names():
    """The zoo's names (read from the package at call time: its registry is built after this module loads)."""
    from . import ZOO

    return ZOO


@dataclass(frozen=True)
class ModelSpec:
    """How to load a model in any process: a zoo name with its weights, or a saved model file.

    Parameters
    ----------
    name : str
        A zoo name (``"vgg16"``), a zoo name and its weights (``"vgg16:hed"``: the weights given
        there replace ``weights``), or the path of a ``.keras``, ``.h5`` or ``.onnx`` file.
    weights : str or None
        Weights of a zoo model (see :func:`tfvis.load_model`); a model file holds its own, so it
        takes only ``"auto"``.
    include_top : bool
        Whether a zoo model keeps its classifier (model files are loaded whole).
    seed : int
        Seed of a random initialisation.
    input : str, dict or InputConvention, optional
        The input convention of a model file (:func:`tfvis.models.inputs.input_convention`), applied
        as its first layer so that the model takes RGB in [0, 255]. Zoo models take [0, 255] already.
    input_shape : tuple, optional
        ``(H, W, 3)`` of a zoo model.
    reinit : tuple of str
        Re-initialise, after loading, every weighted layer whose name starts with one of these
        prefixes (an ablation: ``("block5",)``), with Keras' initialisers seeded by ``reinit_seed``
        (:func:`reinitialise_layers`), so that every process rebuilds the same weights.
    reinit_seed : int, optional
        Seed of the re-initialisation; default ``seed + 1``: a random-weight model built with
        ``seed`` would otherwise draw its re-initialised layers' old values again.

    Examples
    --------
    >>> ModelSpec("vgg16", weights="hed").describe()["model"]
    'vgg16'
    >>> ModelSpec("vgg16:hed").weights
    'hed'
    >>> ModelSpec("vgg16:hed", reinit="block5").describe()["reinit"]
    ['block5']
    """

    name: str
    weights: str = "auto"
    include_top: bool = False
    seed: int = 0
    input: object = None
    input_shape: tuple = field(default=None)
    reinit: tuple = ()
    reinit_seed: int = None

    def __post_init__(self):
        name = str(self.name)
        zoo_name, colon, named = name.partition(":")
        if colon and zoo_name in zoo_names() and not Path(name).is_file():
            object.__setattr__(self, "name", zoo_name)
            object.__setattr__(self, "weights", named or self.weights)
        else:
            object.__setattr__(self, "name", name)
        object.__setattr__(self, "input", input_convention(self.input))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "reinit", _prefixes(self.reinit))

    @property
    def effective_reinit_seed(self):
        """The seed :meth:`load` re-initialises with: ``reinit_seed``, or ``seed + 1``."""
        return int(self.seed) + 1 if self.reinit_seed is None else int(self.reinit_seed)

    @property
    def is_zoo(self):
        """Whether the spec names a zoo model."""
        return self.name in zoo_names()

    @property
    def is_onnx(self):
        """Whether the spec names an ONNX file (read by :func:`tfvis.models.onnx_import.load_onnx`)."""
        return not self.is_zoo and Path(self.name).suffix.lower() in ONNX_SUFFIXES

    def load(self):
        """Build the model: a zoo model with its weights, or the file checked, read and wrapped in its input convention.

        Returns
        -------
        keras.Model
            Takes float32 RGB NHWC pixels in [0, 255].

        Raises
        ------
        ValueError
            A spec that is neither a zoo name nor a file, options that do not apply to it, or a
            file that cannot be read as a model (the message names it).
        tfvis.models.WeightsError
            Zoo weights that cannot be found or read, or a model file refused before reading
            (:func:`tfvis.models.safeload.check_weight_file`).
        ReinitError
            ``reinit`` prefixes that match no weighted layer (a subclass of ValueError).
        """
        model = self._load_model()
        if self.reinit:
            changed = reinitialise_layers(model, self.reinit, self.effective_reinit_seed)
            if not changed:
                raise ReinitError(f"no weighted layer of {model.name} starts with {', '.join(self.reinit)}")
        return model

    def _load_model(self):
        if self.is_zoo:
            return self._load_zoo()
        path = Path(self.name).expanduser()
        if not path.is_file():
            raise ValueError(
                f"{self.name}: not a zoo model ({', '.join(sorted(zoo_names()))}, optionally with ':weights') "
                "nor a model file (.keras, .h5, .onnx)"
            )
        if self.weights not in ("auto", None):
            raise ValueError(f"weights={self.weights!r}: {path.name} is a model file and holds its own weights")
        if self.input_shape is not None:
            raise ValueError(f"input_shape={self.input_shape}: {path.name} is a model file with its own input shape")
        model = self._read_file(path)
        return self._declare_input(model, path)

    def _load_zoo(self):
        if self.input is not None and not self.input.is_identity:
            raise ValueError(
                f"input={self.input.text!r}: {self.name} is a zoo model, which takes RGB in [0, 255] and "
                "preprocesses inside; an input convention is for model files"
            )
        import tfvis

        # Through tfvis.load_model, as the commands always called it: wrapping it (tests serve shared models so) reaches every loader.
        return tfvis.load_model(
            self.name, weights=self.weights, include_top=self.include_top, seed=self.seed, input_shape=self.input_shape
        )

    def _read_file(self, path):
        check_weight_file(path, max_weight_bytes())  # declared sizes and bombs, before any reader sees the file
        allow_any_layer_name()  # saved models may name layers as TensorFlow's graphs refuse (tfvis.layer_names)
        if self.is_onnx:
            return load_onnx(path)
        try:
            return keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as err:  # noqa: BLE001 - Keras raises many types for unreadable files
            raise ValueError(f"{path}: cannot load it as a Keras model ({err})") from None

    def _declare_input(self, model, path):
        if self.input is None:
            if preprocess_layer(model) is None:
                notice_undeclared_input(model.name, key=str(path.resolve()))
            return model
        wrapped = wrap_model(model, self.input)
        return attach(wrapped, dataclasses.replace(model_info(wrapped), input=self.input))

    def describe(self, model=None):
        """What identifies the model's values (part of every unit's key)."""
        weights = weights_label(model, self.weights) if model is not None else self.weights
        described = {"model": self.name, "weights": weights, "include_top": self.include_top}
        if weights in (None, "random") or str(weights).startswith("random"):
            described["seed"] = self.seed
        if self.input is not None:
            described["input"] = self.input.text
        if self.input_shape is not None:
            described["input_shape"] = list(self.input_shape)
        if self.reinit:
            described["reinit"] = list(self.reinit)
            described["reinit_seed"] = self.effective_reinit_seed
        for path in (Path(self.name), Path(str(self.weights))):
            if path.is_file():  # a file given by path: its size and time identify its contents
                described[f"file:{path}"] = [path.stat().st_size, int(path.stat().st_mtime)]
        return described


class ReinitError(ValueError):
    """Re-initialisation prefixes that match no weighted layer of the model."""


def _prefixes(reinit):
    """``reinit`` (a comma-separated string or a sequence) as a tuple of non-empty prefixes."""
    if isinstance(reinit, str):
        reinit = reinit.split(",")
    return tuple(p.strip() for p in (reinit or ()) if str(p).strip())


def reinitialise_layers(model, prefixes, seed=0):
    """Re-initialise, in place, the weighted layers of ``model`` whose names start with one of ``prefixes``.

    The fresh weights are those of a clone of the model built right after
    ``keras.utils.set_random_seed(seed)`` (Keras' own initialisers), so that any process given the
    same model and seed sets the same values.

    Parameters
    ----------
    model : keras.Model
        Changed in place.
    prefixes : str or sequence of str
        Layer-name prefixes (a string is split at commas).
    seed : int

    Returns
    -------
    list of str
        The names of the layers re-initialised (empty when no weighted layer matches).

    Examples
    --------
    >>> reinitialise_layers(model, ["block5"], seed=1)  # doctest: +SKIP
    ['block5_conv1', 'block5_conv2', 'block5_conv3']
    """
    prefixes = _prefixes(prefixes)
    names = [layer.name for layer in model.layers if layer.weights and any(layer.name.startswith(p) for p in prefixes)]
    if not names:
        return names
    keras.utils.set_random_seed(int(seed))
    fresh = keras.models.clone_model(model)
    for name in names:
        set_weights(model, name, fresh)
    return names


def notice_undeclared_input(name, key=None, option="--input"):
    """Print, once per model, that a model without a declared input convention is taken to want RGB in [0, 255]."""
    key = key or name
    if key in _NOTICED:
        return
    _NOTICED.add(key)
    print(
        f"tfvis: model {name!r} has no declared input convention; assuming RGB in [0, 255] "
        f"(give {option} caffe|tf|torch|0-1|0-255)",
        file=sys.stderr,
    )


__all__ = ["ModelSpec", "ReinitError", "notice_undeclared_input", "reinitialise_layers"]
