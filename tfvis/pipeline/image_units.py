"""Unit kinds of per-image work: the report's image pages and ``python -m tfvis.saliency``.

Every unit names its images by their indices in the context's image source (whose description,
part of the key, identifies the files or samples), so any worker reads and computes the same:

- ``page_saliency``: for a batch of page images and one layer, each image's strongest channel
  among the report's channels, and that channel's maps by each page method;
- ``page_classes``: for a batch of page images, the maps of each image's top classes;
- ``page_inversion``: a batch of page images inverted from one layer's representation;
- ``saliency_scores`` and ``saliency_maps``: the saliency command's target scores, and its maps
  by one method, for a batch of images and one ``--target``.

The planning functions (``*_units``) give the units; :mod:`tfvis.image_pages` and
:mod:`tfvis.cli.saliency` render pages from their stored results.
"""

import numpy as np
import tensorflow as tf

from .. import inversion
from ..activations import activations
from ..layer_names import allow_any_layer_name
from ..layers import get_layer
from ..saliency import class_scores, default_layer, score
from ..saliency.methods import DEFAULT_METHODS, method
from .units import Unit

#: Noisy copies per image of the image pages' SmoothGrad.
SMOOTHGRAD_SAMPLES = 16
#: Noise of the image pages' SmoothGrad, as a fraction of the input range.
SMOOTHGRAD_NOISE = 0.15
#: Saliency methods of the image pages, in column order (entries of :data:`tfvis.saliency.methods.METHODS`).
PAGE_METHODS = DEFAULT_METHODS


def _batches(indices, size):
    """``indices`` in runs of ``size``, each with its positions in ``indices``."""
    return [
        (list(indices[start : start + size]), list(range(start, min(start + size, len(indices)))))
        for start in range(0, len(indices), size)
    ]


def _model(context, params):
    """The unit's model, in a process that accepts any Keras layer name (a Ray worker too: targets may name ``"it's"``)."""
    allow_any_layer_name()
    return context.model_for(params)


def _read(context, params):
    """``(ids, float32 images)`` of the unit's indices, all of which must be readable."""
    read, ids, images = context.source.read(params["indices"])
    if len(read) != len(params["indices"]):
        missing = sorted(set(params["indices"]) - set(int(i) for i in read))
        raise RuntimeError(f"images {missing} of the dataset could not be read again (changed since the run was planned?)")
    return list(ids), np.asarray(images, np.float32)


def _page_base(context, indices, positions, batch_size, seed):
    return {
        **context.describe(),
        "indices": [int(i) for i in indices],
        "positions": positions,
        "batch_size": int(batch_size),
        "seed": int(seed),
    }


def page_units(
    context,
    indices,
    layers,
    channels,
    methods,
    invert_layers=(),
    invert_size=None,
    batch_size=16,
    seed=0,
    classes=False,
    saliency_methods=PAGE_METHODS,
):
    """The units of the image pages of the images ``indices`` of the context's source.

    Parameters
    ----------
    context : tfvis.pipeline.context.Context
    indices : list of int
        The page images (readable ones), in page order.
    layers : list of str
        Layers of the saliency rows; ``channels[layer]`` are each row's candidate channels.
    channels : dict of str to list of int
    methods : collection of str
        ``"saliency"`` and/or ``"inversion"``.
    invert_layers : list of str
    invert_size : int, optional
        Side of the images inverted; default the source's.
    batch_size : int
        Images per unit (and per compiled call).
    seed : int
        SmoothGrad's noise and the inversions' start.
    classes : bool
        Whether the model has a class output (then a ``page_classes`` unit per batch).
    saliency_methods : sequence of str
        The pages' saliency columns, entries of :data:`tfvis.saliency.methods.METHODS` (default
        :data:`PAGE_METHODS`; the report's ``--saliency-methods``).

    Returns
    -------
    list of Unit
    """
    units, smooth = [], {"noise": SMOOTHGRAD_NOISE, "samples": SMOOTHGRAD_SAMPLES}
    for part, positions in _batches(list(indices), int(batch_size)):
        base = _page_base(context, part, positions, batch_size, seed)
        label = f"images {positions[0]}-{positions[-1]}"
        if "saliency" in methods:
            common = {**base, "methods": [method(name).name for name in saliency_methods], "smoothgrad": smooth}
            if classes:
                units.append(Unit("page_classes", {**common, "top": 3}, label=f"class saliency of {label}"))
            for layer in layers:
                units.append(
                    Unit(
                        "page_saliency",
                        {**common, "layer": layer, "channels": [int(c) for c in channels[layer]]},
                        label=f"{layer}: saliency of {label}",
                    )
                )
        if "inversion" in methods:
            for layer in invert_layers:
                size = int(invert_size or context.source.size)
                units.append(
                    Unit(
                        "page_inversion",
                        {**base, "layer": layer, "size": size, "version": inversion.VERSION},
                        label=f"{layer}: inversion of {label}",
                    )
                )
    return units


