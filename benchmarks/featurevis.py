"""Benchmark: rendering 8 channels of VGG16 block4_conv3, tfvis against its peers and a bare loop.

All methods run in one process, on the same model (VGG16 with hed conv weights, float32 RGB in
[0, 255]), the same channels and image size (128 px), each rendering the channels as one batch
(image ``i`` maximises channel ``i``: xplique's ``Objective.channel`` over a list of channels gives
one image per channel, checked below). Methods:

``tfvis``
    ``featurevis.render`` (Fourier + decorrelated colours, Lucid's standard transforms: 128 px
    images padded and transformed to 140 px before the network, Adam 0.05), at ``--precision``.
``tfvis-bf16``, ``tfvis-xla``
    The same with ``precision="bfloat16"``, or ``jit_compile=True``.
``bare``, ``bare-bf16``
    The floor: a hand-written loop, every step in one ``tf.function`` (``tf.range``), nothing
    but the optimisation: the same parameterization, transforms (140 px fed) and Adam, on a plain
    Keras model cut at the layer (``-bf16``: its :func:`tfvis.precision.bfloat16_model`).
``tf-keras-vis``
    ``ActivationMaximization`` with its defaults (pixels, jitter 4 by rolling and rotation 1
    degree, total-variation and norm regularisers, RMSprop), which feed the network the 128 px
    images themselves: 0.84x the pixels of a 140 px step.
``xplique``
    ``features_visualizations.optimize`` (Fourier, its colour decorrelation and per-image
    min-max scaling to [0, 255], Adam 0.05) with Lucid-like transforms built from xplique's own
    (pad 12 with mid-grey, jitter 8, scale 0.9-1.1, jitter 4) and its model input at 140 px, so
    it feeds the network what tfvis feeds it.
``xplique-default``
    xplique's default transforms at 128 px: pad 32, five jitters of 16-32 px, scale 0.92-0.96,
    blur, two jitters of 8 px, flip, then a resize back to 128 px. Each step the network sees a
    random crop of about 44 px of the padded 192 px canvas, enlarged about 2.9 times, so the
    images are optimised for a scale they are not measured at (their channel means stay near
    those of noise: a negative gain on this layer); shown to explain the earlier figure.

Timing: after a warm-up call of each method (tfvis traces its compiled loop once and caches it;
the peers build theirs at every call), ``--rounds`` rounds of ``--round-steps`` steps, the methods
alternated within each round, so that load from other processes falls on all of them alike.
Per step: tfvis and bare, the wall time of the whole call over its steps (per-call overhead
included); the peers, the time from their first step's end to their last step's end over the
steps between (their per-call set-up excluded), read from tf-keras-vis' callbacks and from the
optimizer passed to xplique, in wall seconds and in the process' CPU seconds (all threads: the
steadier measure of work when other processes share the cores). The table gives each method's
median over the rounds and the median of its per-round ratios to tfvis. Quality: a ``--steps`` render of each method (its time printed
too, not alternated), then the mean activation of each image's target channel on the rendered
image (``act``) and the mean over channels of that over the channel's absolute mean on uniform
noise images (``gain``).

Usage: pip install -e '.[bench]'; python benchmarks/featurevis.py [--steps 256] [--size 128]
       [--channels 8] [--layer block4_conv3] [--peers tfvis,bare,tf-keras-vis,xplique]
       [--rounds 8] [--round-steps 6] [--gain-for METHODS] [--precision float32] [--weights hed] [--curve 16,32,64]
"""

import argparse
import importlib
import os
import platform
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvis  # noqa: E402
from tfvis import featurevis, precision  # noqa: E402
from tfvis.featurevis import param as fv_param  # noqa: E402
from tfvis.featurevis import transforms as fv_transforms  # noqa: E402

METHODS = ("tfvis", "tfvis-bf16", "tfvis-xla", "bare", "bare-bf16", "tf-keras-vis", "xplique", "xplique-default")
DEFAULT = ("tfvis", "bare", "tf-keras-vis", "xplique")


