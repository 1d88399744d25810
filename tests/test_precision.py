"""tfvis.precision: CPU feature detection, precision resolution and bfloat16 copies of models."""

import importlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvis import featurevis as fv
from tfvis import graph, precision, rules
from tfvis.models.custom_layers import ImagePreprocess, LocalResponseNorm

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw amx_tile amx_bf16 avx512_bf16
bogomips\t: 4000.00

processor\t: 1
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw amx_tile amx_bf16 avx512_bf16
"""

NO_BF16 = {"avx512_bf16": False, "amx_bf16": False, "amx_tile": False, "avx512f": False, "avx2": True}
AMX = {"avx512_bf16": True, "amx_bf16": True, "amx_tile": True, "avx512f": True, "avx2": True}


@pytest.fixture
def cpu_only(monkeypatch):
    """Decide as on a machine without a GPU (where the ops run on the CPU)."""
    monkeypatch.setattr(precision, "gpu_present", lambda: False)


def _tiny(seed=0):
    """[0, 255] -> preprocess -> conv (fused ReLU) -> LRN -> conv -> dense -> softmax: every kind of layer a copy must handle."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3), name="image")
    x = ImagePreprocess(bgr=True, mean=(103.9, 116.8, 123.7), scale=1 / 64, name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(x)
    x = LocalResponseNorm(depth_radius=2, alpha=1e-3, name="norm1")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(x)
    x = keras.layers.ReLU(name="c2_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(5, name="logits")(x)
    x = keras.layers.Softmax(name="probs")(x)
    return keras.Model(inputs, x, name="tiny_bf16")


def _images(n=3, side=20, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype(np.float32)


def _close_in_bf16(got, want):
    """bfloat16 keeps 8 significant bits (relative rounding 2^-9): a few layers deep, errors of about 1% of the scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 0.03 * scale, (np.abs(got - want).max(), scale)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.999


# ---------------------------------------------------------------------------------------------
# What the machine offers
# ---------------------------------------------------------------------------------------------


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert precision.cpu_flags(str(path)) == AMX
    path.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert precision.cpu_flags(str(path)) == NO_BF16
    assert precision.cpu_flags(str(tmp_path / "missing")) == dict.fromkeys(precision.FLAGS, False)


def test_this_cpu_is_read():
    flags = precision.cpu_flags()
    assert set(flags) == set(precision.FLAGS) and all(isinstance(v, bool) for v in flags.values())
    with open("/proc/cpuinfo") as handle:
        words = set(handle.read().split())
    assert flags == {flag: flag in words for flag in precision.FLAGS}
    assert precision.describe_cpu(flags) in precision.summary()


def test_bf16_support_follows_the_flags(cpu_only):
    assert precision.bf16_supported(AMX)
    assert precision.bf16_supported({**NO_BF16, "avx512_bf16": True})  # e.g. AMD Zen 4: AVX512_BF16, no AMX
    assert precision.bf16_supported({**NO_BF16, "amx_bf16": True})
    assert not precision.bf16_supported(NO_BF16)
    assert not precision.bf16_supported({**NO_BF16, "avx512f": True})  # AVX-512 alone has no bfloat16 dot products


def test_auto_is_float32_without_the_flags(cpu_only):
    assert precision.resolve_precision("auto", flags=NO_BF16) == "float32"
    assert precision.resolve_precision("auto", auto_bfloat16=True, flags=AMX) == "bfloat16"
    assert precision.resolve_precision("auto", auto_bfloat16=False, flags=AMX) == "float32"
    assert precision.resolve_precision("float32", flags=AMX) == "float32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve_precision("bfloat16", flags=AMX) == "bfloat16"
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert precision.resolve_precision("bfloat16", flags=NO_BF16) == "bfloat16"
    with pytest.raises(ValueError, match="auto, float32, bfloat16"):
        precision.resolve_precision("float16")


def test_auto_cpu_only_leaves_gpus_in_float32(monkeypatch):
    monkeypatch.setattr(precision, "gpu_present", lambda: False)
    assert precision.resolve_precision("auto", auto_bfloat16="cpu", flags=AMX) == "bfloat16"
    assert precision.resolve_precision("auto", auto_bfloat16="cpu", flags=NO_BF16) == "float32"
    monkeypatch.setattr(precision, "gpu_present", lambda: True)
    monkeypatch.setattr(precision, "_gpu_bf16", lambda: True)  # an Ampere-or-later GPU
    assert precision.bf16_supported(NO_BF16)
    assert precision.resolve_precision("auto", auto_bfloat16="cpu", flags=AMX) == "float32"
    assert precision.resolve_precision("auto", auto_bfloat16=True, flags=NO_BF16) == "bfloat16"
    with pytest.raises(ValueError, match="auto_bfloat16"):
        precision.resolve_precision("auto", auto_bfloat16="gpu")


def _fake_cpu(monkeypatch, flags):
    monkeypatch.setattr(precision, "cpu_flags", lambda path="/proc/cpuinfo": dict(flags))


@pytest.mark.parametrize(
    "flags", [AMX, {**NO_BF16, "avx512f": True, "avx512_bf16": True}, NO_BF16], ids=["amx", "avx512_bf16", "avx2"]
)
def test_render_auto_follows_the_cpu_and_the_default_is_float32_everywhere(monkeypatch, cpu_only, flags):
    """Both branches of "auto", on CPUs faked by their flags (bfloat16 is emulated here where this CPU lacks it)."""
    _fake_cpu(monkeypatch, flags)
    native = flags["avx512_bf16"] or flags["amx_bf16"]
    model = _tiny()
    assert fv.FeatureNet(model, ["c1"], precision="auto").precision == ("bfloat16" if native else "float32")
    auto = fv.render(model, ["c2:0", "c2:1"], size=16, steps=2, progress=False, precision="auto")
    assert auto.precision == ("bfloat16" if native else "float32")
    assert fv.render(model, ["c2:0", "c2:1"], size=16, steps=2, progress=False).precision == "float32"  # the default
    from tfvis import topk

    assert precision.resolve_precision("auto", topk.AUTO_BFLOAT16) == ("bfloat16" if native else "float32")


def test_a_seed_renders_the_same_images_whatever_the_cpu_reports(monkeypatch, cpu_only):
    """The default render is float32 on every CPU: on a faked AMX CPU and a faked AVX2 one, bit for bit the same."""
    render_module = importlib.import_module("tfvis.featurevis.render")
    model = _tiny()
    renders = []
    for flags in (AMX, NO_BF16):
        _fake_cpu(monkeypatch, flags)
        render_module.clear_cache(model)
        renders.append(fv.render(model, ["c2:0", "c2:1", "c2:3"], size=16, steps=6, seed=3, progress=False))
    assert [r.precision for r in renders] == ["float32", "float32"]
    np.testing.assert_array_equal(np.asarray(renders[0]), np.asarray(renders[1]))
    np.testing.assert_array_equal(renders[0].values, renders[1].values)
    _fake_cpu(monkeypatch, AMX)
    fast = fv.render(model, ["c2:0", "c2:1", "c2:3"], size=16, steps=6, seed=3, progress=False, precision="auto")
    assert (
        fast.precision == "bfloat16" and np.abs(np.asarray(fast) - np.asarray(renders[0])).max() > 0
    )  # what "auto" would change


def test_report_cli_defaults_to_float32():
    from tfvis.cli.report import build_parser

    assert build_parser("vgg", "vgg16").parse_args([]).precision == "float32"


def test_auto_on_this_machine_matches_its_flags():
    flags = precision.cpu_flags()
    if precision.gpu_present() or flags["avx512_bf16"] or flags["amx_bf16"]:
        pytest.skip("this machine runs bfloat16 natively")
    assert precision.resolve_precision("auto") == "float32"
    model = _tiny()
    assert fv.FeatureNet(model, ["c1"], precision="auto").precision == "float32"
    result = fv.render(model, ["c2:0", "c2:1"], size=16, steps=2, progress=False, precision="auto")
    assert result.precision == "float32"


# ---------------------------------------------------------------------------------------------
# bfloat16 copies
# ---------------------------------------------------------------------------------------------


def test_bfloat16_copy_computes_in_bfloat16_and_matches_float32():
    model = _tiny()
    copy = precision.bfloat16_model(model)
    assert copy is not model and [layer.name for layer in copy.layers[: len(model.layers)]] == [
        layer.name for layer in model.layers
    ]
    dtypes = {layer.name: layer.compute_dtype for layer in copy.layers}
    assert dtypes["c1"] == dtypes["c2"] == dtypes["logits"] == dtypes["preprocess"] == "bfloat16"
    assert dtypes["norm1"] == dtypes["probs"] == "float32"  # kept: normalisations
    assert all(v.dtype == "float32" for v in copy.weights)  # mixed policy: float32 variables
    x = _images()
    got = copy(x)
    assert got.dtype == tf.float32 and got.shape == (3, 5)
    _close_in_bf16(got, model(x))
    assert not np.array_equal(got.numpy(), model(x).numpy())  # it did round
    # a feature net with several outputs, uncast
    net = keras.Model(model.input, [model.get_layer("c1").output, model.get_layer("c2_relu").output])
    raw = precision.bfloat16_model(net, cast_outputs=False)(x)
    assert [o.dtype for o in raw] == [tf.bfloat16, tf.bfloat16]
    for got, want in zip(raw, net(x)):
        _close_in_bf16(tf.cast(got, tf.float32), want)


def test_bfloat16_gradients_match_float32():
    model = _tiny()
    net = keras.Model(model.input, model.get_layer("c2").output)
    x = tf.constant(_images(2, 24))

    def grad(m):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_mean(tf.cast(m(x), tf.float32)[..., 2])
        return tape.gradient(value, x)

    want, got = grad(net), grad(precision.bfloat16_model(net))
    assert got.dtype == tf.float32
    cosine = float(tf.reduce_sum(want * got) / (tf.norm(want) * tf.norm(got)))
    assert cosine > 0.99


def test_bfloat16_copy_is_cached_and_follows_weight_changes():
    model = _tiny()
    x = _images(1)
    copy = precision.bfloat16_model(model)
    before = copy(x).numpy()
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel, bias + np.arange(5, dtype=np.float32)])  # moves the softmax
    again = precision.bfloat16_model(model)
    assert again is copy
    after = again(x).numpy()
    _close_in_bf16(after, model(x))
    assert not np.allclose(after, before, atol=1e-3)


def test_bfloat16_copy_of_a_rewritten_feature_net():
    """Feature nets whose convolutions backpropagate with forward convolutions (tfvis.rules.fast_conv) copy too."""
    model = _tiny()
    net = graph.feature_net(model, ["c2"], rules.for_input_gradients())
    assert any(isinstance(layer, rules.FastInputGradientConv2D) for layer in net.layers)
    copy = precision.bfloat16_model(net)
    assert any(isinstance(layer, rules.FastInputGradientConv2D) and layer.compute_dtype == "bfloat16" for layer in copy.layers)
    x = _images(2)
    _close_in_bf16(copy(x), net(x))


def test_for_precision():
    model = _tiny()
    assert precision.for_precision(model, "float32") == (model, "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        copy, resolved = precision.for_precision(model, "bfloat16")
    assert resolved == "bfloat16" and copy is precision.bfloat16_model(model)


def test_uncopyable_layer_is_named():
    class Opaque(keras.layers.Layer):
        def __init__(self, fn, **kwargs):  # a function argument: Keras cannot write its config
            super().__init__(**kwargs)
            self.fn = fn

        def call(self, x):
            return self.fn(x)

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, Opaque(tf.math.sin)(inputs), name="opaque_model")
    with pytest.raises(ValueError, match="opaque_model"):
        precision.bfloat16_model(model)


# ---------------------------------------------------------------------------------------------
# Renders in bfloat16
# ---------------------------------------------------------------------------------------------


def test_render_in_bfloat16_climbs_like_float32():
    model = _tiny()
    kwargs = dict(size=24, steps=30, seed=2, progress=False)
    single = fv.render(model, ["c2:0", "c2:3"], precision="float32", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated here
        half = fv.render(model, ["c2:0", "c2:3"], precision="bfloat16", **kwargs)
    assert single.precision == "float32" and half.precision == "bfloat16"
    assert half.failed == [] and 0 <= half.min() and half.max() <= 1
    # the objective climbs about as far as in float32 (this tiny model's renders part ways within a few
    # per cent of each other as bfloat16 rounding changes the trajectory: 4-8% at these settings)
    assert half.values[-1] > half.values[0]
    climb32 = single.values[-1] - single.values[0]
    assert abs((half.values[-1] - half.values[0]) - climb32) < 0.15 * abs(climb32)
    # measured in float32, the bfloat16 renders reach the objective of the float32 ones
    objective = fv.objectives.channel("c2:0", batch=0) + fv.objectives.channel("c2:3", batch=1)
    reached32 = fv.objective_value(model, objective, np.asarray(single) * 255.0)
    reached16 = fv.objective_value(model, objective, np.asarray(half) * 255.0)
    assert reached16 == pytest.approx(reached32, rel=0.15)


def test_top_k_in_bfloat16_ranks_like_float32_and_auto_follows_the_cpu(monkeypatch, cpu_only):
    """bfloat16 top-k values are float32's at bfloat16's rounding; "auto" is bfloat16 on an AMX CPU, float32 on an AVX2 one."""
    from tfvis.topk import top_k

    model = _tiny()
    images = np.random.default_rng(1).uniform(0, 255, (48, 20, 20, 3)).astype("float32")
    exact = top_k(model, images, "c2", k=4, methods=(), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated here
        fast = top_k(model, images, "c2", k=4, methods=(), progress=False, precision="bfloat16")
    scale = np.abs(exact.values).max()
    assert np.abs(fast.values - exact.values).max() < 0.03 * scale
    overlap = [len(set(exact.image_ids[c]) & set(fast.image_ids[c])) / 4 for c in range(len(exact.channels))]
    assert np.mean(overlap) >= 0.75
    monkeypatch.setattr(precision, "cpu_flags", lambda path=None: NO_BF16)
    auto = top_k(model, images, "c2", k=4, methods=(), progress=False, precision="auto")
    np.testing.assert_array_equal(auto.values, exact.values)
    np.testing.assert_array_equal(auto.image_ids, exact.image_ids)
    monkeypatch.setattr(precision, "cpu_flags", lambda path=None: AMX)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "auto" takes bfloat16 only where it is native: no warning
        auto = top_k(model, images, "c2", k=4, methods=(), progress=False, precision="auto")
    np.testing.assert_array_equal(auto.values, fast.values)
    np.testing.assert_array_equal(auto.image_ids, fast.image_ids)
