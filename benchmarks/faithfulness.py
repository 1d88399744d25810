"""Benchmark: faithfulness of saliency maps on VGG16 (hed conv weights), and agreement with xplique.

Model: ``tfvis.load_model("vgg16", include_top=False)`` (offline: hed conv weights). Images: the
first ``--images`` scikit-image photos at ``--size`` px (:func:`tfvis.images.sample_dataset`).
Target: each image's strongest channel of ``--layer`` (the largest mean; ``block5_conv3`` is
the pre-activation output in tfvis' naming), scored raw (its mean). For each method of
``--methods`` the maps are computed once, then deletion and insertion AUC (``--steps``) and
MuFidelity (``--samples`` subsets of a ``--grid`` grid) by :func:`tfvis.saliency.faithfulness_table`;
a table of means (over images) is printed, the maps saved to ``--maps`` (``.npz``).

``--xplique`` (with xplique installed: ``pip install --no-deps xplique``) scores the same maps
with xplique's ``Deletion``, ``Insertion`` and ``MuFidelity`` on a Keras model that outputs the
channel means (so ``f(x)[y]`` with a one-hot ``y`` is tfvis' target score), with the same
baselines (the model's zero input for deletion and MuFidelity, tfvis' blur for insertion), and
prints both. Deletion and insertion should agree to float precision when ``H W / steps`` is an
integer (xplique takes ``floor`` of the pixel counts, tfvis rounds) and the maps have no ties
(xplique orders ties last index first, tfvis first index first). xplique's MuFidelity draws its
own unseeded subsets of a random size (each cell with probability ``subset_percent``) and takes
Spearman's correlation; tfvis' subsets all have ``round(0.2 grid^2)`` cells. Compared with
tfvis' ``correlation="spearman"`` it is higher, because a larger subset both holds more of the
map and drops the score more: a constant map scores 0.64 in xplique and 0.19 in tfvis on the
coffee photo (grid 9 at 96 px, where cells of 10 and 11 px leave tfvis a little of the same
effect; none with ``--grid 8``).

Usage: python benchmarks/faithfulness.py [--size 96] [--images 4] [--xplique]
"""

import argparse
import time

import numpy as np

import tfvis
from tfvis.images import sample_dataset
from tfvis.pipeline.image_units import strongest_channels
from tfvis.saliency import faithfulness as faith
from tfvis.saliency.methods import method

METHODS = "vanilla,smoothgrad,guided,grad_cam,gradient_x_input,occlusion,rise"


def parse():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--layer", default="block5_conv3")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--grid", type=int, default=8, help="MuFidelity grid (default 8: equal 12-px cells at 96 px)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--smoothgrad-samples", type=int, default=16)
    parser.add_argument("--rise-masks", type=int, default=256)
    parser.add_argument("--maps", default="/tmp/tfvis_faithfulness_maps.npz")
    parser.add_argument("--xplique", action="store_true", help="also score the maps with xplique's metrics")
    parser.add_argument("--reuse-maps", action="store_true", help="read the maps from --maps instead of computing them")
    return parser.parse_args()


def xplique_scores(model, images, channels, maps, args):
    """xplique's deletion, insertion and MuFidelity (Spearman) of ``maps`` on the channel means of ``args.layer``."""
    import keras
    from xplique.metrics import Deletion, Insertion, MuFidelity

    from tfvis.graph import prepared

    net = prepared(model)
    means = keras.layers.GlobalAveragePooling2D()(net.get_layer(args.layer).output)
    scorer = keras.Model(net.inputs, means)
    targets = np.eye(scorer.output.shape[-1], dtype=np.float32)[channels]
    zero = faith.baseline_images(model, images, "zero")
    blurred = faith.baseline_images(model, images, "blur")
    common = {"batch_size": args.batch_size}
    out = {}
    for i in range(len(images)):  # one image at a time: xplique returns the mean over its inputs
        one = (images[i : i + 1], targets[i : i + 1])
        deletion = Deletion(scorer, *one, baseline_mode=lambda x, i=i: zero[i : i + 1], steps=args.steps, **common)
        insertion = Insertion(scorer, *one, baseline_mode=lambda x, i=i: blurred[i : i + 1], steps=args.steps, **common)
        fidelity = MuFidelity(
            scorer,
            *one,
            grid_size=args.grid,
            subset_percent=0.2,
            nb_samples=args.samples,
            baseline_mode=lambda x, i=i: zero[i],
            **common,
        )
        out.setdefault("deletion", []).append(deletion.evaluate(maps[i : i + 1]))
        out.setdefault("insertion", []).append(insertion.evaluate(maps[i : i + 1]))
        out.setdefault("mu_fidelity", []).append(fidelity.evaluate(maps[i : i + 1]))
    return {metric: np.array(values) for metric, values in out.items()}


def main():
    args = parse()
    started = time.perf_counter()
    model = tfvis.load_model("vgg16", include_top=False)
    ids, images = sample_dataset(args.images, size=args.size)
    channels, _ = strongest_channels(model, images, args.layer, range(512), args.batch_size)
    targets = [f"{args.layer}:{int(c)}" for c in channels]
    print(f"{tfvis.models.weights_label(model)}; images {ids} at {args.size} px; targets {targets}")
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    options = {"samples": args.smoothgrad_samples, "masks": args.rise_masks, "patch": 16, "stride": 16, "layer": args.layer}
    if args.reuse_maps:
        with np.load(args.maps) as saved:
            maps = {name: saved[name] for name in names}
    else:
        maps, seconds = {}, {}
        for name in names:
            begun = time.perf_counter()
            maps[name] = np.asarray(method(name)(model, images, targets, batch_size=args.batch_size, seed=0, **options))
            seconds[name] = time.perf_counter() - begun
        np.savez(args.maps, **maps)
        print("maps: " + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()))
    begun = time.perf_counter()
    rows = faith.faithfulness_table(
        model,
        images,
        targets,
        names,
        maps=maps,
        steps=args.steps,
        samples=args.samples,
        grid=args.grid,
        batch_size=args.batch_size,
    )
    print(f"metrics: {time.perf_counter() - begun:.0f} s\n")
    print(faith.table_text(rows))
    if args.xplique:
        begun = time.perf_counter()
        print("\nagainst xplique (tfvis / xplique, per-image values):")
        for name in names:
            theirs = xplique_scores(model, images, channels, maps[name], args)
            ours = {row.metric: row.values for row in rows if row.method == name}
            ours["mu_fidelity"] = faith.mu_fidelity(
                model,
                images,
                maps[name],
                targets,
                args.grid,
                0.2,
                args.samples,
                correlation="spearman",
                batch_size=args.batch_size,
            ).values
            for metric in faith.METRICS:
                a, b = ours[metric], theirs[metric]
                print(
                    f"{name:>17} {metric:>11}: max |diff| {np.max(np.abs(a - b)):.3g}  tfvis {np.round(a, 3)}  xplique {np.round(b, 3)}"
                )
        print(f"xplique: {time.perf_counter() - begun:.0f} s")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
