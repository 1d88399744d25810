"""InceptionV1 (GoogLeNet) as Lucid uses it, with Lucid's layer names, and its weight reader.

This is the network of Lucid's ``InceptionV1.pb`` (the same graph as TensorFlow's DeepDream
``inception5h``, 1008 classes), laid out so that the graph's constants reproduce its activations.

Layers: ``preprocess`` (RGB [0, 255] minus 117, Lucid's value range [-117, 138]), ``conv2d0``
(7 x 7 / 2), ``maxpool0`` (3 x 3 / 2), ``localresponsenorm0``, ``conv2d1`` (1 x 1),
``conv2d2`` (3 x 3), ``localresponsenorm1``, ``maxpool1``, ``mixed3a``, ``mixed3b``,
``maxpool4``, ``mixed4a`` ... ``mixed4e``, ``maxpool10``, ``mixed5a``, ``mixed5b``; with the top:
``avgpool0`` (7 x 7, VALID), ``flatten``, ``softmax2`` (logits) and ``softmax2_softmax``. Every
convolution and pooling layer pads as TensorFlow's SAME does (an odd padding puts the extra pixel
at the bottom and right), except ``avgpool0``.

Each mixed block ``m`` has the branches ``m_1x1``; ``m_3x3_bottleneck`` then ``m_3x3``;
``m_5x5_bottleneck`` then ``m_5x5``; ``m_pool`` (3 x 3 max pool, stride 1) then
``m_pool_reduce``. The four branch outputs are concatenated *before* their ReLU by the layer
``m``, followed by a single ReLU ``m_relu`` (ReLU commutes with concatenation).

Correspondence with Lucid's tensor names: every conv and dense layer here is linear and is
followed by ``<name>_relu`` where it has its own ReLU, so Lucid's ``X_pre_relu`` is this model's
``X`` and Lucid's ``X`` is ``X_relu``. In particular ``mixed4a`` here is Lucid's
``mixed4a_pre_relu`` (the tensor Lucid builds by concatenating the branches' pre-ReLU inputs) and
``mixed4a_relu`` is Lucid's ``mixed4a``; ``softmax2`` here is Lucid's ``softmax2_pre_activation``
and ``softmax2_softmax`` is Lucid's ``softmax2``. The branch convolutions ``m_1x1``, ``m_3x3``,
``m_5x5`` and ``m_pool_reduce`` have no ReLU layer of their own: their rectified values are the
matching channel ranges of ``m_relu``.

The auxiliary classifier heads of the graph (``head0_bottleneck``, ``nn0``, ``softmax0``,
``head1_bottleneck``, ``nn1``, ``softmax1``) are not built; their constants are ignored.

Local response normalisation: the graph's two ``LRN`` nodes hold ``depth_radius=5,
alpha=1e-4, beta=0.5, bias=2`` in TensorFlow's convention, where alpha multiplies the plain sum of
squares over the 11 channels ``c - 5 ... c + 5`` (Caffe and PyTorch divide alpha by the window
size). These are :data:`DEFAULT_LRN`; the loader reads the values from the file's nodes anyway
(:func:`build_options`), so a graph holding other values is reproduced too.

Weight sources: Lucid's ``InceptionV1.pb`` (:data:`LUCID_PB`) and any Keras weight file of this
architecture.
"""

from pathlib import Path

import keras
import tensorflow as tf
from google.protobuf.message import DecodeError

from .custom_layers import ImagePreprocess, LocalResponseNorm, conv_relu
from .info import ModelInfo
from .safeload import check_file_size, max_weight_bytes
from .weights import WeightFile, WeightsFormatError, WeightsTooLargeError, read_error, read_keras_weights
from .zoo import ZooEntry

NAME = "inceptionv1"
DEFAULT_SIZE = 224
TOP_LAYERS = ("softmax2",)
CLASSES = 1008

