"""Independent NumPy references, file writers and tiny models shared by the tests."""

import numpy as np


def conv2d_nhwc(x, kernel, bias=None, stride=1, padding="SAME", groups=1):
    """Plain NumPy convolution (cross-correlation, as TensorFlow), TF's SAME/VALID padding, grouped."""
    n, h, w, c = x.shape
    kh, kw, cin, cout = kernel.shape
    if padding == "SAME":
        out_h, out_w = -(-h // stride), -(-w // stride)
        pad_h = max((out_h - 1) * stride + kh - h, 0)
        pad_w = max((out_w - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    group_out = cout // groups
    outputs = []
    for g in range(groups):
        xs = x[..., g * cin : (g + 1) * cin]
        ks = kernel[..., g * group_out : (g + 1) * group_out]
        windows = np.lib.stride_tricks.sliding_window_view(xs, (kh, kw), axis=(1, 2))
        windows = windows[:, : (out_h - 1) * stride + 1 : stride, : (out_w - 1) * stride + 1 : stride]
        outputs.append(np.einsum("nhwcij,ijco->nhwo", windows, ks, optimize=True))
    y = np.concatenate(outputs, axis=-1)
    return y + bias if bias is not None else y


def max_pool_nhwc(x, size, stride):
    """VALID max pooling in NumPy."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return windows[:, ::stride, ::stride].max(axis=(-1, -2))


def relu(x):
    return np.maximum(x, 0.0)


def write_legacy_keras_h5(path, arrays, layer_names=None):
    """Write ``{layer: [kernel, bias]}`` in the Keras 2 HDF5 layout of the keras.applications files.

    Root attribute ``layer_names`` lists every layer (weightless ones too, with empty
    ``weight_names``); each layer group's ``weight_names`` names its datasets (``<layer>_W_1:0``,
    ``<layer>_b_1:0`` as in the VGG16 files of that era).
    """
    import h5py

    layer_names = layer_names or list(arrays)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode("utf8") for n in layer_names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
        for name in layer_names:
            group = f.create_group(name)
            values = arrays.get(name, [])
            weight_names = [f"{name}_{suffix}_1:0" for suffix in ("W", "b")][: len(values)]
            group.attrs["weight_names"] = [w.encode("utf8") for w in weight_names]
            for weight_name, value in zip(weight_names, values):
                group.create_dataset(weight_name, data=value)


def random_arrays(shapes, seed=0, scale=0.05):
    """``{layer: [kernel, bias]}`` of float32 normal values for ``{layer: (kernel_shape, bias_shape)}``."""
    rng = np.random.default_rng(seed)
    return {
        name: [
            (rng.standard_normal(k, dtype=np.float32) * scale),
            (rng.standard_normal(b, dtype=np.float32) * scale),
        ]
        for name, (k, b) in shapes.items()
    }


def levels_arrays(shapes, seed=0, scale=0.05):
    """Like :func:`random_arrays`, about five times faster, for full-size files: seeded uniform values
    on 65536 levels in [-scale, scale).

    Loader tests compare what they load with these arrays element by element, so the values need
    only be distinct enough that a misplaced or transposed block cannot match (a wrong value
    matches with probability 1 / 65536 per element), not normal.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape_pair in shapes.items():
        pair = []
        for shape in shape_pair:
            value = rng.integers(-32768, 32768, shape, dtype=np.int16).astype(np.float32)
            pair.append(np.multiply(value, np.float32(scale / 32768), out=value))
        arrays[name] = pair
    return arrays


def tiny_classifier(size=None, classes=5, seed=0, name="tiny"):
    """Rescaling -> c1 (Conv2D 4, relu) -> pool -> c2 (Conv2D 6, relu) -> gap -> head (Dense logits).

    ``size`` None takes images of any size (what a report probes); Keras' initialisers after
    ``keras.utils.set_random_seed(seed)``.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="head")(x), name=name)


def tiny_feature_cnn(seed=0):
    """A free-size CNN without a head: Rescaling to [-1, 1] -> c1 (6, relu) -> c2 (8, stride 2, relu) -> c3 (8, relu)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c3")(x)
    return keras.Model(inputs, x, name="tiny")
