"""Benchmark: saliency maps on VGG16, tfvis against tf-keras-vis (gradients, Score-CAM) and xplique (RISE).

Same model (VGG16: hed conv weights, seeded fully connected layers, cut at the ``predictions``
logits so that every library scores the unnormalised class score), same images (scikit-image
photos and crops at ``--size`` px), the same class, one process. Methods (``--methods``):

``vanilla``, ``smoothgrad``
    ``tfvis.saliency.vanilla`` / ``smoothgrad`` against tf-keras-vis' ``Saliency`` with
    ``normalize_map=False`` (its unnormalised ``max_c |dS/dI|``), ``--images`` images. The
    vanilla maps must agree to cosine 0.9999 per image; SmoothGrad draws different noise in each
    library, so its cosine is printed, not required.
``score_cam``, ``score_cam_fast``
    ``tfvis.saliency.score_cam`` against tf-keras-vis' ``Scorecam`` on ``block5_conv3``, every
    channel, or the ``--max-channels`` strongest (tfvis' ``max_channels``, tf-keras-vis'
    ``max_N``), ``--score-images`` images. tf-keras-vis is made to compute tfvis' Score-CAM:
    it scores the softmax of the model's output, so it is given the logits in float64 with a
    zero logit appended, and its score is ``log p_c - log p_zero - S(0)`` = the class logit minus
    its value on the baseline ``0 * X`` (tfvis' ``c_k = S(X * H_k) - S(X_b)``); ReLU as both
    default, ``normalize_cam=False``. It is called one image at a time (on a batch, its
    ``max_N`` scores the union of every image's channels for every image, and its masked copies
    of all images are built in memory at once), with ``expand_cam=False``: its layer-sized map
    is upsampled as tfvis' (``tf.image.resize``, bilinear, half-pixel centres; a few ms, timed)
    instead of by its ``scipy.ndimage.zoom(order=1)`` (corner-aligned). What still differs: its
    masks are upsampled by that zoom, and divided by ``max - min + 1e-7``. The full maps must
    agree to cosine 0.95 per image (measured: 0.973 and 0.991 at 64 px, where block5_conv3 is
    4 x 4 and the two upsamplings differ most; a softmax score or no baseline gives 0.2 or 0.1).
    The fast variants keep the channels of largest standard deviation (tfvis'
    ``rank_by="std"``, tf-keras-vis' ``max_N``): the share of channels both kept is printed, and
    their maps must agree to cosine 0.95 too.
``rise``
    ``tfvis.saliency.rise`` against xplique's ``Rise``: ``--masks`` masks of ``--cell`` x
    ``--cell`` cells kept with probability ``--p``, upsampled bilinearly (``tf.image.resize``,
    half-pixel centres) to ``(cell + 1) * ceil(H / cell)`` px and cropped, the class logit as
    the score, ``--score-images`` images. The masks are random in both (tfvis: seeded, seed =
    round; xplique: unseeded, and one crop offset per batch of masks where tfvis draws one per
    mask), so the maps cannot agree exactly: printed is the per-image Pearson correlation of
    tfvis' and xplique's maps, and for scale that of each library with itself over two rounds
    (two independent draws). xplique divides by each pixel's sum of masks, tfvis by
    ``masks * p``: tfvis' maps are brought to xplique's normalisation (times ``masks * p`` over
    the sum of its own masks, which its seed determines) before the correlation.

Timing: a warm-up call of each side on one image (tracing, the peers' predict functions; its
seconds printed), then ``--rounds`` rounds, tfvis and the peer alternated within each round (the
first of the two alternating too), so that load from other processes falls on both alike. The
agreement is checked on the first round's maps, and the benchmark stops there with an error if a
required agreement fails. Reported: wall seconds per image, the median over rounds, and the
median of the per-round ratios peer / tfvis (above 1: tfvis faster), in wall and in process CPU
seconds (all threads; the steadier measure of work on a shared machine).
Targets (issue 13): vanilla 1.72x and SmoothGrad n=16 1.69x faster than tf-keras-vis.
At the defaults the full Score-CAM dominates: 513 model evaluations per image and side per round.

Usage: pip install -e '.[bench]' (tf-keras-vis); for RISE: pip install --no-deps xplique
       tensorflow-probability tf-keras dm-tree einops opencv-python-headless
       python benchmarks/saliency.py [--methods vanilla,smoothgrad,score_cam,score_cam_fast,rise]
       [--images 32] [--samples 16] [--score-images 4] [--size 224] [--max-channels 64]
       [--masks 1024] [--cell 7] [--p 0.5] [--rounds 2] [--batch-size 16]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvis  # noqa: E402  (first: its quiet TensorFlow start-up, tfvis.startup)

METHODS = ("vanilla", "smoothgrad", "score_cam", "score_cam_fast", "rise")
LAYER = "block5_conv3"
TARGET = 281  # one class for every image (tfvis takes one target per call)
NOISE = 0.15  # SmoothGrad's noise, of the input range, both libraries


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def clock():
    """``(wall, CPU)`` seconds: CPU time (all threads of the process) is the steadier measure of work under load."""
    return np.array([time.perf_counter(), time.process_time()])


def cosines(a, b):
    """Cosine similarity of each image's map in ``a`` and ``b`` (N, H, W)."""
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)