# Branch widths of each mixed block, from the kernel shapes of Lucid's graph:
# (1x1, 3x3_bottleneck, 3x3, 5x5_bottleneck, 5x5, pool_reduce). The block's width is
# 1x1 + 3x3 + 5x5 + pool_reduce.
BRANCHES = {
    "mixed3a": (64, 96, 128, 16, 32, 32),
    "mixed3b": (128, 128, 192, 32, 96, 64),
    "mixed4a": (192, 96, 204, 16, 48, 64),
    "mixed4b": (160, 112, 224, 24, 64, 64),
    "mixed4c": (128, 128, 256, 24, 64, 64),
    "mixed4d": (112, 144, 288, 32, 64, 64),
    "mixed4e": (256, 160, 320, 32, 128, 128),
    "mixed5a": (256, 160, 320, 48, 128, 128),
    "mixed5b": (384, 192, 384, 48, 128, 128),
}
MIXED_LAYERS = tuple(BRANCHES)
BRANCH_SUFFIXES = ("1x1", "3x3_bottleneck", "3x3", "5x5_bottleneck", "5x5", "pool_reduce")
CONV_LAYERS = ("conv2d0", "conv2d1", "conv2d2") + tuple(f"{m}_{suffix}" for m in MIXED_LAYERS for suffix in BRANCH_SUFFIXES)
REPORT_LAYERS = ("conv2d0", "conv2d1", "conv2d2") + MIXED_LAYERS  # what the CLI reports by default
WEIGHTED_LAYERS = CONV_LAYERS + TOP_LAYERS  # every layer that holds a kernel and a bias
LRN_LAYERS = ("localresponsenorm0", "localresponsenorm1")
MAXPOOL_AFTER = {"conv2d0": "maxpool0", "mixed3b": "maxpool4", "mixed4e": "maxpool10"}

# Without the top every spatial layer pads as SAME (output = ceil(input / stride)), so each of the
# five stride-2 stages (conv2d0, maxpool0, maxpool1, maxpool4, maxpool10) maps a size of at least 1
# to at least 1: a 1 x 1 image is accepted, and mixed5b is ceil(H / 32) x ceil(W / 32).
MIN_SIZE = 1
TOTAL_STRIDE = 32
TOP_GRID = 7  # avgpool0 is 7 x 7 VALID: with the top, mixed5b must be exactly 7 x 7 (inputs 193 ... 224)

# Lucid: image_value_range = (-117, 255 - 117) on RGB input.
LUCID_MEAN_RGB = (117.0, 117.0, 117.0)

# TensorFlow's LRN convention (alpha is not divided by the window size); the values of the
# localresponsenorm0/1 nodes of Lucid's InceptionV1.pb.
DEFAULT_LRN = {"depth_radius": 5, "alpha": 1e-4, "beta": 0.5, "bias": 2.0}
# What TensorFlow's LRN op assumes for an attribute a NodeDef leaves out.
_TF_LRN_ATTR_DEFAULTS = {"depth_radius": 5, "alpha": 1.0, "beta": 0.5, "bias": 1.0}

# Parameters of Lucid's graph, auxiliary heads included: bounds what its weight files may declare.
PARAMS = 13_460_000

LUCID_PB = WeightFile(
    "InceptionV1.pb",
    "https://storage.googleapis.com/modelzoo/InceptionV1.pb",
    None,
    "Lucid's frozen InceptionV1 (GoogLeNet, inception5h) TensorFlow graph",
    54,  # 13.46M float32 parameters with the auxiliary heads; this model's layers alone are 28 MB
)


def _lrn_settings(lrn, layer):
    """The LocalResponseNorm arguments for ``layer`` from :func:`build`'s ``lrn`` argument."""
    if lrn is None:
        return dict(DEFAULT_LRN)
    if not isinstance(lrn, dict):
        raise TypeError(f"lrn must be a dict, got {type(lrn).__name__}")
    if set(lrn) & set(LRN_LAYERS):  # per layer: {"localresponsenorm0": {...}, ...}
        unknown = set(lrn) - set(LRN_LAYERS)
        if unknown:
            raise ValueError(f"lrn has unknown layer(s) {sorted(unknown)}; expected {list(LRN_LAYERS)}")
        lrn = lrn.get(layer) or {}
    unknown = set(lrn) - set(DEFAULT_LRN)
    if unknown:
        raise ValueError(f"lrn has unknown key(s) {sorted(unknown)}; expected {sorted(DEFAULT_LRN)}")
    return {**DEFAULT_LRN, **lrn}


