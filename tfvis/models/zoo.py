"""What a zoo model declares: :class:`ZooEntry`, one per zoo module (its ``ZOO_ENTRY``).

:func:`tfvis.models.load_model` reads only these declarations (the registry
:data:`tfvis.models.ZOO_ENTRIES` is built from them), so a zoo module says once, in one place,
what it offers: how to build it, how to read its weight files, which weights it can load and the
facts every method reads about it (:class:`~tfvis.models.info.ModelInfo`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

#: The weights every zoo model takes by name, before its own extra sources.
NAMED_WEIGHTS = ("auto", "imagenet", "random")


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model's declaration.

    Attributes
    ----------
    name : str
        The zoo id (``"vgg16"``): ``load_model``'s first argument and the key of the registry.
    build : callable
        ``build(include_top, input_shape, preprocess, **options) -> keras.Model``.
    read_weights : callable
        ``read_weights(path) -> {layer name: [arrays]}`` for any weight file the model supports.
    info : ModelInfo
        What every method reads about the model (input range, sizes, report layers).
    top_layers : tuple of str
        The classifier's weighted layers, absent without ``include_top``.
    imagenet_file : callable
        ``imagenet_file(include_top) -> WeightFile``: the public ImageNet file that serves it.
    preprocess_for : callable
        ``preprocess_for(source name) -> dict``: the ``preprocess`` layer's arguments that suit
        weights of that source (``"imagenet"``, ``"hed"``, ``"file"``, ``"random"``).
    extra_sources : mapping of str to callable
        Weights by name besides ImageNet (``{"hed": hed_weights_path}``), each a function that
        returns the file's path; they hold the conv layers only.
    offline_fallback : str or None
        The extra source ``weights="auto"`` falls back on when ImageNet's file is unavailable.
    build_options : callable or None
        ``build_options(path) -> dict``: settings a weight file holds beside its arrays (the LRN
        settings of InceptionV1's graph), passed to ``build``.

    Examples
    --------
    >>> from tfvis.models import vgg16
    >>> vgg16.ZOO_ENTRY.weight_choices
    ('auto', 'imagenet', 'random', 'hed')
    """

    name: str
    build: Callable
    read_weights: Callable[[Path], dict]
    info: object
    top_layers: tuple
    imagenet_file: Callable
    preprocess_for: Callable[[str], dict]
    extra_sources: Mapping[str, Callable[[], Path]] = field(default_factory=dict)
    offline_fallback: str | None = None
    build_options: Callable[[Path], dict] | None = None

    def __post_init__(self):
        object.__setattr__(self, "extra_sources", MappingProxyType(dict(self.extra_sources)))  # frozen all the way down
        object.__setattr__(self, "top_layers", tuple(self.top_layers))
        if self.offline_fallback is not None and self.offline_fallback not in self.extra_sources:
            raise ValueError(f"zoo entry {self.name!r}: offline_fallback {self.offline_fallback!r} is not an extra source")

    @property
    def weight_choices(self) -> tuple:
        """The weights taken by name: ``"auto"``, ``"imagenet"``, ``"random"`` and the extra sources."""
        return NAMED_WEIGHTS + tuple(self.extra_sources)


__all__ = ["NAMED_WEIGHTS", "ZooEntry"]
