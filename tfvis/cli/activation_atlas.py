"""``python -m tfvis.activation_atlas``: an activation atlas (Carter et al. 2019) of one layer over a dataset.

Parse, plan, run, render: the layer's activation vectors at random positions of every image, their
2-D layout (UMAP or t-SNE) cut into a grid, and an icon rendered from each cell's mean vector, are
work units (:mod:`tfvis.pipeline.activation_atlas_units`) run on an engine (``--engine local`` or
``ray``) into the store ``<out>/store``, keyed by everything they depend on. A rerun computes only
the units not stored yet; ``--force`` recomputes them all. The page (``<out>/index.html``: the
icons at their grid positions, each cell's size showing how many samples it holds and linking to
the dataset patches nearest its centre) is written from the store.

Not the report's "atlas" pages (a grid of each channel's top patch): this is the activation atlas.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .common import (
    UsageError,
    add_engine_options,
    add_model_options,
    check_layers,
    check_positive,
    dataset_options,
    image_source,
    load_spec,
    make_run_engine,
    model_spec_of,
    run_command,
)

#: The layer of a zoo model's activation atlas when ``--layer`` is not given (others: :func:`default_layer`).
DEFAULT_LAYERS = {"vgg16": "block4_conv3", "inceptionv1": "mixed4c"}
DEFAULT_OUT = str(Path("html_out") / "activation_atlas")


def build_activation_atlas_parser():
    """The argument parser of ``python -m tfvis.activation_atlas``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfvis.activation_atlas",
        description="Activation atlas (Carter et al. 2019): sample a layer's activation vectors over a dataset, lay them "
        "out in 2-D (UMAP or t-SNE), cut the layout into a grid and render each cell's mean vector; writes an HTML page "
        "of the icons at their places, each linking to the dataset patches nearest it.",
        parents=[
            dataset_options(
                "a folder of images (default: scikit-image's sample photos and crops of them)",
                "use at most this many images (default: 64 sample photos and crops)",
            )
        ],
    )
    add_model_options(parser, labels=False, default="vgg16")
    parser.add_argument(
        "--layer",
        help="the layer (a conv layer with a spatial map; default: block4_conv3 for vgg16, mixed4c for inceptionv1, "
        "else the conv layer three quarters of the way up)",
    )
    parser.add_argument("--samples-per-image", type=int, default=8, help="activation vectors sampled per image (default: 8)")
    parser.add_argument("--grid", type=int, default=20, help="cells per side of the atlas (default: 20)")
    parser.add_argument("--min-count", type=int, default=3, help="cells with fewer samples are left empty (default: 3)")
    parser.add_argument(
        "--layout",
        choices=("auto", "umap", "tsne"),
        default="auto",
        help="2-D layout: UMAP (umap-learn) or t-SNE (scikit-learn); auto: UMAP if installed (default: auto)",
    )
    parser.add_argument("--steps", type=int, default=256, help="optimisation steps of each icon (default: 256)")
    parser.add_argument("--size", type=int, default=64, help="side of the icons in pixels (default: 64)")
    parser.add_argument("--image-size", type=int, default=128, help="side of the dataset images in pixels (default: 128)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass when sampling (default: 16)")
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="what the icons are rendered in: float32 (the same icons on every machine), bfloat16 (faster on CPUs "
        "with AVX512_BF16 or AMX, emulated and slower elsewhere) or auto (bfloat16 where the CPU has it) (default: float32)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the positions, the layout and the icons (default: 0)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="recompute the units already in the output folder's store")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_engine_options(parser, shard_units="sampling")
    return parser


def default_layer(model, label):
    """The layer of ``model`` whose atlas is drawn when ``--layer`` is not given (see :data:`DEFAULT_LAYERS`)."""
    from tfvis.graph import prepared
    from tfvis.layers import conv_layer_names

    names = conv_layer_names(model)
    known = {layer.name for layer in prepared(model).layers}
    chosen = DEFAULT_LAYERS.get(label.partition("-")[0])
    if chosen in known:
        return chosen
    if not names:
        raise UsageError(f"--model {label}: no layer with a spatial map (a convolution) to draw an atlas of")
    return names[int(0.75 * (len(names) - 1))]


def check_layer(model, label, layer):
    """``layer`` checked: a layer of ``model`` with a 2-D spatial map (the error names the valid ones)."""
    from tfvis.graph import prepared
    from tfvis.layers import conv_layer_names

    (layer,) = check_layers(model, label, [layer], option="--layer")
    if len(prepared(model).get_layer(layer).output.shape) != 4:
        raise UsageError(
            f"--layer {layer}: has no 2-D spatial map (output shape {tuple(prepared(model).get_layer(layer).output.shape)}); "
            f"choose a convolutional layer: {', '.join(conv_layer_names(model))}"
        )
    return layer


def _patches(model, layer_name, source, layout, image_size):
    """``{sample index: uint8 patch}`` of the samples nearest the cells' centres: each unit's receptive field in its image."""
    from tfvis.receptive_field import receptive_field
    from tfvis.topk import as_uint8

    field = receptive_field(model, layer_name, input_size=image_size)
    wanted = sorted({int(i) for i in layout["nearest"].ravel() if i >= 0})
    by_image = {}
    for sample in wanted:
        by_image.setdefault(int(layout["image_index"][sample]), []).append(sample)
    patches = {}
    images = sorted(by_image)
    for start in range(0, len(images), 64):
        read, _, batch = source.read(images[start : start + 64])
        for index, image in zip(read, batch):
            for sample in by_image[int(index)]:
                y, x = int(layout["y"][sample]), int(layout["x"][sample])
                patches[sample] = field.crop(as_uint8(image), y, x, fill=128)
    return patches, field