def strongest_channels(model, images, layer, channels, batch_size=16):
    """For each image, the channel of ``channels`` with the largest mean activation at ``layer``.

    Parameters
    ----------
    model : keras.Model
    images : ndarray, shape (N, H, W, 3)
    layer : str
    channels : sequence of int
        Candidates (the channels shown in the report).
    batch_size : int

    Returns
    -------
    best : ndarray of int, shape (N,)
    values : ndarray of float, shape (N,)
        The mean activation of each image's best channel.
    """
    act = activations(model, [layer], images, batch_size=batch_size)[layer]
    means = act.reshape(len(images), -1, act.shape[-1]).mean(axis=1)[:, list(channels)]
    pick = means.argmax(axis=1)
    return np.asarray(channels)[pick], means[np.arange(len(images)), pick]


def resized(images, size):
    """``images`` (N, H, W, 3) resized to ``size`` x ``size`` px by area averaging (the pages' inversions)."""
    return tf.image.resize(images, (size, size), method="area").numpy().astype(np.float32)


def _maps(model, images, targets, params, cam_layer):
    """The maps of ``params["methods"]`` (keys ``maps_<method>``) for one target per image."""
    settings = {
        **params.get("smoothgrad", {}),
        **params.get("options", {}),
        "seed": params["seed"],
        "layer": cam_layer,
        "image_indices": params["positions"],
    }
    return {
        f"maps_{name}": np.asarray(method(name)(model, images, targets, batch_size=params["batch_size"], **settings), np.float32)
        for name in params["methods"]
    }


def page_saliency(context, params, progress=False):
    """``page_saliency``: the strongest channel of ``params["channels"]`` per image at ``params["layer"]``, and its maps."""
    model = _model(context, params)
    ids, images = _read(context, params)
    layer = params["layer"]
    best, values = strongest_channels(model, images, layer, params["channels"], params["batch_size"])
    targets = [f"{layer}:{int(c)}" for c in best]
    cam_layer = layer if len(get_layer(model, layer).output.shape) == 4 else default_layer(model)
    result = _maps(model, images, targets, params, cam_layer)
    result.update(channels=np.asarray(best, np.int64), values=np.asarray(values, np.float32))
    result["meta"] = {"ids": ids, "targets": targets, "cam_layer": cam_layer}
    return result


def page_classes(context, params, progress=False):
    """``page_classes``: the maps of each image's ``params["top"]`` top classes (arrays ``(top, N, H, W)``)."""
    model = _model(context, params)
    ids, images = _read(context, params)
    logits = class_scores(model, images, params["batch_size"])
    order = np.argsort(-logits, axis=1)[:, : params["top"]]
    cam_layer = default_layer(model)
    ranks = [_maps(model, images, [int(c) for c in order[:, rank]], params, cam_layer) for rank in range(order.shape[1])]
    result = {name: np.stack([maps[name] for maps in ranks]) for name in ranks[0]}
    result.update(classes=order.astype(np.int64), logits=np.take_along_axis(logits, order, axis=1).astype(np.float32))
    result["meta"] = {"ids": ids, "cam_layer": cam_layer}
    return result


