"""``python -m tfvis.compare``: what training changed between two networks (CKA, visualizations, dead channels)."""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .common import (
    INPUT_HELP,
    UsageError,
    check_layers,
    check_positive,
    dataset_options,
    featurevis_options,
    image_source,
    load_model_spec,
    parse_channels,
    run_command,
    run_options,
)

def build_compare_parser():
    """The argument parser of ``python -m tfvis.compare``."""
    parents = [
        dataset_options("a folder of images for CKA, or a glob pattern (default: scikit-image's sample photos plus crops)",
                        "use at most this many images (default: 64 samples, or the whole folder)"),
        featurevis_options(steps_flags=("--steps", "--fv-steps")),
        run_options(str(Path("html_out") / "compare"), 32, "images per CKA minibatch", "seed of random weights, sample crops and renders"),
    ]  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.compare",
        parents=parents,
        description="Compare two networks (e.g. a base model and a fine-tuned one): CKA between their layers, each "
        "channel's feature visualization in both models sorted by how much it changed, and dead channels.",
    )
    parser.add_argument("--a", required=True, help="model A: 'name:weights' (e.g. vgg16:hed), a saved Keras model file "
                        "(.keras, .h5) or an ONNX file (.onnx)")  # fmt: skip
    parser.add_argument("--b", required=True, help="model B, as --a (e.g. vgg16:random)")
    parser.add_argument("--input-a", metavar="CONVENTION", help=f"model A's input convention: {INPUT_HELP}")
    parser.add_argument("--input-b", metavar="CONVENTION", help="model B's input convention, as --input-a")
    parser.add_argument("--reinit-b", help="re-initialise B's layers whose names start with these comma-separated prefixes "
                        "(e.g. block5): an ablation to compare against")  # fmt: skip
    parser.add_argument("--layers", required=True, help="comma-separated layers whose channels are visualized")
    parser.add_argument("--cka-layers", help="comma-separated layers of the CKA matrix (default: the model's report layers, "
                        "or every conv layer)")  # fmt: skip
    parser.add_argument("--channels", default="8", help="'all', N (the first N), 'a-b' or '3,7,12' (default: 8)")
    parser.add_argument("--size", type=int, default=128, help="image side for CKA (default: 128)")
    return parser


def _default_cka_layers(model):
    """The model's report layers (:func:`tfvis.models.model_info`): the zoo's, or every spatial layer."""
    from tfvis.models import model_info

    return list(model_info(model).report_layers)


def reinitialise(model, prefixes, seed=0):
    """Re-initialise, in place, the weighted layers of ``model`` whose names start with one of ``prefixes``.

    The fresh weights come from a clone of the model (Keras' initialisers, seeded). Returns the layer names.
    """
    import keras

    from tfvis import set_weights

    names = [layer.name for layer in model.layers if layer.weights and any(layer.name.startswith(p) for p in prefixes)]
    if not names:
        return names
    keras.utils.set_random_seed(seed)
    fresh = keras.models.clone_model(model)
    for name in names:
        set_weights(model, name, fresh)
    return names


def _visualizations(report, model, side, layer, channels, args):
    """Feature visualizations ``(C, H, W, 3)`` of ``channels`` of ``layer`` in one model, reloaded when saved."""
    from tfvis import fileio
    from tfvis.featurevis import render

    key = f"{side}_{layer}"
    record = report.load_state("visualizations", key)
    path = report._state_path("visualizations", key).with_suffix(".npy")  # a file name safe for any layer name
    if record and record.get("channels") == list(channels) and path.is_file():
        return np.load(path)
    images = []
    for start in range(0, len(channels), args.fv_batch):
        group = channels[start : start + args.fv_batch]
        images.append(np.asarray(render(model, [f"{layer}:{c}" for c in group], size=args.fv_size, steps=args.fv_steps,
                                        seed=args.seed, progress=not args.quiet)))  # fmt: skip
    images = np.concatenate(images)
    fileio.save_npy(path, images)
    report.save_state("visualizations", key, {"channels": list(channels)})
    return images


