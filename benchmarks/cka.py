"""Benchmark: streaming model_cka of VGG16 against a copy with block5 re-initialised, 13 x 13 conv layers.

Both models hold the hed conv weights (offline); the copy's block5 gets seeded random weights
(``tfvis.set_weights``). Images are random crops of the sample photos, made on the fly and
streamed through a ``tf.data.Dataset``, so nothing grows with the image count but the count.
Each image count runs in a fresh process and reports:

* images/s of ``model_cka`` (one pass, both models, all 169 layer pairs);
* the forward passes alone: the same stream through both feature models, outputs reduced to a
  scalar inside the graph; CKA arithmetic = ``model_cka`` time minus that (Gram matrices in
  TensorFlow, the unbiased HSIC of every pair in NumPy, the transfers), and the NumPy HSIC part
  measured directly;
* peak memory (the process's resident-set high-water mark, reset after the warm-up so that it
  covers the streaming pass) and the whole process's peak.

Targets (issue 6): CKA arithmetic under 25% of the time; peak memory flat as the image count doubles.

Usage: python benchmarks/cka.py [--images 256 512] [--size 128] [--batch-size 32]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _rss_mib(field):
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process from /proc, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    """Reset the resident-set high-water mark (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def crop_stream(count, size, seed=0):
    """A ``tf.data.Dataset`` of ``count`` random crops of the sample photos, made lazily."""
    import tensorflow as tf

    import tfvis

    photos = list(tfvis.images.sample_images(size=2 * size).values())

    def generate():
        for i in range(count):
            photo = photos[i % len(photos)]
            yield tfvis.images.random_crops(photo, size, 1, seed=seed * 100003 + i, min_scale=0.5)[0]

    return tf.data.Dataset.from_generator(generate, output_signature=tf.TensorSpec((size, size, 3), tf.float32))


def models():
    import tfvis

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    ablated = tfvis.load_model("vgg16", weights="hed", include_top=False)
    random = tfvis.load_model("vgg16", weights="random", include_top=False, seed=1)
    for name in ("block5_conv1", "block5_conv2", "block5_conv3"):
        tfvis.set_weights(ablated, name, random)
    return model, ablated


def forward_only(model_a, model_b, layers):
    """A compiled pass through both feature models that reduces every output to a scalar."""
    import tensorflow as tf

    from tfvis.layers import feature_model

    features_a, features_b = feature_model(model_a, layers), feature_model(model_b, layers)

    @tf.function(reduce_retracing=True)
    def run(images):
        outputs = list(features_a(images, training=False)) + list(features_b(images, training=False))
        return tf.add_n([tf.reduce_sum(out) for out in outputs])

    return run


def child(args):
    """One measurement, in this process: print a JSON line."""
    import tensorflow as tf

    import tfvis
    import tfvis.compare

    module = sys.modules["tfvis.compare.cka"]  # tfvis.compare.cka is the function
    model_a, model_b = models()
    layers = tfvis.layers.conv_layer_names(model_a)
    hsic_seconds = [0.0]
    update_grams = module.LayerPairsCKA.update_grams

    def timed_update(self, grams_a, grams_b):
        start = time.perf_counter()
        update_grams(self, grams_a, grams_b)
        hsic_seconds[0] += time.perf_counter() - start

    module.LayerPairsCKA.update_grams = timed_update
    # warm-up: trace both compiled functions on a full batch
    warm = crop_stream(args.batch_size, args.size, seed=99)
    tfvis.compare.model_cka(model_a, model_b, warm, layers, batch_size=args.batch_size, progress=False)
    forward = forward_only(model_a, model_b, layers)
    for batch in tfvis.images.iter_batches(warm, batch_size=args.batch_size):
        forward(tf.constant(batch.images)).numpy()
    hsic_seconds[0] = 0.0

    before = _rss_mib("VmRSS")
    reset = _reset_peak()
    totals, forwards, hsics = [], [], []
    for _ in range(args.repeat):  # interleaved; the fastest of each (other jobs share the cores)
        hsic_seconds[0] = 0.0
        start = time.perf_counter()
        stream = crop_stream(args.images, args.size)
        result = tfvis.compare.model_cka(model_a, model_b, stream, layers, batch_size=args.batch_size, progress=False)
        totals.append(time.perf_counter() - start)
        hsics.append(hsic_seconds[0])
        peak_stream = _rss_mib("VmHWM") if reset else float("nan")
        start = time.perf_counter()
        for batch in tfvis.images.iter_batches(crop_stream(args.images, args.size), batch_size=args.batch_size):
            forward(tf.constant(batch.images)).numpy()
        forwards.append(time.perf_counter() - start)
    total, forward_seconds, hsic = min(totals), min(forwards), min(hsics)

    start = time.perf_counter()
    for _ in tfvis.images.iter_batches(crop_stream(args.images, args.size), batch_size=args.batch_size):
        pass
    data_seconds = time.perf_counter() - start

    diagonal = np.diag(result.matrix)
    print(
        json.dumps(
            {
                "images": result.n_images,
                "total": total,
                "forward": forward_seconds,
                "data": data_seconds,
                "hsic": hsic,
                "rss_before": before,
                "peak_stream": peak_stream,
                "peak_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "diag_block4_conv3": float(diagonal[layers.index("block4_conv3")]),
                "diag_block5": [float(diagonal[layers.index(f"block5_conv{i}")]) for i in (1, 2, 3)],
                "layers": len(layers),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[256, 512], help="image counts, one process each")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2, help="timed passes per count (the fastest is shown)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.images = args.images[0]
        return child(args)
    rows = []
    for count in args.images:
        options = [
            "--images",
            str(count),
            "--size",
            str(args.size),
            "--batch-size",
            str(args.batch_size),
            "--repeat",
            str(args.repeat),
        ]
        done = subprocess.run([sys.executable, __file__, "--child", *options], check=False, capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"the run with {count} images failed")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    layers = rows[0]["layers"]
    print(
        f"VGG16 (hed) vs block5 re-initialised, {layers} x {layers} conv layers, {args.size} px, batch {args.batch_size}, streamed crops"
    )
    print(
        f"{'images':>7s}{'total s':>9s}{'img/s':>7s}{'forward s':>11s}{'data s':>8s}{'CKA s':>7s}{'CKA %':>7s}"
        f"{'HSIC s':>8s}{'RSS start':>11s}{'peak stream':>13s}{'peak proc':>11s}"
    )
    for r in rows:
        arithmetic = r["total"] - r["forward"]
        print(
            f"{r['images']:7d}{r['total']:9.1f}{r['images'] / r['total']:7.1f}{r['forward']:11.1f}{r['data']:8.1f}"
            f"{arithmetic:7.1f}{100 * arithmetic / r['total']:6.1f}%{r['hsic']:8.3f}"
            f"{r['rss_before']:9.0f}MB{r['peak_stream']:11.0f}MB{r['peak_process']:9.0f}MB"
        )
    last = rows[-1]
    block5 = ", ".join(f"{v:.3f}" for v in last["diag_block5"])
    print(f"CKA diagonal: block4_conv3 {last['diag_block4_conv3']:.6f}, block5_conv1..3 {block5}")
    print("CKA s = model_cka minus the forward passes alone (data included in both); HSIC s = NumPy part, measured")
    print("targets: CKA % < 25, peak stream flat as the image count doubles")


if __name__ == "__main__":
    main()
