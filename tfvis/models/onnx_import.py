"""Import an ONNX image model (a PyTorch ``torch.onnx.export``, a tf2onnx file) as a Keras model.

:func:`load_onnx` reads the file with the ``onnx`` package only (a protobuf: nothing in it runs)
and builds a Keras 3 functional model that takes NHWC float32 images and computes what the ONNX
graph computes, one ordinary Keras layer per ONNX operator where one exists.

Layout
------
ONNX image tensors are NCHW; the Keras graph keeps every image tensor NHWC. Each ONNX tensor is
held as a Keras tensor together with a permutation ``perm`` (Keras axis ``i`` holds ONNX axis
``perm[i]``): ``(0, 2, 3, 1)`` for an NCHW tensor held NHWC, the identity for 2-D tensors and for
the NHWC tensors that tf2onnx files start from. A Transpose only changes ``perm`` (tf2onnx's
leading ``Transpose(0, 3, 1, 2)`` vanishes); an operator that needs another layout gets a
``Permute`` layer named ``<node>_nchw`` or ``<node>_nhwc`` (a Flatten of an NCHW tensor orders its
features channel-major, as ONNX does). Weights are converted once: a Conv kernel
``(O, I/groups, kH, kW)`` becomes Keras' ``(kH, kW, I/groups, O)``, axis attributes and
broadcast constants follow the layout.

Layer names
-----------
Taken from the ONNX node names:

* PyTorch module paths: ``/layer3/layer3.3/conv1/Conv`` gives ``layer3_3_conv1`` (the leading
  ``/`` and the trailing operator dropped, each repeated parent prefix dropped, ``.`` and ``/``
  replaced by ``_``); an operator directly inside a module that holds submodules adds its type
  (``/layer1/layer1.0/Add`` gives ``layer1_0_add``); ``/Flatten`` gives ``flatten``.
* tf2onnx files keep Keras' layer names: the scope after the model's own scope
  (``model/block1_conv1/Conv2D`` and ``functional_1/block1_conv1_1/BiasAdd`` give
  ``block1_conv1``; the ``_1`` that Keras 3 adds to every scope is dropped).
* Several operators in one module or layer: the first one with weights (else the first) takes the
  name, the others add their type (``block1_conv1_relu``, ``dense_3_softmax``), as the tfvis zoo
  names its separate activations.
* Nodes without names get ``<optype>_<n>``; names that collide get ``_1``, ``_2``, ...
"""

import math
import re
from pathlib import Path

import keras
import numpy as np

from .custom_layers import LocalResponseNorm
from .safeload import check_file_size, max_weight_bytes
from .weights import WeightsFormatError, WeightsTooLargeError

# Layout of an NCHW ONNX tensor held NHWC in Keras (Keras axis i holds ONNX axis perm[i]).
CHANNELS_LAST = (0, 2, 3, 1)

# Operators computed ahead of time when every input is a constant (shape arithmetic).
_FOLDABLE = {
    "Constant",
    "Identity",
    "Shape",
    "Size",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Cast",
    "Slice",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Reshape",
    "ConstantOfShape",
    "Floor",
    "Ceil",
    "Neg",
    "ReduceProd",
    "Transpose",
    "Range",
    "Equal",
    "Where",
    "Min",
    "Max",
    "Expand",
    "Flatten",
}
_WEIGHTED = {"Conv", "Gemm", "MatMul", "BatchNormalization"}
_PASS_THROUGH = {"Identity", "Dropout"}
_ONNX_DTYPES = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
    12: np.uint32,
    13: np.uint64,
}


def _custom(cls):
    return keras.saving.register_keras_serializable(package="tfvis")(cls)


# --- Layers Keras lacks -------------------------------------------------------------------------