def correlations(a, b):
    """Pearson correlation of each image's map in ``a`` and ``b`` (N, H, W)."""
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return cosines(a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True))


def cpu_flags():
    from methods import cpu_flags as flags  # benchmarks/methods.py

    return flags()


class Pair:
    """One method on both sides: ``ours(images, round)`` and ``peer(images, round)`` give (N, H, W) maps."""

    def __init__(self, name, peer_name, ours, peer, images, required=None):
        self.name, self.peer_name, self.ours, self.peer, self.images = name, peer_name, ours, peer, images
        self.required = required  # minimum cosine per image, else the benchmark stops
        self.warm = {}
        self.times = {"ours": [], "peer": []}  # per round: (wall, CPU) seconds per image
        self.maps = {"ours": [], "peer": []}  # per round

    def warm_up(self, warm_ours, warm_peer):
        for side, run in (("ours", warm_ours), ("peer", warm_peer)):
            self.warm[side], _ = timed(run)

    def run(self, side, r):
        start = clock()
        maps = np.asarray((self.ours if side == "ours" else self.peer)(self.images, r), np.float32)
        self.times[side].append((clock() - start) / len(self.images))
        self.maps[side].append(maps)

    def agreement(self):
        """``(text for the table, required minimum or None, its value)``."""
        ours, peer = self.maps["ours"][0], self.maps["peer"][0]
        cosine = float(cosines(ours, peer).min())
        return f"min cosine {cosine:.6f}", self.required, cosine

    def medians(self):
        ours, peer = np.array(self.times["ours"]), np.array(self.times["peer"])
        return np.median(ours, axis=0), np.median(peer, axis=0), np.median(peer / ours, axis=0)


def gradient_pairs(args, logits, images):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    theirs = Saliency(logits, clone=False)
    bs = args.batch_size

    def peer(samples):
        def run(x, _):
            extra = dict(smooth_samples=samples, smooth_noise=NOISE) if samples else {}
            return np.concatenate(
                [
                    theirs(CategoricalScore([TARGET] * len(x[i : i + bs])), x[i : i + bs], normalize_map=False, **extra)
                    for i in range(0, len(x), bs)
                ]
            )

        return run

    pairs = {}
    if "vanilla" in args.methods:
        pair = Pair(
            "vanilla",
            "tf-keras-vis",
            lambda x, _: tfvis.saliency.vanilla(logits, x, TARGET, batch_size=bs),
            peer(0),
            images,
            required=0.9999,
        )
        pair.warm_up(lambda: pair.ours(images[:bs], 0), lambda: pair.peer(images[:bs], 0))  # every batch has this shape
        pairs["vanilla"] = pair
    if "smoothgrad" in args.methods:
        pair = Pair(
            f"SmoothGrad n={args.samples}",
            "tf-keras-vis",
            lambda x, _: tfvis.saliency.smoothgrad(logits, x, TARGET, noise=NOISE, samples=args.samples, batch_size=bs),
            peer(args.samples),
            images,
        )
        pair.warm_up(lambda: pair.ours(images[:bs], 0), lambda: pair.peer(images[:bs], 0))
        pairs["smoothgrad"] = pair
    return pairs


def logits_for_tf_keras_vis(logits):
    """``logits`` in float64 with a zero logit appended: tf-keras-vis' softmax then gives back ``z_c = log p_c - log p_zero``."""
    z = keras.layers.Activation("linear", dtype="float64", name="logits_float64")(logits.output)
    zero = keras.layers.Lambda(lambda t: tf.zeros_like(t[:, :1]), dtype="float64", name="zero_logit")(z)
    return keras.Model(logits.input, keras.layers.Concatenate(dtype="float64", name="with_zero")([z, zero]))


