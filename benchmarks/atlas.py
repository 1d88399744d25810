"""Benchmark of the report pipeline: engines, sharding, memory, and the on-paper scale-out.

    python benchmarks/atlas.py report --old ../base [--ray]
                                                      # default report: local engine (and Ray) vs the runner of another checkout
    python benchmarks/atlas.py ray                    # same report: Ray (local cluster, 2 workers) vs the local engine
    python benchmarks/atlas.py topk --images 512,1024,2048
                                                      # top-k of all 512 channels of block4_conv3: time and peak memory
    python benchmarks/atlas.py units                  # per-unit costs, and the full VGG16 atlas on paper

Every run is a subprocess (``python -m tfvis.vgg`` or this script with ``--child``), so that
peak memory (ru_maxrss) and start-up count as a user sees them. ``report`` and ``ray`` check that
both sides wrote the same top-k lists (values, image ids, positions: bit for bit) before printing
a ratio, so that the ratio always compares equal work. Prints what the CPU supports.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def cpu_summary():
    """The CPU's model, cores and bfloat16-relevant flags (:mod:`tfvis.precision`)."""
    import platform

    from tfvis.precision import describe_cpu

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {describe_cpu()}"


def run_report(tree, out, extra, env=None):
    """Run ``python -m tfvis.vgg`` of checkout ``tree`` into ``out``; (seconds, peak RSS in MB of the child)."""
    command = [sys.executable, "-m", "tfvis.vgg", "--out", str(out), "--quiet", *extra]
    link = Path(tree, "tfvis", "templates")
    if Path(tree).resolve() != ROOT and not link.exists():
        # An editable install maps tfvis.templates to this checkout's templates/: point the other
        # checkout's package at its own, so that each tree renders with its own templates.
        link.symlink_to(Path(tree, "templates").resolve(), target_is_directory=True)
    environment = dict(os.environ, PYTHONPATH=str(tree), **(env or {}))
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def top_k_lists(out):
    """Every channel's top-k (image, value, position) from a report's manifests."""
    lists = {}
    for path in sorted(Path(out, "state").rglob("ch*.json")):
        manifest = json.loads(path.read_text())
        lists[path.relative_to(out).as_posix()] = [(i["image"], i["value"], i["position"]) for i in manifest["items"]]
    return lists


def compare_runs(runs, rounds, label):
    """Run ``runs`` (name, function of an output folder) alternately ``rounds`` times.

    Prints each one's best time and its ratio to the first's, after checking that all wrote the
    same top-k lists.
    """
    times = {name: [] for name, _ in runs}
    reference = None
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(rounds):
            for k, (name, run) in enumerate(runs):
                out = Path(scratch) / f"run{k}-round{i}"
                seconds, _ = run(out)
                times[name].append(seconds)
                lists = top_k_lists(out)
                if reference is None:
                    reference = lists
                elif lists != reference:
                    sys.exit(f"{name} wrote other top-k lists than {runs[0][0]}: the ratio would compare unequal work")
    best = {name: min(values) for name, values in times.items()}
    first = runs[0][0]
    print(f"\n{label}: {len(reference)} channels, top-k lists identical (values, ids, positions: bit for bit)")
    for name, values in times.items():
        ratio = "" if name == first else f"   {best[name] / best[first]:.2f}x of {first}"
        print(f"  {name:<30} best {best[name]:7.1f} s   runs {', '.join(f'{v:.1f}' for v in values)}{ratio}")
    return best


DEFAULT_REPORT = []  # python -m tfvis.vgg with its defaults: 13 layers x 8 channels, 64 images at 224 px
RAY = ["--engine", "ray", "--workers", "2"]


def report(args):
    if not args.old:
        sys.exit("report: give --old OTHER_CHECKOUT (e.g. git worktree add ../base <commit before the pipeline>)")
    extra = DEFAULT_REPORT + args.extra
    runs = [
        ("before (one-process runner)", lambda out: run_report(Path(args.old).resolve(), out, extra)),
        ("local engine", lambda out: run_report(ROOT, out, extra)),
    ]
    if args.ray:
        runs.append(("ray, local cluster, 2 workers", lambda out: run_report(ROOT, out, extra + RAY)))
    compare_runs(runs, args.rounds, "default report (python -m tfvis.vgg)")


def ray_engine(args):
    extra = DEFAULT_REPORT + args.extra
    runs = [
        ("local engine", lambda out: run_report(ROOT, out, extra)),
        ("ray, local cluster, 2 workers", lambda out: run_report(ROOT, out, extra + RAY)),
    ]
    compare_runs(runs, args.rounds, "default report, local vs Ray")


def child_top_k(args):
    """In a child process: the top-k stage of block4_conv3 (all channels) over ``args.count`` images."""
    import tfvis
    from tfvis.images import SampleSource
    from tfvis.pipeline import LocalEngine, Store, layer_report
    from tfvis.pipeline.work import Context, ModelSpec

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    context = Context(ModelSpec("vgg16", "hed"), SampleSource(args.count, size=224), model=model)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        merged = layer_report.top_k(LocalEngine(progress=False), context, Store(scratch), ["block4_conv3"], 9, 16, 512)
        seconds = time.perf_counter() - started
    values = merged["block4_conv3"][0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "channels": int(values.shape[1])}))


