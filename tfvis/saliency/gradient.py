"""The gradient family: the target's score, its gradient with respect to the image, and its maps.

Simonyan, Vedaldi & Zisserman (2014) rank the pixels of an image by how much the score ``S`` of a
target changes when they change: ``M_ij = max_c |dS/dI_{i,j,c}|`` (:func:`vanilla`). Guided
backpropagation (:func:`guided`) and the deconvnet (:func:`deconvnet`) take the same gradient
with another backward rule at every ReLU (:mod:`tfvis.rules`).

Every method of this family runs through one compiled function per (prepared model, target
layer and kind, method), :func:`gradient_function`: the net from the input to the target layer
is :func:`tfvis.graph.feature_net` of the prepared model with
:func:`tfvis.rules.for_input_gradients` of the method, and the function is kept by
:func:`tfvis.graph.cached`. SmoothGrad (:mod:`.smoothing`), Integrated Gradients
(:mod:`.integrated`), Grad-CAM (:mod:`.gradcam`) and the class model (:mod:`.classmodel`) read
scores with :func:`target_scores` and build on :class:`TargetRows`.
"""

import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached, feature_net, prepared
from ..images import model_batch
from ..rules import for_input_gradients
from ..targets import apply_head, logits_layer, resolve_many
from .methods import Attribution

#: Gradient methods, by the name saliency functions take, and the backward rule each uses
#: (:data:`tfvis.rules.METHODS`): ``"vanilla"`` (or ``"gradient"``), ``"guided"``, ``"deconvnet"``.
BACKWARD_RULES = {"vanilla": "gradient", "gradient": "gradient", "guided": "guided", "deconvnet": "deconvnet"}
#: The former name of :data:`BACKWARD_RULES`.
METHODS = BACKWARD_RULES

#: Values of the ``reduce`` argument of attribution methods.
REDUCTIONS = ("max", "sum", None)


def backward_method(method):
    """The :mod:`tfvis.rules` method of a gradient ``method`` (a key of :data:`BACKWARD_RULES`)."""
    if method not in BACKWARD_RULES:
        raise ValueError(f"method={method!r}; choose one of: {', '.join(BACKWARD_RULES)}")
    return BACKWARD_RULES[method]


def check_batch_size(batch_size):
    """``batch_size`` as an int, or ``ValueError`` when it is below 1."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    return int(batch_size)


def check_reduce(reduce):
    """Raise ``ValueError`` naming the valid values when ``reduce`` is not one of :data:`REDUCTIONS`."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r}; use 'max', 'sum' or None")
    return reduce


def reduce_channels(attributions, reduce):
    """``max_c |a|`` (``"max"``), the signed sum over channels (``"sum"``) or ``attributions`` itself (None)."""
    if check_reduce(reduce) is None:
        return attributions
    if reduce == "max":
        return np.abs(attributions).max(axis=-1)
    return attributions.sum(axis=-1)


# --------------------------------------------------------------------------------------------
# Targets of a batch
# --------------------------------------------------------------------------------------------


class TargetRows:
    """The resolved target of each image of a batch: one layer and kind, one channel (and unit) per image.

    Attributes
    ----------
    target : tfvis.targets.Resolved
        The first image's target; compiled functions are specialised on its ``key``, which every
        image's target shares.
    channels : ndarray of int32, shape (N,)
        Each image's channel, dense unit or class.
    positions : ndarray of int32, shape (N, P)
        Each image's unit position (``P`` = 0 for a channel mean, a dense unit or a class).
    """

    def __init__(self, target, channels, positions):
        self.target, self.channels, self.positions = target, channels, positions

    @classmethod
    def resolve(cls, model, target, count):
        """Rows for ``count`` images on the prepared ``model``: one target for all, or one per image.

        See :func:`tfvis.targets.resolve_many` for the errors.
        """
        resolved = resolve_many(model, target, count)
        first = resolved[0]
        rank = 0 if first.position is None else len(first.position)
        channels = np.array([r.index for r in resolved], np.int32)
        positions = np.array([r.position or () for r in resolved], np.int32).reshape(len(resolved), rank)
        return cls(first, channels, positions)

    def select(self, part):
        """The rows of ``part`` (a slice of images)."""
        return TargetRows(self.target, self.channels[part], self.positions[part])

    def repeat(self, times):
        """Rows for ``times`` consecutive copies of each image (noise samples, path points)."""
        return TargetRows(self.target, np.repeat(self.channels, times), np.repeat(self.positions, times, axis=0))

    def tensors(self, part=slice(None)):
        """``(channels, positions)`` of ``part`` as tensors, the last arguments of compiled functions."""
        return tf.constant(self.channels[part]), tf.constant(self.positions[part])


def row_specs(target):
    """Signatures of the per-row channels ``(B,)`` and positions ``(B, P)`` of compiled functions."""
    rank = 0 if target.position is None else len(target.position)
    return [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, rank], tf.int32)]


