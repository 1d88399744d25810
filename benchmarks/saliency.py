"""Benchmark: vanilla saliency and SmoothGrad on VGG16, tfvis against tf-keras-vis' ``Saliency``.

Same model (VGG16: hed conv weights, seeded fully connected layers, cut at the ``predictions``
logits so both libraries differentiate the unnormalised score), same images (scikit-image photos
and crops at 224 px), the same class, one process. Prints seconds per library and the
ratios. Targets (issue 5): tfvis at least as fast for vanilla, 1.5x faster for SmoothGrad (n=16).

Usage: pip install -e '.[bench]'; python benchmarks/saliency.py [--images 32] [--samples 16]
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfvis  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


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
        return np.concatenate([
            theirs(CategoricalScore(classes[i : i + args.batch_size]), images[i : i + args.batch_size])
            for i in range(0, len(images), args.batch_size)
        ])  # fmt: skip

    def ours_smooth():
        return tfvis.saliency.smoothgrad(logits, images, target, noise=noise, samples=args.samples, batch_size=args.batch_size)

    def theirs_smooth():
        return np.concatenate([
            theirs(CategoricalScore(classes[i : i + args.batch_size]), images[i : i + args.batch_size],
                   smooth_samples=args.samples, smooth_noise=noise)
            for i in range(0, len(images), args.batch_size)
        ])  # fmt: skip

    rows = []
    for name, ours, peer in (("vanilla", ours_vanilla, theirs_vanilla), (f"SmoothGrad n={args.samples}", ours_smooth, theirs_smooth)):
        ours()  # trace both once
        peer()
        t_ours, ours_map = timed(ours)
        t_peer, peer_map = timed(peer)
        rows.append((name, t_ours, t_peer))
    print(f"VGG16 logits (hed conv weights), {args.images} images at 224 px, batch {args.batch_size}")
    print(f"{'method':20s}{'tfvis s':>10s}{'tf-keras-vis s':>16s}{'speed-up':>10s}")
    for name, t_ours, t_peer in rows:
        print(f"{name:20s}{t_ours:10.2f}{t_peer:16.2f}{t_peer / t_ours:9.2f}x")
    print("targets: vanilla >= 1.0x, SmoothGrad >= 1.5x")


if __name__ == "__main__":
    main()