def top_k_scale(args):
    print("\ntop-k of all channels of block4_conv3 (VGG16 hed, 224 px, shards of 512 images, local engine)")
    print(f"  {'images':>7} {'seconds':>9} {'ms/image':>9} {'peak RSS MB':>12}")
    for count in args.images:
        done = subprocess.run(
            [sys.executable, __file__, "--child", "topk", "--count", str(count)], capture_output=True, text=True
        )
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  {count:>7} {result['seconds']:>9.1f} {1000 * result['seconds'] / count:>9.1f} {result['peak_mb']:>12.0f}   ({result['channels']} channels)"
        )


def child_units(args):
    """In a child process: seconds per image of a top-k pass over all 13 conv layers, per reconstruction, per render step."""

    import tfvis
    from tfvis.images import SampleSource
    from tfvis.models import model_info
    from tfvis.pipeline import LocalEngine, Store, layer_report
    from tfvis.pipeline.plan import channel_units
    from tfvis.pipeline.work import Context, ModelSpec, compute

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    layers = list(model_info(model).report_layers)
    context = Context(ModelSpec("vgg16", "hed"), SampleSource(args.count, size=224), model=model)
    costs = {}
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(scratch)
        layer_report.top_k(LocalEngine(progress=False), context, Store(Path(scratch) / "warm"), layers, 9, 16, 16)
        started = time.perf_counter()
        merged = layer_report.top_k(LocalEngine(progress=False), context, store, layers, 9, 16, 512)
        costs["topk_image"] = (time.perf_counter() - started) / args.count
        for layer in ("block1_conv2", "block3_conv3", "block5_conv3"):
            unit = channel_units(context, layer, list(range(8)), merged[layer], 9, ("deconvnet", "guided"), 16, group=8)[0]
            compute(unit, context)  # compile
            started = time.perf_counter()
            compute(unit, context)
            costs[f"patch_{layer}"] = (time.perf_counter() - started) / (8 * 9 * 2)
    channels = [f"block4_conv3:{c}" for c in range(8)]
    tfvis.featurevis.render(model, channels, size=128, steps=2, progress=False)
    started = time.perf_counter()
    tfvis.featurevis.render(model, channels, size=128, steps=16, progress=False)
    costs["render_step_8ch"] = (time.perf_counter() - started) / 16
    print(json.dumps(costs))


#: VGG16's conv channels per layer (the full atlas) and the seconds of a report it implies.
VGG16_CHANNELS = {"block1": 2 * 64, "block2": 2 * 128, "block3": 3 * 256, "block4": 3 * 512, "block5": 3 * 512}


def units(args):
    done = subprocess.run(
        [sys.executable, __file__, "--child", "units", "--count", str(args.count)], capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    costs = json.loads(done.stdout.strip().splitlines()[-1])
    channels = sum(VGG16_CHANNELS.values())
    patch = (costs["patch_block1_conv2"] * 2 + costs["patch_block3_conv3"] * 7 + costs["patch_block5_conv3"] * 4) / 13
    images, steps = 50_000, 256
    topk = images * costs["topk_image"]
    recon = channels * 9 * 2 * patch
    render = channels / 8 * steps * costs["render_step_8ch"]
    print(f"\nper-unit costs on this machine ({cpu_summary()})")
    print(f"  top-k pass, 13 conv layers, all channels: {1000 * costs['topk_image']:.0f} ms per 224 px image")
    for layer in ("block1_conv2", "block3_conv3", "block5_conv3"):
        print(f"  reconstruction ({layer}, deconvnet or guided): {1000 * costs[f'patch_{layer}']:.0f} ms per patch")
    print(f"  feature visualization step, 8 channels at 128 px: {1000 * costs['render_step_8ch']:.0f} ms")
    print(f"\nthe full VGG16 atlas ({channels} channels, top-9 over {images} images, deconvnet + guided, {steps}-step renders)")
    print(
        f"  top-k: {topk / 3600:.1f} h, reconstructions: {recon / 3600:.1f} h, renders: {render / 3600:.1f} h; "
        f"total {(topk + recon + render) / 3600:.1f} h on one such machine"
    )
    print(json.dumps({"topk_h": topk / 3600, "recon_h": recon / 3600, "render_h": render / 3600}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("report", "ray", "topk", "units"))
    parser.add_argument("--old", help="another checkout of tfvis (report)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="report: time the Ray engine (local cluster, 2 workers) too")
    parser.add_argument("--images", default="512,1024,2048", help="image counts (topk)")
    parser.add_argument("--count", type=int, default=64, help="images of the per-unit measurement (units)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args()
    args.extra = extra
    args.images = [int(v) for v in str(args.images).split(",")]
    if args.child:
        return {"topk": child_top_k, "units": child_units}[args.what](args)
    print(f"CPU: {cpu_summary()}")
    {"report": report, "ray": ray_engine, "topk": top_k_scale, "units": units}[args.what](args)


if __name__ == "__main__":
    main()
