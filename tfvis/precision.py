"""Numeric precision of forward and gradient passes: float32, or bfloat16 where the hardware runs it.

On CPUs with AVX512_BF16 or AMX (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and
later for AVX512_BF16) and on GPUs of compute capability 8.0 and above, a convolutional network
runs its convolutions about twice as fast in bfloat16 (a VGG16 ``block4_conv3`` ascent step at
140 px, batch 8: 0.353 s in float32, 0.182 s in bfloat16 on an AMX CPU). Elsewhere bfloat16 still
runs, but emulated, and slower than float32.

This module tells which precision to use and builds the bfloat16 network:

* :func:`cpu_flags`, :func:`gpu_present`, :func:`bf16_supported`: what the machine offers;
* :func:`resolve_precision`: ``"auto"``, ``"float32"`` or ``"bfloat16"`` to the precision that runs
  (``"auto"`` gives bfloat16 only where it runs natively and the caller has measured that its
  results hold: feature visualization's renders reach float32's activation gain in bfloat16);
* :func:`bfloat16_model`: a bfloat16 copy of a Keras model or feature net, float32 in and out,
  its weights copied from the model (and copied again at every call, so weight changes are seen);
* :func:`for_precision`: the model itself for ``"float32"``, its bfloat16 copy for ``"bfloat16"``.

The copy computes under Keras' ``mixed_bfloat16`` policy: weights stay float32 variables, every
layer casts its inputs and weights to bfloat16 and computes in bfloat16 (accumulating in float32
inside oneDNN's and cuDNN's kernels). Local response normalisation and softmax layers stay in
float32. Gradients with respect to the input come back in float32.

Examples
--------
>>> import keras
>>> inputs = keras.Input((8, 8, 3))
>>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="c")(inputs))
>>> fast = bfloat16_model(model)
>>> fast.get_layer("c").compute_dtype, fast.output.dtype
('bfloat16', 'float32')
>>> resolve_precision("float32")
'float32'
"""

import functools
import warnings

import keras
import tensorflow as tf

from . import graph
from .rules import FastInputGradientConv2D

#: The CPU flags :func:`cpu_flags` reports (``/proc/cpuinfo`` names).
FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2")

#: Values of a ``precision`` option.
PRECISIONS = ("auto", "float32", "bfloat16")

#: Keras' dtype policy of the bfloat16 copies.
POLICY = "mixed_bfloat16"

# Layers kept in float32 in a bfloat16 copy: normalisations whose sums of squares and
# exponentials lose too much in bfloat16's 8-bit mantissa (Keras' mixed-precision advice for softmax).
_FLOAT32_LAYERS = ("LocalResponseNorm", "Softmax", "Activation:softmax")


def cpu_flags(path="/proc/cpuinfo"):
    """Which of :data:`FLAGS` the CPU reports.

    Parameters
    ----------
    path : str
        The kernel's CPU description (Linux). Where it cannot be read (macOS, Windows) every flag
        is reported absent.

    Returns
    -------
    dict of str to bool
        ``{"avx512_bf16": ..., "amx_bf16": ..., "amx_tile": ..., "avx512f": ..., "avx2": ...}``.

    Examples
    --------
    >>> sorted(cpu_flags())
    ['amx_bf16', 'amx_tile', 'avx2', 'avx512_bf16', 'avx512f']
    >>> cpu_flags("/no/such/file")["avx2"]
    False
    """
    found = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    found.update(value.split())
    except OSError:
        pass
    return {flag: flag in found for flag in FLAGS}


def describe_cpu(flags=None):
    """The flags as a short line, e.g. ``'avx2 (no avx512f, avx512_bf16, amx_bf16, amx_tile)'``.

    Parameters
    ----------
    flags : dict, optional
        :func:`cpu_flags`'s answer (read when None).

    Returns
    -------
    str

    Examples
    --------
    >>> describe_cpu({"avx2": True, "avx512f": False, "avx512_bf16": False, "amx_bf16": False, "amx_tile": False})
    'avx2 (no avx512f, avx512_bf16, amx_bf16, amx_tile)'
    """
    flags = cpu_flags() if flags is None else flags
    order = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in order if flags.get(f)]
    lack = [f for f in order if not flags.get(f)]
    text = " ".join(have) if have else "none of " + ", ".join(order)
    return f"{text} (no {', '.join(lack)})" if have and lack else text


def _gpus():
    return tf.config.list_physical_devices("GPU")


def gpu_present():
    """Whether TensorFlow sees a GPU (where it places the ops of a render or a forward pass).

    Returns
    -------
    bool
    """
    return bool(_gpus())