class ScoreCamPair(Pair):
    def __init__(self, args, logits, images, fast):
        from tf_keras_vis.scorecam import Scorecam

        self.count = args.max_channels if fast else None
        name = f"Score-CAM top {args.max_channels}" if fast else "Score-CAM"
        bs = args.batch_size
        baseline = float(logits(np.zeros((1, *images.shape[1:]), np.float32), training=False)[0, TARGET])
        scorecam = Scorecam(logits_for_tf_keras_vis(logits), clone=False)

        def score(probabilities):  # float64 softmax of [z, 0]: the class logit, less its value on the baseline 0 * X
            return tf.math.log(probabilities[:, TARGET]) - tf.math.log(probabilities[:, -1]) - baseline

        def ours(x, _, count=self.count):
            return tfvis.saliency.score_cam(
                logits, x, TARGET, layer=LAYER, batch_size=bs, max_channels=count, rank_by="std"
            )  # tf-keras-vis' max_N keeps the channels of largest standard deviation

        def peer(x, _, count=self.count):
            maps = [
                scorecam(
                    score,
                    x[i : i + 1],
                    penultimate_layer=LAYER,
                    seek_penultimate_conv_layer=False,
                    batch_size=bs,
                    max_N=count,
                    expand_cam=False,
                    normalize_cam=False,
                )
                for i in range(len(x))
            ]  # each (1, h, w): upsampled as tfvis does, so that only the masks' upsampling differs
            return tf.image.resize(np.concatenate(maps)[..., None], x.shape[1:3], method="bilinear")[..., 0].numpy()

        super().__init__(name, "tf-keras-vis", ours, peer, images, required=0.95)
        self.fast, self.features = fast, keras.Model(logits.input, logits.get_layer(LAYER).output)
        warm = min(bs, 32)  # channels scored in the warm-up: a full batch of masked copies (tfvis adds the baseline row)
        self.warm_up(lambda: ours(images[:1], 0, warm - 1), lambda: peer(images[:1], 0, warm))

    def agreement(self):
        text, required, cosine = super().agreement()
        if not self.fast:
            return text, required, cosine
        from tfvis.saliency.cams import strongest_channels

        acts = np.asarray(self.features.predict(self.images, verbose=0))
        ours = strongest_channels(acts, self.count, "std")
        theirs = np.argsort(-acts.std(axis=(1, 2)), axis=1, kind="stable")[:, : self.count]  # tf-keras-vis: top std
        shared = np.mean([len(set(a) & set(b)) / self.count for a, b in zip(ours, theirs)])
        return f"{text} ({shared:.0%} same channels)", None, cosine


class RisePair(Pair):
    def __init__(self, args, logits, images):
        from xplique.attributions import Rise

        bs, size = args.batch_size, images.shape[1:3]
        self.options = dict(masks=args.masks, cell=args.cell, p=args.p)
        explainer = Rise(logits, batch_size=bs, nb_samples=args.masks, grid_size=args.cell, preservation_probability=args.p)
        one_hot = np.zeros((len(images), logits.output.shape[-1]), np.float32)
        one_hot[:, TARGET] = 1

        def ours(x, r, masks=args.masks):
            return tfvis.saliency.rise(logits, x, TARGET, masks=masks, cell=args.cell, p=args.p, seed=r, batch_size=bs)

        def peer(x, _):
            return np.asarray(explainer.explain(x, one_hot[: len(x)]))[..., 0]

        def warm_peer():  # one batch of masks; and its mask draw for the timed shape
            explainer.nb_samples = bs
            peer(images[:1], 0)
            explainer.nb_samples = args.masks
            Rise._get_masks((len(images), *size, images.shape[-1]), args.masks, args.cell, args.p)

        super().__init__(f"RISE {args.masks} masks", "xplique", ours, peer, images)
        self.size = size
        self.warm_up(lambda: ours(images[:1], 0, bs), warm_peer)

    def ours_as_xplique(self, maps, seed):
        """tfvis' maps divided by each pixel's sum of its masks instead of ``masks * p`` (xplique's normalisation)."""
        from tfvis.saliency.perturbation import rise_mask_chunks

        o = self.options
        total = sum(chunk.sum(0) for chunk in rise_mask_chunks(self.size, o["masks"], o["cell"], o["p"], seed))
        return maps * (o["masks"] * o["p"]) / (total + 1e-4)

    def agreement(self):
        ours = [self.ours_as_xplique(m, r) for r, m in enumerate(self.maps["ours"])]
        peer = self.maps["peer"]
        both = np.median([correlations(o, p) for o, p in zip(ours, peer)])
        text = f"median r {both:.3f}, min {min(correlations(o, p).min() for o, p in zip(ours, peer)):.3f}"
        if len(ours) > 1:
            itself = np.median(correlations(ours[0], ours[1])), np.median(correlations(peer[0], peer[1]))
            text += f" (tfvis-tfvis {itself[0]:.3f}, xplique-xplique {itself[1]:.3f})"
        return text, None, both