def image_spec(model):
    """Signature of a batch of ``model``'s input images (float32)."""
    return tf.TensorSpec([None] + list(model.inputs[0].shape[1:]), tf.float32)


def setup(model, images, target, batch_size):
    """``(images, single, prepared, rows)``: the checked batch, the prepared model and the targets' rows."""
    check_batch_size(batch_size)
    images, single = model_batch(model, images)
    net = prepared(model)
    return images, single, net, TargetRows.resolve(net, target, len(images))


# --------------------------------------------------------------------------------------------
# Graph pieces, shared by the compiled functions of every method
# --------------------------------------------------------------------------------------------


def target_scores(act, target, channels, positions):
    """Per-image score ``(B,)`` from the target layer's output ``act`` (graph code).

    Parameters
    ----------
    act : tensor, shape (B, ..., K)
        The output of ``target.layer``.
    target : tfvis.targets.Resolved
        Only its key (kind, position rank, head) is read.
    channels : tensor of int32, shape (B,)
        One channel (or unit, or class) per row.
    positions : tensor of int32, shape (B, P)
        One unit position per row (``P`` = 0 without positions).

    Returns
    -------
    tensor, shape (B,)
        The class score or unit's value, or the channel map's mean over all positions.
    """
    act = apply_head(act, target.head)
    maps = tf.gather(act, channels, axis=-1, batch_dims=1)  # (B, *spatial)
    if target.kind == "channel":
        return tf.reduce_mean(tf.reshape(maps, [tf.shape(maps)[0], -1]), axis=1)
    if target.position is not None:
        return tf.gather_nd(maps, positions, batch_dims=1)
    return maps


