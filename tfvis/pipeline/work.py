"""What a worker holds and what it computes: one function per kind of unit.

A :class:`Context` names the model (a :class:`~tfvis.models.spec.ModelSpec`, the loader every
command uses, input convention included) and the images; a worker (this process, or a Ray actor)
loads the model once and reads only the images its units ask for. Each compute function takes
the context and a unit's parameters and returns the unit's result: a dict of arrays and
JSON-able ``"meta"`` (see :class:`tfvis.pipeline.Store`).
"""

import numpy as np

from ..display import to_uint8
from ..featurevis import render
from ..graph import prepared
from ..models.spec import ModelSpec  # noqa: F401 - the one loader, importable here as before
from ..targets import resolve
from ..topk import _RunningTopK, assemble, scan
from . import activation_atlas_units, caricature_units, faithfulness_units, image_units, sanity_units, study_units
from .context import Context  # noqa: F401 - importable here as before


def top_k_shard(context, params, progress=False):
    """Top-k of every channel of ``params["layers"]`` over the images ``start..stop-1``."""
    model = context.model
    net_model = prepared(model)
    channels = {layer: np.arange(resolve(net_model, layer).channels) for layer in params["layers"]}
    read = []
    batches = context.source.batches(params["start"], params["stop"], params["batch_size"])
    running, kept, ids = scan(
        model,
        (read.append(len(b.ids)) or b for b in batches),
        channels,
        params["k"],
        keep_images=True,
        progress=progress,
        precision=params.get("precision", "float32"),
    )
    context.keep(kept, ids)
    result = {}
    for i, state in enumerate(running.values()):
        result[f"values{i}"], result[f"images{i}"], result[f"flat{i}"] = state.values, state.images, state.flat_positions
    result["meta"] = {"layers": list(params["layers"]), "ids": {str(i): v for i, v in ids.items()}, "read": sum(read)}
    return result


def channel_group(context, params, progress=False):
    """Patches and reconstructions of the merged top-k of a group of channels of one layer."""
    state = _RunningTopK(params["channels"], params["k"])
    state.values = np.asarray(params["values"], np.float32).reshape(state.values.shape)
    state.images = np.asarray(params["images"], np.int64).reshape(state.images.shape)
    state.flat_positions = np.asarray(params["flat"], np.int64).reshape(state.flat_positions.shape)
    needed = sorted(set(state.images[state.images >= 0].tolist()))
    indices, ids, images = context.read_uint8(needed)
    kept = dict(zip(indices, images))
    missing = set(needed) - set(kept)
    if missing:
        raise RuntimeError(f"images {sorted(missing)} of the dataset could not be read again (changed since the top-k pass?)")
    result = assemble(
        context.model,
        params["layer"],
        state,
        kept,
        dict(zip(indices, ids)),
        methods=tuple(params["methods"]),
        batch_size=params["batch_size"],
        progress=progress,
    )
    dtype = np.float16 if params.get("raw", "compact") == "compact" else np.float32
    out = {
        "channels": result.channels,
        "values": result.values,
        "positions": result.positions,
        "boxes": result.boxes,
        "image_index": result.image_index,
        "patches": result.patches,
        "meta": {"layer": result.layer, "image_ids": result.image_ids.tolist()},
    }
    for method, maps in result.reconstructions.items():
        out[f"recon_{method}"] = maps.astype(dtype)
    return out


def feature_visualizations(context, params, progress=False):
    """Feature visualizations of a batch of channels of one layer, rendered together."""
    layer = params["layer"]
    images = render(
        context.model_for(params),
        [f"{layer}:{c}" for c in params["channels"]],
        size=params["size"],
        steps=params["steps"],
        seed=params["seed"],
        progress=progress,
        precision=params.get("precision", "float32"),
    )
    failed = np.zeros(len(params["channels"]), bool)
    failed[list(images.failed)] = True
    return {"images": to_uint8(np.asarray(images)), "failed": failed, "meta": {"layer": layer}}


#: Unit kind to its compute function: the layer report's kinds here, the other commands' in their modules.
COMPUTE = {
    "topk": top_k_shard,
    "channels": channel_group,
    "featurevis": feature_visualizations,
    **image_units.COMPUTE,
    **study_units.COMPUTE,
    **caricature_units.COMPUTE,
    **activation_atlas_units.COMPUTE,
    **faithfulness_units.COMPUTE,
    **sanity_units.COMPUTE,
}


def compute(unit, context, progress=False):
    """Run ``unit`` on ``context``: its result dict."""
    try:
        function = COMPUTE[unit.kind]
    except KeyError:
        raise ValueError(f"unknown unit kind {unit.kind!r}; known: {', '.join(COMPUTE)}") from None
    return function(context, unit.params, progress=progress)
