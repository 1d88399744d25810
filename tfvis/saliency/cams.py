"""Class activation maps beyond Grad-CAM: Grad-CAM++ (Chattopadhay et al. 2018), LayerCAM (Jiang et al. 2021), Score-CAM.

Both read, like Grad-CAM (:mod:`.gradcam`), the activations ``A`` of one layer with a spatial map
(N, h, w, K) and the gradient ``g = dS/dA`` of the target score ``S``, and differ in how they
weigh ``A``:

* **Grad-CAM++** gives each channel the weight ``w_k = sum_ij alpha_kij relu(g_kij)``, with the
  closed form of the paper's eq. 19 for the score ``exp(S)``, whose second and third derivatives
  are ``exp(S) g**2`` and ``exp(S) g**3`` when ``S`` is piecewise linear in ``A`` (a ReLU
  network): ``alpha_kij = g_kij**2 / (2 g_kij**2 + sum_ab A_kab g_kij**3)`` (0 where the
  denominator is 0), normalised to sum 1 over the positions of each channel as in the authors'
  code. The factor ``exp(S)`` of the first derivative is left out of the weights: it scales each
  image's map by one positive number, and overflows float32 for scores above about 88.
  The map is ``relu(sum_k w_k A_k)``.
* **LayerCAM** weighs each position of each channel by its own positive gradient:
  ``relu(sum_k relu(g_k) * A_k)``.

**Score-CAM** (:func:`score_cam`) takes no gradient: each channel's weight is the score gained
by the input masked with that channel's map (see the function).

The map is then upsampled bilinearly to the input size (``tf.image.resize``, half-pixel
centres), not normalised: the conventions of :func:`tfvis.saliency.grad_cam`, with its targets
(a class index, ``"layer:channel[@y,x]"``, or one per image) and its default layer
(:func:`tfvis.saliency.default_layer`). One compiled function per (prepared model, method,
layer, target key) serves whole batches, and SmoothGrad wraps both
(``smoothgrad(..., method="grad_cam_pp")``).
"""

import numpy as np
import tensorflow as tf

from ..display import as_maps
from ..graph import cached, feature_net
from ..rules import for_input_gradients
from .gradcam import batched_maps, cam_function, cam_layer, weighted_cam_attribution, weighted_cam_maps
from .gradient import image_spec, row_specs, setup, target_scores


def grad_cam_pp_weighting(activations, grads):
    """Grad-CAM++'s map before upsampling, ``relu(sum_k w_k A_k)`` of shape (B, h, w, 1) (graph code).

    Parameters and return as in :func:`tfvis.saliency.gradcam.grad_cam_weighting`; the weights
    ``w_k`` are those of the module notes.
    """
    squared, cubed = grads**2, grads**3
    total = tf.reduce_sum(activations, axis=[1, 2], keepdims=True)  # sum_ab A_kab
    denominator = 2.0 * squared + total * cubed
    alphas = squared / tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
    alpha_sums = tf.reduce_sum(alphas, axis=[1, 2], keepdims=True)
    alphas = alphas / tf.where(alpha_sums != 0.0, alpha_sums, tf.ones_like(alpha_sums))
    weights = tf.reduce_sum(alphas * tf.nn.relu(grads), axis=[1, 2], keepdims=True)  # (B, 1, 1, K)
    return tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))


def layer_cam_weighting(activations, grads):
    """LayerCAM's map before upsampling, ``relu(sum_k relu(g_k) A_k)`` of shape (B, h, w, 1) (graph code).

    Parameters and return as in :func:`tfvis.saliency.gradcam.grad_cam_weighting`.
    """
    return tf.nn.relu(tf.reduce_sum(tf.nn.relu(grads) * activations, axis=-1, keepdims=True))


#: The gradient-weighted CAM methods of this module by name, and their weighting (graph code).
WEIGHTINGS = {"grad_cam_pp": grad_cam_pp_weighting, "layer_cam": layer_cam_weighting}


def _weighting(name):
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown CAM weighting {name!r}; choose one of: {', '.join(WEIGHTINGS)}")
    return WEIGHTINGS[name]


def _cam_function(model, name, target, layer):
    """Compiled ``(images, channels, positions) -> maps`` of method ``name`` on the prepared ``model``, cached."""
    return cam_function(model, target, layer, name, _weighting(name))


def _attribution(name, model, net, target, layer):
    return weighted_cam_attribution(model, net, target, layer, name, _weighting(name))


def grad_cam_pp_attribution(model, net, target, layer=None):
    """SmoothGrad's view of Grad-CAM++ (:class:`tfvis.saliency.methods.Attribution`): each row's map, (B, H, W, 1)."""
    return _attribution("grad_cam_pp", model, net, target, layer)


def layer_cam_attribution(model, net, target, layer=None):
    """SmoothGrad's view of LayerCAM (:class:`tfvis.saliency.methods.Attribution`): each row's map, (B, H, W, 1)."""
    return _attribution("layer_cam", model, net, target, layer)