def _gpu_bf16():
    for gpu in _gpus():
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability is None or tuple(capability) < (8, 0):
            return False
    return True


def bf16_supported(flags=None):
    """Whether bfloat16 runs natively where TensorFlow will run the ops.

    With a GPU visible: every GPU has compute capability 8.0 or above (Ampere and later). On the
    CPU: it has ``avx512_bf16`` or ``amx_bf16`` (:func:`cpu_flags`). Elsewhere bfloat16 is
    emulated and slower than float32.

    Parameters
    ----------
    flags : dict, optional
        :func:`cpu_flags`'s answer, to decide for another CPU (read when None).

    Returns
    -------
    bool

    Examples
    --------
    >>> bf16_supported({"avx512_bf16": False, "amx_bf16": True}) or gpu_present()
    True
    """
    if gpu_present():
        return _gpu_bf16()
    flags = cpu_flags() if flags is None else flags
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def resolve_precision(precision="auto", auto_bfloat16=True, flags=None):
    """The precision that runs: ``"float32"`` or ``"bfloat16"``.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
        ``"auto"``: bfloat16 where :func:`bf16_supported` and the caller allows it
        (``auto_bfloat16``), else float32. ``"bfloat16"`` is honoured everywhere, with a
        ``RuntimeWarning`` where it is emulated (slower than float32).
    auto_bfloat16 : bool or "cpu"
        Where ``"auto"`` may choose bfloat16, as the caller measured that its results hold there:
        True, wherever it runs natively; ``"cpu"``, only on a CPU with ``avx512_bf16`` or
        ``amx_bf16`` and no GPU in use; False, nowhere. :func:`tfvis.featurevis.render` passes
        ``"cpu"`` (:data:`tfvis.featurevis.render.AUTO_BFLOAT16`).
    flags : dict, optional
        :func:`cpu_flags`'s answer (read when None).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        ``precision`` not one of :data:`PRECISIONS`, or ``auto_bfloat16`` not True, False or "cpu".

    Examples
    --------
    >>> resolve_precision("auto", auto_bfloat16=False)
    'float32'
    >>> resolve_precision("float32")
    'float32'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if auto_bfloat16 not in (True, False, "cpu"):
        raise ValueError(f"auto_bfloat16={auto_bfloat16!r}; give True, False or 'cpu'")
    if precision == "float32":
        return "float32"
    native = bf16_supported(flags)
    if precision == "bfloat16":
        if not native:
            warnings.warn(
                "precision='bfloat16' on hardware without native bfloat16 (no avx512_bf16 or amx_bf16 on the CPU, "
                "no GPU of compute capability 8.0+): it runs emulated, slower than float32",
                RuntimeWarning,
                stacklevel=2,
            )
        return "bfloat16"
    allowed = auto_bfloat16 is True or (auto_bfloat16 == "cpu" and not gpu_present())
    return "bfloat16" if native and allowed else "float32"


def _keeps_float32(layer):
    name = type(layer).__name__
    if name in _FLOAT32_LAYERS:
        return True
    return isinstance(layer, keras.layers.Activation) and f"Activation:{graph.activation_name(layer)}" in _FLOAT32_LAYERS


def _copy_layer(layer):
    """A fresh layer from ``layer``'s config under :data:`POLICY` (float32 kept where it must, or where the layer refuses a dtype)."""
    if isinstance(layer, FastInputGradientConv2D):  # a feature net's rule: wrap a bfloat16 copy of its convolution
        conv = _copy_layer(layer.conv)
        conv.build((None, None, None, int(layer.conv.kernel.shape[-2])))
        return FastInputGradientConv2D(conv)
    if isinstance(layer, keras.Model):
        return _clone(layer)
    config = layer.get_config()
    if not _keeps_float32(layer):
        try:
            return layer.__class__.from_config({**config, "dtype": POLICY})
        except (TypeError, ValueError):
            pass  # a custom layer that takes no dtype: it computes in float32
    return layer.__class__.from_config(config)


def _clone(model):
    try:
        return keras.models.clone_model(graph.as_functional(model), clone_function=_copy_layer)
    except Exception as err:  # noqa: BLE001 - name the model whatever Keras raised
        raise ValueError(
            f"cannot build a bfloat16 copy of model {model.name!r}: {type(err).__name__}: {err}. "
            "Every layer needs get_config() and from_config() (custom layers: register them with "
            "keras.saving.register_keras_serializable and pass their arguments through get_config)"
        ) from err


