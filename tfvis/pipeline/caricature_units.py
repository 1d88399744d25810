"""Caricature units: one model x one layer x a batch of images (``python -m tfvis.caricature``).

A unit names its model by its name in the run's :class:`~tfvis.pipeline.context.Context`
(``params["model_name"]``, with the model's description, so another model or other weights make
other units) and its images by their indices in the context's image source, with the source's
description (sample photos by index and seed; files by path with their size and modification
time), so any worker reads exactly the driver's images. Its result: the caricatures in [0, 1],
which came out flat or NaN, and the objective at each step.
"""

import numpy as np

from ..featurevis import caricature
from .units import Unit

#: The unit kind.
KIND = "caricature"
#: Version of the caricature method (:func:`tfvis.featurevis.caricature`); part of every unit's key,
#: so stores made by another method are not reused.
#: 2: photos stacked into the render's batch, post-activation layers, cosine^4, blur penalty (issue 13).
METHOD_VERSION = 2
#: Images caricatured together in one unit (one batch of the render).
BATCH_IMAGES = 8


def plan(context, model_names, layers, indices, size, steps, power, seed, batch_images=BATCH_IMAGES):
    """The caricature units of every model x layer x batch of ``indices``.

    Parameters
    ----------
    context : tfvis.pipeline.context.Context
        Holds the models (by the names in ``model_names``) and the image source.
    model_names : sequence of str
        Names of models in ``context.specs``.
    layers : sequence of str
        Layers, each present in every model.
    indices : sequence of int
        Indices of the images in ``context.source``, batched in this order.
    size, steps : int
    power : float
    seed : int
    batch_images : int
        Images per unit. The batch is part of a caricature's computation (the starting noise and
        the transforms are drawn per batch), so the same batching gives the same caricatures.

    Returns
    -------
    list of Unit

    Examples
    --------
    >>> from tfvis.images import SampleSource
    >>> from tfvis.models import ModelSpec
    >>> from tfvis.pipeline.context import Context
    >>> context = Context(ModelSpec("vgg16", "random"), SampleSource(3, 32), specs={"a": ModelSpec("vgg16", "random")})
    >>> [u.label for u in plan(context, ["a"], ["block1_conv1"], [0, 1, 2], 32, 2, 4.0, 0, batch_images=2)]
    ['a block1_conv1 images 0-1', 'a block1_conv1 images 2-2']
    """
    indices = [int(i) for i in indices]
    images = context.source.describe()
    units = []
    for name in model_names:
        model = context.describe_model(name)
        for layer in layers:
            for start in range(0, len(indices), int(batch_images)):
                chunk = indices[start : start + int(batch_images)]
                params = {
                    "model_name": name,
                    "model": model,
                    "images": images,
                    "indices": chunk,
                    "layer": layer,
                    "size": int(size),
                    "steps": int(steps),
                    "power": float(power),
                    "seed": int(seed),
                    "method": METHOD_VERSION,
                }
                units.append(Unit(KIND, params, label=f"{name} {layer} images {chunk[0]}-{chunk[-1]}"))
    return units


def caricatures(context, params, progress=False):
    """Caricatures of the images ``params["indices"]`` at ``params["layer"]`` of model ``params["model_name"]``.

    Returns
    -------
    dict
        ``images`` (N, size, size, 3) float32 in [0, 1], ``failed`` (N,) bool (flat or NaN),
        ``values`` (steps,) the objective at each step, and ``meta`` with the image ``ids``.

    Raises
    ------
    RuntimeError
        An image of the unit could not be read (changed since the run was planned).
    """
    read, ids, images = context.source.read(params["indices"])
    if len(ids) != len(params["indices"]):
        missing = sorted(set(params["indices"]) - set(int(i) for i in read))
        raise RuntimeError(f"images {missing} of the image source could not be read again (changed since the run was planned?)")
    result = caricature(
        context.model_for(params),
        images,
        params["layer"],
        steps=params["steps"],
        size=params["size"],
        power=params["power"],
        seed=params["seed"],
        progress=progress,
    )
    failed = np.zeros(len(ids), bool)
    failed[list(result.failed)] = True
    return {
        "images": np.asarray(result, np.float32),
        "failed": failed,
        "values": np.asarray(result.values, np.float32),
        "meta": {"ids": list(ids), "layer": params["layer"], "model_name": params["model_name"]},
    }


#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {KIND: caricatures}