def _weighted_cams(name, model, images, target, layer, batch_size):
    images, single, net, rows = setup(model, images, target, batch_size)
    layer = cam_layer(model, layer)
    return batched_maps(_cam_function(net, name, rows.target, layer), images, rows, batch_size, single)


def grad_cam_plus_plus(model, images, target, layer=None, batch_size=16):
    """Grad-CAM++ (Chattopadhay et al. 2018): ``relu(sum_k w_k A_k)``, ``w_k = sum_ij alpha_kij relu(dS/dA_kij)``.

    ``alpha`` is the closed form of the paper's eq. 19 for ``exp(S)``, normalised over positions
    (see :mod:`tfvis.saliency.cams`). Where the gradient is the same at every position of a
    channel (a linear head on a global average pool of ``layer``), ``alpha`` is uniform and
    ``w_k = relu(dS/dA_k)``: with positive gradients, Grad-CAM++ equals Grad-CAM there.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`tfvis.saliency.vanilla`.
    layer : str, optional
        A layer with a 2-D spatial map, e.g. ``"block5_conv3_relu"``; default
        :func:`tfvis.saliency.default_layer`.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)
        Upsampled bilinearly to the input size, not normalised (as :func:`tfvis.saliency.grad_cam`).

    Raises
    ------
    ValueError
        As :func:`tfvis.saliency.grad_cam`.

    Examples
    --------
    >>> cam = grad_cam_plus_plus(model, photos, 281)                      # doctest: +SKIP
    >>> cam = grad_cam_plus_plus(model, photos, 281, "block5_conv3_relu")  # doctest: +SKIP
    """
    return _weighted_cams("grad_cam_pp", model, images, target, layer, batch_size)


def layer_cam(model, images, target, layer=None, batch_size=16):
    """LayerCAM (Jiang et al. 2021): ``relu(sum_k relu(dS/dA_k) * A_k)``, each position weighed by its own gradient.

    Parameters
    ----------
    model, images, target, batch_size
        As in :func:`tfvis.saliency.vanilla`.
    layer : str, optional
        A layer with a 2-D spatial map; default :func:`tfvis.saliency.default_layer`. Unlike
        Grad-CAM's, LayerCAM's maps stay sharp at early layers (``"block3_conv3_relu"``).

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)
        Upsampled bilinearly to the input size, not normalised (as :func:`tfvis.saliency.grad_cam`).

    Raises
    ------
    ValueError
        As :func:`grad_cam_plus_plus`.

    Examples
    --------
    >>> cam = layer_cam(model, photos, 281, "block3_conv3_relu")  # doctest: +SKIP
    """
    return _weighted_cams("layer_cam", model, images, target, layer, batch_size)


# --------------------------------------------------------------------------------------------
# Score-CAM
# --------------------------------------------------------------------------------------------


def score_cam_masks(activations, size):
    """Score-CAM's masks ``H_k``: each map upsampled bilinearly to ``size`` and scaled to [0, 1] (graph code).

    ``activations`` (R, h, w) gives (R, H, W); a constant map gives the mask 0.
    """
    masks = tf.image.resize(activations[..., None], size, method="bilinear")[..., 0]
    low = tf.reduce_min(masks, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2], keepdims=True)
    span = high - low
    return tf.where(span > 0, (masks - low) / tf.where(span > 0, span, tf.ones_like(span)), tf.zeros_like(masks))


def _layer_function(model, layer):
    """Compiled ``images -> activations`` of ``layer`` on the prepared ``model``, cached."""

    def build():
        net = feature_net(model, layer, for_input_gradients())

        @tf.function(input_signature=[image_spec(model)])
        def run(images):
            return net(images, training=False)

        return run

    return cached(model, ("saliency.score_cam.layer", layer), build)


def _masked_score_function(model, target):
    """Compiled ``(images, maps, image_of_row, channels, positions) -> scores (R,)`` of masked copies, cached.

    Row ``r`` is image ``image_of_row[r]`` times :func:`score_cam_masks` of ``maps[r]`` (h, w).
    """

    def build():
        net = feature_net(model, target.layer, for_input_gradients())
        maps = tf.TensorSpec([None, None, None], tf.float32)
        rows = tf.TensorSpec([None], tf.int32)

        @tf.function(input_signature=[image_spec(model), maps, rows] + row_specs(target))
        def run(images, maps, image_of_row, channels, positions):
            masks = score_cam_masks(maps, tf.shape(images)[1:3])
            masked = tf.gather(images, image_of_row) * masks[..., None]
            return target_scores(net(masked, training=False), target, channels, positions)

        return run

    return cached(model, ("saliency.score_cam.scores",) + target.key, build)


#: How :func:`strongest_channels` ranks a channel's map: its maximum, or its standard deviation (tf-keras-vis' ``max_N``).
CHANNEL_RANKINGS = {"max": np.max, "std": np.std}