@_custom
class PadND(keras.layers.Layer):
    """Pad every non-batch axis: ``constant`` (with ``value``), ``reflect`` or ``edge`` (ONNX Pad modes).

    Parameters
    ----------
    paddings : sequence of (int, int)
        (before, after) for each non-batch axis, in the Keras tensor's order.
    mode : {"constant", "reflect", "edge"}
    value : float
        Fill value of ``constant`` mode (``-inf`` pads max pooling).
    """

    def __init__(self, paddings, mode="constant", value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.paddings = [tuple(int(v) for v in p) for p in paddings]
        self.mode = str(mode)
        self.value = float(value)

    def call(self, inputs):
        widths = [(0, 0)] + list(self.paddings)
        if self.mode == "edge":
            x = inputs
            for axis, (before, after) in enumerate(widths):
                if before or after:
                    size = x.shape[axis]
                    indices = np.clip(np.arange(-before, size + after), 0, size - 1).astype("int32")
                    x = keras.ops.take(x, indices, axis=axis)
            return x
        if self.mode == "reflect":
            return keras.ops.pad(inputs, widths, mode="reflect")
        return keras.ops.pad(inputs, widths, constant_values=self.value)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(None if n is None else n + b + a for n, (b, a) in zip(input_shape[1:], self.paddings))

    def get_config(self):
        return {**super().get_config(), "paddings": [list(p) for p in self.paddings], "mode": self.mode, "value": self.value}


@_custom
class AveragePool2DWithPads(keras.layers.Layer):
    """ONNX AveragePool on NHWC images with explicit (possibly asymmetric) pads and ceil-mode overhang.

    Parameters
    ----------
    pool_size, strides : (int, int)
    paddings : ((int, int), (int, int))
        ONNX ``pads`` as ((top, bottom), (left, right)).
    overhang : (int, int)
        Rows and columns added at the end by ``ceil_mode``; never counted in the divisor.
    count_include_pad : bool
        Whether ``paddings`` count in the divisor (ONNX ``count_include_pad``).
    """

    def __init__(self, pool_size, strides, paddings, overhang=(0, 0), count_include_pad=False, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(v) for v in pool_size)
        self.strides = tuple(int(v) for v in strides)
        self.paddings = tuple(tuple(int(v) for v in p) for p in paddings)
        self.overhang = tuple(int(v) for v in overhang)
        self.count_include_pad = bool(count_include_pad)

    def _window_sums(self, x, widths):
        padded = keras.ops.pad(x, [(0, 0)] + widths + [(0, 0)])
        mean = keras.ops.average_pool(padded, self.pool_size, self.strides, padding="valid")
        return mean * float(np.prod(self.pool_size))

    def call(self, inputs):
        (top, bottom), (left, right) = self.paddings
        full = [(top, bottom + self.overhang[0]), (left, right + self.overhang[1])]
        sums = self._window_sums(inputs, full)
        ones = keras.ops.ones_like(inputs[..., :1])
        if self.count_include_pad:
            ones = keras.ops.pad(ones, [(0, 0), (top, bottom), (left, right), (0, 0)], constant_values=1.0)
            counts = self._window_sums(ones, [(0, self.overhang[0]), (0, self.overhang[1])])
        else:
            counts = self._window_sums(ones, full)
        return sums / counts

    def compute_output_shape(self, input_shape):
        sizes = []
        for n, k, s, (b, a), o in zip(input_shape[1:3], self.pool_size, self.strides, self.paddings, self.overhang):
            sizes.append(None if n is None else (n + b + a + o - k) // s + 1)
        return (input_shape[0], *sizes, input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "paddings": [list(p) for p in self.paddings],
            "overhang": list(self.overhang),
            "count_include_pad": self.count_include_pad,
        }


@_custom
class ClipValues(keras.layers.Layer):
    """Clamp to ``[min_value, max_value]`` (ONNX Clip); None leaves that side open."""

    def __init__(self, min_value=None, max_value=None, **kwargs):
        super().__init__(**kwargs)
        self.min_value = None if min_value is None else float(min_value)
        self.max_value = None if max_value is None else float(max_value)

    def call(self, inputs):
        x = inputs
        if self.min_value is not None:
            x = keras.ops.maximum(x, self.min_value)
        if self.max_value is not None:
            x = keras.ops.minimum(x, self.max_value)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}


@_custom
class HardSigmoid(keras.layers.Layer):
    """``max(0, min(1, alpha * x + beta))`` with ONNX's parameters (PyTorch exports alpha = 1/6)."""

    def __init__(self, alpha=0.2, beta=0.5, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        return keras.ops.clip(inputs * self.alpha + self.beta, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


_ARITHMETIC = {
    "add": keras.ops.add,
    "subtract": keras.ops.subtract,
    "multiply": keras.ops.multiply,
    "divide": keras.ops.divide,
}


@_custom
class ConstantArithmetic(keras.layers.Layer):
    """``x <op> constant`` (or ``constant <op> x`` when ``constant_first``) with a broadcast constant.

    The constant is a non-trainable weight of shape ``constant_shape`` (the Keras layout, without
    the batch axis), so that the model saves and loads like any other.
    """

    def __init__(self, operation, constant_shape, constant_first=False, **kwargs):
        super().__init__(**kwargs)
        if operation not in _ARITHMETIC:
            raise ValueError(f"operation {operation!r}: expected one of {sorted(_ARITHMETIC)}")
        self.operation = operation
        self.constant_shape = tuple(int(n) for n in constant_shape)
        self.constant_first = bool(constant_first)

    def build(self, input_shape):
        self.constant = self.add_weight(name="constant", shape=self.constant_shape, initializer="zeros", trainable=False)

    def call(self, inputs):
        operands = (self.constant, inputs) if self.constant_first else (inputs, self.constant)
        return _ARITHMETIC[self.operation](*operands)

    def compute_output_shape(self, input_shape):
        rank = max(len(input_shape) - 1, len(self.constant_shape))
        dims = [1] * (rank - len(input_shape) + 1) + list(input_shape[1:])
        const = [1] * (rank - len(self.constant_shape)) + list(self.constant_shape)
        return (input_shape[0],) + tuple(c if d == 1 else d for d, c in zip(dims, const))

    def get_config(self):
        return {
            **super().get_config(),
            "operation": self.operation,
            "constant_shape": list(self.constant_shape),
            "constant_first": self.constant_first,
        }


@_custom
class BroadcastArithmetic(keras.layers.Layer):
    """``a <op> b`` for two tensors of the same rank that broadcast (ONNX Add, Sub, Mul, Div)."""

    def __init__(self, operation, **kwargs):
        super().__init__(**kwargs)
        if operation not in _ARITHMETIC:
            raise ValueError(f"operation {operation!r}: expected one of {sorted(_ARITHMETIC)}")
        self.operation = operation

    def call(self, inputs):
        return _ARITHMETIC[self.operation](inputs[0], inputs[1])

    def compute_output_shape(self, input_shape):
        a, b = input_shape
        return tuple(y if x == 1 else x for x, y in zip(a, b))

    def get_config(self):
        return {**super().get_config(), "operation": self.operation}


# --- Reading the file ---------------------------------------------------------------------------


def _attributes(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


def _tensor_bytes(tensor):
    itemsize = np.dtype(_ONNX_DTYPES.get(tensor.data_type, np.float64)).itemsize
    return math.prod(tensor.dims) * itemsize


def _check_declared_sizes(model, path, limit):
    """Refuse a file whose initializers and constants declare more than ``limit`` bytes, before converting any."""
    import onnx

    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                tensors.append(attribute.t)
            elif attribute.type == onnx.AttributeProto.GRAPH:
                raise ValueError(f"{path}: node {node.name!r} ({node.op_type}) holds a subgraph; control flow is not supported")
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise WeightsFormatError(
                f"{path}: tensor {tensor.name!r} is stored in an external file; "
                "export the model as one file (weights under 2 GiB)"
            )
    total = sum(_tensor_bytes(t) for t in tensors)
    if total > limit:
        largest = max(tensors, key=_tensor_bytes)
        raise WeightsTooLargeError(
            f"{path}: its tensors declare {total:,} bytes (the largest {largest.name!r}, {list(largest.dims)}), "
            f"over the limit of {limit:,}; refused before converting them (set TFVIS_MAX_WEIGHT_BYTES to allow more)"
        )


# --- Names --------------------------------------------------------------------------------------


def _sanitize(text):
    text = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_")
    return text or "node"


def _torch_scope(components):
    """``['layer3', 'layer3.3', 'conv1']`` -> ``'layer3_3_conv1'``: each repeated parent prefix dropped.

    ``['layer1', 'layer1.0', 'downsample', 'downsample.0']`` -> ``'layer1_0_downsample_0'``.
    """
    kept = []
    for part in components:
        if kept and part.startswith(kept[-1] + "."):
            kept[-1] = part  # a Sequential's child is named "<parent>.<index>"
        else:
            kept.append(part)
    return _sanitize("_".join(kept).replace(".", "_"))


def _node_scopes(nodes):
    """For each node: (scope name or None, whether its scope holds other scopes)."""
    tf_scopes = [n.name.split("/")[:-1] for n in nodes if n.name and not n.name.startswith("/") and "/" in n.name]
    prefix = []
    if tf_scopes:
        shortest = min(len(s) for s in tf_scopes)
        for i in range(shortest - 1):
            if all(s[i] == tf_scopes[0][i] for s in tf_scopes):
                prefix.append(tf_scopes[0][i])
            else:
                break
    # Keras 3 exports every layer's scope uniquified with a trailing "_<n>" (block1_conv1_1).
    layer_parts = [s[len(prefix)] for s in tf_scopes if len(s) > len(prefix)]
    strip_suffix = bool(layer_parts) and all(re.search(r"_\d+$", p) for p in layer_parts)
    scopes = []
    for node in nodes:
        name = node.name
        if name.startswith("/"):
            parts = [p for p in name.strip("/").split("/") if p]
            scopes.append(("torch", tuple(parts[:-1])))
        elif "/" in name:
            parts = name.split("/")[:-1]
            if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
                layer = parts[len(prefix)]
            else:
                layer = parts[-1]
            if strip_suffix:
                layer = re.sub(r"_\d+$", "", layer)
            scopes.append(("tf", (layer,)))
        else:
            scopes.append(None)
    containers = {s[1][:i] for s in scopes if s is not None and s[0] == "torch" for i in range(1, len(s[1]))}
    result = []
    for scope in scopes:
        if scope is None or not scope[1]:
            result.append((None, False))
        elif scope[0] == "torch":
            result.append((_torch_scope(scope[1]), scope[1] in containers))
        else:
            result.append((_sanitize(scope[1][0]), False))
    return result


def _base_names(nodes, skipped):
    """The Keras layer name each node would take, before collisions are resolved."""
    scopes = _node_scopes(nodes)
    principal = {}
    for index, (node, (scope, container)) in enumerate(zip(nodes, scopes)):
        if scope is None or container or index in skipped:
            continue
        current = principal.get(scope)
        if current is None or (node.op_type in _WEIGHTED and nodes[current].op_type not in _WEIGHTED):
            principal[scope] = index
    unnamed = {}
    names = []
    for index, (node, (scope, container)) in enumerate(zip(nodes, scopes)):
        op = node.op_type.lower()
        if scope is None:
            if node.name.startswith("/"):
                names.append(_sanitize(node.name.strip("/").split("/")[-1].lower()))
            elif node.name:
                names.append(_sanitize(node.name))
            else:
                unnamed[op] = unnamed.get(op, 0) + 1
                names.append(f"{op}_{unnamed[op]}")
        elif principal.get(scope) == index:
            names.append(scope)
        else:
            names.append(f"{scope}_{op}")
    return names


class _Names:
    """Unique layer names: a base name once, then ``_1``, ``_2``, ... avoiding every other base name."""

    def __init__(self, reserved):
        self.reserved = set(reserved)
        self.taken = set()

    def __call__(self, base):
        name, n = base, 0
        while name in self.taken or (n and name in self.reserved):
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


# --- The converter ------------------------------------------------------------------------------


class _Converter:
    def __init__(self, model, source):
        from onnx import numpy_helper

        self.numpy_helper = numpy_helper
        self.source = source
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.nodes = list(self.graph.node)
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.node_index = {node.output[0]: i for i, node in enumerate(self.nodes)}
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers = {}
        for node in self.nodes:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.output_names = {o.name for o in self.graph.output}
        self.constants = set(self.initializers)
        for node in self.nodes:
            if node.op_type in ("Constant", "Shape", "Size") or (
                node.op_type in _FOLDABLE and all(not i or i in self.constants for i in node.input)
            ):
                self.constants.update(node.output)
        self.tensors = {}  # ONNX name -> (Keras tensor, perm)
        self.permuted = {}
        self.consumed = set()  # nodes fused into an earlier layer
        self.values = {}
        skipped = {
            i
            for i, n in enumerate(self.nodes)
            if n.output and all(o in self.constants for o in n.output) or n.op_type in _PASS_THROUGH or n.op_type == "Transpose"
        }
        self.base_names = _base_names(self.nodes, skipped)
        self.unique = _Names(self.base_names)

    # -- errors and constants
    def fail(self, node, why):
        return ValueError(f"{self.source}: ONNX node {node.name or '(unnamed)'!r} ({node.op_type}): {why}")

    def value(self, name, batch=2):
        """The numpy value of a constant tensor; data tensors' batch size taken as ``batch``."""
        key = (name, batch)
        if key in self.values:
            return self.values[key]
        if name in self.initializers:
            result = self.numpy_helper.to_array(self.initializers[name])
        else:
            node = self.producer.get(name)
            if node is None or name not in self.constants:
                raise KeyError(name)
            result = self._fold(node, batch)[list(node.output).index(name)]
        self.values[key] = result
        return result

    def onnx_shape(self, name, batch):
        if name in self.constants:
            return list(self.value(name, batch).shape)
        tensor, perm = self.tensors[name]
        shape = [None] * len(perm)
        for axis, size in zip(perm, tensor.shape):
            shape[axis] = size
        shape[0] = batch
        return shape

    def _fold(self, node, batch):
        op, attrs = node.op_type, _attributes(node)
        inputs = [self.value(i, batch) if i and i != "" and op not in ("Shape", "Size") else None for i in node.input]
        if op == "Constant":
            if "value" in attrs:
                return [self.numpy_helper.to_array(attrs["value"])]
            for key in ("value_float", "value_int"):
                if key in attrs:
                    return [np.array(attrs[key])]
            for key in ("value_floats", "value_ints"):
                if key in attrs:
                    return [np.array(attrs[key])]
            raise self.fail(node, "unsupported Constant attribute")
        if op in ("Shape", "Size"):
            shape = self.onnx_shape(node.input[0], batch)
            if any(s is None for s in shape):
                raise self.fail(node, f"shape {shape} is not static; give the model fixed image sizes")
            if op == "Size":
                return [np.array(math.prod(shape), np.int64)]
            shape = shape[attrs.get("start", 0) : attrs.get("end", len(shape))]
            return [np.array(shape, np.int64)]
        x = inputs[0]
        if op in ("Identity",):
            return [x]
        if op == "Cast":
            return [x.astype(_ONNX_DTYPES.get(attrs["to"], np.float32))]
        if op == "Gather":
            return [np.take(x, inputs[1], axis=attrs.get("axis", 0))]
        if op in ("Unsqueeze", "Squeeze"):
            axes = attrs.get("axes", inputs[1] if len(inputs) > 1 else None)
            if op == "Squeeze":
                return [np.squeeze(x, axis=None if axes is None else tuple(int(a) for a in axes))]
            rank = x.ndim + len(axes)
            for axis in sorted(int(a) % rank for a in axes):
                x = np.expand_dims(x, axis)
            return [x]
        if op == "Concat":
            return [np.concatenate([np.atleast_1d(v) if v.ndim == 0 else v for v in inputs], axis=attrs["axis"])]
        if op == "Slice":
            if "starts" in attrs:
                starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
            else:
                starts, ends = inputs[1], inputs[2]
                axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
                steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else None
            axes = list(range(len(starts))) if axes is None else axes
            steps = [1] * len(starts) if steps is None else steps
            index = [slice(None)] * x.ndim
            for s, e, a, st in zip(starts, ends, axes, steps):
                index[int(a)] = slice(int(s), int(e), int(st))
            return [x[tuple(index)]]
        binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal, "Min": np.minimum, "Max": np.maximum}
        if op in binary:
            return [binary[op](x, inputs[1])]
        if op == "Div":
            a, b = x, inputs[1]
            if np.issubdtype(np.result_type(a, b), np.integer):
                return [(np.trunc(a / b)).astype(np.result_type(a, b))]
            return [a / b]
        if op in ("Floor", "Ceil", "Neg"):
            return [{"Floor": np.floor, "Ceil": np.ceil, "Neg": np.negative}[op](x)]
        if op == "Reshape":
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(inputs[1])]
            return [x.reshape(shape)]
        if op == "Flatten":
            axis = attrs.get("axis", 1)
            return [x.reshape(math.prod(x.shape[:axis]), -1)]
        if op == "Transpose":
            return [np.transpose(x, attrs.get("perm"))]
        if op == "ReduceProd":
            axes = tuple(attrs["axes"]) if attrs.get("axes") else None
            return [np.prod(x, axis=axes, keepdims=bool(attrs.get("keepdims", 1)))]
        if op in ("ConstantOfShape", "Expand", "Range"):
            if op == "Range":
                result_size = max(0, math.ceil((float(inputs[1]) - float(x)) / float(inputs[2])))
            else:
                result_size = math.prod(int(v) for v in (x if op == "ConstantOfShape" else inputs[1]))
            if result_size * 8 > max_weight_bytes():
                raise self.fail(node, f"constant of {result_size:,} elements is over the size limit")
            if op == "Range":
                return [np.arange(x, inputs[1], inputs[2])]
            if op == "Expand":
                return [x * np.ones([int(v) for v in inputs[1]], x.dtype)]
            fill = self.numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
            return [np.full([int(v) for v in x], fill.reshape(-1)[0], fill.dtype)]
        if op == "Where":
            return [np.where(x, inputs[1], inputs[2])]
        raise self.fail(node, "cannot be evaluated as a constant")

    # -- layouts
    def tensor(self, name, perm=None, node_name="node"):
        """The Keras tensor of ONNX tensor ``name``, permuted to ``perm`` when given."""
        tensor, current = self.tensors[name]
        if perm is None or tuple(perm) == current:
            return tensor, current
        perm = tuple(perm)
        if (name, perm) not in self.permuted:
            dims = [current.index(axis) for axis in perm[1:]]
            suffix = "nhwc" if perm == CHANNELS_LAST else "nchw" if perm == tuple(range(len(perm))) else "permute"
            layer = keras.layers.Permute(dims, name=self.unique(f"{node_name}_{suffix}"))
            self.permuted[(name, perm)] = layer(tensor)
        return self.permuted[(name, perm)], perm

    def spatial_input(self, node):
        tensor, perm = self.tensor(node.input[0], CHANNELS_LAST, self.layer_name(node))
        if len(tensor.shape) != 4:
            raise self.fail(node, f"expected a 4-D image tensor, got rank {len(tensor.shape)}")
        return tensor

    def layer_name(self, node):
        key = node.output[0]
        if key not in self._layer_names:
            self._layer_names[key] = self.unique(self.base_names[self.node_index[key]])
        return self._layer_names[key]

    def set_output(self, node, tensor, perm, index=0):
        self.tensors[node.output[index]] = (tensor, tuple(perm))

    def apply(self, layer, node, tensor, perm, weights=None):
        out = layer(tensor)
        if weights is not None:
            layer.set_weights([np.asarray(w, np.float32) for w in weights])
        self.set_output(node, out, perm)
        return out

    def single_consumer(self, name, op_type):
        users = self.consumers.get(name, [])
        if len(users) == 1 and users[0].op_type == op_type and name not in self.output_names:
            return users[0]
        return None

    # -- the graph
    def convert(self, model_name):
        self._layer_names = {}
        inputs = []
        for graph_input in self.graph.input:
            if graph_input.name in self.initializers:
                continue
            tensor_type = graph_input.type.tensor_type
            if tensor_type.elem_type not in (1, 10, 11):
                raise ValueError(f"{self.source}: input {graph_input.name!r} is not a float tensor")
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
            perm = tuple(range(len(dims)))
            users = self.consumers.get(graph_input.name, [])
            if len(dims) == 4 and not (
                users and all(u.op_type == "Transpose" and list(_attributes(u).get("perm", [])) == [0, 3, 1, 2] for u in users)
            ):
                perm = CHANNELS_LAST
            shape = [dims[axis] for axis in perm[1:]]
            keras_input = keras.Input(shape=shape, name=_sanitize(graph_input.name), dtype="float32")
            inputs.append(keras_input)
            self.tensors[graph_input.name] = (keras_input, perm)
        for node in self.nodes:
            if node.output[0] in self.consumed or all(o in self.constants for o in node.output if o):
                continue
            self.convert_node(node)
        outputs = []
        for graph_output in self.graph.output:
            if graph_output.name not in self.tensors:
                raise ValueError(f"{self.source}: output {graph_output.name!r} is a constant")
            tensor, perm = self.tensors[graph_output.name]
            wanted = CHANNELS_LAST if len(perm) == 4 else tuple(range(len(perm)))
            outputs.append(self.tensor(graph_output.name, wanted, _sanitize(graph_output.name))[0])
        return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0], name=model_name)

    def convert_node(self, node):
        op = node.op_type
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise _unsupported(node, self.source, "on data tensors")
        for name in node.input:
            if name and name not in self.constants and name not in self.tensors:
                raise self.fail(node, f"input {name!r} is not computed before it")
        handler(node, _attributes(node))

    # pass-through and layout
    def op_Identity(self, node, attrs):
        self.tensors[node.output[0]] = self.tensors[node.input[0]]

    op_Dropout = op_Identity

    def op_Transpose(self, node, attrs):
        tensor, perm = self.tensors[node.input[0]]
        order = list(attrs.get("perm", reversed(range(len(perm)))))
        if order[0] != 0:
            raise self.fail(node, f"perm {order} moves the batch axis")
        self.set_output(node, tensor, [order.index(axis) for axis in perm])

    # convolution and pooling
    def _spatial_pads(self, node, attrs, kernel, strides, dilations, sizes, ceil_mode=False):
        """((top, bottom), (left, right)) of ONNX pads, and the ceil-mode overhang at the end."""
        auto_pad = _decode(attrs.get("auto_pad", "NOTSET"))
        pads = []
        for i, (k, s, d, n) in enumerate(zip(kernel, strides, dilations, sizes)):
            extent = (k - 1) * d + 1
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                if n is None:
                    raise self.fail(node, f"auto_pad {auto_pad} needs static image sizes")
                total = max((math.ceil(n / s) - 1) * s + extent - n, 0)
                small = total // 2
                pads.append((small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small))
            elif auto_pad == "VALID":
                pads.append((0, 0))
            else:
                onnx_pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
                pads.append((onnx_pads[i], onnx_pads[i + len(kernel)]))
        overhang = [0] * len(kernel)
        if ceil_mode:
            for i, (k, s, d, n) in enumerate(zip(kernel, strides, dilations, sizes)):
                if n is None:
                    raise self.fail(node, "ceil_mode needs static image sizes")
                extent, padded = (k - 1) * d + 1, n + sum(pads[i])
                out = math.ceil((padded - extent) / s) + 1
                if (out - 1) * s >= n + pads[i][0]:  # a window may not start in the end padding
                    out -= 1
                overhang[i] = max(0, (out - 1) * s + extent - padded)
        return pads, overhang

    @staticmethod
    def _is_tf_same(pads, kernel, strides, dilations, sizes):
        for (begin, end), k, s, d, n in zip(pads, kernel, strides, dilations, sizes):
            extent = (k - 1) * d + 1
            if n is None:
                if s != 1 or begin != (extent - 1) // 2 or end != extent - 1 - begin:
                    return False
                continue
            total = max((math.ceil(n / s) - 1) * s + extent - n, 0)
            if (begin, end) != (total // 2, total - total // 2):
                return False
        return True

    def op_Conv(self, node, attrs):
        x = self.spatial_input(node)
        weight = self.value(node.input[1]) if node.input[1] in self.constants else None
        if weight is None or weight.ndim != 4:
            raise self.fail(node, "only 2-D convolutions with constant weights are supported")
        bias = self.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        out_channels, in_per_group, kh, kw = weight.shape
        groups = int(attrs.get("group", 1))
        strides = tuple(attrs.get("strides", (1, 1)))
        dilations = tuple(attrs.get("dilations", (1, 1)))
        if max(strides) > 1 and max(dilations) > 1:
            raise self.fail(node, "strides and dilations above 1 together are not supported by Keras")
        sizes = tuple(x.shape[1:3])
        pads, _ = self._spatial_pads(node, attrs, (kh, kw), strides, dilations, sizes)
        name = self.layer_name(node)
        padding = "valid"
        if any(p for pair in pads for p in pair):
            if self._is_tf_same(pads, (kh, kw), strides, dilations, sizes):
                padding = "same"
            else:
                x = keras.layers.ZeroPadding2D(pads, name=self.unique(f"{name}_pad"))(x)
        in_channels = x.shape[-1]
        common = dict(strides=strides, padding=padding, dilation_rate=dilations, use_bias=bias is not None, name=name)
        if groups > 1 and groups == in_channels and in_per_group == 1:
            multiplier = out_channels // groups
            layer = keras.layers.DepthwiseConv2D((kh, kw), depth_multiplier=multiplier, **common)
            kernel = weight.reshape(groups, multiplier, kh, kw).transpose(2, 3, 0, 1)
        else:
            layer = keras.layers.Conv2D(out_channels, (kh, kw), groups=groups, **common)
            kernel = weight.transpose(2, 3, 1, 0)
        self.apply(layer, node, x, CHANNELS_LAST, [kernel] + ([bias] if bias is not None else []))

    def _pool(self, node, attrs, kind):
        x = self.spatial_input(node)
        kernel = tuple(attrs["kernel_shape"])
        strides = tuple(attrs.get("strides", (1,) * len(kernel)))
        dilations = tuple(attrs.get("dilations", (1,) * len(kernel)))
        if len(kernel) != 2 or max(dilations) > 1:
            raise self.fail(node, "only 2-D pooling without dilations is supported")
        sizes = tuple(x.shape[1:3])
        pads, overhang = self._spatial_pads(
            node, attrs, kernel, strides, dilations, sizes, ceil_mode=bool(attrs.get("ceil_mode", 0))
        )
        name = self.layer_name(node)
        padded = any(p for pair in pads for p in pair) or any(overhang)
        same = not any(overhang) and self._is_tf_same(pads, kernel, strides, dilations, sizes)
        if kind == "max":
            padding = "valid"
            if padded and same:
                padding = "same"  # TF's SAME max pooling ignores the padded positions, as ONNX's -inf does
            elif padded:
                widths = [(b, e + o) for (b, e), o in zip(pads, overhang)] + [(0, 0)]
                x = PadND(widths, value=-np.inf, name=self.unique(f"{name}_pad"))(x)
            layer = keras.layers.MaxPooling2D(kernel, strides, padding=padding, name=name)
        else:
            include = bool(attrs.get("count_include_pad", 0))
            if not padded:
                layer = keras.layers.AveragePooling2D(kernel, strides, padding="valid", name=name)
            elif same and not include:
                layer = keras.layers.AveragePooling2D(kernel, strides, padding="same", name=name)
            else:
                layer = AveragePool2DWithPads(kernel, strides, pads, overhang, include, name=name)
        self.apply(layer, node, x, CHANNELS_LAST)

    def op_MaxPool(self, node, attrs):
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "MaxPool's indices output is not supported")
        self._pool(node, attrs, "max")

    def op_AveragePool(self, node, attrs):
        self._pool(node, attrs, "average")

    def op_GlobalAveragePool(self, node, attrs):
        x = self.spatial_input(node)
        layer = keras.layers.GlobalAveragePooling2D(keepdims=True, name=self.layer_name(node))
        self.apply(layer, node, x, CHANNELS_LAST)

    def op_GlobalMaxPool(self, node, attrs):
        x = self.spatial_input(node)
        self.apply(keras.layers.GlobalMaxPooling2D(keepdims=True, name=self.layer_name(node)), node, x, CHANNELS_LAST)

    def op_ReduceMean(self, node, attrs):
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.value(node.input[1])
        if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3] or len(self.tensors[node.input[0]][1]) != 4:
            raise self.fail(node, "ReduceMean is supported over the spatial axes (2, 3) of images only")
        x = self.spatial_input(node)
        keep = bool(attrs.get("keepdims", 1))
        layer = keras.layers.GlobalAveragePooling2D(keepdims=keep, name=self.layer_name(node))
        self.apply(layer, node, x, CHANNELS_LAST if keep else (0, 1))

    # normalisation
    def op_BatchNormalization(self, node, attrs):
        x, perm = self.tensor(
            node.input[0], CHANNELS_LAST if len(self.tensors[node.input[0]][1]) == 4 else None, self.layer_name(node)
        )
        scale, offset, mean, var = (self.value(name) for name in node.input[1:5])
        layer = keras.layers.BatchNormalization(
            axis=perm.index(1),
            epsilon=float(attrs.get("epsilon", 1e-5)),
            momentum=float(attrs.get("momentum", 0.9)),
            name=self.layer_name(node),
        )
        self.apply(layer, node, x, perm, [scale, offset, mean, var])

    def op_LRN(self, node, attrs):
        size = int(attrs["size"])
        if size % 2 == 0:
            raise self.fail(node, f"LRN size {size} is even; TensorFlow's window is symmetric")
        x = self.spatial_input(node)
        layer = LocalResponseNorm.from_caffe(
            size,
            float(attrs.get("alpha", 1e-4)),
            float(attrs.get("beta", 0.75)),
            float(attrs.get("bias", 1.0)),
            name=self.layer_name(node),
        )
        self.apply(layer, node, x, CHANNELS_LAST)

    # activations
    def _unary(self, node, layer):
        x, perm = self.tensors[node.input[0]]
        self.apply(layer, node, x, perm)

    def op_Relu(self, node, attrs):
        self._unary(node, keras.layers.ReLU(name=self.layer_name(node)))

    def op_LeakyRelu(self, node, attrs):
        self._unary(node, keras.layers.LeakyReLU(negative_slope=float(attrs.get("alpha", 0.01)), name=self.layer_name(node)))

    def op_Elu(self, node, attrs):
        self._unary(node, keras.layers.ELU(alpha=float(attrs.get("alpha", 1.0)), name=self.layer_name(node)))

    def op_Sigmoid(self, node, attrs):
        self._unary(node, keras.layers.Activation("sigmoid", name=self.layer_name(node)))

    def op_Tanh(self, node, attrs):
        self._unary(node, keras.layers.Activation("tanh", name=self.layer_name(node)))

    def op_HardSwish(self, node, attrs):
        self._unary(node, keras.layers.Activation("hard_silu", name=self.layer_name(node)))

    def op_HardSigmoid(self, node, attrs):
        self._unary(node, HardSigmoid(float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5)), name=self.layer_name(node)))

    def op_Clip(self, node, attrs):
        low, high = attrs.get("min"), attrs.get("max")
        if len(node.input) > 1 and node.input[1]:
            low = float(self.value(node.input[1]))
        if len(node.input) > 2 and node.input[2]:
            high = float(self.value(node.input[2]))
        if low == 0.0:
            layer = keras.layers.ReLU(max_value=high, name=self.layer_name(node))
        else:
            layer = ClipValues(low, high, name=self.layer_name(node))
        self._unary(node, layer)

    def op_Softmax(self, node, attrs):
        x, perm = self.tensors[node.input[0]]
        rank = len(perm)
        axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1)) % rank
        if self.opset < 13 and axis != rank - 1:
            raise self.fail(node, "Softmax before opset 13 over several axes is not supported")
        self.apply(keras.layers.Softmax(axis=perm.index(axis), name=self.layer_name(node)), node, x, perm)

    # arithmetic
    def _constant_operand(self, node, value, perm):
        """An ONNX constant broadcast against a tensor of layout ``perm``, in Keras layout without the batch axis."""
        rank = len(perm)
        if value.ndim > rank:
            raise self.fail(node, f"constant of shape {value.shape} has more axes than its tensor")
        value = value.reshape((1,) * (rank - value.ndim) + value.shape)
        if value.shape[0] != 1:
            raise self.fail(node, f"constant of shape {value.shape} varies along the batch axis")
        return np.asarray(value.transpose(perm)[0], np.float32)

    def _arithmetic(self, node, operation):
        a, b = node.input[0], node.input[1]
        name = self.layer_name(node)
        if a in self.constants and b in self.constants:
            raise self.fail(node, "both operands are constants")
        if a in self.constants or b in self.constants:
            tensor_name, constant_name = (b, a) if a in self.constants else (a, b)
            x, perm = self.tensors[tensor_name]
            constant = self._constant_operand(node, self.value(constant_name), perm)
            if operation == "multiply" and self._fuse_scale_shift(node, x, perm, constant):
                return
            layer = ConstantArithmetic(operation, constant.shape, constant_first=a in self.constants, name=name)
            self.apply(layer, node, x, perm, [constant])
            return
        x, perm = self.tensors[a]
        if len(perm) == 4:
            perm = CHANNELS_LAST
        x, _ = self.tensor(a, perm, name)
        y, _ = self.tensor(b, perm, name)
        if len(x.shape) != len(y.shape):
            raise self.fail(node, "operands of different ranks are not supported")
        if tuple(x.shape[1:]) == tuple(y.shape[1:]) and operation != "divide":
            layer = {"add": keras.layers.Add, "subtract": keras.layers.Subtract, "multiply": keras.layers.Multiply}[operation](
                name=name
            )
        else:
            layer = BroadcastArithmetic(operation, name=name)
        self.set_output(node, layer([x, y]), perm)

    def _fuse_scale_shift(self, node, x, perm, scale):
        """Mul by a per-channel constant, then Add of one, as one BatchNormalization layer.

        tf2onnx writes an inference-mode BatchNormalization so; one layer keeps Keras' name for it.
        """
        add = self.single_consumer(node.output[0], "Add")
        if add is None:
            return False
        other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
        if other not in self.constants:
            return False
        shift = self._constant_operand(add, self.value(other), perm)
        channels = x.shape[-1]
        if channels is None or any(n != 1 for n in scale.shape[:-1]) or any(n != 1 for n in shift.shape[:-1]):
            return False
        scale = np.broadcast_to(scale.reshape(-1), (channels,))
        shift = np.broadcast_to(shift.reshape(-1), (channels,))
        layer = keras.layers.BatchNormalization(axis=-1, epsilon=0.0, name=self.layer_name(node))
        out = layer(x)
        layer.set_weights([scale, shift, np.zeros(channels, np.float32), np.ones(channels, np.float32)])
        self.set_output(add, out, perm)
        self.consumed.add(add.output[0])
        return True

    def op_Add(self, node, attrs):
        self._arithmetic(node, "add")

    def op_Sub(self, node, attrs):
        self._arithmetic(node, "subtract")

    def op_Mul(self, node, attrs):
        self._arithmetic(node, "multiply")

    def op_Div(self, node, attrs):
        self._arithmetic(node, "divide")

    def op_Concat(self, node, attrs):
        names = [n for n in node.input if n]
        if any(n in self.constants for n in names):
            raise self.fail(node, "concatenating constants with tensors is not supported")
        _, perm = self.tensors[names[0]]
        if len(perm) == 4:
            perm = CHANNELS_LAST
        name = self.layer_name(node)
        tensors = [self.tensor(n, perm, name)[0] for n in names]
        axis = perm.index(int(attrs["axis"]) % len(perm))
        if axis == 0:
            raise self.fail(node, "concatenation along the batch axis")
        self.set_output(node, keras.layers.Concatenate(axis=axis, name=name)(tensors), perm)

    # dense layers
    def _dense(self, node, x, kernel, bias):
        fused_add = self.single_consumer(node.output[0], "Add") if bias is None else None
        if fused_add is not None:
            other = fused_add.input[1] if fused_add.input[0] == node.output[0] else fused_add.input[0]
            candidate = self.value(other) if other in self.constants else None
            if (
                candidate is not None
                and candidate.size in (1, kernel.shape[1])
                and (candidate.ndim <= 1 or all(n == 1 for n in candidate.shape[:-1]))
            ):
                bias = np.broadcast_to(candidate.reshape(-1), (kernel.shape[1],))
                self.consumed.add(fused_add.output[0])
            else:
                fused_add = None
        layer = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None, name=self.layer_name(node))
        out = layer(x)
        layer.set_weights([kernel.astype(np.float32)] + ([np.asarray(bias, np.float32)] if bias is not None else []))
        rank = len(x.shape)
        self.set_output(fused_add or node, out, tuple(range(rank)))

    def op_Gemm(self, node, attrs):
        if attrs.get("transA", 0) or node.input[1] not in self.constants:
            raise self.fail(node, "Gemm is supported with a tensor times constant weights (transA=0)")
        x, _ = self.tensor(node.input[0], (0, 1), self.layer_name(node))
        weight = self.value(node.input[1]).astype(np.float64)
        if attrs.get("transB", 0):
            weight = weight.T
        kernel = float(attrs.get("alpha", 1.0)) * weight
        bias = None
        if len(node.input) > 2 and node.input[2]:
            c = self.value(node.input[2])
            if c.ndim == 2 and c.shape[0] != 1:
                raise self.fail(node, f"C of shape {c.shape} varies along the batch axis")
            bias = float(attrs.get("beta", 1.0)) * np.broadcast_to(c.reshape(-1), (kernel.shape[1],))
        self._dense(node, x, kernel, bias)

    def op_MatMul(self, node, attrs):
        if node.input[1] not in self.constants or node.input[0] in self.constants:
            raise self.fail(node, "MatMul is supported with a tensor times a constant matrix")
        weight = self.value(node.input[1])
        if weight.ndim != 2:
            raise self.fail(node, f"MatMul by a constant of shape {weight.shape}")
        _, perm = self.tensors[node.input[0]]
        x, _ = self.tensor(node.input[0], tuple(range(len(perm))), self.layer_name(node))
        self._dense(node, x, weight, None)

    # shapes
    def _reshape_to(self, node, target):
        """Reshape a data tensor to ONNX ``target`` (batch first), through the ONNX (identity) layout."""
        source, perm = self.tensors[node.input[0]]
        name = self.layer_name(node)
        shape = self.onnx_shape(node.input[0], None)
        moved = [axis for axis in perm if shape[axis] != 1]
        if moved == sorted(moved):  # only size-1 axes out of ONNX order, (1, 1, C) say: same element order
            x = source
        else:
            x, _ = self.tensor(node.input[0], tuple(range(len(perm))), name)
        per_sample = list(target[1:])
        if len(per_sample) == 1:
            layer = keras.layers.Flatten(name=name)
        else:
            layer = keras.layers.Reshape(per_sample, name=name)
        out = layer(x)
        if len(per_sample) == 1 and per_sample[0] != -1 and out.shape[1] not in (None, per_sample[0]):
            raise self.fail(node, f"cannot flatten {tuple(x.shape[1:])} to {per_sample[0]} features per image")
        self.set_output(node, out, tuple(range(len(target))))

    def op_Flatten(self, node, attrs):
        axis = int(attrs.get("axis", 1))
        if axis % len(self.tensors[node.input[0]][1]) != 1:
            raise self.fail(node, f"Flatten with axis {axis} mixes the batch axis")
        self._reshape_to(node, [None, -1])

    def op_Reshape(self, node, attrs):
        if node.input[1] not in self.constants:
            raise self.fail(node, "the target shape is computed from data")
        shapes = [self.onnx_shape(node.input[0], b) for b in (2, 3)]
        targets = [[int(v) for v in self.value(node.input[1], b)] for b in (2, 3)]
        declared = self._declared_batch()
        target = []
        for i, (t2, t3) in enumerate(zip(*targets)):
            if t2 != t3:
                if i != 0 or (t2, t3) != (2, 3):
                    raise self.fail(node, f"target shape {targets[0]} depends on the batch size beyond its first axis")
                target.append(None)
            elif t2 == 0 and not attrs.get("allowzero", 0):
                target.append(shapes[0][i] if i else None)
            else:
                target.append(t2)
        if target[0] is not None and target[0] not in (-1, declared):
            raise self.fail(node, f"target shape {targets[0]} does not keep the batch axis")
        rest = target[1:]
        size = math.prod(n for n in shapes[0][1:] if n is not None)
        if target[0] == -1 and -1 in rest:
            raise self.fail(node, f"target shape {targets[0]} has two inferred axes")
        if -1 not in rest and None not in shapes[0][1:] and math.prod(rest) != size:
            raise self.fail(node, f"target shape {targets[0]} mixes the batch axis")
        self._reshape_to(node, [None] + rest)

    def _declared_batch(self):
        for graph_input in self.graph.input:
            if graph_input.name not in self.initializers:
                dims = graph_input.type.tensor_type.shape.dim
                if dims and dims[0].HasField("dim_value"):
                    return dims[0].dim_value
        return None

    def _squeeze_unsqueeze(self, node, attrs, squeeze):
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in self.value(node.input[1])]
        shape = self.onnx_shape(node.input[0], None)
        if squeeze:
            axes = [i for i, n in enumerate(shape) if n == 1] if axes is None else [a % len(shape) for a in axes]
            if 0 in axes:
                raise self.fail(node, "squeezing the batch axis")
            target = [n for i, n in enumerate(shape) if i not in axes]
        else:
            rank = len(shape) + len(axes)
            axes = sorted(a % rank for a in axes)
            if 0 in axes:
                raise self.fail(node, "unsqueezing before the batch axis")
            target = list(shape)
            for axis in axes:
                target.insert(axis, 1)
        self._reshape_to(node, target)

    def op_Squeeze(self, node, attrs):
        self._squeeze_unsqueeze(node, attrs, True)

    def op_Unsqueeze(self, node, attrs):
        self._squeeze_unsqueeze(node, attrs, False)

    def op_Pad(self, node, attrs):
        mode = _decode(attrs.get("mode", "constant"))
        if mode not in ("constant", "reflect", "edge"):
            raise self.fail(node, f"Pad mode {mode!r}")
        pads = attrs.get("pads")
        value = attrs.get("value", 0.0)
        if pads is None:
            pads = [int(p) for p in self.value(node.input[1])]
            if len(node.input) > 2 and node.input[2]:
                value = float(self.value(node.input[2]).reshape(-1)[0])
        x, perm = self.tensors[node.input[0]]
        rank = len(perm)
        axes = list(range(rank))
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) % rank for a in self.value(node.input[3])]
        onnx_widths = {axis: (pads[i], pads[i + len(axes)]) for i, axis in enumerate(axes)}
        if any(v < 0 for pair in onnx_widths.values() for v in pair):
            raise self.fail(node, "negative pads (cropping) are not supported")
        if onnx_widths.get(0, (0, 0)) != (0, 0):
            raise self.fail(node, "padding the batch axis")
        widths = [onnx_widths.get(axis, (0, 0)) for axis in perm[1:]]
        self.apply(PadND(widths, mode, value, name=self.layer_name(node)), node, x, perm)