def _write_page(args, out, label, model, layer, layout, renders, failed, source_label):
    from tfvis.models import weights_label
    from tfvis.report import Report, field_text

    settings = {
        "layer": layer,
        "images": source_label,
        "samples_per_image": args.samples_per_image,
        "grid": args.grid,
        "min_count": args.min_count,
        "layout": layout["meta"]["method"],
        "steps": args.steps,
        "size": args.size,
        "seed": args.seed,
    }
    report = Report(out, label, weights_label(model, label), settings)
    patches, field = _patches(model, layout["meta"]["layer"], _source_of(args), layout, args.image_size)
    ids = layout["meta"]["ids"]
    counts = layout["counts"]
    biggest = int(counts.max()) if len(counts) else 1
    cells = []
    for k in range(len(counts)):
        row, col, count = int(layout["rows"][k]), int(layout["cols"][k]), int(counts[k])
        stem = f"r{row:03d}_c{col:03d}"
        icon = report.save_picture("activation_atlas_icons", stem, renders[k])
        examples = []
        for j, sample in enumerate(int(s) for s in layout["nearest"][k] if s >= 0):
            image_index = int(layout["image_index"][sample])
            src = report.save_picture("activation_atlas_patches", f"{stem}_{j}", patches[sample])
            examples.append(
                {
                    "src": src,
                    "image": ids.get(str(image_index), str(image_index)),
                    "y": int(layout["y"][sample]),
                    "x": int(layout["x"][sample]),
                }
            )
        cells.append(
            {
                "id": f"cell-{row}-{col}",
                "row": row + 1,
                "col": col + 1,
                "count": count,
                "scale": round(0.35 + 0.65 * np.sqrt(count / biggest), 3),
                "icon": icon,
                "failed": bool(failed[k]),
                "examples": examples,
            }
        )
    samples = len(layout["points"])
    facts = [
        ("Model", f"{label} ({report.weights})"),
        (
            "Layer",
            f"{layer} (read at {layout['meta']['layer']}, map {layout['meta']['map_hw'][0]} x {layout['meta']['map_hw'][1]})",
        ),
        ("Images", source_label),
        ("Samples", f"{samples:,}: {args.samples_per_image} random positions per image"),
        ("Layout", _layout_text(layout["meta"]["method"], args.seed)),
        ("Grid", f"{args.grid} x {args.grid}; {len(cells)} cells with at least {args.min_count} samples"),
        (
            "Icons",
            f"direction x cossim^4 of the centre unit towards the cell's mean vector; {args.steps} steps at {args.size} px, "
            "Fourier + decorrelated colours, jitter, scale and rotation",
        ),
        ("Patches", f"the receptive field ({field_text(field)} px) of the samples nearest each cell's centre"),
    ]
    return report.render_page(
        "activation_atlas.html",
        "index.html",
        model={"name": label, "weights": report.weights},
        layer=layer,
        grid=args.grid,
        cells=cells,
        facts=facts,
        icon_size=args.size,
        patch_size=int(min(field.size[0], 96)),
    )


def _layout_text(method, seed):
    """How the layout was made, in words."""
    from tfvis.featurevis.activation_atlas import PCA_COMPONENTS

    if method == "umap":
        return f"UMAP (cosine metric, 20 neighbours, min_dist 0.01) of the unit-length vectors, seed {seed}"
    return f"t-SNE of the first {PCA_COMPONENTS} principal components of the unit-length vectors, seed {seed}"


def _source_of(args):
    return image_source(args, args.image_size)[0]


def _run_activation_atlas(args):
    from tfvis.pipeline import Store
    from tfvis.pipeline.activation_atlas_units import run_atlas
    from tfvis.pipeline.context import Context

    check_positive(
        args, ("num_images", "samples_per_image", "grid", "min_count", "steps", "size", "image_size", "batch_size", "workers")
    )
    check_positive(args, ("shard_images",))
    spec, label = model_spec_of(args.model, args.seed, input=args.input)
    model = load_spec(spec, args.model)
    layer = check_layer(model, label, args.layer) if args.layer else default_layer(model, label)
    source, source_label = image_source(args, args.image_size)
    if args.layout == "umap":
        from tfvis.featurevis.activation_atlas import layout_method

        try:
            layout_method("umap")
        except ValueError as err:
            raise UsageError(f"--layout umap: {err}") from None
    context = Context(spec, source, model=model)
    out = Path(args.out)
    store = Store(out / "store")
    started = time.perf_counter()
    engine = make_run_engine(args)
    try:
        result = run_atlas(
            engine,
            context,
            store,
            layer,
            len(source),
            samples_per_image=args.samples_per_image,
            grid=args.grid,
            min_count=args.min_count,
            method=args.layout,
            seed=args.seed,
            steps=args.steps,
            size=args.size,
            batch_size=args.batch_size,
            shard_images=args.shard_images,
            force=args.force,
            precision=args.precision,
        )
    finally:
        engine.close()
    layout = result["layout"]
    if not len(layout["counts"]):
        raise UsageError(f"--grid {args.grid} --min-count {args.min_count}: no cell holds enough samples; lower either")
    if result["failed"].any():
        print(f"tfvis: {int(result['failed'].sum())} icon(s) came out flat or NaN", file=sys.stderr)
    page = _write_page(args, out, label, model, layer, layout, result["renders"], result["failed"], source_label)
    print(
        f"{label} {layer}: {len(layout['points'])} samples, {len(layout['counts'])} cells, {time.perf_counter() - started:.0f} s"
    )
    print(page.resolve())
    return 0


def activation_atlas_main(argv=None):
    """Entry point of ``python -m tfvis.activation_atlas``."""
    sys.exit(run_command(build_activation_atlas_parser(), _run_activation_atlas, argv))
