"""Benchmark: vanilla saliency and SmoothGrad on VGG16, tfvis against tf-keras-vis' ``Saliency``.

Same model (VGG16: hed conv weights, seeded fully connected layers, cut at the ``predictions``
logits so both libraries differentiate the unnormalised score), same images (scikit-image photos
and crops at 224 px), the same class, one process. Prints seconds per library and the
ratios, and checks that the two libraries computed the same maps (tf-keras-vis with
``normalize_map=False``: its unnormalised ``max_c |dS/dI|``), so that a ratio always compares equal
work: the vanilla maps must agree to cosine 0.9999 per image, or the benchmark stops with an error.
SmoothGrad draws different noise in each library, so its cosine is printed, not required.
Targets (issue 13): vanilla 1.72x and SmoothGrad n=16 1.69x faster than tf-keras-vis.

Usage: pip install -e '.[bench]'; python benchmarks/saliency.py [--images 32] [--samples 16]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfvis  # noqa: E402  (first: its quiet TensorFlow start-up, tfvis.startup)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cosines(a, b):
    """Cosine similarity of each image's map in ``a`` and ``b`` (N, H, W)."""
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)


def cpu_flags():
    from methods import cpu_flags as flags  # benchmarks/methods.py

    return flags()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    try:
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        raise SystemExit("this benchmark compares with tf-keras-vis: pip install tf-keras-vis") from None

    full = tfvis.load_model("vgg16", weights="auto", include_top=True)
    logits = keras.Model(full.input, full.get_layer("predictions").output, name="vgg16_logits")
    _, images = tfvis.images.sample_dataset(args.images, size=224)
    target = 281  # one class for every image (tfvis takes one target per call)
    classes = [target] * args.images
    theirs = Saliency(logits, clone=False)
    noise = 0.15  # of the input range, both libraries

    def ours_vanilla():
        return tfvis.saliency.vanilla(logits, images, target, batch_size=args.batch_size)

    def theirs_vanilla():
        return np.concatenate(
            [
                theirs(CategoricalScore(classes[i : i + args.batch_size]), images[i : i + args.batch_size], normalize_map=False)
                for i in range(0, len(images), args.batch_size)
            ]
        )

    def ours_smooth():
        return tfvis.saliency.smoothgrad(logits, images, target, noise=noise, samples=args.samples, batch_size=args.batch_size)

    def theirs_smooth():
        return np.concatenate(
            [
                theirs(
                    CategoricalScore(classes[i : i + args.batch_size]),
                    images[i : i + args.batch_size],
                    smooth_samples=args.samples,
                    smooth_noise=noise,
                    normalize_map=False,
                )
                for i in range(0, len(images), args.batch_size)
            ]
        )

    def warm(*runs):  # trace every compiled call on one batch (all batches have its shape)
        nonlocal images, classes
        every, every_class = images, classes
        images, classes = images[: args.batch_size], classes[: args.batch_size]
        for run in runs:
            run()
        images, classes = every, every_class

    rows = []
    for name, ours, peer in (
        ("vanilla", ours_vanilla, theirs_vanilla),
        (f"SmoothGrad n={args.samples}", ours_smooth, theirs_smooth),
    ):
        warm(ours, peer)
        t_ours, ours_map = timed(ours)
        t_peer, peer_map = timed(peer)
        rows.append((name, t_ours, t_peer, cosines(ours_map, peer_map).min()))
    print(f"VGG16 logits (hed conv weights), {args.images} images at 224 px, batch {args.batch_size}; CPU: {cpu_flags()}")
    print(f"{'method':20s}{'tfvis s':>10s}{'tf-keras-vis s':>16s}{'speed-up':>10s}{'min cosine':>12s}")
    for name, t_ours, t_peer, cosine in rows:
        print(f"{name:20s}{t_ours:10.2f}{t_peer:16.2f}{t_peer / t_ours:9.2f}x{cosine:12.6f}")
    print("targets: vanilla 1.72x, SmoothGrad 1.69x")
    if rows[0][3] < 0.9999:
        raise SystemExit(
            f"the vanilla maps disagree (min cosine {rows[0][3]:.6f}): the two libraries did not compute the same thing"
        )


if __name__ == "__main__":
    main()