def page_inversion(context, params, progress=False):
    """``page_inversion``: the images inverted from ``params["layer"]`` at ``params["size"]`` px, with their errors."""
    model = _model(context, params)
    ids, images = _read(context, params)
    if params["size"] != images.shape[1]:
        images = resized(images, params["size"])
    recons, errors = inversion.invert(model, images, params["layer"], seed=params["seed"], progress=progress)
    return {"recons": np.asarray(recons, np.float32), "errors": np.asarray(errors, np.float32), "meta": {"ids": ids}}


# --------------------------------------------------------------------------------------------
# python -m tfvis.saliency
# --------------------------------------------------------------------------------------------


def saliency_units(context, indices, targets, methods, options, batch_size=16, seed=0):
    """The units of ``python -m tfvis.saliency``: per target and batch of images, its scores and each method's maps.

    Parameters
    ----------
    context : tfvis.pipeline.context.Context
    indices : list of int
        The images, by index in the context's source.
    targets : list
        Per ``--target``: an int (a class), a ``"layer:channel[@y,x]"`` text, or None (each
        image's top class).
    methods : list of str
        Entries of :data:`tfvis.saliency.methods.METHODS`.
    options : dict
        Each method's options (SmoothGrad's ``noise``, ``samples``, ``method``, Integrated
        Gradients' ``steps``...); a method reads those it takes, and its unit's key holds only those.
    batch_size : int
        Images per unit, and rows per compiled call.
    seed : int

    Returns
    -------
    dict of (target index, "scores" or method) to list of Unit (one per batch of images)
    """
    plan = {}
    for number, target in enumerate(targets):
        for part, positions in _batches(list(indices), int(batch_size)):
            base = {**_page_base(context, part, positions, batch_size, seed), "target": target}
            label = f"target {target if target is not None else '(top class)'}, images {positions[0]}-{positions[-1]}"
            plan.setdefault((number, "scores"), []).append(Unit("saliency_scores", base, label=f"scores of {label}"))
            for name in methods:
                taken = method(name).options_for(options)
                taken.pop("seed", None)  # in the base already
                params = {**base, "methods": [name], "options": taken}
                plan.setdefault((number, name), []).append(Unit("saliency_maps", params, label=f"{name} of {label}"))
    return plan


def _per_image_targets(model, images, target, batch_size):
    if target is None:
        return [int(c) for c in class_scores(model, images, batch_size).argmax(axis=1)]
    return [target] * len(images)


def saliency_scores(context, params, progress=False):
    """``saliency_scores``: each image's target (its top class for ``target`` None) and the target's score."""
    model = _model(context, params)
    ids, images = _read(context, params)
    targets = _per_image_targets(model, images, params["target"], params["batch_size"])
    scores = np.asarray(score(model, images, targets, params["batch_size"]), np.float32).reshape(len(images))
    return {"scores": scores, "meta": {"ids": ids, "targets": targets}}


def saliency_maps(context, params, progress=False):
    """``saliency_maps``: the maps of one method for one target (each image's top class for None)."""
    model = _model(context, params)
    ids, images = _read(context, params)
    targets = _per_image_targets(model, images, params["target"], params["batch_size"])
    cam_layer = params["options"].get("layer")
    result = _maps(model, images, targets, params, cam_layer)
    result["meta"] = {"ids": ids, "targets": targets}
    return result


#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {
    "page_saliency": page_saliency,
    "page_classes": page_classes,
    "page_inversion": page_inversion,
    "saliency_scores": saliency_scores,
    "saliency_maps": saliency_maps,
}
