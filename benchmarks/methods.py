"""Time every method family once on VGG16 (hed weights), for before/after comparisons of a change.

    python benchmarks/methods.py                  # this tree, a table
    python benchmarks/methods.py --old ../base    # another checkout (e.g. `git worktree add ../base HEAD~1`)
                                                  # and this tree, alternately, side by side

Each case runs once to compile, then ``--repeats`` times; the best time is kept (other jobs on
the cores only ever add time). With ``--old``, both trees run as subprocesses in turns (A B A B),
so that a drift of the machine's speed hits both alike. Prints what the CPU supports.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = (
    "top_k",
    "reconstruct_units",
    "vanilla",
    "smoothgrad",
    "guided",
    "grad_cam",
    "render",
    "invert",
    "caricature",
    "class_model",
    "model_cka",
)


def _cases(args):
    """name -> callable, on the tree that ``import tfvis`` finds."""
    import numpy as np

    import tfvis

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    _, photos = tfvis.images.sample_dataset(args.images, size=args.size)
    small = photos[:4]
    channels = [f"block4_conv3:{c}" for c in range(8)]
    units = [(2, 3), (5, 5), (1, 7), (6, 2)] * 2
    ablated = tfvis.load_model("vgg16", weights="hed", include_top=False)
    tfvis.set_weights(ablated, "block5_conv3", 0.5)
    layers = ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
    classifier = None

    def class_model():  # VGG16 with its classifier (random weights: the timing does not depend on them), built on first use
        nonlocal classifier
        classifier = classifier or tfvis.load_model("vgg16", weights="random", include_top=True)
        return tfvis.saliency.class_model(classifier, 281, steps=args.steps)

    return {
        "top_k": lambda: tfvis.top_k(model, photos, "block4_conv3", k=9, batch_size=16, methods=(), progress=False),
        "reconstruct_units": lambda: tfvis.deconv.reconstruct_units(
            model, small, [0, 1, 2, 3, 0, 1, 2, 3], channels, units, methods=("deconvnet", "guided"), batch_size=8
        ),
        "vanilla": lambda: tfvis.saliency.vanilla(model, small, "block5_conv3:12"),
        "smoothgrad": lambda: tfvis.saliency.smoothgrad(model, small, "block5_conv3:12", samples=16),
        "guided": lambda: tfvis.saliency.guided(model, small, channels[:4]),
        "grad_cam": lambda: tfvis.saliency.grad_cam(model, small, "block5_conv3:12", "block4_conv3"),
        "render": lambda: tfvis.featurevis.render(model, channels, size=64, steps=args.steps, progress=False),
        "invert": lambda: tfvis.inversion.invert(model, np.asarray(small[0][:64, :64]), "block2_conv2", steps=args.steps),
        "caricature": lambda: tfvis.featurevis.caricature(
            model, small[:2], "block3_conv3", steps=args.steps, size=64, progress=False
        ),
        "class_model": class_model,
        "model_cka": lambda: tfvis.compare.model_cka(model, ablated, photos, layers, batch_size=16, progress=False),
    }


def run_here(args):
    """``{case: best seconds}`` on the tree ``import tfvis`` finds."""
    cases = _cases(args)
    times = {}
    for name in args.cases:
        cases[name]()  # compile
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            cases[name]()
            best = min(best, time.perf_counter() - start)
        times[name] = best
    return times


def cpu_flags():
    """The CPU's SIMD features that matter to TensorFlow (AVX512, bfloat16, AMX): :func:`tfvis.precision.describe_cpu`."""
    from tfvis.precision import describe_cpu

    return describe_cpu()


def _subprocess_times(tree, args):
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    argv = [
        sys.executable,
        __file__,
        "--json",
        "--images",
        str(args.images),
        "--size",
        str(args.size),
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
        "--cases",
        *args.cases,
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=Path(tree).resolve())
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", help="another checkout of tfvis to compare with, run alternately with this one")
    parser.add_argument("--images", type=int, default=16, help="images for top-k and CKA (default: 16)")
    parser.add_argument("--size", type=int, default=128, help="image side (default: 128)")
    parser.add_argument("--steps", type=int, default=32, help="render, inversion, caricature and class model steps (default: 32)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per case, best kept (default: 2)")
    parser.add_argument("--rounds", type=int, default=2, help="with --old: alternations of the two trees (default: 2)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run_here(args)))
        return
    print(f"CPU: {cpu_flags()}; {os.cpu_count()} cores; VGG16 (hed), {args.images} images at {args.size} px, {args.steps} steps")
    if not args.old:
        for name, seconds in run_here(args).items():
            print(f"{name:20s} {seconds:8.2f} s")
        return
    here = Path(__file__).resolve().parents[1]
    best = {"old": {}, "new": {}}
    for _ in range(args.rounds):
        for label, tree in (("old", args.old), ("new", here)):
            for name, seconds in _subprocess_times(tree, args).items():
                best[label][name] = min(seconds, best[label].get(name, float("inf")))
    print(f"{'case':20s} {'old s':>8s} {'new s':>8s} {'new/old':>8s}")
    for name in args.cases:
        old, new = best["old"][name], best["new"][name]
        print(f"{name:20s} {old:8.2f} {new:8.2f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