def _supported_operators():
    ops = {name[3:] for name in dir(_Converter) if name.startswith("op_")}
    return sorted(ops | {"Constant", "Shape", "Gather", "Cast", "Slice"})


#: The ONNX operators :func:`load_onnx` converts (shape arithmetic such as Shape, Gather and Slice
#: only where it computes constants, the target of a Reshape for example).
SUPPORTED_OPERATORS = tuple(_supported_operators())


def load_onnx(path, name=None):
    """Build a Keras model (NHWC images in, float32) from an ONNX image model.

    The file is read with the ``onnx`` package (a protobuf; no code in it runs). Its tensors'
    declared sizes are checked against :func:`~tfvis.models.safeload.max_weight_bytes` before
    any is converted. Layers are named after the ONNX nodes (see the module's documentation):
    ``/layer3/layer3.3/conv1/Conv`` becomes ``layer3_3_conv1``, a tf2onnx file keeps Keras'
    names (``block1_conv1``).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (one file: tensors in external files are refused).
    name : str, optional
        The Keras model's name; the file's stem by default.

    Returns
    -------
    keras.Model
        Functional model taking NHWC float32 images (an NCHW ONNX input becomes NHWC; a tf2onnx
        file's NHWC input stays as it is) and returning the ONNX outputs, 4-D ones NHWC.

    Raises
    ------
    ValueError
        An operator or attribute the converter does not support, in one line naming it and its
        node; a malformed graph.
    WeightsTooLargeError
        The file or its tensors declare more than the limit.

    Examples
    --------
    >>> model = load_onnx("resnet18.onnx")  # doctest: +SKIP
    >>> model.get_layer("layer3_1_conv1").output.shape  # doctest: +SKIP
    (None, 14, 14, 256)
    """
    import onnx

    path = Path(path)
    limit = max_weight_bytes()
    check_file_size(path, limit)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError, onnx its own errors
        raise WeightsFormatError(f"{path}: not a readable ONNX file ({type(err).__name__}: {err})") from err
    _check_declared_sizes(model, path, limit)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or (
            not hasattr(_Converter, f"op_{node.op_type}") and node.op_type not in _FOLDABLE
        ):
            raise _unsupported(node, path.name)
    converter = _Converter(model, path.name)
    try:
        return converter.convert(name or _sanitize(path.stem))
    except (ValueError, WeightsFormatError):
        raise
    except Exception as err:  # numpy and Keras errors from a malformed graph
        raise ValueError(f"{path.name}: cannot convert the graph ({type(err).__name__}: {err})") from err


def _unsupported(node, source, where=""):
    domain = f" (domain {node.domain!r})" if node.domain not in ("", "ai.onnx") else ""
    return ValueError(
        f"unsupported ONNX operator {node.op_type!r}{domain} at node {node.name or '(unnamed)'!r} in {source}"
        f"{' ' + where if where else ''}; supported: {', '.join(SUPPORTED_OPERATORS)}"
    )


__all__ = [
    "SUPPORTED_OPERATORS",
    "load_onnx",
    "PadND",
    "AveragePool2DWithPads",
    "ClipValues",
    "HardSigmoid",
    "ConstantArithmetic",
    "BroadcastArithmetic",
]