def versions():
    import importlib.metadata as md

    names = ("tensorflow", "keras", "numpy", "tf-keras-vis", "xplique", "tf-keras")
    found = []
    for name in names:
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            found.append(f"{name} -")
    return f"tfvis {tfvis.__version__}, " + ", ".join(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from: {', '.join(METHODS)}")
    parser.add_argument("--images", type=int, default=32, help="images for vanilla and SmoothGrad")
    parser.add_argument("--samples", type=int, default=16, help="SmoothGrad's samples")
    parser.add_argument("--score-images", type=int, default=4, help="images for Score-CAM and RISE")
    parser.add_argument("--size", type=int, default=224, help="image side in px")
    parser.add_argument("--max-channels", type=int, default=64, help="channels of the fast Score-CAM")
    parser.add_argument("--masks", type=int, default=1024, help="RISE's masks (best a multiple of --batch-size)")
    parser.add_argument("--cell", type=int, default=7, help="RISE's grid cells per side")
    parser.add_argument("--p", type=float, default=0.5, help="RISE's probability of keeping a cell")
    parser.add_argument("--rounds", type=int, default=2, help="alternated timing rounds (2 or more for RISE's self-correlation)")
    parser.add_argument("--batch-size", type=int, default=16, help="model inputs per call, both sides")
    args = parser.parse_args()
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from: {', '.join(METHODS)}")
    try:
        import tf_keras_vis  # noqa: F401

        if "rise" in args.methods:
            import xplique  # noqa: F401
    except ImportError as err:
        raise SystemExit(f"this benchmark compares with tf-keras-vis and xplique ({err}): see its usage") from None

    keras.config.disable_interactive_logging()  # tf-keras-vis' Scorecam calls predict without verbose=0: no progress bars
    print(f"CPU: {cpu_flags()}; {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}")
    print(versions())
    full = tfvis.load_model("vgg16", weights="auto", include_top=True, input_shape=(args.size, args.size, 3))
    logits = keras.Model(full.input, full.get_layer("predictions").output, name="vgg16_logits")
    _, images = tfvis.images.sample_dataset(max(args.images, args.score_images), size=args.size)
    pairs = gradient_pairs(args, logits, images[: args.images])
    few = images[: args.score_images]
    for fast, name in ((False, "score_cam"), (True, "score_cam_fast")):
        if name in args.methods:
            pairs[name] = ScoreCamPair(args, logits, few, fast)
    if "rise" in args.methods:
        pairs["rise"] = RisePair(args, logits, few)
    for pair in pairs.values():
        print(
            f"warm-up (one call, excluded): {pair.name}: tfvis {pair.warm['ours']:.1f} s,"
            f" {pair.peer_name} {pair.warm['peer']:.1f} s",
            flush=True,
        )

    for r in range(args.rounds):
        for pair in pairs.values():
            for side in ("ours", "peer") if r % 2 == 0 else ("peer", "ours"):
                pair.run(side, r)
            print(
                f"round {r + 1}: {pair.name}: tfvis {pair.times['ours'][-1][0]:.3f},"
                f" {pair.peer_name} {pair.times['peer'][-1][0]:.3f} s/image"
                f" (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            if r == 0:
                text, required, value = pair.agreement()
                if required and value < required:
                    raise SystemExit(
                        f"{pair.name}: the maps disagree ({text} < {required}): the two libraries did not compute the same thing"
                    )

    print(f"\nVGG16 logits (hed conv weights), {args.size} px, batch {args.batch_size}, {args.rounds} alternated rounds")
    print(
        f"images: {args.images} for vanilla and SmoothGrad, {args.score_images} for Score-CAM and RISE"
        f" (RISE: cell {args.cell}, p {args.p})"
    )
    print(f"CPU: {cpu_flags()}; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'method':22s}{'peer':>14s}{'tfvis s/img':>13s}{'peer s/img':>12s}{'ratio':>8s}{'cpu ratio':>10s}  agreement")
    for pair in pairs.values():
        ours, peer, ratio = pair.medians()
        text, _, _ = pair.agreement()
        print(f"{pair.name:22s}{pair.peer_name:>14s}{ours[0]:13.3f}{peer[0]:12.3f}{ratio[0]:7.2f}x{ratio[1]:9.2f}x  {text}")
    print("s/img: wall seconds per image, median over rounds; ratio: median of the per-round peer / tfvis (above 1: tfvis")
    print("faster); cpu ratio: the same in process CPU seconds (all threads); agreement: on the first round's maps")
    print("targets: vanilla 1.72x, SmoothGrad 1.69x")


if __name__ == "__main__":
    main()
