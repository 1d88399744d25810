"""Benchmark: CKA of a study of N InceptionV1s x 12 layers as work units, local engine against a local Ray cluster.

Random-weight InceptionV1s with different seeds (``tfvis.load_model("inceptionv1", weights="random",
seed=i)``) stand in for fine-tuned copies; the CKA layers are the model's 12 report layers
(conv2d0, conv2d1, conv2d2, mixed3a ... mixed5b). Images are the offline sample photos and random
crops of them (:class:`tfvis.images.SampleSource`). Each run is a fresh process
(:func:`tfvis.pipeline.study_units.study_cka` on a new store) and reports:

* seconds in all, per model (its Gram units) and per model pair (all of it over N (N - 1) / 2),
  and the seconds of the merge (the unbiased HSIC of every pair of the N x 12 Gram matrices);
* for the local engine, the driver's peak resident memory (VmHWM) at each image count: the
  merge reads one shard of Gram matrices at a time, so it should not grow with the images;
* whether the Ray engine's matrices agree with the local engine's (max abs difference of every
  (model, layer) x (model, layer) CKA).

The defaults are the issue's scale (16 models, 1,024 images, 224 px); a quick run:

    python benchmarks/study_cka.py --models 4 --images 256 --size 160

Usage: python benchmarks/study_cka.py [--models 16] [--images 1024] [--size 224] [--batch-size 32]
       [--shard-images 256] [--workers 2] [--rss-images 512 1024] [--engines local ray]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tfvis, installed or not

import numpy as np  # noqa: E402


def _rss_mib(field="VmHWM"):
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process from /proc, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_child(args):
    """One study in this process; prints a JSON line and saves the (M, M) HSIC sums to ``args.result``."""
    from tfvis.compare.study import StudyCKA
    from tfvis.images import SampleSource
    from tfvis.models import ModelSpec
    from tfvis.models.inceptionv1 import REPORT_LAYERS
    from tfvis.pipeline import Store, make_engine
    from tfvis.pipeline.context import Context
    from tfvis.pipeline.study_units import study_cka

    merge_seconds = [0.0]
    update = StudyCKA.update

    def timed_update(self, grams):
        started = time.perf_counter()
        update(self, grams)
        merge_seconds[0] += time.perf_counter() - started

    StudyCKA.update = timed_update
    specs = {f"seed{i}": ModelSpec("inceptionv1", "random", seed=i) for i in range(args.models)}
    # No model preloaded: the local engine loads each on first use, as a worker does.
    context = Context(specs["seed0"], SampleSource(args.images, size=args.size, seed=0), specs=specs)
    layers = {name: list(REPORT_LAYERS) for name in specs}
    engine = make_engine(args.engine, workers=args.workers if args.engine == "ray" else None, progress=False)
    started_rss = _rss_mib("VmRSS")
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as store:
            study = study_cka(engine, context, Store(store), layers, args.batch_size, args.shard_images)
    finally:
        engine.close()
    seconds = time.perf_counter() - started
    np.save(args.result, study.sums)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "images": study.n_examples,
                "seconds": seconds,
                "merge_seconds": merge_seconds[0],
                "rss_start_mib": started_rss,
                "peak_rss_mib": _rss_mib("VmHWM"),
            }
        )
    )


def _cka(sums):
    diagonal = np.diag(sums)
    return sums / np.sqrt(np.outer(diagonal, diagonal))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=16, help="InceptionV1s, random weights seeded 0..N-1 (default: 16)")
    parser.add_argument("--images", type=int, default=1024, help="images for CKA (default: 1024)")
    parser.add_argument("--size", type=int, default=224, help="image side (default: 224)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per CKA minibatch (default: 32)")
    parser.add_argument("--shard-images", type=int, default=256, help="images per Gram unit (default: 256)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers of the local cluster (default: 2)")
    parser.add_argument(
        "--rss-images",
        type=int,
        nargs="*",
        help="image counts of the local engine's memory runs (default: half the images, then all)",
    )
    parser.add_argument("--engines", nargs="+", default=["local", "ray"], choices=("local", "ray"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)
    counts = sorted(set(args.rss_images or [args.images // 2, args.images]) | {args.images})
    pairs = args.models * (args.models - 1) // 2
    print(
        f"{args.models} InceptionV1s x 12 layers, {args.images} images at {args.size} px, minibatches of {args.batch_size}, "
        f"{args.shard_images} images per unit"
    )
    runs, sums = [], {}
    with tempfile.TemporaryDirectory() as folder:
        plan = [("local", n) for n in counts] if "local" in args.engines else []
        plan += [("ray", args.images)] if "ray" in args.engines else []
        for engine, images in plan:
            result = os.path.join(folder, f"{engine}_{images}.npy")
            child = [
                sys.executable,
                __file__,
                "--child",
                "--engine",
                engine,
                "--result",
                result,
                "--models",
                str(args.models),
                "--images",
                str(images),
                "--size",
                str(args.size),
                "--batch-size",
                str(args.batch_size),
                "--shard-images",
                str(args.shard_images),
                "--workers",
                str(args.workers),
            ]
            done = subprocess.run(child, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{engine} run failed:\n{done.stderr[-3000:]}")
            record = json.loads(done.stdout.strip().splitlines()[-1])
            runs.append(record)
            if images == args.images:
                sums[engine] = np.load(result)
            print(
                f"{engine:5s} {record['images']:5d} images: {record['seconds']:7.1f} s in all, "
                f"{record['seconds'] / args.models:6.2f} s per model, {record['seconds'] / max(pairs, 1):6.2f} s per model pair, "
                f"merge {record['merge_seconds']:.3f} s; driver peak RSS {record['peak_rss_mib']:.0f} MiB "
                f"({record['rss_start_mib']:.0f} MiB before the run)",
                flush=True,
            )
    if len(sums) == 2:
        difference = np.nanmax(np.abs(_cka(sums["local"]) - _cka(sums["ray"])))
        print(f"local vs ray: max abs difference of the {len(sums['local'])} x {len(sums['local'])} CKA matrix {difference:.2e}")
    local = [r for r in runs if r["engine"] == "local"]
    if len(local) > 1:
        print("local driver peak RSS vs images: " + ", ".join(f"{r['images']}: {r['peak_rss_mib']:.0f} MiB" for r in local))


if __name__ == "__main__":
    main()