def _compare_layer(report, models, layer, channels, args):
    """Visualize, score and write the page of one layer; returns its index row and dead names."""
    from tfvis.compare import dead_channels, gram_distance, visualization_similarity
    from tfvis.report import safe_name

    (model_a, label_a), (model_b, label_b) = models
    vis_a = _visualizations(report, model_a, "a", layer, channels, args)
    vis_b = _visualizations(report, model_b, "b", layer, channels, args)
    similarity = visualization_similarity(model_a, layer, vis_a, vis_b)
    distance = gram_distance(model_a, layer, vis_a, vis_b)
    dead_a, dead_b = dead_channels(vis_a), dead_channels(vis_b)
    rows = []
    for i in np.argsort(similarity, kind="stable"):  # most changed first
        channel = channels[i]
        cells = []
        for side, label, vis in (("a", label_a, vis_a), ("b", label_b, vis_b)):
            src = report.save_picture(layer, f"{safe_name(label)}_{safe_name(layer)}_ch{channel}_{side}", vis[i], vis[i])
            cells.append({"src": src, "alt": f"{label} {layer}:{channel}"})
        flags = [name for name, dead in (("dead in A", dead_a.flags[i]), ("dead in B", dead_b.flags[i])) if dead]
        note = f"similarity {similarity[i]:.3f}, Gram distance {distance[i]:.3f}" + (f" ({', '.join(flags)})" if flags else "")
        rows.append({"label": f"channel {channel}", "note": note, "cells": cells})
    page = f"{safe_name(layer)}.html"
    report.write_grid_page(page, layer, [{"id": "channels", "title": f"{layer}: channels from most to least changed",
                                          "columns": [f"A: {label_a}", f"B: {label_b}"], "rows": rows}],  # fmt: skip
                           lede="Similarity: cosine of the two visualizations' activations in model A at this layer "
                           "(1: the same feature). Gram distance: of their style (Gram) matrices.")  # fmt: skip
    names = [f"{layer}:{c}" for c in channels]
    row = {
        "name": layer, "page": page, "channels": len(channels), "mean": f"{float(np.mean(similarity)):.3f}",
        "most_changed": ", ".join(str(channels[i]) for i in np.argsort(similarity, kind="stable")[:3]),
        "dead_a": int(dead_a.flags.sum()), "dead_b": int(dead_b.flags.sum()),
    }  # fmt: skip
    csv_rows = [(f"A {n}", s, f) for n, s, f in zip(names, dead_a.scores, dead_a.flags)]
    csv_rows += [(f"B {n}", s, f) for n, s, f in zip(names, dead_b.scores, dead_b.flags)]
    return row, csv_rows


def _cka_heatmap(report, models, source, layers_a, layers_b, limit, args):
    """CKA matrix (reloaded when saved) and the path of its heatmap."""
    import io

    from tfvis import fileio
    from tfvis.compare import model_cka, plot_cka

    record = report.load_state("cka", "matrix")
    if record and record.get("layers_a") == layers_a and record.get("layers_b") == layers_b:
        matrix = np.asarray(record["matrix"])
    else:
        result = model_cka(models[0][0], models[1][0], source, layers_a, layers_b, batch_size=args.batch_size,
                           size=args.size, limit=limit, progress=not args.quiet)  # fmt: skip
        matrix = result.matrix
        report.save_state("cka", "matrix", {"layers_a": layers_a, "layers_b": layers_b, "matrix": matrix.tolist(), "images": result.n_images})
    def plain(text):  # a "$" in a layer or file name would start Matplotlib's math mode
        return str(text).replace("$", r"\$")

    fig = plot_cka(matrix, [plain(n) for n in layers_a], [plain(n) for n in layers_b],
                   title=plain(f"CKA: {models[0][1]} (rows) vs {models[1][1]} (columns)"))  # fmt: skip
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    fileio.write_bytes(report.out / "assets" / "cka.png", buffer.getvalue())
    return matrix, "assets/cka.png"


