"""Caricatures on VGG16 (hed weights), before and after issue 13: a grid and the measurements.

*Before* is the earlier method, rebuilt from the public pieces it used: the pre-ReLU activations
of the photo at a fixed position (:func:`tfvis.featurevis.reference_activations`), the objective
``dot * cossim^2`` (:func:`tfvis.featurevis.objectives.caricature`), the standard transforms.
*After* is :func:`tfvis.featurevis.caricature` with its defaults.

Writes ``docs/caricatures.png`` (columns: photos; rows: the photos, then for each layer the
caricatures before and after) and ``docs/caricatures.md`` (the measurements below, per layer).

Measurements, each caricature against its own photo and against the other photos (the mean over
them), all at a resolution where only the layout is left:

* edges: correlation of the grey level's gradient magnitude, block-averaged on a 16 x 16 grid;
* colour: correlation of the RGB pixels on a 16 x 16 grid (antialiased resize);
* activations: cosine of the caricature's and the photo's activations at the layer after its ReLU.

Usage::

    python docs/caricatures.py [--size 128] [--steps 512] [--layers block2_conv2,block3_conv3,block4_conv3]
"""

import argparse
import io
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NAMES = ("chelsea", "coffee", "astronaut")


def edges(image, res=16):
    """Where the image's edges are, on a ``res`` x ``res`` grid (:func:`tfvis.compare.edge_layout`)."""
    from tfvis.compare import edge_layout

    return edge_layout(image, res)


def colours(image, res=16):
    """The RGB image resized (antialiased) to ``res`` x ``res``, flattened."""
    import tensorflow as tf

    return tf.image.resize(np.asarray(image, np.float32)[None], (res, res), antialias=True).numpy().ravel()


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def measure(caricatures, photos, model, layer):
    """``{measure: (own, other)}``: means over the images of the score against their own photo and against the others."""
    from tfvis import featurevis

    p = photos / 255.0
    n = len(p)
    scores = {}
    for name, embed in (("edges", edges), ("colour", colours)):
        own = [correlation(embed(caricatures[i]), embed(p[i])) for i in range(n)]
        other = [correlation(embed(caricatures[i]), embed(p[j])) for i in range(n) for j in range(n) if j != i]
        scores[name] = (float(np.mean(own)), float(np.mean(other)))
    relu = featurevis.caricatures.activated_layer(model, layer)
    net = featurevis.FeatureNet(model, [relu])
    acts = np.asarray(net(np.concatenate([np.asarray(caricatures) * 255.0, photos]).astype(np.float32))[relu]).reshape(2 * n, -1)
    unit = acts / np.linalg.norm(acts, axis=1, keepdims=True)
    cos = unit[:n] @ unit[n:].T
    scores["activations"] = (float(np.mean(np.diag(cos))), float(np.mean(cos[~np.eye(n, dtype=bool)])))
    return scores


