"""``python -m tfvis.compare``: what training changed between networks (CKA, visualizations, dead channels).

Two models (``--a``, ``--b``) or a study of N (``--models A,B,C --base A``). Everything runs as
work units (:mod:`tfvis.pipeline.study_units`) on the local engine or Ray: each model's Gram
matrices for CKA, shard by shard, and each model's feature visualizations; results live in
``<out>/store``, so a run killed midway resumes where it stopped, and ``--force`` recomputes.
"""

import argparse
import dataclasses
import io
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .common import (
    INPUT_HELP,
    UsageError,
    add_engine_options,
    check_layers,
    check_out,
    check_positive,
    dataset_options,
    featurevis_options,
    image_source,
    make_run_engine,
    model_spec_of,
    parse_channels,
    run_command,
    run_options,
)

MODELS_HELP = (
    "a study of N models, comma-separated: each a zoo 'name:weights' (e.g. vgg16:hed), a saved Keras model (.keras, .h5) or "
    "an ONNX file (.onnx), optionally followed by '@reinit=PREFIX+PREFIX' to re-initialise its layers whose names start with "
    "a prefix (an ablation; seeded by --seed + 1), e.g. 'vgg16:hed,vgg16:hed@reinit=block5,vgg16:hed@reinit=block4+block5'"
)


