"""AlexNet as Caffe's BVLC reference model lays it out, and its weight readers.

Layers: ``preprocess`` (RGB [0, 255] to BGR minus Caffe's ImageNet mean), ``conv1`` (linear)
followed by ``conv1_relu``, ``norm1`` (LRN), ``pool1``, ``conv2`` (two groups) with ``conv2_relu``,
``norm2``, ``pool2``, ``conv3``, ``conv4`` and ``conv5`` (the last two in two groups) each with a
``_relu``, ``pool5``; with the top: ``flatten`` (NHWC order), ``fc6`` and ``fc7`` (each with a
``_relu``), ``fc8`` (logits) and ``prob`` (softmax).

Weight source: Guerzhoy's ``bvlc_alexnet.npy``, a TensorFlow port of the BVLC Caffe model, whose
keys ``conv1`` ... ``fc8`` are this model's layer names; and any Keras weight file of this
architecture.
"""

from pathlib import Path

import keras
import numpy as np

from .custom_layers import ImagePreprocess, LocalResponseNorm, conv_relu, dense_relu
from .info import ModelInfo
from .safeload import max_weight_bytes, read_pickled_npy
from .weights import WeightFile, WeightsFormatError, read_keras_weights
from .zoo import ZooEntry

NAME = "alexnet"
DEFAULT_SIZE = 227
# conv1 11x11/4 VALID, then three 3x3/2 VALID pools: pool5 is 1x1 from 67 x 67 on.
MIN_SIZE = 67
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
REPORT_LAYERS = CONV_LAYERS  # what the CLI reports by default
TOP_LAYERS = ("fc6", "fc7", "fc8")

# Caffe's ImageNet mean (ilsvrc_2012_mean.npy averaged over pixels), in BGR order.
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)

# Caffe's BVLC AlexNet LRN: local_size, alpha (Caffe's, divided by local_size), beta, k.
LRN_CAFFE = (5, 1e-4, 0.75, 1.0)

# name, filters, kernel size, strides, padding, groups, (norm, pool) after the ReLU
CONVS = (
    ("conv1", 96, 11, 4, "valid", 1, ("norm1", "pool1")),
    ("conv2", 256, 5, 1, "same", 2, ("norm2", "pool2")),
    ("conv3", 384, 3, 1, "same", 1, ()),
    ("conv4", 384, 3, 1, "same", 2, ()),
    ("conv5", 256, 3, 1, "same", 2, (None, "pool5")),
)

# Parameters of the model with its top (the file's 8 layers): bounds what its weight files may declare.
PARAMS = 60_965_224

BVLC_NPY = WeightFile(
    "bvlc_alexnet.npy",
    "https://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy",
    None,
    "Guerzhoy's TensorFlow port of Caffe's BVLC AlexNet",
    233,
)


def output_size(size):
    """Spatial size of ``pool5`` for an input side of ``size`` pixels (below 1: too small).

    Parameters
    ----------
    size : int
        Input height or width.

    Returns
    -------
    int
        Height or width of ``pool5``.
    """
    size = (size - 11) // 4 + 1  # conv1
    for _ in range(3):  # pool1, pool2, pool5; the convs in between keep the size
        size = (size - 3) // 2 + 1
    return size