def _run_compare(args):
    from tfvis import fileio
    from tfvis.compare import write_dead_csv
    from tfvis.featurevis import describe
    from tfvis.graph import prepared
    from tfvis.targets import resolve
    from tfvis.report import Report
    from tfvis.layer_names import allow_any_layer_name, split_layer_names

    check_positive(args, ("num_images", "size", "steps", "fv_size", "fv_batch", "batch_size"))
    if args.batch_size < 4:
        raise UsageError(f"--batch-size {args.batch_size}: CKA minibatches need at least 4 images")
    allow_any_layer_name()  # a saved model's layers may be named "it's"
    model_a, label_a = load_model_spec(args.a, args.seed, option="--a", input=args.input_a, input_option="--input-a")
    model_b, label_b = load_model_spec(args.b, args.seed, option="--b", input=args.input_b, input_option="--input-b")
    if args.reinit_b:
        prefixes = [p.strip() for p in args.reinit_b.split(",") if p.strip()]
        changed = reinitialise(model_b, prefixes, seed=args.seed + 1)
        if not changed:
            raise UsageError(f"--reinit-b {args.reinit_b}: no weighted layer of {label_b} starts with {', '.join(prefixes)}")
        label_b = f"{label_b} ({','.join(prefixes)} re-initialised)"
    models = [(model_a, label_a), (model_b, label_b)]
    known = {layer.name for model, _ in models for layer in prepared(model).layers}
    layers = split_layer_names(args.layers, known)
    for model, label in models:
        layers = check_layers(model, label, layers)  # without repeats
    if args.cka_layers:
        cka_layers = split_layer_names(args.cka_layers, known)
        layers_a = check_layers(model_a, label_a, cka_layers, "--cka-layers")
        layers_b = check_layers(model_b, label_b, cka_layers, "--cka-layers")
    else:
        layers_a, layers_b = _default_cka_layers(model_a), _default_cka_layers(model_b)
    counts = {name: resolve(prepared(model_a), name).channels for name in layers}
    channels = {name: parse_channels(args.channels, counts[name], name) for name in layers}
    args.weights = None  # image_source reads only images, num_images, seed
    source, images_label, limit = image_source(args, args.size)
    settings = {"a": args.a, "b": args.b, "reinit-b": args.reinit_b or "", "images": images_label, "channels": args.channels,
                "steps": args.fv_steps, "fv-size": args.fv_size, "seed": args.seed}  # fmt: skip
    report = Report(args.out, f"{label_a} vs {label_b}", "", settings, force=args.force)
    started = time.perf_counter()
    matrix, heatmap = _cka_heatmap(report, models, source, layers_a, layers_b, limit, args)
    rows, csv_rows = [], []
    for layer in layers:
        row, dead = _compare_layer(report, models, layer, channels[layer], args)
        rows.append(row)
        csv_rows += dead
    write_dead_csv(report.out / "dead_channels.csv", *zip(*csv_rows))
    diagonal = [{"name": n, "value": f"{matrix[i, layers_b.index(n)]:.3f}"} for i, n in enumerate(layers_a) if n in layers_b]
    facts = [("A", f"{label_a} ({getattr(model_a, 'tfvis_weights', 'saved model')})"),
             ("B", f"{label_b} ({getattr(model_b, 'tfvis_weights', 'saved model')})"),
             ("CKA images", f"{images_label}, minibatches of {args.batch_size}"),
             ("Visualizations", describe(steps=args.fv_steps, size=args.fv_size))]  # fmt: skip
    dead = [name for name, _, flag in csv_rows if flag]
    report._render("compare.html", "index.html", title="Comparison", facts=facts, heatmap=heatmap, diagonal=diagonal, layers=rows, dead=dead)
    fileio.write_json(report.out / "cka.json", {"layers_a": layers_a, "layers_b": layers_b, "matrix": np.asarray(matrix).tolist()})
    print(f"{label_a} vs {label_b}: CKA {len(layers_a)} x {len(layers_b)} layers, {sum(len(c) for c in channels.values())} "
          f"channels x 2 models, {time.perf_counter() - started:.0f} s")  # fmt: skip
    print((report.out / "index.html").resolve())
    return 0


def compare_main(argv=None):
    """Entry point of ``python -m tfvis.compare``."""
    sys.exit(run_command(build_compare_parser(), _run_compare, argv))
