"""Receptive fields: hand-worked values for the zoo, and an empirical check by gradients.

Notation per axis: r = size, j = jump (stride in input pixels), o = centre of unit 0, s0 = first
pixel of unit 0 (o = s0 + (r - 1) / 2). A layer with kernel k, stride s and left padding p maps
(r, j, s0) to (r + (k - 1) j, j s, s0 - p j). 3 x 3 SAME convs with stride 1 pad 1 on the left.

The empirical checks never use those recurrences: they build networks whose every weight is
positive and which are linear (kernels of ones, no bias, no ReLU, average instead of max
pooling), so that the gradient of a unit with respect to the input is nonzero exactly on the
pixels the unit depends on. That support must lie inside ``box()`` and reach every edge of the
box that lies inside the image.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvis.receptive_field import ReceptiveField, ReceptiveFieldError, receptive_field, receptive_fields

# --- hand-worked values ---------------------------------------------------------------------------

# VGG16, 224 x 224 (any size: 3 x 3 / 1 SAME convs always pad 1 on the left, the 2 x 2 / 2 pools
# are VALID). Each conv adds 2 j, each pool adds 1 j and doubles j; each conv moves s0 by -j.
VGG16 = {
    # name: (r, j, o)
    "block1_conv1": (3, 1, 0.0),  # r = 1 + 2*1 = 3, s0 = 0 - 1 = -1, o = -1 + 1 = 0
    "block1_conv2": (5, 1, 0.0),  # r = 3 + 2 = 5, s0 = -2, o = -2 + 2 = 0
    "block1_pool": (6, 2, 0.5),  # r = 5 + 1*1 = 6, j = 2, s0 = -2, o = -2 + 2.5 = 0.5
    "block2_conv1": (10, 2, 0.5),  # r = 6 + 2*2 = 10, s0 = -2 - 2 = -4, o = -4 + 4.5 = 0.5
    "block2_conv2": (14, 2, 0.5),  # r = 10 + 4 = 14, s0 = -6, o = -6 + 6.5 = 0.5
    "block2_pool": (16, 4, 1.5),  # r = 14 + 1*2 = 16, j = 4, s0 = -6, o = -6 + 7.5 = 1.5
    "block3_conv3": (40, 4, 1.5),  # r = 16 + 3*(2*4) = 40, s0 = -6 - 3*4 = -18, o = -18 + 19.5 = 1.5
    "block3_pool": (44, 8, 3.5),  # r = 40 + 4 = 44, j = 8, o = -18 + 21.5 = 3.5
    "block4_conv3": (92, 8, 3.5),  # r = 44 + 3*16 = 92, s0 = -18 - 3*8 = -42, o = -42 + 45.5 = 3.5
    "block4_pool": (100, 16, 7.5),  # r = 92 + 8 = 100, j = 16, o = -42 + 49.5 = 7.5
    "block5_conv3": (196, 16, 7.5),  # r = 100 + 3*32 = 196, s0 = -42 - 3*16 = -90, o = -90 + 97.5 = 7.5
    "block5_pool": (212, 32, 15.5),  # r = 196 + 16 = 212, j = 32, o = -90 + 105.5 = 15.5
}

# AlexNet, 227 x 227: conv1 11/4 VALID, 3/2 VALID pools, 5 x 5 SAME conv2 (pads 2), 3 x 3 SAME
# conv3..5 (pad 1); LRN and ReLU change nothing.
ALEXNET = {
    "conv1": (11, 4, 5.0),  # r = 11, j = 4, s0 = 0, o = (11 - 1)/2 = 5
    "norm1": (11, 4, 5.0),
    "pool1": (19, 8, 9.0),  # r = 11 + 2*4 = 19, j = 8, s0 = 0, o = 9
    "conv2": (51, 8, 9.0),  # r = 19 + 4*8 = 51, s0 = 0 - 2*8 = -16, o = -16 + 25 = 9
    "pool2": (67, 16, 17.0),  # r = 51 + 2*8 = 67, j = 16, s0 = -16, o = -16 + 33 = 17
    "conv3": (99, 16, 17.0),  # r = 67 + 2*16 = 99, s0 = -16 - 16 = -32, o = -32 + 49 = 17
    "conv4": (131, 16, 17.0),  # r = 99 + 32 = 131, s0 = -48, o = -48 + 65 = 17
    "conv5": (163, 16, 17.0),  # r = 131 + 32 = 163, s0 = -64, o = -64 + 81 = 17
    "pool5": (195, 32, 33.0),  # r = 163 + 2*16 = 195, j = 32, s0 = -64, o = -64 + 97 = 33
}


# The session's shared zoo models (conftest.py; read-only): geometry does not depend on the weights.


@pytest.fixture(scope="module")
def vgg16(vgg16_random):
    return vgg16_random


@pytest.fixture(scope="module")
def alexnet(alexnet_random_top):
    return alexnet_random_top


@pytest.fixture(scope="module")
def inception(inceptionv1_random):
    return inceptionv1_random


def test_vgg16_hand_values(vgg16):
    fields = receptive_fields(vgg16, list(VGG16))
    for name, (r, j, o) in VGG16.items():
        rf = fields[name]
        assert (rf.size, rf.stride, rf.offset) == ((r, r), (j, j), (o, o)), name
    assert fields["block5_pool"].input_size == (224, 224)  # dynamic input: the default size
    assert fields["block5_pool"].output_size == (7, 7)
    # block1_pool unit (0, 0): s0 = -2, 6 pixels: -2 .. 3, clipped to 0 .. 3.
    assert fields["block1_pool"].box(0, 0) == (-2, -2, 4, 4)
    assert fields["block1_pool"].box(0, 0, image_shape=(224, 224)) == (0, 0, 4, 4)
    # block5_pool unit (3, 5): centre 15.5 + 32 * (3, 5) = (111.5, 175.5), top = 111.5 - 105.5 = 6.
    assert fields["block5_pool"].box(3, 5) == (6, 70, 218, 282)


def test_alexnet_hand_values(alexnet):
    fields = receptive_fields(alexnet, list(ALEXNET))
    for name, (r, j, o) in ALEXNET.items():
        rf = fields[name]
        assert (rf.size, rf.stride, rf.offset) == ((r, r), (j, j), (o, o)), name
    assert fields["pool5"].output_size == (6, 6)  # Keras' own shape: 227 -> 55 -> 27 -> 13 -> 6
    # the last pool5 unit: centre 33 + 5*32 = 193, first pixel 193 - 97 = 96, last 96 + 194 = 290.
    assert fields["pool5"].box(5, 5) == (96, 96, 291, 291)
    assert fields["pool5"].box(5, 5, image_shape=(227, 227)) == (96, 96, 227, 227)


def test_every_layer_is_reported(alexnet):
    fields = receptive_fields(alexnet)
    assert list(fields) == [layer.name for layer in alexnet.layers]
    assert fields["image"] == ReceptiveField((1, 1), (1, 1), (0.0, 0.0), (227, 227), (227, 227))
    assert fields["conv3_relu"] == fields["conv3"]


def test_same_padding_depends_on_input_size(inception):
    # conv2d0 is 7 x 7 / 2 SAME. At 224: out 112, pad = 111*2 + 7 - 224 = 5, left 2 -> s0 = -2,
    # o = -2 + 3 = 1. At 225: out 113, pad = 112*2 + 7 - 225 = 6, left 3 -> s0 = -3, o = 0.
    assert receptive_field(inception, "conv2d0").offset == (1.0, 1.0)
    rf = receptive_field(inception, "conv2d0", input_size=(225, 224))
    assert (rf.size, rf.stride, rf.offset, rf.output_size) == ((7, 7), (2, 2), (0.0, 1.0), (113, 112))
    # maxpool0 3 x 3 / 2 SAME on 112: out 56, pad = 55*2 + 3 - 112 = 1, left 0:
    # r = 7 + 2*2 = 11, j = 4, s0 = -2, o = -2 + 5 = 3.
    rf = receptive_field(inception, "maxpool0")
    assert (rf.size, rf.stride, rf.offset) == ((11, 11), (4, 4), (3.0, 3.0))


def test_inception_mixed_is_union_of_branches(inception):
    names = []
    for m in ("mixed3a", "mixed4a", "mixed5b"):
        names += [m] + [f"{m}_{b}" for b in ("1x1", "3x3", "5x5", "pool_reduce")]
    fields = receptive_fields(inception, names)
    for m in ("mixed3a", "mixed4a", "mixed5b"):
        mixed = fields[m]
        branches = [fields[f"{m}_{b}"] for b in ("1x1", "3x3", "5x5", "pool_reduce")]
        assert all(b.stride == mixed.stride for b in branches)
        boxes = np.array([b.box(0, 0) for b in branches])
        union = (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0))
        assert mixed.box(0, 0) == tuple(int(v) for v in union), m
        assert (mixed.size, mixed.offset) == (fields[f"{m}_5x5"].size, fields[f"{m}_5x5"].offset)  # widest
        assert fields[f"{m}_1x1"].size < fields[f"{m}_3x3"].size < mixed.size
    # mixed3a by hand at 224: maxpool1 r = 27, j = 8, o = 7; the 5x5 branch adds 4*8 -> 59.
    rf = fields["mixed3a"]
    assert (rf.size, rf.stride, rf.offset) == ((59, 59), (8, 8), (7.0, 7.0))


# --- the result object: box and crop ------------------------------------------------------------


def test_box_and_clipping():
    rf = ReceptiveField(size=(5, 4), stride=(2, 3), offset=(1.0, 0.5))
    assert rf.start == (-1, -1)
    assert rf.box(0, 0) == (-1, -1, 4, 3)
    assert rf.box(2, 1) == (3, 2, 8, 6)  # centre (1 + 4, 0.5 + 3) = (5, 3.5)
    assert rf.box(0, 0, image_shape=(10, 10)) == (0, 0, 4, 3)
    assert rf.box(4, 3, image_shape=(8, 10, 3)) == (7, 8, 8, 10)  # bottom 12 -> 8, right 12 -> 10
    assert rf.box(9, 9, image_shape=(8, 8)) == (8, 8, 8, 8)  # entirely outside: empty
    for y, x in [(0, 0), (3, 7), (10, 2)]:
        top, left, bottom, right = rf.box(y, x)
        assert (bottom - top, right - left) == rf.size
        assert ((top + bottom - 1) / 2, (left + right - 1) / 2) == rf.center(y, x)
    with pytest.raises(TypeError):
        rf.box(0.5, 0)


def test_crop_fills_outside_and_keeps_size():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (6, 7, 3)).astype(np.float32)
    rf = ReceptiveField(size=(5, 3), stride=(2, 2), offset=(1.0, 0.0))
    patch = rf.crop(image, 0, 0, fill=-1)  # rows -1 .. 3, cols -1 .. 1
    assert patch.shape == (5, 3, 3) and patch.dtype == np.float32
    assert np.all(patch[0] == -1) and np.all(patch[:, 0] == -1)
    np.testing.assert_array_equal(patch[1:, 1:], image[0:4, 0:2])
    patch = rf.crop(image, 3, 3)  # rows 5 .. 9, cols 5 .. 7
    assert patch.shape == (5, 3, 3)
    np.testing.assert_array_equal(patch[:1, :2], image[5:6, 5:7])
    assert np.all(patch[1:] == 0) and np.all(patch[:, 2] == 0)
    patch = rf.crop(image[..., 0], 1, 2)  # inside: rows 1 .. 5, cols 3 .. 5; no channel axis
    np.testing.assert_array_equal(patch, image[1:6, 3:6, 0])
    patch = rf.crop(image.astype(np.uint8), 20, 20, fill=7)  # all outside
    assert patch.shape == (5, 3, 3) and patch.dtype == np.uint8 and np.all(patch == 7)


def test_crop_of_a_zoo_unit_keeps_the_unit_at_the_centre(alexnet):
    rf = receptive_field(alexnet, "pool5")
    image = np.arange(227 * 227, dtype=np.float32).reshape(227, 227, 1)
    patch = rf.crop(image, 0, 0, fill=-1)  # rows -64 .. 130
    assert patch.shape == (195, 195, 1)
    assert patch[97, 97, 0] == image[33, 33, 0]  # the centre pixel is the unit's centre o = 33
    assert np.all(patch[:64] == -1) and patch[64, 64, 0] == image[0, 0, 0]


def test_layers_without_a_spatial_map_see_the_whole_image(alexnet):
    fields = receptive_fields(alexnet, ["flatten", "fc6", "fc8", "prob"])
    for rf in fields.values():
        assert rf.is_global and rf.size == (227, 227) and rf.stride == (0, 0) and rf.output_size is None
        assert rf.box(0, 0) == (0, 0, 227, 227) == rf.box(3, 9, image_shape=(227, 227))
        assert rf.crop(np.ones((227, 227, 3)), 0, 0).shape == (227, 227, 3)
    x = inp = keras.Input((12, 10, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    x = keras.layers.Dense(4, name="dense_on_map")(x)  # acts on channels: keeps the field
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    x = keras.layers.Dense(3, name="dense")(x)
    model = keras.Model(inp, x)
    fields = receptive_fields(model)
    assert fields["dense_on_map"] == fields["conv"]
    assert fields["gap"].is_global and fields["dense"].box(0, 0) == (0, 0, 12, 10)


# --- the empirical check --------------------------------------------------------------------------


def ones_conv(kernel, **kwargs):
    return keras.layers.Conv2D(1, kernel, use_bias=False, kernel_initializer="ones", **kwargs)


def support(model, output, units, channels=1, seed=0):
    """``|d unit / d input| > 0`` for each unit: one backward pass for a batch of copies of an image.

    Images of a batch are independent, so summing unit ``units[b]`` of copy ``b`` gives, in the
    gradient of copy ``b``, the gradient of that unit alone. The unit is summed over channels:
    the layer's field is that of all its channels.
    """
    probe = keras.Model(model.inputs, output)
    shape = tuple(model.inputs[0].shape[1:-1])
    x = np.random.default_rng(seed).uniform(0, 255, (len(units), *shape, channels)).astype(np.float32)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = probe(x)
        total = tf.reduce_sum(tf.gather_nd(y, [[b, *u] for b, u in enumerate(units)]))
    grad = tape.gradient(total, x).numpy()
    return np.abs(grad).sum(axis=-1) > 0


def check_units(model, layer, units=None, channels=1, output=None):
    """The gradient support of each unit lies in ``box()`` and touches its in-image edges.

    ``output``: the layer's output tensor in ``model`` where ``layer.output`` is not it (a model
    used as a layer).
    """
    rf = receptive_field(model, layer)
    output = model.get_layer(layer).output if output is None else output
    image_shape = tuple(model.inputs[0].shape[1:-1])
    assert rf.input_size == image_shape
    if units is None:
        units = [tuple(int(i) for i in u) for u in np.ndindex(*rf.output_size)]
    masks = support(model, output, units, channels)
    ndim = rf.ndim
    for unit, mask in zip(units, masks):
        raw = rf.box(*unit)
        clipped = rf.box(*unit, image_shape=image_shape)
        where = np.nonzero(mask)
        if any(clipped[a] == clipped[ndim + a] for a in range(ndim)):
            assert not where[0].size, (layer, unit, "a unit in the padding has a gradient")
            continue  # the unit sees only padding (ZeroPadding2D)
        assert where[0].size, (layer, unit, "no gradient")
        for axis in range(ndim):
            lo, hi = where[axis].min(), where[axis].max() + 1
            msg = (layer, unit, axis, (lo, hi), raw)
            assert clipped[axis] <= lo and hi <= clipped[ndim + axis], msg  # inside the box
            if raw[axis] >= 0:
                assert lo == raw[axis], msg  # touches the first edge
            if raw[ndim + axis] <= image_shape[axis]:
                assert hi == raw[ndim + axis], msg  # touches the last edge
    return rf


def valid_model(size):
    x = inp = keras.Input((*size, 1))
    x = ones_conv(3, strides=2, padding="valid", name="c1")(x)
    x = ones_conv(3, padding="valid", name="c2")(x)
    x = keras.layers.AveragePooling2D(2, name="p1")(x)
    return keras.Model(inp, x)


def same_model(size):
    x = inp = keras.Input((*size, 1))
    x = ones_conv(3, strides=2, padding="same", name="c1")(x)
    x = ones_conv(4, strides=2, padding="same", name="c2")(x)  # even kernel: odd total padding
    x = keras.layers.AveragePooling2D(3, strides=2, padding="same", name="p1")(x)
    return keras.Model(inp, x)


def dilated_model(size):
    x = inp = keras.Input((*size, 1))
    x = ones_conv(3, dilation_rate=2, padding="same", name="c1")(x)
    x = ones_conv(3, dilation_rate=(3, 1), padding="valid", name="c2")(x)
    x = ones_conv(2, strides=2, padding="same", name="c3")(x)
    return keras.Model(inp, x)


def pad_crop_model(size):
    x = inp = keras.Input((*size, 1))
    x = keras.layers.ZeroPadding2D(((2, 1), (0, 3)), name="pad")(x)
    x = ones_conv(3, strides=2, padding="valid", name="c1")(x)
    x = keras.layers.Cropping2D(((1, 0), (0, 1)), name="crop")(x)
    x = ones_conv(3, padding="same", name="c2")(x)
    return keras.Model(inp, x)


def anisotropic_model(size):
    x = inp = keras.Input((*size, 1))
    x = keras.layers.DepthwiseConv2D((3, 5), strides=2, padding="same", use_bias=False, depthwise_initializer="ones", name="dw")(
        x
    )
    x = ones_conv((1, 3), strides=(2, 1), padding="same", name="c1")(x)
    x = keras.layers.SeparableConv2D(
        2,
        3,
        padding="valid",
        dilation_rate=(1, 2),
        use_bias=False,
        depthwise_initializer="ones",
        pointwise_initializer="ones",
        name="sep",
    )(x)
    x = keras.layers.AveragePooling2D((1, 3), strides=(1, 2), padding="same", name="p1")(x)
    return keras.Model(inp, x)


def branch_model(size):
    """A strided stem; a 3 x 3 and a 5 x 5 branch concatenated; residual additions (a layer and an op)."""
    x = inp = keras.Input((*size, 1))
    stem = keras.layers.Conv2D(2, 3, strides=2, padding="same", use_bias=False, kernel_initializer="ones", name="stem")(x)
    a = ones_conv(3, padding="same", name="branch3")(stem)
    b = ones_conv(5, padding="same", name="branch5")(stem)
    cat = keras.layers.Concatenate(name="cat")([a, b])
    res = keras.layers.Conv2D(2, 3, padding="same", use_bias=False, kernel_initializer="ones", name="res")(cat)
    add = keras.layers.Add(name="residual")([cat, res])
    down = ones_conv(3, strides=2, padding="same", name="down")(add)
    short = ones_conv(1, strides=2, padding="same", name="short")(add)
    summed = keras.ops.add(down, short)  # an op, not a layer: an unknown size-keeping node
    out = keras.layers.Activation("linear", name="out")(summed)
    return keras.Model(inp, out)


MODELS = {
    "valid": valid_model,
    "same": same_model,
    "dilated": dilated_model,
    "pad_crop": pad_crop_model,
    "anisotropic": anisotropic_model,
    "branch": branch_model,
}


@pytest.mark.parametrize("size", [(15, 15), (16, 16), (17, 14)])
@pytest.mark.parametrize("kind", list(MODELS))
def test_gradient_support_matches_box(kind, size):
    model = MODELS[kind](size)
    for layer in model.layers[1:]:
        check_units(model, layer.name)


def test_branch_model_values():
    # At 16: stem 3/2 SAME: out 8, pad = 7*2 + 3 - 16 = 1, left 0: r = 3, j = 2, s0 = 0.
    # branch3 (pad 1): r = 3 + 2*2 = 7, s0 = -2; branch5 (pad 2): r = 3 + 4*2 = 11, s0 = -4.
    # cat: union -4 .. 6 -> r = 11, o = 1. res: r = 11 + 2*2 = 15, s0 = -6; add: union -> r = 15.
    fields = receptive_fields(branch_model((16, 16)), ["branch3", "branch5", "cat", "res", "residual"])
    assert fields["branch3"].size == (7, 7) and fields["branch3"].offset == (1.0, 1.0)
    assert fields["cat"] == fields["branch5"]
    assert fields["cat"].size == (11, 11) and fields["cat"].offset == (1.0, 1.0)
    assert fields["residual"] == fields["res"] and fields["residual"].size == (15, 15)


def test_conv1d_and_causal_padding():
    x = inp = keras.Input((19, 1))
    x = keras.layers.Conv1D(1, 3, strides=2, padding="causal", use_bias=False, kernel_initializer="ones", name="c1")(x)
    x = keras.layers.Conv1D(1, 4, padding="same", use_bias=False, kernel_initializer="ones", name="c2")(x)
    x = keras.layers.AveragePooling1D(2, name="p1")(x)
    model = keras.Model(inp, x)
    for name in ("c1", "c2", "p1"):
        check_units(model, name)
    # c1 causal pads 2 on the left: r = 3, j = 2, s0 = -2, o = -1.
    rf = receptive_field(model, "c1")
    assert (rf.size, rf.stride, rf.offset, rf.box(0)) == ((3,), (2,), (-1.0,), (-2, 1))


def test_sequential_and_nested_models():
    seq = keras.Sequential(
        [keras.Input((16, 16, 1)), ones_conv(3, strides=2, padding="same", name="s1"), ones_conv(3, name="s2")]
    )
    func = same_model((16, 16))
    assert receptive_field(seq, "s2").size == (7, 7)  # 3 + 2*2
    check_units(seq, "s2")
    inner_in = keras.Input((None, None, 1))
    inner = keras.Model(inner_in, ones_conv(3, strides=2, padding="valid")(inner_in), name="inner")
    x = inp = keras.Input((17, 17, 1))
    x = ones_conv(3, padding="same", name="before")(x)
    mid = x = inner(x)
    x = ones_conv(3, padding="valid", name="after")(x)
    outer = keras.Model(inp, x)
    rf = check_units(outer, "inner", output=mid)
    assert (rf.size, rf.stride, rf.offset) == ((5, 5), (2, 2), (1.0, 1.0))  # r = 3 + 2, s0 = -1
    check_units(outer, "after")
    assert receptive_field(func, "p1").stride == (8, 8)


# --- zoo models at 64 px ------------------------------------------------------------------------


def linearised(model):
    """A copy of ``model`` with the same geometry, no ReLU / LRN, average pools, positive weights."""

    def clone(layer):
        if isinstance(layer, keras.layers.MaxPooling2D):
            return keras.layers.AveragePooling2D.from_config(layer.get_config())
        if isinstance(layer, keras.layers.ReLU) or type(layer).__name__ == "LocalResponseNorm":
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:-1]) // max(layer.groups, 1)
            layer.set_weights([np.full_like(kernel, 1.0 / fan_in), np.zeros_like(bias)])
    return copy


def test_vgg16_gradient_at_64px(zoo_model):
    model = zoo_model("vgg16", input_shape=(64, 64, 3))
    copy = linearised(model)
    # block2_conv2 at 64: r = 14, j = 2, s0 = -6: unit (0, 0) is clipped, (15, 9) lies inside.
    rf = check_units(copy, "block2_conv2", [(0, 0), (15, 9), (31, 31)], channels=3)
    assert rf == receptive_field(model, "block2_conv2")
    # block3_pool: r = 44, j = 8, s0 = -18: unit (3, 3) spans 6 .. 49, inside the image.
    rf = check_units(copy, "block3_pool", [(3, 3), (0, 7), (4, 2)], channels=3)
    assert rf.box(3, 3) == (6, 6, 50, 50)
    assert rf == receptive_field(model, "block3_pool")


def test_inceptionv1_mixed3a_gradient_at_64px(zoo_model):
    model = zoo_model("inceptionv1", input_shape=(64, 64, 3))
    copy = linearised(model)
    rf = check_units(copy, "mixed3a", [(0, 0), (4, 4), (3, 6), (7, 7)], channels=3)
    assert rf == receptive_field(model, "mixed3a") and rf.size == (59, 59)
    check_units(copy, "mixed3a_3x3", [(4, 4)], channels=3)


# --- errors -----------------------------------------------------------------------------------------


def test_unknown_layer_name_lists_valid_names(vgg16):
    with pytest.raises(ValueError, match="no layer 'conv9'.*block1_conv1.*block5_conv3"):
        receptive_field(vgg16, "conv9")


def test_unknown_layers():
    @keras.saving.register_keras_serializable(package="tfvis_tests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    x = inp = keras.Input((16, 16, 1))
    x = ones_conv(3, name="c1")(x)
    x = Doubler(name="doubler")(x)
    kept = ones_conv(3, name="c2")(x)
    halved = keras.layers.Lambda(lambda t: t[:, ::2, ::2, :], name="halve")(kept)
    up = keras.layers.UpSampling2D(name="up")(kept)
    model = keras.Model(inp, [halved, up])
    assert receptive_field(model, "doubler") == receptive_field(model, "c1")  # same size: passes through
    assert receptive_field(model, "c2").size == (5, 5)
    with pytest.raises(ReceptiveFieldError, match="'halve' \\(Lambda\\).*spatial size"):
        receptive_field(model, "halve")
    with pytest.raises(ReceptiveFieldError, match="'up' \\(UpSampling2D\\)"):
        receptive_field(model, "up")


def test_merge_of_different_strides_fails():
    x = inp = keras.Input((16, 16, 1))
    a = keras.layers.Conv2D(1, 2, strides=2, name="strided")(x)  # 8 x 8, j = 2
    b = keras.layers.Cropping2D(4, name="crop")(x)  # 8 x 8, j = 1
    model = keras.Model(inp, keras.layers.Add(name="add")([a, b]))
    with pytest.raises(ReceptiveFieldError, match="'add' \\(Add\\).*different strides"):
        receptive_field(model, "add")


def test_input_size_argument(vgg16):
    rf = receptive_field(vgg16, "block5_pool", input_size=(64, 96))
    assert rf.input_size == (64, 96) and rf.output_size == (2, 3) and rf.size == (212, 212)
    with pytest.raises(ValueError, match="sides"):
        receptive_field(vgg16, "block5_pool", input_size=(64, 96, 3))


def test_global_context_is_not_counted():
    # A squeeze-and-excitation gate (global pooling -> dense -> multiply) and a spatial softmax
    # leave the map's field as its convolutions make it (the documented convention).
    x = inp = keras.Input((16, 16, 1))
    x = ones_conv(3, strides=2, padding="same", name="c1")(x)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    gate = keras.layers.Dense(1, activation="sigmoid", name="excite")(gate)
    x = keras.layers.Multiply(name="gated")([x, gate])
    x = keras.layers.Softmax(axis=(1, 2), name="spatial_softmax")(x)
    model = keras.Model(inp, x)
    fields = receptive_fields(model, ["c1", model.get_layer("excite"), "gated", "spatial_softmax"])
    assert fields["excite"].is_global
    assert fields["gated"] == fields["spatial_softmax"] == fields["c1"]


def test_unbuilt_and_foreign_layers():
    with pytest.raises(ValueError, match="not built"):
        receptive_field(keras.Sequential([keras.layers.Conv2D(1, 3, name="c")]), "c")
    model = valid_model((15, 15))
    with pytest.raises(ValueError, match="not a layer of model"):
        receptive_field(model, keras.layers.Conv2D(1, 3))