def build(include_top=True, input_shape=None, preprocess=None, classes=1000):
    """Build BVLC AlexNet with linear conv/dense layers, separate ReLUs and preprocessing inside.

    Parameters
    ----------
    include_top : bool
        Add ``flatten``, ``fc6``, ``fc7``, ``fc8`` and ``prob``; the input is then 227 x 227.
    input_shape : tuple, optional
        ``(H, W, 3)``; default 227 x 227 with the top, any size of at least 67 x 67 without.
    preprocess : dict, optional
        Arguments of :class:`ImagePreprocess`; default RGB to BGR minus Caffe's ImageNet mean.
    classes : int
        Units of ``fc8``.

    Returns
    -------
    keras.Model
        Takes float32 RGB images in [0, 255].
    """
    if input_shape is None:
        input_shape = (DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3)
    for side in input_shape[:2]:
        if side is not None and side < MIN_SIZE:
            raise ValueError(f"AlexNet needs inputs of at least {MIN_SIZE} x {MIN_SIZE} pixels, got {input_shape}")
    preprocess = preprocess or preprocess_for("imagenet")
    images = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocess(name="preprocess", **preprocess)(images)
    for name, filters, size, strides, padding, groups, after in CONVS:
        x = conv_relu(x, filters, size, name=name, strides=strides, padding=padding, groups=groups)
        norm, pool = after or (None, None)
        if norm:
            x = LocalResponseNorm.from_caffe(*LRN_CAFFE, name=norm)(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name=pool)(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_relu(x, 4096, "fc6")
        x = dense_relu(x, 4096, "fc7")
        x = keras.layers.Dense(classes, name="fc8")(x)
        x = keras.layers.Softmax(name="prob")(x)
    return keras.Model(images, x, name=NAME)


def read_bvlc_npy(path):
    """Read Guerzhoy's ``bvlc_alexnet.npy`` into ``{layer_name: [kernel, bias]}``.

    The file is a pickled dict (written by Python 2) from layer name to ``[weights, biases]``;
    its kernels are HWIO and its grouped kernels split input and output channels into halves
    the way Keras' ``Conv2D(groups=2)`` does, so the arrays are used as they are. The pickle is
    read by :func:`tfvis.models.safeload.read_pickled_npy`, which builds NumPy arrays and plain
    containers only: a file whose pickle asks for anything else is refused and nothing of it runs.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file.

    Returns
    -------
    dict
        The layers among ``conv1`` ... ``conv5``, ``fc6``, ``fc7``, ``fc8`` that the file holds.

    Raises
    ------
    WeightsUnsafeError
        The pickle names a function or class that a dict of arrays does not need.
    WeightsTooLargeError
        The file, or the arrays it declares, exceed :func:`~tfvis.models.safeload.max_weight_bytes`
        for AlexNet.
    WeightsFormatError
        The file is not a NumPy pickle of such a dict, or holds none of those layers.
    """
    expected = "Guerzhoy's bvlc_alexnet.npy (a pickled dict of [weights, biases] per layer)"
    raw = read_pickled_npy(path, max_weight_bytes(PARAMS), expected)
    if not isinstance(raw, dict):
        raise WeightsFormatError(f"{path} could not be read as {expected}: it holds a {type(raw).__name__}")
    arrays = {}
    for name in CONV_LAYERS + TOP_LAYERS:
        if name not in raw:
            continue
        values = raw[name]
        try:
            kernel, bias = (np.asarray(v) for v in values)
            if kernel.dtype == object or bias.dtype == object:
                raise ValueError("entries are not numeric arrays")
        except (TypeError, ValueError) as err:
            raise WeightsFormatError(f"{path}: entry {name!r} should be [weights, biases], two numeric arrays ({err})") from err
        arrays[name] = [kernel, bias]
    if not arrays:
        raise WeightsFormatError(
            f"{path} has none of the keys {', '.join(CONV_LAYERS + TOP_LAYERS)} of bvlc_alexnet.npy "
            f"(it has: {', '.join(map(str, list(raw)[:10])) or 'nothing'})"
        )
    return arrays


def read_weights(path):
    """Read any supported AlexNet weight file into ``{layer_name: [kernel, bias]}``.

    Parameters
    ----------
    path : str or Path
        ``bvlc_alexnet.npy`` (any ``.npy`` name) or a Keras weight file.

    Returns
    -------
    dict
        Arrays by layer name.
    """
    if Path(path).suffix.lower() == ".npy":
        return read_bvlc_npy(path)
    return read_keras_weights(path, max_weight_bytes(PARAMS))


def imagenet_file(include_top):
    """The ImageNet weight file: ``bvlc_alexnet.npy`` serves both the full model and the conv part.

    Parameters
    ----------
    include_top : bool
        Whether the model has ``fc6`` ... ``fc8`` (ignored: one file holds every layer).

    Returns
    -------
    WeightFile
        :data:`BVLC_NPY`.
    """
    return BVLC_NPY


def preprocess_for(source_name):
    """:class:`ImagePreprocess` arguments for AlexNet weights: BGR minus Caffe's ImageNet mean.

    Parameters
    ----------
    source_name : str
        Name of the weight source (every source uses the same preprocessing).

    Returns
    -------
    dict
        Keyword arguments of :class:`ImagePreprocess`.
    """
    return {"bgr": True, "mean": CAFFE_MEAN_BGR}


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
)