def input_gradients(net, target, images, channels, positions):
    """``(dS/dimages, S)`` of the per-row scores through ``net`` (graph code; rows independent)."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = target_scores(net(images, training=False), target, channels, positions)
        total = tf.reduce_sum(scores)
    return tape.gradient(total, images), scores


def target_net(model, target, method="gradient"):
    """The net from the prepared ``model``'s input to the target layer, with ``method``'s backward rules."""
    return feature_net(model, target.layer, for_input_gradients(method))


def gradient_function(model, target, method="gradient"):
    """Compiled ``(images, channels, positions) -> (dS/dimages, S)`` on the prepared ``model``.

    One per (prepared model, target key, method), kept by :func:`tfvis.graph.cached`.

    Parameters
    ----------
    model : keras.Model
        The prepared model (:func:`tfvis.graph.prepared`).
    target : tfvis.targets.Resolved
    method : {"gradient", "guided", "deconvnet"}
        The backward rule (:data:`tfvis.rules.METHODS`).

    Returns
    -------
    tf.function
    """

    def build():
        net = target_net(model, target, method)

        @tf.function(input_signature=[image_spec(model)] + row_specs(target))
        def run(images, channels, positions):
            return input_gradients(net, target, images, channels, positions)

        return run

    return cached(model, ("saliency.gradients", method) + target.key, build)


def gradient_attribution(model, net, target, method="vanilla"):
    """SmoothGrad's view of a gradient method (:class:`tfvis.saliency.methods.Attribution`): ``dS/dI`` per row.

    ``model`` is the user's model, ``net`` the prepared one, ``target`` the resolved target of
    the rows; ``method`` a key of :data:`BACKWARD_RULES`.
    """
    backward = backward_method(method)

    def build():
        gradient_net = target_net(net, target, backward)

        def attribute(rows, references, channels, positions):
            return input_gradients(gradient_net, target, rows, channels, positions)[0]

        return attribute

    return Attribution(("gradient", backward), build)


def run_gradients(model, rows, images, batch_size, method="gradient"):
    """Gradients and scores of ``images`` (M, H, W, C), whose targets are ``rows``, ``batch_size`` per compiled call.

    ``model`` is the prepared model; ``method`` the backward rule of :mod:`tfvis.rules`.
    """
    run = gradient_function(model, rows.target, method)
    grads, scores = np.zeros(images.shape, np.float32), np.zeros(len(images), np.float32)
    for start in range(0, len(images), int(batch_size)):
        chunk = slice(start, start + int(batch_size))
        g, s = run(tf.constant(images[chunk]), *rows.tensors(chunk))
        grads[chunk], scores[chunk] = g.numpy(), s.numpy()
    return grads, scores


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def score(model, images, target, batch_size=16):
    """The target's score for each image (the quantity whose gradient the maps show).

    Parameters
    ----------
    model : keras.Model
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo).
    target : int, str or list
        A target of :mod:`tfvis.targets` with a channel, unit or class (see :mod:`tfvis.saliency`).
    batch_size : int
        Images per compiled call.

    Returns
    -------
    ndarray, float32, shape (N,) (a scalar for one image)

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights=None)  # doctest: +SKIP
    >>> score(model, photo, 281)                           # doctest: +SKIP
    """
    images, single, net, rows = setup(model, images, target, batch_size)
    _, scores = run_gradients(net, rows, images, batch_size)
    return scores[0] if single else scores


def has_class_output(model):
    """Whether ``model`` ends in class scores that int targets can name (:func:`tfvis.targets.logits_layer`)."""
    try:
        logits_layer(prepared(model))
    except ValueError:
        return False
    return True


def class_scores(model, images, batch_size=16):
    """The unnormalised class scores (logits) of each image, shape (N, classes).

    Raises
    ------
    ValueError
        The model has no class output (:func:`tfvis.targets.logits_layer`).
    """
    batch_size = check_batch_size(batch_size)
    images, single = model_batch(model, images)
    model = prepared(model)
    logits = logits_layer(model)
    net = feature_net(model, logits.layer, for_input_gradients())
    out = []
    for start in range(0, len(images), batch_size):
        act = net(tf.constant(images[start : start + batch_size]), training=False)
        out.append(np.asarray(apply_head(act, logits.head), np.float32))
    scores = np.concatenate(out)
    return scores[0] if single else scores


def gradients(model, images, target, batch_size=16, method="vanilla"):
    """Raw gradients ``dS/dI`` of the target score, shaped like ``images``.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`vanilla`.
    method : {"vanilla", "gradient", "guided", "deconvnet"}
        The backward rule at every ReLU (:data:`BACKWARD_RULES`): the gradient itself, guided
        backpropagation or the deconvnet.

    Returns
    -------
    ndarray, float32, shape (N, H, W, C) (or (H, W, C) for one image)
    """
    backward = backward_method(method)
    images, single, net, rows = setup(model, images, target, batch_size)
    grads, _ = run_gradients(net, rows, images, batch_size, backward)
    return grads[0] if single else grads


def gradient_map(model, images, target, method="vanilla", batch_size=16):
    """``max_c |.|`` of :func:`gradients` with ``method``: the map of any gradient method."""
    return as_maps(np.abs(gradients(model, images, target, batch_size, method)).max(axis=-1))


def vanilla(model, images, target, batch_size=16):
    """Simonyan et al.'s image-specific saliency: ``max_c |dS/dI_{i,j,c}|``.

    Parameters
    ----------
    model : keras.Model
        A model with one image input. Fused activations are split (:func:`tfvis.graph.prepared`).
    images : ndarray, shape (N, H, W, C) or (H, W, C)
        In the model's input space (RGB in [0, 255] for the zoo).
    target : int, str or list
        A class index (its unnormalised score), ``"layer:channel"`` (the mean of the channel's
        map) or ``"layer:channel@y,x"`` (one unit); or a list of one such target per image,
        all of one layer and kind (:mod:`tfvis.targets`).
    batch_size : int
        Images per compiled call.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)
        Shown as heatmaps in notebooks (:class:`tfvis.display.Maps`).

    Raises
    ------
    ValueError
        Images of the wrong rank or size, a class index out of range (the message gives the
        valid range), a model without a class output for an int target, an unknown layer.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights=None)      # doctest: +SKIP
    >>> maps = vanilla(model, photos, 281)                     # doctest: +SKIP
    >>> maps.shape == photos.shape[:3]                         # doctest: +SKIP
    True
    """
    return gradient_map(model, images, target, "vanilla", batch_size)


def guided(model, images, target, batch_size=16):
    """Guided backpropagation (Springenberg et al. 2015) of the target score: ``max_c |.|``.

    The gradient of the score with every ReLU's backward rule replaced by
    ``relu(g) * [x > 0]`` (:func:`tfvis.rules.guided`). The signal fed back is 1 at the target
    (the score's own gradient), so a class target gives the same map whatever the sign of its
    logit; :func:`tfvis.deconv.reconstruct` instead feeds back the activation itself,
    ``"predictions:281"`` with ``position=None`` there equals this map times the logit when the
    logit is positive.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`vanilla`. For a class index the logit layer is used (e.g. VGG16's
        ``predictions``); ``"layer:channel@y,x"`` is one unit, ``"layer:channel"`` the
        channel's mean.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Examples
    --------
    >>> maps = guided(model, photos, ["block5_conv3:12", "block5_conv3:40"])  # doctest: +SKIP
    """
    return gradient_map(model, images, target, "guided", batch_size)


def deconvnet(model, images, target, batch_size=16):
    """Zeiler & Fergus's deconvnet applied to the target score: ``max_c |.|``.

    As :func:`guided` with the backward rule ``relu(g)`` at every ReLU, LRN passed through
    (:func:`tfvis.rules.deconvnet`).

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)
    """
    return gradient_map(model, images, target, "deconvnet", batch_size)


__all__ = [
    "BACKWARD_RULES",
    "METHODS",
    "TargetRows",
    "class_scores",
    "deconvnet",
    "gradient_attribution",
    "gradient_function",
    "gradient_map",
    "gradients",
    "guided",
    "has_class_output",
    "input_gradients",
    "score",
    "target_scores",
    "vanilla",
]
