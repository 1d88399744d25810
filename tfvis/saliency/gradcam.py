"""Grad-CAM (Selvaraju et al. 2017) and its default layer.

Grad-CAM weighs the channels ``A_k`` of a spatial map by the spatial mean of the score's
gradient, ``w_k = mean_ij dS/dA_k``, and keeps the positive part of ``sum_k w_k A_k``, upsampled
to the image. The map is read at one layer; :func:`default_layer` chooses it from the graph:

**Default layer.** Walking back from the model's output, the first tensor that is a 2-D map
``(N, h, w, K)`` (the input of the ``Flatten`` or global pooling in front of the classifier),
then back over any ``MaxPooling2D`` or ``AveragePooling2D`` that produced it: the finest map of
the last convolutional stage. Layers are those of the prepared model
(:func:`tfvis.graph.prepared`), where every activation is a layer of its own, and networks apply
their rectifier before pooling or flattening, so the map is the post-activation one:
``block5_conv3_relu`` in VGG16, ``mixed5b_relu`` in InceptionV1, ``conv5_block3_out`` in
ResNet50, ``c_relu`` for a last ``Conv2D(..., activation="relu", name="c")``.
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached, feature_net, inbound, prepared, producer
from ..rules import for_input_gradients
from ..targets import find_layer
from .gradient import image_spec, row_specs, setup, target_scores
from .methods import Attribution

#: Layers that :func:`default_layer` looks back through: they resample the last map.
POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _inbound(tensor):
    """``(layer, input tensors)`` of the call that produced a symbolic tensor; ``(None, [])`` for none."""
    return producer(tensor), inbound(tensor)


def _is_map(tensor):
    return len(tensor.shape) == 4


def default_layer(model):
    """The layer whose output Grad-CAM reads by default (the rule is in the module notes).

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    str
        A layer name of the prepared model (:func:`tfvis.graph.prepared`).

    Raises
    ------
    ValueError
        No layer of the model outputs a 2-D map.

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, activation="relu", name="c")(inputs)
    >>> x = keras.layers.MaxPooling2D(name="pool")(x)
    >>> x = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
    >>> default_layer(keras.Model(inputs, x))
    'c_relu'
    """
    net = prepared(model)
    queue, seen, found = collections.deque(net.outputs), set(), None
    while queue and found is None:  # breadth first: the nearest map to the output
        tensor = queue.popleft()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        layer, inputs = _inbound(tensor)
        if _is_map(tensor) and inputs:
            found = tensor
        queue.extend(inputs)
    if found is None:
        raise ValueError(f"model {model.name!r} has no layer with a spatial map (N, h, w, K) for Grad-CAM")
    layer, inputs = _inbound(found)
    while isinstance(layer, POOLING) and _is_map(inputs[0]) and _inbound(inputs[0])[1]:
        layer, inputs = _inbound(inputs[0])
    return layer.name


def grad_cam_weighting(activations, grads):
    """Grad-CAM's map before upsampling, ``relu(sum_k w_k A_k)`` with ``w_k = mean_ij g_kij``, shape (B, h, w, 1) (graph code).

    Parameters
    ----------
    activations : tensor, shape (B, h, w, K)
        The layer's activations ``A``.
    grads : tensor, shape (B, h, w, K)
        ``dS/dA`` of each row's score.

    Returns
    -------
    tensor, shape (B, h, w, 1)
    """
    weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))


def weighted_cam_maps(net, target, layer, weighting, images, channels, positions):
    """Maps (B, H, W) of ``images`` through ``net`` (outputs: ``layer``'s map and the target layer's) (graph code).

    ``weighting(activations, grads)`` turns the layer's activations and the score's gradient into
    the map (B, h, w, 1) (:func:`grad_cam_weighting`, or those of :mod:`.cams`), which is
    upsampled bilinearly to the input size.
    """
    with tf.GradientTape() as tape:
        tape.watch(images)  # the fast net's weights are constants: connect the maps through the input
        activations, act = net(images, training=False)
        total = tf.reduce_sum(target_scores(act, target, channels, positions))
    grads = tape.gradient(total, activations)
    if grads is None:
        raise ValueError(f"target {str(target.target)!r} does not depend on layer {layer!r}")
    cam = weighting(activations, grads)
    return tf.image.resize(cam, tf.shape(images)[1:3], method="bilinear")[..., 0]


def cam_maps(net, target, layer, images, channels, positions):
    """Grad-CAM maps (B, H, W): :func:`weighted_cam_maps` with :func:`grad_cam_weighting` (graph code)."""
    return weighted_cam_maps(net, target, layer, grad_cam_weighting, images, channels, positions)


def _cam_net(net, target, layer):
    return feature_net(net, [layer, target.layer], for_input_gradients())


def cam_function(model, target, layer, name="grad_cam", weighting=grad_cam_weighting):
    """Compiled ``(images, channels, positions) -> maps`` of the CAM ``name`` on the prepared ``model``, cached."""

    def build():
        net = _cam_net(model, target, layer)

        @tf.function(input_signature=[image_spec(model)] + row_specs(target))
        def run(images, channels, positions):
            return weighted_cam_maps(net, target, layer, weighting, images, channels, positions)

        return run

    return cached(model, ("saliency." + name, layer) + target.key, build)


def cam_layer(model, layer=None):
    """``layer`` (default :func:`default_layer`), checked to output a spatial map (N, h, w, K)."""
    layer = default_layer(model) if layer is None else layer
    shape = tuple(find_layer(prepared(model), layer).output.shape)
    if len(shape) != 4:
        raise ValueError(
            f"layer {layer!r} has output shape {shape}, not a spatial map (N, h, w, K); choose a convolutional layer"
        )
    return layer


def weighted_cam_attribution(model, net, target, layer=None, name="grad_cam", weighting=grad_cam_weighting):
    """SmoothGrad's view of a CAM (:class:`tfvis.saliency.methods.Attribution`): each row's map, shape (B, H, W, 1)."""
    layer = cam_layer(model, layer)

    def build():
        two_maps = _cam_net(net, target, layer)

        def attribute(rows, references, channels, positions):
            return weighted_cam_maps(two_maps, target, layer, weighting, rows, channels, positions)[..., None]

        return attribute

    return Attribution((name, layer), build)


def cam_attribution(model, net, target, layer=None):
    """SmoothGrad's view of Grad-CAM (:class:`tfvis.saliency.methods.Attribution`): each row's map, shape (B, H, W, 1)."""
    return weighted_cam_attribution(model, net, target, layer)


def grad_cam(model, images, target, layer=None, batch_size=16):
    """Grad-CAM (Selvaraju et al. 2017): ``relu(sum_k w_k A_k)``, ``w_k`` the spatial mean of ``dS/dA_k``.

    ``A`` is the output of ``layer`` (a spatial map); the result is upsampled bilinearly
    (``tf.image.resize``, half-pixel centres) to the input size.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`tfvis.saliency.vanilla`.
    layer : str, optional
        A layer with a 2-D spatial map, e.g. ``"block5_conv3_relu"``; default
        :func:`default_layer`.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Raises
    ------
    ValueError
        ``layer`` has no spatial map (its output is not (N, h, w, K)); the layer is unknown; the
        target does not depend on the layer.

    Examples
    --------
    >>> cam = grad_cam(model, photos, 281)                      # doctest: +SKIP
    >>> cam = grad_cam(model, photos, 281, "block5_conv3_relu")  # doctest: +SKIP
    """
    images, single, net, rows = setup(model, images, target, batch_size)
    layer = cam_layer(model, layer)
    return batched_maps(cam_function(net, rows.target, layer), images, rows, batch_size, single)


def batched_maps(run, images, rows, batch_size, single=False):
    """A compiled ``run(images, channels, positions)`` over ``images`` in batches: Maps (N, H, W), (H, W) when ``single``."""
    out = np.zeros(images.shape[:3], np.float32)
    for start in range(0, len(images), int(batch_size)):
        chunk = slice(start, start + int(batch_size))
        out[chunk] = run(tf.constant(images[chunk]), *rows.tensors(chunk)).numpy()
    return as_maps(out[0] if single else out)


__all__ = [
    "POOLING",
    "batched_maps",
    "cam_attribution",
    "cam_function",
    "cam_layer",
    "cam_maps",
    "default_layer",
    "grad_cam",
    "grad_cam_weighting",
    "weighted_cam_attribution",
    "weighted_cam_maps",
]