def before(model, photos, layer, size, steps, seed=0):
    """The method before issue 13 (fixed pre-ReLU target, cosine squared, standard transforms)."""
    from tfvis import featurevis

    target = featurevis.reference_activations(model, photos, layer, size)
    objective = featurevis.objectives.caricature(layer, target, power=2.0)
    return featurevis.render(model, objective, size=size, steps=steps, batch=len(photos), seed=seed, progress=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--layers", default="block2_conv2,block3_conv3,block4_conv3")
    args = parser.parse_args(argv)

    import tfvis
    from tfvis import featurevis, fileio

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    found = tfvis.images.sample_images(list(NAMES), size=args.size)
    photos = np.stack([found[name] for name in NAMES]).astype(np.float32)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    results = []
    for layer in layers:
        row = {}
        makers = {
            "before": lambda layer=layer: before(model, photos, layer, args.size, args.steps),
            "after": lambda layer=layer: featurevis.caricature(
                model, photos, layer, steps=args.steps, size=args.size, progress=False
            ),
        }
        for label, make in makers.items():
            start = time.perf_counter()
            images = np.asarray(make())
            scores = measure(images, photos, model, layer)
            row[label] = (images, scores)
            words = ", ".join(f"{k} {own:.2f} (others {other:.2f})" for k, (own, other) in scores.items())
            print(f"{layer} {label}: {words} ({time.perf_counter() - start:.0f} s)", flush=True)
        results.append((layer, row))

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows = 1 + 2 * len(results)
    fig = Figure(figsize=(1.9 * len(NAMES) + 0.2, 1.95 * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, len(NAMES), squeeze=False)
    for col, name in enumerate(NAMES):
        axes[0, col].imshow(photos[col].astype(np.uint8))
        axes[0, col].set_title(name, fontsize=8)
    for k, (layer, row) in enumerate(results):
        for j, label in enumerate(("before", "after")):
            images, scores = row[label]
            for col in range(len(NAMES)):
                ax = axes[1 + 2 * k + j, col]
                ax.imshow(np.clip(images[col], 0, 1))
                own = correlation(edges(images[col]), edges(photos[col] / 255.0))
                ax.set_title(f"{layer} {label}: edges r={own:.2f}", fontsize=6.5)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    fileio.write_bytes(HERE / "caricatures.png", buffer.getvalue())

    lines = [
        f"# Caricatures: VGG16 (hed weights), {args.size} px, {args.steps} steps",
        "",
        f"Made by `python docs/caricatures.py --size {args.size} --steps {args.steps} --layers {','.join(layers)}` on 2 CPU",
        "cores. Picture: [caricatures.png](caricatures.png) (rows: each layer before, then after). The command's",
        "defaults (128 px, 512 steps) take about three times as long.",
        "",
        "*Before*: the pre-ReLU activations of the photo at a fixed position, `dot * cossim^2`, the standard transforms.",
        "*After*: `tfvis.featurevis.caricature` (the photos stacked into the render's batch under the same transforms,",
        "the activations after the ReLU, `dot / |A|^2 * cossim^4`, a blur penalty, Lucid's caricature transforms).",
        "",
        "Each number is the mean over the three photos of a caricature's score against its own photo, and in brackets",
        "against the other two photos (what an unrelated image scores). Edges: correlation of the 16 x 16 block means",
        "of the grey level's gradient magnitude. Colour: correlation of the RGB pixels resized to 16 x 16. Activations:",
        "cosine of the caricature's activations at the layer after its ReLU with the photo's.",
        "",
        "| layer | edges before | edges after | colour before | colour after | activations before | activations after |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer, row in results:
        cells = []
        for key in ("edges", "colour", "activations"):
            for label in ("before", "after"):
                own, other = row[label][1][key]
                cells.append(f"{own:.2f} ({other:.2f})")
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "From `block3_conv3` on, colour is not what these (edge-detection) weights keep: the colour correlation of both",
        "methods is at the level of unrelated photos, and the layout (edges, activations) is what the caricature keeps.",
        "",
        "## Why the earlier caricatures lost the photo",
        "",
        "Pre-ReLU maps are mostly negative (94% of `block2_conv2`'s values on a photo at 128 px) and their direction",
        "hardly depends on the input: the cosine between a photo's `block2_conv2` map and a flat grey image's is 0.88",
        "(0.89 between two unrelated photos), so a high cosine says almost nothing about the photo, and the dot product",
        "grows fastest by driving negative units further down, with saturated high-contrast texture. After the ReLU the",
        "same cosines are 0.29 and 0.34: what is matched is where the units fire. A target at a fixed position also",
        "misaligns with the transformed render by up to 12 pixels (several units at stride 2), which blurs the layout",
        "out of the objective; stacking the photo into the batch, as Lucid does, aligns them at every step. Step by step",
        "on `block2_conv2` at 64 px, 128 steps (colour correlation with the own photo, mean over the three photos):",
        "pre-ReLU, fixed target -0.12 (while the cosine to the photo's pre-ReLU map reached 0.9); pre-ReLU, stacked -0.07;",
        "post-ReLU, fixed target 0.25; post-ReLU, stacked 0.42; with Lucid's caricature transforms and the cosine to the fourth power 0.53; with the blur",
        "penalty too 0.63 (edges 0.91, against 0.09 for the other photos). A cosine power of 8 left some renders stuck at",
        "the cosine's floor (flat), a blur weight of 1000 blurred the layout away.",
        "",
        "## On the one optimisation loop (issue 20)",
        "",
        "`caricature` runs on `tfvis.optim`'s loop through `tfvis.featurevis.render.render_loop` (the render's step,",
        "progress bar and cached compiled loop), with the same random stream: its caricatures are bit for bit those of",
        "the function before (checked on a tiny model and on VGG16-hed at 64 px, 128 steps: edges 0.91 (0.08), colour 0.64",
        "(0.08), activations 0.93 (0.34) at `block2_conv2`, both). A second batch of as many photos at the same layer and",
        "size starts without tracing (64 steps on a tiny model: 0.43 to 0.56 s against 2.1 to 2.2 s).",
        "",
    ]
    fileio.write_text(HERE / "caricatures.md", "\n".join(lines))
    print(HERE / "caricatures.md")


if __name__ == "__main__":
    main()