class _Bfloat16Copy:
    """The copy and the (source variable, copy variable) pairs that keep it in step."""

    def __init__(self, copy, pairs):
        self.copy, self.pairs = copy, pairs

    def sync(self):
        for source, target in self.pairs:
            target.assign(source)


def _build(model, cast_outputs):
    clone = _clone(model)
    sources, targets = model.weights, clone.weights
    if len(sources) != len(targets) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(sources, targets)):
        raise ValueError(f"the bfloat16 copy of model {model.name!r} does not hold the same weights as the model")
    if cast_outputs:
        count = iter(range(len(graph.as_list(clone.outputs))))

        def cast(output):
            return keras.layers.Activation("linear", dtype="float32", name=f"{clone.name}_float32_{next(count)}")(output)

        inputs = clone.inputs[0] if len(clone.inputs) == 1 else clone.inputs
        clone = keras.Model(inputs, keras.tree.map_structure(cast, clone.output), name=f"{model.name}_bfloat16")
    return _Bfloat16Copy(clone, list(zip(sources, targets)))


def bfloat16_model(model, cast_outputs=True):
    """A copy of ``model`` that computes in bfloat16, with ``model``'s weights.

    For forward passes and gradients (top-k activations, saliency, feature visualization) on
    hardware where :func:`bf16_supported`. The copy has the same layers, names and graph as
    ``model``; every layer is rebuilt from its config under Keras' ``mixed_bfloat16`` policy
    (float32 variables, bfloat16 computation), except local response normalisation and softmax
    layers and custom layers that take no ``dtype``, which stay float32. Its inputs are float32
    (cast to bfloat16 by the first layer); with ``cast_outputs`` its outputs are cast back to
    float32.

    The copy is cached per model (and ``cast_outputs``) while ``model`` lives, and its weights are
    copied from ``model`` at every call, so weight changes made to ``model`` in between are seen
    (a copy of VGG16's conv weights takes a few milliseconds).

    Parameters
    ----------
    model : keras.Model
        Any functional or Sequential Keras model: a classifier, or a feature net from
        :func:`tfvis.graph.feature_net` (its backward rules are kept).
    cast_outputs : bool
        Cast the outputs back to float32 (False: they stay bfloat16, e.g. to cast them later).

    Returns
    -------
    keras.Model
        Same inputs and outputs (structure, shapes and names) as ``model``.

    Raises
    ------
    ValueError
        A layer that cannot be rebuilt from its config (the message names the model).

    Examples
    --------
    >>> import keras, numpy as np
    >>> inputs = keras.Input((8, 8, 3))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="c")(inputs))
    >>> x = np.random.default_rng(0).uniform(size=(1, 8, 8, 3)).astype("float32")
    >>> float(np.abs(bfloat16_model(model)(x) - model(x)).max()) < 0.05
    True
    """
    state = graph.cached(model, ("bfloat16", bool(cast_outputs)), lambda: _build(model, bool(cast_outputs)))
    state.sync()
    return state.copy


def for_precision(model, precision="auto", auto_bfloat16=True, cast_outputs=True):
    """``model`` itself in float32, or its :func:`bfloat16_model` copy, as ``precision`` resolves.

    Parameters
    ----------
    model : keras.Model
    precision : {"auto", "float32", "bfloat16"}
        See :func:`resolve_precision`.
    auto_bfloat16 : bool or "cpu"
        Where ``"auto"`` may choose bfloat16 (the caller measured that its results hold): see
        :func:`resolve_precision`.
    cast_outputs : bool
        See :func:`bfloat16_model`.

    Returns
    -------
    (keras.Model, str)
        The model to run and the precision that it runs in.

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    >>> for_precision(model, "float32") == (model, "float32")
    True
    """
    resolved = resolve_precision(precision, auto_bfloat16)
    if resolved == "float32":
        return model, resolved
    return bfloat16_model(model, cast_outputs), resolved


@functools.lru_cache(maxsize=1)
def summary():
    """What this machine offers, in one line: CPU flags, GPU, native bfloat16.

    Returns
    -------
    str
    """
    flags = cpu_flags()
    gpu = "GPU present" if gpu_present() else "no GPU"
    native = "native bfloat16" if bf16_supported(flags) else "bfloat16 emulated (slow)"
    return f"CPU flags: {describe_cpu(flags)}; {gpu}; {native}"


__all__ = [
    "FLAGS",
    "POLICY",
    "PRECISIONS",
    "bf16_supported",
    "bfloat16_model",
    "cpu_flags",
    "describe_cpu",
    "for_precision",
    "gpu_present",
    "resolve_precision",
    "summary",
]