def _check_top_input(input_shape):
    grid = [None if side is None else -(-side // TOTAL_STRIDE) for side in input_shape[:2]]  # SAME: ceil
    if grid != [TOP_GRID, TOP_GRID]:
        raise ValueError(
            f"with include_top=True the input must be {DEFAULT_SIZE} x {DEFAULT_SIZE} (any size from "
            f"{(TOP_GRID - 1) * TOTAL_STRIDE + 1} to {TOP_GRID * TOTAL_STRIDE} gives the 7 x 7 grid that "
            f"avgpool0 and softmax2 need), got input_shape={tuple(input_shape)}; use include_top=False "
            "for other sizes"
        )


def _mixed(x, name, widths):
    """An Inception block whose concatenation ``name`` holds the branches' pre-ReLU outputs."""
    n1x1, n3x3_bottleneck, n3x3, n5x5_bottleneck, n5x5, npool_reduce = widths
    conv = keras.layers.Conv2D
    branch_1x1 = conv(n1x1, 1, padding="same", name=f"{name}_1x1")(x)
    bottleneck = conv_relu(x, n3x3_bottleneck, 1, name=f"{name}_3x3_bottleneck")
    branch_3x3 = conv(n3x3, 3, padding="same", name=f"{name}_3x3")(bottleneck)
    bottleneck = conv_relu(x, n5x5_bottleneck, 1, name=f"{name}_5x5_bottleneck")
    branch_5x5 = conv(n5x5, 5, padding="same", name=f"{name}_5x5")(bottleneck)
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(npool_reduce, 1, padding="same", name=f"{name}_pool_reduce")(pooled)
    x = keras.layers.Concatenate(axis=-1, name=name)([branch_1x1, branch_3x3, branch_5x5, branch_pool])
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def build(include_top=True, input_shape=None, preprocess=None, lrn=None, classes=CLASSES):
    """Build Lucid's InceptionV1 with linear conv/dense layers, separate ReLUs and preprocessing inside.

    Parameters
    ----------
    include_top : bool
        Add ``avgpool0``, ``flatten``, ``softmax2`` and ``softmax2_softmax``; the input is then
        224 x 224.
    input_shape : tuple, optional
        ``(H, W, 3)``; default 224 x 224 with the top, any size of at least :data:`MIN_SIZE`
        without.
    preprocess : dict, optional
        Arguments of :class:`ImagePreprocess`; default Lucid's: RGB minus 117.
    lrn : dict, optional
        Settings of the two LRN layers in TensorFlow's convention: either one dict with any of
        ``depth_radius``, ``alpha``, ``beta``, ``bias`` for both layers, or
        ``{"localresponsenorm0": {...}, "localresponsenorm1": {...}}`` (what
        :func:`read_lucid_pb` returns). Missing values are :data:`DEFAULT_LRN`'s.
    classes : int
        Units of ``softmax2``.

    Returns
    -------
    keras.Model
        Named ``"inceptionv1"``; takes float32 RGB images in [0, 255] (input ``"image"``).

    Raises
    ------
    ValueError
        ``include_top`` with an input whose ``mixed5b`` grid is not 7 x 7, or unknown ``lrn`` keys.
    """
    if input_shape is None:
        input_shape = (DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3)
    if include_top:
        _check_top_input(input_shape)
    lrn_settings = {layer: _lrn_settings(lrn, layer) for layer in LRN_LAYERS}
    preprocess = preprocess or preprocess_for("imagenet")

    images = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocess(name="preprocess", **preprocess)(images)
    x = conv_relu(x, 64, 7, name="conv2d0", strides=2)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="maxpool0")(x)
    x = LocalResponseNorm(name="localresponsenorm0", **lrn_settings["localresponsenorm0"])(x)
    x = conv_relu(x, 64, 1, name="conv2d1")
    x = conv_relu(x, 192, 3, name="conv2d2")
    x = LocalResponseNorm(name="localresponsenorm1", **lrn_settings["localresponsenorm1"])(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="maxpool1")(x)
    for name, widths in BRANCHES.items():
        x = _mixed(x, name, widths)
        if name in MAXPOOL_AFTER:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=MAXPOOL_AFTER[name])(x)
    if include_top:
        x = keras.layers.AveragePooling2D(TOP_GRID, strides=1, padding="valid", name="avgpool0")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(classes, name="softmax2")(x)
        x = keras.layers.Softmax(name="softmax2_softmax")(x)
    return keras.Model(images, x, name=NAME)


