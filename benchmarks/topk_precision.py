"""Benchmark: top-k forward passes in float32 and in bfloat16, their speed and whether they rank alike.

On the same model (VGG16, hed weights), layer and images, in one process: ``tfvis.top_k`` of
every channel without reconstructions, at ``precision="float32"`` and ``"bfloat16"``. Prints what
the CPU supports (bfloat16 is emulated, and slower, without AVX512_BF16 or AMX), both times, the
largest difference of the top-k values relative to the channel's top value, and how many of each
channel's top-k images are the same (mean, the worst channel, and the share of channels whose
top-k list is identical). This decides :data:`tfvis.topk.AUTO_BFLOAT16`.

Usage: python benchmarks/topk_precision.py [--images 256] [--size 224] [--layer block4_conv3] [--k 9]
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import tfvis  # noqa: E402
from tfvis import precision  # noqa: E402
from tfvis.topk import top_k  # noqa: E402


def timed_top_k(model, images, args, precision_):
    top_k(model, images[: args.batch_size], args.layer, k=args.k, methods=(), progress=False, precision=precision_)  # traces
    start = time.perf_counter()
    result = top_k(
        model, images, args.layer, k=args.k, batch_size=args.batch_size, methods=(), progress=False, precision=precision_
    )
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--k", type=int, default=9)
    args = parser.parse_args()

    print(precision.summary())
    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    _, images = tfvis.images.sample_dataset(args.images, size=args.size)
    exact, exact_s = timed_top_k(model, images, args, "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "emulated" is printed in the summary above
        fast, fast_s = timed_top_k(model, images, args, "bfloat16")

    scale = np.maximum(np.abs(exact.values).max(axis=1, keepdims=True), 1e-12)
    relative = np.abs(fast.values - exact.values) / scale
    same = np.array([len(set(a) & set(b)) / args.k for a, b in zip(exact.image_ids, fast.image_ids)])
    identical = np.mean([list(a) == list(b) for a, b in zip(exact.image_ids, fast.image_ids)])
    print(
        f"top-{args.k} of {len(exact.channels)} channels of {args.layer}, {args.images} images at {args.size} px, batch {args.batch_size}"
    )
    print(f"{'precision':<10} {'seconds':>8} {'img/s':>7}")
    for name, seconds in (("float32", exact_s), ("bfloat16", fast_s)):
        print(f"{name:<10} {seconds:8.1f} {args.images / seconds:7.1f}")
    print(f"bfloat16 / float32 time: {fast_s / exact_s:.2f}x")
    print(f"values: largest difference {relative.max():.4f} of the channel's top value (median {np.median(relative):.4f})")
    print(
        f"top-{args.k} images shared with float32: mean {same.mean():.3f}, worst channel {same.min():.3f}; "
        f"identical lists in {identical:.1%} of channels"
    )


if __name__ == "__main__":
    main()