def strongest_channels(activations, count, rank_by="max"):
    """Indices (N, count) of each image's ``count`` strongest channels (ties: lower index).

    ``rank_by`` is ``"max"`` (the largest maximum activation) or ``"std"`` (the largest standard
    deviation over positions, as tf-keras-vis' ``max_N``).
    """
    if rank_by not in CHANNEL_RANKINGS:
        raise ValueError(f"unknown rank_by {rank_by!r}; choose one of: {', '.join(CHANNEL_RANKINGS)}")
    flat = activations.reshape(len(activations), -1, activations.shape[-1])
    strength = CHANNEL_RANKINGS[rank_by](flat, axis=1)
    return np.argsort(-strength, axis=1, kind="stable")[:, :count].astype(np.int32)


def score_cam(model, images, target, layer=None, batch_size=16, max_channels=None, rank_by="max"):
    """Score-CAM (Wang et al. 2020): ``relu(sum_k c_k A_k)``, ``c_k`` the score gained by the input masked by channel ``k``.

    Each channel ``A_k`` of ``layer`` is upsampled bilinearly to the input size and scaled to
    [0, 1], giving the mask ``H_k``; its weight is the paper's increase of confidence
    ``c_k = S(X * H_k) - S(X_b)``, with ``S`` the target score (for a class, its unnormalised
    score, as everywhere in :mod:`tfvis.saliency`) and ``X_b = 0 * X`` the baseline. The map is
    ``relu(sum_k c_k A_k)`` upsampled as :func:`tfvis.saliency.grad_cam`'s. No gradient is
    taken. The masked copies of the images (one per channel, plus the baseline) are scored
    ``batch_size`` rows per compiled call, the masks made inside the call.

    Parameters
    ----------
    model, images, target
        As in :func:`tfvis.saliency.vanilla`.
    layer : str, optional
        A layer with a 2-D spatial map; default :func:`tfvis.saliency.default_layer`.
    batch_size : int
        Masked copies per compiled call.
    max_channels : int, optional
        Score only each image's ``max_channels`` channels with the largest maximum activation
        (``rank_by="max"``) or standard deviation (``"std"``: tf-keras-vis' faster variant
        ``max_N``; 88 to 94% of the channels kept are the same on VGG16); the others get weight 0.
        None: every channel (``K`` model evaluations per image).
    rank_by : {"max", "std"}
        How ``max_channels`` ranks the channels.

    Returns
    -------
    Maps (ndarray), float32, shape (N, H, W) (or (H, W) for one image)

    Raises
    ------
    ValueError
        ``layer`` has no spatial map or is unknown; ``max_channels`` is below 1.

    Examples
    --------
    >>> cam = score_cam(model, photos, 281, max_channels=64)  # doctest: +SKIP
    """
    images, single, net, rows = setup(model, images, target, batch_size)
    layer = cam_layer(model, layer)
    batch_size = int(batch_size)
    read = _layer_function(net, layer)
    activations = np.concatenate(
        [np.asarray(read(tf.constant(images[i : i + batch_size])), np.float32) for i in range(0, len(images), batch_size)]
    )  # (N, h, w, K)
    depth = activations.shape[-1]
    if rank_by not in CHANNEL_RANKINGS:
        raise ValueError(f"unknown rank_by {rank_by!r}; choose one of: {', '.join(CHANNEL_RANKINGS)}")
    if max_channels is not None and int(max_channels) < 1:
        raise ValueError(f"max_channels must be at least 1 (or None for all {depth} channels); got {max_channels}")
    count = depth if max_channels is None else min(int(max_channels), depth)
    chosen = (
        strongest_channels(activations, count, rank_by)
        if count < depth
        else np.tile(np.arange(depth, dtype=np.int32), (len(images), 1))
    )
    # rows: per image, the baseline (a zero map: mask 0) then one row per chosen channel
    per_image = count + 1
    image_of_row = np.repeat(np.arange(len(images), dtype=np.int32), per_image)
    channel_of_row = np.concatenate([np.full((len(images), 1), -1, np.int32), chosen], axis=1).reshape(-1)
    run = _masked_score_function(net, rows.target)
    repeated = rows.repeat(per_image)
    scores = np.zeros(len(image_of_row), np.float32)
    for start in range(0, len(image_of_row), batch_size):
        part = slice(start, start + batch_size)
        first, last = image_of_row[part][0], image_of_row[part][-1] + 1
        maps = activations[image_of_row[part], :, :, np.maximum(channel_of_row[part], 0)]
        maps[channel_of_row[part] < 0] = 0.0
        scores[part] = run(
            tf.constant(images[first:last]), tf.constant(maps), tf.constant(image_of_row[part] - first), *repeated.tensors(part)
        ).numpy()
    scores = scores.reshape(len(images), per_image)
    weights = np.zeros((len(images), depth), np.float32)
    np.put_along_axis(weights, chosen, scores[:, 1:] - scores[:, :1], axis=1)
    cam = np.maximum(np.einsum("nijk,nk->nij", activations, weights), 0)[..., None]
    out = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy().astype(np.float32)
    return as_maps(out[0] if single else out)


__all__ = [
    "WEIGHTINGS",
    "grad_cam_plus_plus",
    "grad_cam_pp_attribution",
    "grad_cam_pp_weighting",
    "layer_cam",
    "layer_cam_attribution",
    "layer_cam_weighting",
    "score_cam",
    "score_cam_masks",
    "strongest_channels",
    "weighted_cam_maps",
]