def build_compare_parser():
    """The argument parser of ``python -m tfvis.compare``."""
    parents = [
        dataset_options(
            "a folder of images for CKA, or a glob pattern (default: scikit-image's sample photos plus crops)",
            "use at most this many images (default: 64 samples, or the whole folder)",
        ),
        featurevis_options(steps_flags=("--steps", "--fv-steps")),
        run_options(
            str(Path("html_out") / "compare"), 32, "images per CKA minibatch", "seed of random weights, sample crops and renders"
        ),
    ]
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.compare",
        parents=parents,
        description="Compare networks (e.g. a base model and fine-tuned ones): CKA between their layers, each channel's "
        "feature visualization in every model with how much it changed, and dead channels. Two models with --a and --b, "
        "or a study of N with --models (and --base). --shard-images sets the images per CKA unit.",
    )
    parser.add_argument(
        "--a", help="model A: 'name:weights' (e.g. vgg16:hed), a saved Keras model file (.keras, .h5) or an ONNX file (.onnx)"
    )
    parser.add_argument("--b", help="model B, as --a (e.g. vgg16:random)")
    parser.add_argument("--input-a", metavar="CONVENTION", help=f"model A's input convention: {INPUT_HELP}")
    parser.add_argument("--input-b", metavar="CONVENTION", help="model B's input convention, as --input-a")
    parser.add_argument(
        "--reinit-b",
        help="re-initialise B's layers whose names start with these comma-separated prefixes "
        "(e.g. block5): an ablation to compare against",
    )
    parser.add_argument("--models", metavar="SPEC,SPEC,...", help=MODELS_HELP)
    parser.add_argument(
        "--base",
        metavar="SPEC",
        help="with --models: the model the others are compared with, as written in "
        "--models or its position (1, 2, ...) (default: the first)",
    )
    parser.add_argument(
        "--inputs",
        metavar="CONV;CONV;...",
        help="with --models: each model's input convention, "
        "semicolon-separated in the order of --models, empty for zoo models (e.g. ';torch;0-1')",
    )
    parser.add_argument("--layers", required=True, help="comma-separated layers whose channels are visualized")
    parser.add_argument(
        "--cka-layers",
        help="comma-separated layers of the CKA matrices (default: the model's report layers, "
        "or every conv layer; with --models, those of the base model)",
    )
    parser.add_argument("--channels", default="8", help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--size", type=int, default=128, help="image side for CKA (default: 128)")
    add_engine_options(parser, shard_units="CKA")
    return parser


def reinitialise(model, prefixes, seed=0):
    """Re-initialise, in place, the weighted layers of ``model`` whose names start with one of ``prefixes``.

    The fresh weights come from a clone of the model (Keras' initialisers, seeded); the same code
    as :class:`tfvis.models.ModelSpec`'s ``reinit`` (:func:`tfvis.models.spec.reinitialise_layers`).
    Returns the layer names.
    """
    from tfvis.models.spec import reinitialise_layers

    return reinitialise_layers(model, prefixes, seed)


class StudyModel(NamedTuple):
    """One model of a comparison, as the command line gave it."""

    name: str  #: its unique name in the study (files, units, the Context)
    label: str  #: shown on the pages
    text: str  #: the spec as written
    option: str  #: the option that gave it (for messages)
    spec: object  #: its ModelSpec (re-initialisation included)
    reinit_option: str  #: the option that gave its re-initialisation


def _prefixes(text):
    return [p.strip() for p in str(text).replace("+", ",").split(",") if p.strip()]


def _entries(args):
    """``[(spec text, reinit prefixes, input, option, reinit option)]`` of --a/--b or --models, checked."""
    if args.models is not None:
        for flag, value in (
            ("--a", args.a),
            ("--b", args.b),
            ("--input-a", args.input_a),
            ("--input-b", args.input_b),
            ("--reinit-b", args.reinit_b),
        ):
            if value is not None:
                raise UsageError(f"{flag} {value}: give either --models or --a and --b, not both")
        texts = [t.strip() for t in args.models.split(",")]
        if len(texts) < 2 or not all(texts):
            raise UsageError(f"--models {args.models}: give at least two comma-separated models (e.g. vgg16:hed,vgg16:random)")
        inputs = [None] * len(texts)
        if args.inputs is not None:
            given = [t.strip() or None for t in args.inputs.split(";")]
            if len(given) != len(texts):
                raise UsageError(
                    f"--inputs {args.inputs}: {len(given)} convention(s) for {len(texts)} models; give one per model, "
                    "separated by ';' (empty for zoo models)"
                )
            inputs = given
        entries = []
        for text, input in zip(texts, inputs):
            spec, at, options = text.partition("@")
            reinit = []
            if at:
                key, equals, value = options.partition("=")
                if key != "reinit" or not equals or not _prefixes(value):
                    raise UsageError(f"--models {text}: after '@' give reinit=PREFIX+PREFIX (e.g. {spec}@reinit=block5)")
                reinit = _prefixes(value)
            entries.append((spec, reinit, input, "--models", "--models"))
        return entries
    for flag, value in (("--base", args.base), ("--inputs", args.inputs)):
        if value is not None:
            raise UsageError(f"{flag} {value}: only with --models")
    if not args.a or not args.b:
        raise UsageError("give the two models with --a and --b, or a study with --models A,B,C")
    reinit_b = _prefixes(args.reinit_b) if args.reinit_b else []
    return [(args.a, [], args.input_a, "--a", None), (args.b, reinit_b, args.input_b, "--b", "--reinit-b")]


def _study_models(args):
    """The :class:`StudyModel` s of the command line, with unique names."""
    models, names = [], set()
    for text, reinit, input, option, reinit_option in _entries(args):
        spec, label = model_spec_of(
            text,
            args.seed,
            option=option,
            input=input,
            input_option="--inputs" if option == "--models" else f"--input-{option[-1]}",
        )
        spec = dataclasses.replace(spec, reinit=tuple(reinit))
        name = label + (f"+reinit-{'-'.join(reinit)}" if reinit else "")
        unique, count = name, 1
        while unique in names:
            count += 1
            unique = f"{name}-{count}"
        names.add(unique)
        shown = f"{label} ({','.join(reinit)} re-initialised)" if option == "--b" and reinit else unique
        models.append(StudyModel(unique, shown, text, option, spec, reinit_option))
    return models


def _load(model):
    """Build a :class:`StudyModel`'s Keras model; its errors as one line naming the option."""
    from tfvis.models import WeightsError, WeightsUnavailableError
    from tfvis.models.spec import ReinitError

    try:
        return model.spec.load()
    except ReinitError as err:
        reinit = ",".join(model.spec.reinit)
        shown = f"{model.reinit_option} {reinit}" if model.reinit_option == "--reinit-b" else f"--models {model.text}"
        raise UsageError(f"{shown}: {err}") from None
    except WeightsUnavailableError as err:
        raise UsageError(f"{model.option} {model.text}: {err} Or try it now with {model.spec.name}:random.") from None
    except (WeightsError, ValueError) as err:
        raise UsageError(f"{model.option} {model.text}: {err}") from None


def _check_models(args, models, base):
    """Load the models one at a time and check ``--layers`` and ``--cka-layers`` on each.

    Returns ``(base_model, held, layers, cka_layers, weights)``: the base's Keras model, a few
    loaded models to hand to the local engine (the base and the last ones checked, at most
    :attr:`Context.HELD_MODELS` + 1, so the driver's memory does not grow with the number of
    models), the layers, each model's CKA layers and each model's weights label (None if unknown).
    """
    from tfvis.graph import prepared
    from tfvis.layer_names import split_layer_names
    from tfvis.models import weights_label
    from tfvis.pipeline.context import Context

    base_model = _load(base)
    known = {layer.name for layer in prepared(base_model).layers}
    layers = split_layer_names(args.layers, known)  # every layer must be the base's too
    if args.cka_layers:
        chosen, option = split_layer_names(args.cka_layers, known), "--cka-layers"
    elif args.models is not None:
        chosen, option = _default_cka_layers(base_model), "--cka-layers (default: the base's report layers)"
    held, cka_layers, weights = {base.name: base_model}, {}, {}
    for model in [base] + [m for m in models if m is not base]:
        keras_model = held.get(model.name) or _load(model)
        layers = check_layers(keras_model, model.label, layers)  # without repeats
        if args.cka_layers or args.models is not None:
            cka_layers[model.name] = check_layers(keras_model, model.label, chosen, option)
        else:  # --a/--b: each model's own report layers
            cka_layers[model.name] = _default_cka_layers(keras_model)
        weights[model.name] = weights_label(keras_model)
        held[model.name] = keras_model
        if len(held) > Context.HELD_MODELS + 1:
            held.pop(next(name for name in held if name != base.name))
    return base_model, held, layers, cka_layers, weights


def _base_index(args, models):
    if args.base is None:
        return 0
    for i, model in enumerate(models):
        if args.base in (model.text, model.name) or args.base == str(i + 1):
            return i
    raise UsageError(
        f"--base {args.base}: not one of --models; choose from {', '.join(m.text for m in models)} or 1-{len(models)}"
    )


def _default_cka_layers(model):
    """The model's report layers (:func:`tfvis.models.model_info`): the zoo's, or every spatial layer."""
    from tfvis.models import model_info

    return list(model_info(model).report_layers)


def _plain(text):
    """Text for Matplotlib: a "$" in a layer or file name would start its math mode."""
    return str(text).replace("$", r"\$")


def _save_figure(report, fig, relative):
    import matplotlib.pyplot as plt

    from tfvis import fileio

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    fileio.write_bytes(report.out / relative, buffer.getvalue())
    return relative


def _visualization_units(context, models, layers, channels, args):
    """``{(model name, layer): [featurevis units]}``: every model's feature visualizations of the chosen channels."""
    from tfvis.pipeline.study_units import featurevis_units_of

    return {
        (m.name, layer): featurevis_units_of(
            context, m.name, layer, channels[layer], args.fv_steps, args.fv_size, args.fv_batch, args.seed
        )
        for m in models
        for layer in layers
    }


def _visualizations(store, units):
    """``{model name: {layer: float32 (C, S, S, 3) in [0, 1]}}`` read from the store."""
    vis = {}
    for (name, layer), group in units.items():
        vis.setdefault(name, {})[layer] = np.concatenate([store.load(u)["images"] for u in group]).astype(np.float32) / 255.0
    return vis


def _changes(base_model, base, models, visualizations, layer):
    """``{model name: (similarity, Gram distance)}`` of each model's visualizations of ``layer`` against the base's."""
    from tfvis.compare import gram_distance, visualization_similarity

    reference = visualizations[base.name][layer]
    return {
        m.name: (
            visualization_similarity(base_model, layer, reference, visualizations[m.name][layer]),
            gram_distance(base_model, layer, reference, visualizations[m.name][layer]),
        )
        for m in models
    }


# ---------------------------------------------------------------------------------------------
# Two models: --a and --b
# ---------------------------------------------------------------------------------------------


def _pair_layer_page(report, models, layer, channels, vis, changes):
    """The page of one layer for --a/--b; returns its index row and dead-channel CSV rows."""
    from tfvis.compare import dead_channels
    from tfvis.report import safe_name

    (a, b) = models
    similarity, distance = changes[b.name]
    dead_a, dead_b = dead_channels(vis[a.name][layer]), dead_channels(vis[b.name][layer])
    rows = []
    for i in np.argsort(similarity, kind="stable"):  # most changed first
        channel = channels[i]
        cells = []
        for side, model in (("a", a), ("b", b)):
            image = vis[model.name][layer][i]
            src = report.save_picture(layer, f"{safe_name(model.label)}_{safe_name(layer)}_ch{channel}_{side}", image, image)
            cells.append({"src": src, "alt": f"{model.label} {layer}:{channel}"})
        flags = [name for name, dead in (("dead in A", dead_a.flags[i]), ("dead in B", dead_b.flags[i])) if dead]
        note = f"similarity {similarity[i]:.3f}, Gram distance {distance[i]:.3f}" + (f" ({', '.join(flags)})" if flags else "")
        rows.append({"label": f"channel {channel}", "note": note, "cells": cells})
    page = f"{safe_name(layer)}.html"
    report.write_grid_page(
        page,
        layer,
        [
            {
                "id": "channels",
                "title": f"{layer}: channels from most to least changed",
                "columns": [f"A: {a.label}", f"B: {b.label}"],
                "rows": rows,
            }
        ],
        lede="Similarity: cosine of the two visualizations' activations in model A at this layer "
        "(1: the same feature). Gram distance: of their style (Gram) matrices.",
    )
    names = [f"{layer}:{c}" for c in channels]
    row = {
        "name": layer,
        "page": page,
        "channels": len(channels),
        "mean": f"{float(np.mean(similarity)):.3f}",
        "most_changed": ", ".join(str(channels[i]) for i in np.argsort(similarity, kind="stable")[:3]),
        "dead_a": int(dead_a.flags.sum()),
        "dead_b": int(dead_b.flags.sum()),
    }
    csv_rows = [(f"A {n}", s, f) for n, s, f in zip(names, dead_a.scores, dead_a.flags)]
    csv_rows += [(f"B {n}", s, f) for n, s, f in zip(names, dead_b.scores, dead_b.flags)]
    return row, csv_rows


def _write_pair(report, models, base_model, weights, study, cka_layers, layers, channels, vis, images_label, args):
    from tfvis import fileio
    from tfvis.compare import plot_cka, write_dead_csv
    from tfvis.featurevis import describe

    a, b = models
    layers_a, layers_b = cka_layers[a.name], cka_layers[b.name]
    matrix = study.matrix(a.name, b.name)
    fig = plot_cka(
        matrix,
        [_plain(n) for n in layers_a],
        [_plain(n) for n in layers_b],
        title=_plain(f"CKA: {a.label} (rows) vs {b.label} (columns)"),
    )
    heatmap = _save_figure(report, fig, "assets/cka.png")
    rows, csv_rows = [], []
    for layer in layers:
        row, dead = _pair_layer_page(report, models, layer, channels[layer], vis, _changes(base_model, a, [b], vis, layer))
        rows.append(row)
        csv_rows += dead
    write_dead_csv(report.out / "dead_channels.csv", *zip(*csv_rows))
    diagonal = [{"name": n, "value": f"{matrix[i, layers_b.index(n)]:.3f}"} for i, n in enumerate(layers_a) if n in layers_b]
    facts = [
        ("A", f"{a.label} ({weights[a.name] or 'saved model'})"),
        ("B", f"{b.label} ({weights[b.name] or 'saved model'})"),
        ("CKA images", f"{images_label}, minibatches of {args.batch_size} ({study.n_examples} images)"),
        ("Visualizations", describe(steps=args.fv_steps, size=args.fv_size)),
    ]
    dead = [name for name, _, flag in csv_rows if flag]
    report.render_page(
        "compare.html", "index.html", title="Comparison", facts=facts, heatmap=heatmap, diagonal=diagonal, layers=rows, dead=dead
    )
    fileio.write_json(
        report.out / "cka.json",
        {"layers_a": layers_a, "layers_b": layers_b, "matrix": np.asarray(matrix).tolist(), "images": study.n_examples},
    )
    return f"{a.label} vs {b.label}: CKA {len(layers_a)} x {len(layers_b)} layers"


# ---------------------------------------------------------------------------------------------
# A study: --models
# ---------------------------------------------------------------------------------------------


def _plot_against_base(curves, layers, base_label):
    """Line plot of each model's layer-wise CKA against the base (curves: {label: values per layer})."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.5 * len(layers)), 3.8))
    for label, values in curves.items():
        ax.plot(range(len(layers)), values, marker="o", label=_plain(label))
    ax.set_xticks(range(len(layers)), [_plain(n) for n in layers], rotation=60, ha="right")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel(_plain(f"CKA with {base_label}"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _study_layer_page(report, models, base, layer, channels, vis, changes):
    """The page of one layer of a study: each channel in every model; returns its index row and CSV rows."""
    from tfvis.compare import dead_channels
    from tfvis.report import safe_name

    others = [m for m in models if m is not base]
    dead = {m.name: dead_channels(vis[m.name][layer]) for m in models}
    mean_similarity = np.nanmean(np.stack([changes[m.name][0] for m in others]), axis=0) if others else np.ones(len(channels))
    order = np.argsort(np.nan_to_num(mean_similarity, nan=-2.0), kind="stable")  # most changed first
    rows = []
    for i in order:
        channel = channels[i]
        cells = []
        for m in models:
            image = vis[m.name][layer][i]
            src = report.save_picture(layer, f"{safe_name(m.name)}_{safe_name(layer)}_ch{channel}", image, image)
            caption = "base" if m is base else f"sim {changes[m.name][0][i]:.2f}, Gram {changes[m.name][1][i]:.2f}"
            cells.append(
                {
                    "src": src,
                    "alt": f"{m.label} {layer}:{channel}",
                    "caption": caption + (" (dead)" if dead[m.name].flags[i] else ""),
                }
            )
        rows.append(
            {"label": f"channel {channel}", "note": f"mean similarity to the base {mean_similarity[i]:.3f}", "cells": cells}
        )
    page = f"{safe_name(layer)}.html"
    report.write_grid_page(
        page,
        layer,
        [
            {
                "id": "channels",
                "title": f"{layer}: channels from most to least changed",
                "columns": [("base: " if m is base else "") + m.label for m in models],
                "rows": rows,
            }
        ],
        lede=f"Each channel's feature visualization in every model. sim: cosine similarity of the "
        f"visualization's activations and the base's in the base model ({base.label}) at this layer (1: "
        "the same feature); Gram: distance of their style (Gram) matrices (0: the same style).",
    )
    row = {
        "name": layer,
        "page": page,
        "channels": len(channels),
        "mean": f"{float(np.nanmean(mean_similarity)):.3f}",
        "most_changed": ", ".join(str(channels[i]) for i in order[:3]),
        "dead": [int(dead[m.name].flags.sum()) for m in models],
    }
    csv_rows = [
        (f"{m.name} {layer}:{c}", s, f) for m in models for c, s, f in zip(channels, dead[m.name].scores, dead[m.name].flags)
    ]
    return row, csv_rows


def _write_study(report, models, base, base_model, weights, study, cka_layers, layers, channels, vis, images_label, args):
    from tfvis import fileio
    from tfvis.compare import plot_cka, write_dead_csv
    from tfvis.featurevis import describe
    from tfvis.report import safe_name

    names = [m.name for m in models]
    numbers = [str(i + 1) for i in range(len(models))]  # the heatmaps' ticks: short enough to read in a thumbnail
    shared = cka_layers[base.name]
    heatmaps, same_layer = [], {}
    for layer in shared:
        matrix = study.same_layer(layer, names)
        same_layer[layer] = matrix.tolist()
        fig = plot_cka(matrix, numbers, numbers, title=_plain(layer))
        heatmaps.append({"layer": layer, "src": _save_figure(report, fig, f"assets/cka/{safe_name(layer)}.png")})
    against = {m.name: [float(study.same_layer(layer, [base.name, m.name])[0, 1]) for layer in shared] for m in models}
    curves = {m.label: against[m.name] for m in models if m is not base}
    line_plot = _save_figure(report, _plot_against_base(curves, shared, base.label), "assets/cka_vs_base.png")
    rows, csv_rows = [], []
    for layer in layers:
        changes = _changes(base_model, base, [m for m in models if m is not base], vis, layer)
        row, dead = _study_layer_page(report, models, base, layer, channels[layer], vis, changes)
        rows.append(row)
        csv_rows += dead
    write_dead_csv(report.out / "dead_channels.csv", *zip(*csv_rows))
    table = [{"layer": layer, "values": [f"{against[m.name][i]:.3f}" for m in models]} for i, layer in enumerate(shared)]
    model_rows = [
        {
            "number": i + 1,
            "label": m.label,
            "spec": m.text,
            "weights": weights[m.name] or "as saved",
            "reinit": ", ".join(m.spec.reinit) or "-",
            "base": m is base,
        }
        for i, m in enumerate(models)
    ]
    facts = [
        ("Base", base.label),
        ("CKA images", f"{images_label}, minibatches of {args.batch_size} ({study.n_examples} images)"),
        ("Visualizations", describe(steps=args.fv_steps, size=args.fv_size)),
    ]
    dead = [name for name, _, flag in csv_rows if flag]
    report.render_page(
        "study.html",
        "index.html",
        title=f"Study of {len(models)} models",
        facts=facts,
        models=model_rows,
        heatmaps=heatmaps,
        line_plot=line_plot,
        table=table,
        layers=rows,
        model_labels=[m.label + (" (base)" if m is base else "") for m in models],
        dead=dead,
    )
    fileio.write_json(
        report.out / "study.json",
        {
            "models": [{"name": m.name, "spec": m.text, "reinit": list(m.spec.reinit)} for m in models],
            "base": base.name,
            "cka_layers": shared,
            "same_layer": same_layer,
            "against_base": against,
            "images": study.n_examples,
        },
    )
    return f"study of {len(models)} models: CKA at {len(shared)} layers"


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def _run_compare(args):
    from tfvis.graph import prepared
    from tfvis.layer_names import allow_any_layer_name
    from tfvis.pipeline import Store
    from tfvis.pipeline.context import Context
    from tfvis.pipeline.study_units import study_cka
    from tfvis.report import Report
    from tfvis.targets import resolve

    check_positive(args, ("num_images", "size", "steps", "fv_size", "fv_batch", "batch_size", "shard_images", "workers"))
    if args.batch_size < 4:
        raise UsageError(f"--batch-size {args.batch_size}: CKA minibatches need at least 4 images")
    allow_any_layer_name()  # a saved model's layers may be named "it's"
    models = _study_models(args)
    base = models[_base_index(args, models)]
    check_out(Path(args.out))
    base_model, held, layers, cka_layers, weights = _check_models(args, models, base)
    counts = {name: resolve(prepared(base_model), name).channels for name in layers}
    channels = {name: parse_channels(args.channels, counts[name], name) for name in layers}
    args.weights = None  # image_source reads only images, num_images, seed
    source, images_label = image_source(args, args.size)
    engine = make_run_engine(args)  # before the first file: an unreachable cluster leaves the output folder untouched
    if args.models is None:
        settings = {"a": args.a, "b": args.b, "reinit-b": args.reinit_b or ""}
        title = f"{models[0].label} vs {models[1].label}"
    else:
        settings = {"models": args.models, "base": base.text}
        title = f"study of {len(models)} models"
    settings.update(
        {"images": images_label, "channels": args.channels, "steps": args.fv_steps, "fv-size": args.fv_size, "seed": args.seed}
    )
    report = Report(args.out, title, "", settings, force=args.force)
    store = Store(report.out / "store")
    if args.force:
        shutil.rmtree(store.root, ignore_errors=True)
    # The units name each model by its study name; workers rebuild every model from its spec (re-initialisation included).
    context = Context(models[0].spec, source, specs={m.name: m.spec for m in models}, models=held)
    started = time.perf_counter()
    try:
        units = _visualization_units(context, models, layers, channels, args)
        after = {
            m.name: [u for layer in layers for u in units[m.name, layer]] for m in models
        }  # each model's renders after its Grams
        study = study_cka(
            engine,
            context,
            store,
            {m.name: cka_layers[m.name] for m in models},
            args.batch_size,
            args.shard_images,
            desc="CKA Gram matrices and feature visualizations",
            after=after,
        )
    finally:
        engine.close()
    vis = _visualizations(store, units)
    if args.models is None:
        summary = _write_pair(report, models, base_model, weights, study, cka_layers, layers, channels, vis, images_label, args)
    else:
        summary = _write_study(
            report, models, base, base_model, weights, study, cka_layers, layers, channels, vis, images_label, args
        )
    print(
        f"{summary}, {sum(len(c) for c in channels.values())} channels x {len(models)} models, "
        f"{time.perf_counter() - started:.0f} s ({engine.name} engine)"
    )
    print((report.out / "index.html").resolve())
    return 0


def compare_main(argv=None):
    """Entry point of ``python -m tfvis.compare``."""
    sys.exit(run_command(build_compare_parser(), _run_compare, argv))