def _parse_graph_def(path):
    expected = "Lucid's InceptionV1.pb (a serialized TensorFlow GraphDef)"
    check_file_size(path, max_weight_bytes(PARAMS))
    try:
        data = Path(path).read_bytes()
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(data)
    except (OSError, DecodeError, ValueError, RuntimeError) as err:
        raise read_error(path, err, expected) from err
    return graph_def


def _lrn_attrs(node):
    attrs = {}
    for key, default in _TF_LRN_ATTR_DEFAULTS.items():
        if key not in node.attr:
            attrs[key] = default
        elif key == "depth_radius":
            attrs[key] = int(node.attr[key].i)
        else:
            attrs[key] = float(node.attr[key].f)
    return attrs


def read_lucid_pb(path):
    """Read Lucid's ``InceptionV1.pb`` into layer arrays and the LRN settings.

    The frozen graph stores each layer's kernel and bias as ``Const`` nodes named ``<layer>_w`` and
    ``<layer>_b`` (``conv2d0_w``, ``mixed3a_3x3_bottleneck_b``, ``softmax2_w``, ...): conv kernels
    as (H, W, in, out) and ``softmax2_w`` as (1024, 1008), the layouts Keras uses. The constants of
    the auxiliary heads (``head0_*``, ``nn0_*``, ``softmax0_*``, ``head1_*``, ``nn1_*``,
    ``softmax1_*``) are ignored.

    Parameters
    ----------
    path : str or Path
        The ``.pb`` file.

    Returns
    -------
    arrays : dict
        ``{layer_name: [kernel, bias]}`` for the layers of :data:`WEIGHTED_LAYERS` found in the file.
    lrn : dict
        ``{"localresponsenorm0": {...}, "localresponsenorm1": {...}}`` with ``depth_radius``,
        ``alpha``, ``beta`` and ``bias`` read from the graph's ``LRN`` nodes of those names (a node
        the file lacks is left out).

    Raises
    ------
    WeightsTooLargeError
        The file, or the constants it declares, exceed
        :func:`~tfvis.models.safeload.max_weight_bytes` for InceptionV1.
    WeightsFormatError
        The file is not a GraphDef, a constant cannot be decoded, or the graph holds none of the
        expected constants.
    """
    graph_def = _parse_graph_def(path)
    wanted = {f"{layer}_{kind}": (layer, i) for layer in WEIGHTED_LAYERS for i, kind in enumerate("wb")}
    found = {}
    lrn = {}
    budget = max_weight_bytes(PARAMS)
    for node in graph_def.node:
        if node.op == "Const" and node.name in wanted:
            # A TensorProto may declare a huge shape with one value that make_ndarray repeats to fill it.
            budget -= _declared_bytes(node, path)
            if budget < 0:
                raise WeightsTooLargeError(
                    f"{path}: its constants (up to {node.name!r}) declare more than the limit of "
                    f"{max_weight_bytes(PARAMS):,} bytes; refused before building them "
                    f"(set TFVIS_MAX_WEIGHT_BYTES to allow more)"
                )
            try:
                value = tf.make_ndarray(node.attr["value"].tensor)
            except (TypeError, ValueError) as err:
                raise WeightsFormatError(f"{path}: constant {node.name!r} cannot be decoded: {err}") from err
            found[node.name] = value.astype("float32", copy=False)
        elif node.op == "LRN" and node.name in LRN_LAYERS:
            lrn[node.name] = _lrn_attrs(node)
    if not found:
        raise WeightsFormatError(
            f"{path} holds none of the constants conv2d0_w ... softmax2_b of Lucid's InceptionV1.pb "
            f"({len(graph_def.node)} graph nodes): it is not that file"
        )
    arrays = {}
    for layer in WEIGHTED_LAYERS:
        kernel, bias = found.get(f"{layer}_w"), found.get(f"{layer}_b")
        if kernel is not None and bias is not None:
            arrays[layer] = [kernel, bias]
        elif kernel is not None or bias is not None:
            missing = f"{layer}_b" if bias is None else f"{layer}_w"
            raise WeightsFormatError(f"{path}: layer {layer!r} has one of its constants but not {missing!r}")
    return arrays, lrn


