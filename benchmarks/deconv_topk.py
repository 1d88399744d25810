"""Benchmark: top-k over a dataset for all 512 channels of VGG16 block4_conv3 versus a plain forward pass.

Prints, in one process on the same model (VGG16, hed weights) and the same images:
- the plain forward pass over N images to block4_conv3 (compiled, batched): the floor;
- ``tfvis.top_k`` for all 512 channels without reconstructions (streaming, one pass);
- the ratio (target: at most 1.3);
- deconvnet and guided reconstructions of the top-k units of several channels: one call per unit
  and method versus ``reconstruct_units`` (batched, one forward pass per distinct image).

Usage: python benchmarks/deconv_topk.py [--images 64] [--size 224] [--batch-size 16] [--channels 4]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvis  # noqa: E402
from tfvis.deconv import reconstruct, reconstruct_units  # noqa: E402
from tfvis.layers import feature_model  # noqa: E402
from tfvis.topk import top_k  # noqa: E402

LAYER = "block4_conv3"


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=4, help="channels whose k=9 patches are reconstructed")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    ids, images = tfvis.images.sample_dataset(args.images, size=args.size)
    extractor = feature_model(model, [LAYER])

    @tf.function(reduce_retracing=True)
    def forward(batch):
        return extractor(batch, training=False)

    def plain_forward():
        for start in range(0, len(images), args.batch_size):
            forward(tf.constant(images[start : start + args.batch_size])).numpy()

    def streamed_top_k():
        return top_k(model, images, LAYER, k=9, batch_size=args.batch_size, methods=(), progress=False)

    plain_forward()  # trace and warm up both
    streamed_top_k()
    t_forward = best_of(plain_forward, args.repeats)
    t_topk = best_of(streamed_top_k, args.repeats)

    result = top_k(
        model,
        dict(zip(ids, images)),
        LAYER,
        channels=range(args.channels),
        k=9,
        batch_size=args.batch_size,
        methods=(),
        progress=False,
    )
    entries = [(row, rank) for row in range(args.channels) for rank in range(9)]
    by_id = dict(zip(ids, images))
    distinct = sorted({result.image_ids[row, rank] for row, rank in entries})
    image_index = [distinct.index(result.image_ids[row, rank]) for row, rank in entries]
    unit_images = np.stack([by_id[name] for name in distinct])
    targets = [f"{LAYER}:{result.channels[row]}" for row, _ in entries]
    positions = [tuple(int(v) for v in result.positions[row, rank]) for row, rank in entries]
    methods = ("deconvnet", "guided")

    def shared():
        reconstruct_units(model, unit_images, image_index, targets, positions, methods=methods, batch_size=args.batch_size)

    def one_by_one():
        for i, target, position in zip(image_index, targets, positions):
            for method in methods:
                reconstruct(model, unit_images[i][None], target, method=method, position=[position], batch_size=1)

    shared()
    one_by_one()
    t_batched = best_of(shared, 1)
    t_single = best_of(one_by_one, 1)

    n = len(images)
    print(f"VGG16 (hed weights), {n} images at {args.size} px, batch {args.batch_size}, layer {LAYER} (512 channels)")
    print(f"{'':44s}{'seconds':>10s}{'images/s':>10s}")
    print(f"{'plain forward pass to ' + LAYER:44s}{t_forward:10.2f}{n / t_forward:10.1f}")
    print(f"{'tfvis top_k, all 512 channels, k=9':44s}{t_topk:10.2f}{n / t_topk:10.1f}")
    print(f"top_k / forward: {t_topk / t_forward:.2f}x (target <= 1.3x)")
    print()
    m = len(entries)
    print(
        f"deconvnet + guided reconstructions of {m} whole-image units ({args.channels} channels x 9, "
        f"{len(distinct)} distinct images)"
    )
    print(f"{'':44s}{'seconds':>10s}{'units/s':>10s}")
    print(f"{'one reconstruct() call per unit and method':44s}{t_single:10.2f}{m / t_single:10.2f}")
    print(f"{'tfvis reconstruct_units (shared forward)':44s}{t_batched:10.2f}{m / t_batched:10.2f}")
    print(f"speed-up from batching and sharing: {t_single / t_batched:.2f}x")


if __name__ == "__main__":
    main()