def fed_side(size):
    """The side of the images tfvis' standard transforms feed the network for ``size`` px renders."""
    return fv_transforms.output_size(fv_transforms.standard(), size)[0]


class Tfvis:
    def __init__(self, model, layer, channels, size, precision_="float32", jit=False):
        self.args = (model, [f"{layer}:{c}" for c in channels])
        self.kwargs = dict(size=size, progress=False, precision=precision_, jit_compile=jit)
        self.fed = fed_side(size)
        self.precision = None

    def __call__(self, steps):
        """``(images in [0, 255], (wall seconds, CPU seconds) per step)``."""
        start = _clock()
        images = featurevis.render(*self.args, steps=steps, **self.kwargs)
        self.precision = images.precision
        return np.asarray(images) * 255.0, _per_step([start, _clock()], steps)

    def curve(self, steps):
        """Images in [0, 255] after each of ``steps`` (one render, its checkpoints)."""
        results = featurevis.render(*self.args, steps=max(steps), thresholds=steps, **self.kwargs)
        return {t: np.asarray(r) * 255.0 for t, r in results.items()}


class Bare:
    """The floor: one tf.function running every step, nothing but the optimisation (built once, restarted per call)."""

    def __init__(self, model, layer, channels, size, bf16=False):
        features = keras.Model(model.input, model.get_layer(layer).output)
        self.precision = "float32"
        if bf16:
            features, self.precision = precision.bfloat16_model(features), "bfloat16"
        b, h, w = len(channels), size, size
        self.fed = fed_side(size)
        scale = tf.constant(fv_param.spectrum_scale(h, w) * 0.25)
        self.start = tf.random.stateless_normal([2, b, 3, h, w // 2 + 1], [0, 1], stddev=0.01)
        spectrum = self.spectrum = tf.Variable(self.start)
        colour = tf.constant(fv_param.COLOR_CORRELATION_NORMALIZED.T)
        transform = fv_transforms.standard()
        optimizer = self.optimizer = keras.optimizers.Adam(0.05)
        optimizer.build([spectrum])
        index = tf.constant(list(enumerate(channels)), tf.int32)

        def image():
            planes = tf.signal.irfft2d(tf.complex(spectrum[0] * scale, spectrum[1] * scale), fft_length=[h, w])
            return tf.sigmoid(tf.tensordot(tf.transpose(planes, [0, 2, 3, 1]), colour, axes=1))

        @tf.function
        def run(n):
            for i in tf.range(n):
                with tf.GradientTape() as tape:
                    act = tf.cast(features(transform(image(), tf.stack([0, i])) * 255.0, training=False), tf.float32)
                    per_image = tf.reduce_mean(tf.gather_nd(tf.transpose(act, [0, 3, 1, 2]), index), axis=[1, 2])
                    loss = -tf.reduce_sum(per_image)
                optimizer.apply_gradients([(tape.gradient(loss, spectrum), spectrum)])
            return image()

        self.run = run

    def __call__(self, steps):
        start = _clock()
        self.spectrum.assign(self.start)
        for variable in self.optimizer.variables:  # step count and moments; the learning rate is a variable too
            if "learning_rate" not in variable.name:
                variable.assign(tf.zeros_like(variable))
        images = self.run(tf.constant(steps)).numpy() * 255.0
        return images, _per_step([start, _clock()], steps)


def _clock():
    """``(wall, CPU)`` seconds: CPU time (all threads of the process) is the steadier measure of work under load."""
    return np.array([time.perf_counter(), time.process_time()])


def _per_step(stamps, steps=None):
    """``(wall, CPU)`` seconds per step between the first and last of ``stamps``.

    ``steps`` given: the stamps are a call's start and end. Else one stamp per step's end, and the
    first step (set-up, tracing) is left out.
    """
    if steps is None:
        if len(stamps) < 3:
            raise RuntimeError("time at least 3 steps")
        steps = len(stamps) - 1
    return (stamps[-1] - stamps[0]) / steps


class TfKerasVis:
    def __init__(self, model, layer, channels, size):
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.activation_maximization.callbacks import Callback

        features = keras.Model(model.input, model.get_layer(layer).output)
        self.maximization = ActivationMaximization(features, clone=False)
        self.channels, self.size, self.fed, self.precision = list(channels), size, size, "float32"
        stamps = self.stamps = []

        class Clock(Callback):
            def __call__(self, i, values, grads, scores, model_outputs, **kwargs):
                stamps.append(_clock())

        self.clock = Clock()

    def __call__(self, steps):
        channels = self.channels

        def score(output):
            return [tf.reduce_mean(output[i, ..., c]) for i, c in enumerate(channels)]

        seed = tf.random.stateless_uniform((len(channels), self.size, self.size, 3), [0, 2], 0, 255)
        self.stamps.clear()
        images = self.maximization(score, seed_input=seed, steps=steps, input_range=(0, 255), callbacks=[self.clock])
        return np.asarray(images, np.float32), _per_step(self.stamps)


class Xplique:
    def __init__(self, model, layer, channels, size, default=False):
        from xplique.features_visualizations import Objective
        from xplique.features_visualizations import transformations as xt

        self.size, self.default, self.precision = size, default, "float32"
        self.fed = size if default else fed_side(size)
        # xplique reads the layer's static shape, and resizes the transformed images to the model's input size
        fixed = keras.models.clone_model(model, input_tensors=keras.Input((self.fed, self.fed, 3)))
        fixed.set_weights(model.get_weights())
        self.objective = Objective.channel(fixed, layer, list(channels))
        _, _, names, shape = self.objective.compile()
        if len(names) != len(channels) or shape[0] != len(channels):
            raise RuntimeError(f"xplique's objective renders {shape[0]} images for {len(channels)} channels")
        if default:
            self.transforms = "standard"
        else:  # Lucid's standard transforms, from xplique's own (no rotation there), in its [0, 255] image range
            self.transforms = xt.compose_transformations(
                [xt.pad(12, 127.5), xt.random_jitter(8), xt.random_scale((0.9, 1.1)), xt.random_jitter(4)]
            )
        stamps = self.stamps = []

        class ClockedAdam(keras.optimizers.Adam):
            def apply_gradients(self, grads_and_vars):
                result = super().apply_gradients(grads_and_vars)
                stamps.append(_clock())
                return result

        self.optimizer_class = ClockedAdam

    def __call__(self, steps):
        from xplique.features_visualizations import optimize

        self.stamps.clear()
        images, _ = optimize(
            self.objective,
            optimizer=self.optimizer_class(0.05),
            nb_steps=steps,
            use_fft=True,
            custom_shape=(self.size, self.size),
            values_range=(0, 255),
            transformations=self.transforms,
            save_every=None,
        )
        images = np.asarray(images[-1] if isinstance(images, (list, tuple)) else images, np.float32)
        return images.reshape(-1, self.size, self.size, 3), _per_step(self.stamps)


def build(name, model, layer, channels, size, precision_):
    if name == "tfvis":
        return Tfvis(model, layer, channels, size, precision_)
    if name == "tfvis-bf16":
        return Tfvis(model, layer, channels, size, "bfloat16")
    if name == "tfvis-xla":
        return Tfvis(model, layer, channels, size, "float32", jit=True)
    if name in ("bare", "bare-bf16"):
        return Bare(model, layer, channels, size, bf16=name == "bare-bf16")
    if name == "tf-keras-vis":
        return TfKerasVis(model, layer, channels, size)
    return Xplique(model, layer, channels, size, default=name == "xplique-default")


def quality(model, layer, channels, images, size):
    """``(act, gain)``: mean target activation on the renders, and its mean ratio to the channel's absolute mean on noise."""
    features = keras.Model(model.input, model.get_layer(layer).output)
    noise = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    base = features.predict(noise, verbose=0).mean(axis=(0, 1, 2))
    if images.shape[1:3] != (size, size):
        images = tf.image.resize(images, (size, size)).numpy()
    acts = features.predict(np.clip(images, 0, 255).astype(np.float32), verbose=0, batch_size=8)
    means = np.array([acts[i, ..., c].mean() for i, c in enumerate(channels)])
    return float(means.mean()), float(np.mean(means / np.maximum(np.abs(base[list(channels)]), 1e-6)))


def table(args, channels, runners, per_step, total, scores):
    print(f"\nVGG16 ({args.weights} conv weights) {args.layer}, {len(channels)} channels in one batch, {args.size} px renders")
    print(
        f"timing: {args.rounds} alternated rounds of {args.round_steps} steps (load average {os.getloadavg()[0]:.1f} at the end); quality: {args.steps}-step renders"
    )
    reference = np.array(per_step["tfvis"]) if per_step.get("tfvis") else None
    head = f"{'method':16s}{'precision':>10s}{'px fed':>7s}{'s/step':>9s}{'/tfvis':>8s}{'cpu s':>8s}{'/tfvis':>8s}{'per px':>8s}{'run s':>9s}{'act':>8s}{'gain':>7s}"
    print(head)
    for name, run in runners.items():
        times = np.array(per_step[name]).reshape(-1, 2)
        med = np.median(times, axis=0) if len(times) else np.full(2, np.nan)
        ratio = cpu_ratio = per_px = ""
        if reference is not None and len(times):
            paired = np.median(times / reference, axis=0)
            ratio, cpu_ratio = f"{paired[0]:7.2f}x", f"{paired[1]:7.2f}x"
            per_px = f"{paired[0] * (runners['tfvis'].fed / run.fed) ** 2:7.2f}x"
        seconds = f"{total[name]:9.1f}" if name in total else f"{'':9s}"
        act, gain = (f"{scores[name][0]:8.1f}", f"{scores[name][1]:7.1f}") if name in scores else ("", "")
        print(
            f"{name:16s}{run.precision or '':>10s}{run.fed:7d}{med[0]:9.3f}{ratio:>8s}{med[1]:8.3f}{cpu_ratio:>8s}{per_px:>8s}{seconds}{act:>8s}{gain:>7s}"
        )
    print(
        "s/step: wall seconds per step, median over rounds; /tfvis: median of the per-round ratios to tfvis; cpu s: the same in"
    )
    print("process CPU seconds (all threads; steadier under load); per px: the wall ratio per pixel fed to the network")
    print(
        "(x (tfvis' side / the method's side)^2); run s: the quality render; act: mean target-channel activation on the renders;"
    )
    print("gain: act over the channel's |mean| on uniform noise, averaged over the channels")
    print("targets: tfvis within 1.1x of bare, faster per step than every peer at equal or better gain, >= 2.5x tf-keras-vis")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256, help="steps of the quality render of each method")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--peers", default=",".join(DEFAULT), help=f"comma-separated, from: {', '.join(METHODS)}")
    parser.add_argument("--rounds", type=int, default=8, help="alternated timing rounds")
    parser.add_argument("--round-steps", type=int, default=6, help="steps per method per timing round")
    parser.add_argument("--gain-for", default=None, help="methods given a --steps quality render (default: all; '' for none)")
    parser.add_argument(
        "--precision", default="float32", choices=precision.PRECISIONS, help="tfvis' precision (default: float32)"
    )
    parser.add_argument("--weights", default="hed", help="VGG16 weights (tfvis.load_model); hed: offline, conv only")
    parser.add_argument("--curve", default="", help="steps at which to measure tfvis' gain too, e.g. 16,32,64,128 (one render)")
    args = parser.parse_args()
    methods = [m for m in args.peers.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from: {', '.join(METHODS)}")
    gain_for = methods if args.gain_for is None else [m for m in args.gain_for.split(",") if m]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; {precision.summary()}")
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; devices: {[d.device_type for d in tf.config.list_physical_devices()]}"
    )
    print(
        f"tfvis --precision {args.precision} resolves to {precision.resolve_precision(args.precision, importlib.import_module('tfvis.featurevis.render').AUTO_BFLOAT16)}"
    )
    model = tfvis.load_model("vgg16", weights=args.weights, include_top=False)
    channels = list(range(args.channels))
    runners, per_step, total, scores = {}, {m: [] for m in methods}, {}, {}
    for name in methods:
        try:
            runners[name] = build(name, model, args.layer, channels, args.size, args.precision)
            start = time.perf_counter()
            runners[name](3)  # trace / compile
            print(f"{name}: warm-up call {time.perf_counter() - start:.1f} s", flush=True)
        except Exception as err:  # a peer that cannot run here is reported, not fatal
            runners.pop(name, None)
            print(f"{name}: skipped ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})", flush=True)
            if os.environ.get("TFVIS_BENCH_DEBUG"):
                traceback.print_exc()
    for r in range(args.rounds):
        for name, run in runners.items():
            per_step[name].append(run(args.round_steps)[1])
        print(
            f"round {r + 1}: "
            + ", ".join(f"{n} {v[-1][0]:.3f}" for n, v in per_step.items() if v)
            + f" s/step (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    if args.rounds and gain_for:
        table(args, channels, runners, per_step, total, scores)  # the timing now, in case the quality renders are cut short
    for name in [m for m in methods if m in gain_for and m in runners]:
        start = time.perf_counter()
        images, _ = runners[name](args.steps)
        total[name] = time.perf_counter() - start
        scores[name] = quality(model, args.layer, channels, images, args.size)
        print(
            f"{name}: {args.steps} steps in {total[name]:.1f} s, act {scores[name][0]:.1f}, gain {scores[name][1]:.1f}",
            flush=True,
        )

    table(args, channels, runners, per_step, total, scores)
    if args.curve and "tfvis" in runners:
        checkpoints = sorted({int(t) for t in args.curve.split(",") if t})
        curve = {
            t: quality(model, args.layer, channels, images, args.size)
            for t, images in runners["tfvis"].curve(checkpoints).items()
        }
        print("tfvis by step: " + ", ".join(f"{t}: act {a:.1f}, gain {g:.1f}" for t, (a, g) in curve.items()))
        equal_gain(args, curve, per_step, scores)


def equal_gain(args, curve, per_step, scores):
    """Time to equal gain: tfvis' steps to reach each peer's ``--steps`` gain (first checkpoint at or above it)."""
    points = sorted(
        {**{t: g for t, (_, g) in curve.items()}, **({args.steps: scores["tfvis"][1]} if "tfvis" in scores else {})}.items()
    )
    tfvis_step = float(np.median(np.array(per_step["tfvis"]).reshape(-1, 2)[:, 0]))
    print(f"time to equal gain (tfvis at {tfvis_step:.3f} s/step; peers: {args.steps} steps at their median s/step)")
    for name, (_, gain) in scores.items():
        if name == "tfvis" or not per_step.get(name):
            continue
        peer = float(np.median(np.array(per_step[name]).reshape(-1, 2)[:, 0])) * args.steps
        reached = next((t for t, g in points if g >= gain), None)
        if reached is None:
            print(f"  {name:14s} gain {gain:5.1f} in {peer:7.1f} s; tfvis does not reach it within {points[-1][0]} steps")
            continue
        print(
            f"  {name:14s} gain {gain:5.1f} in {peer:7.1f} s; tfvis reaches it by step {reached} in {reached * tfvis_step:6.1f} s: "
            f"{peer / (reached * tfvis_step):.2f}x faster"
        )


if __name__ == "__main__":
    main()