def _declared_bytes(node, path):
    """Bytes of the array a ``Const`` node's TensorProto declares (its shape times its item size)."""
    tensor = node.attr["value"].tensor
    sizes = [dim.size for dim in tensor.tensor_shape.dim]
    if tensor.tensor_shape.unknown_rank or any(size < 0 for size in sizes):
        raise WeightsFormatError(f"{path}: constant {node.name!r} has no definite shape")
    try:
        item_size = tf.as_dtype(tensor.dtype).size
    except TypeError as err:
        raise WeightsFormatError(f"{path}: constant {node.name!r} has an unknown dtype: {err}") from err
    count = 1
    for size in sizes:
        count *= size
    return count * item_size


def _is_pb(path):
    return Path(path).suffix.lower() == ".pb"


def read_weights(path):
    """Read any supported InceptionV1 weight file into ``{layer_name: [kernel, bias]}``.

    ``.pb`` files are read as Lucid's graph (:func:`read_lucid_pb`), anything else as a Keras
    weight file.
    """
    if _is_pb(path):
        return read_lucid_pb(path)[0]
    return read_keras_weights(path, max_weight_bytes(PARAMS))


def build_options(path):
    """Extra :func:`build` arguments that the weight file at ``path`` dictates.

    For Lucid's ``.pb`` these are the LRN settings held by its ``LRN`` nodes, ``{"lrn": {...}}``;
    Keras weight files hold no such settings, so the model keeps :data:`DEFAULT_LRN` (``{}``).

    Raises
    ------
    WeightsFormatError
        The ``.pb`` file cannot be read (see :func:`read_lucid_pb`).
    """
    if _is_pb(path):
        return {"lrn": read_lucid_pb(path)[1]}
    return {}


def imagenet_file(include_top):
    """Lucid's ``InceptionV1.pb``, which serves the model with and without the top."""
    return LUCID_PB


def preprocess_for(source_name):
    """:class:`ImagePreprocess` arguments: Lucid's input is RGB minus 117 whatever the weights' source."""
    return {"bgr": False, "mean": LUCID_MEAN_RGB}


#: What every method reads about this model (see :mod:`tfvis.models.info`).
INFO = ModelInfo(name=NAME, value_range=(0.0, 255.0), default_size=DEFAULT_SIZE, min_size=MIN_SIZE, report_layers=REPORT_LAYERS)

#: The declaration :func:`tfvis.models.load_model` reads (see :class:`tfvis.models.zoo.ZooEntry`).
ZOO_ENTRY = ZooEntry(
    name=NAME,
    build=build,
    read_weights=read_weights,
    info=INFO,
    top_layers=TOP_LAYERS,
    imagenet_file=imagenet_file,
    preprocess_for=preprocess_for,
    build_options=build_options,
)
