"""Invert a layer's representation: find an image whose features match those of a given image.

Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them" (CVPR 2015),
with the normalisation of their IJCV follow-up ("Visualizing deep convolutional neural networks
using natural pre-images", 2016)::

    x* = argmin_x  ||Phi(x) - Phi0||^2 / ||Phi0||^2 + lambda_alpha R_alpha(x) + lambda_tv R_tv(x)

where ``x`` is the image minus the model's mean (the space the regularisers are written in),
``R_alpha(x) = mean_pixels ||x_ij / B||^alpha`` (``||.||`` over the colour channels) and
``R_tv(x) = mean_pixels ((d_x x / V)^2 + (d_y x / V)^2)^(beta / 2)`` with ``B = 80`` (the typical
pixel norm of a mean-subtracted image) and ``V = B / 6.5``.

Layers are named on the prepared model (:func:`tfvis.graph.prepared`: ``"c"`` is a layer's
pre-activation output, ``"c_relu"`` the post-activation one, fused or not); the mean is the
model's (:func:`tfvis.models.info.model_info`). The optimisation is :mod:`tfvis.optim`'s one loop
(:class:`~tfvis.optim.Loop`, as for feature visualization): the objective above, the image as a
variable, a learning-rate schedule, the preconditioner as a reshaping of the gradient, cached per
model and settings so that a second inversion of an image of the same shape starts at once.

Shallow layers (total stride up to 2) are inverted with a preconditioned gradient
(:func:`precondition_gain`): plain pixel-space descent moves an image's low spatial frequencies,
its colour among them, far more slowly than its edges: the filters respond weakly to them, and
a learning rate that is stable for the edges (and the TV term, whose curvature grows as the
frequency squared) is tiny for them. Whatever colour the first steps give the image then stays.
On VGG16 with the hed weights that left every reconstruction of ``block2_conv2`` with a magenta
cast and a washed-out contrast (chelsea at 64 px: mean RGB
(134, 83, 111) for the photo's (148, 109, 80), PSNR 16.6 dB) although the representation fixes the
colour (started from the photo, the optimisation stays there with a lower objective). Scaling each
spatial frequency ``f`` of the gradient by ``(f_max / max(f, f_max / 8))^2``, the inverse of the
total-variation term's curvature (capped), gives every frequency the step of the highest one:
mean RGB (154, 104, 68), PSNR 22.0 dB, error 0.025 -> 0.013 at the same 350 steps. Deeper layers
keep the plain gradient (there the representation leaves the colour undetermined, and the larger
low-frequency steps overshoot): see ``docs/inversion.md``.
"""

import numpy as np
import tensorflow as tf

from . import graph, optim, rules, targets
from .images import check_finite
from .models.info import model_info
from .receptive_field import receptive_field

#: Bump when :func:`invert` gives other results for the same arguments (stored inversions hold it in their keys).
VERSION = 2
#: Typical norm of a mean-subtracted pixel, in [0, 255] units (their IJCV code's ``B``).
B_NORM = 80.0
#: Typical size of a pixel difference, ``B / 6.5`` (their ``V``).
V_NORM = B_NORM / 6.5


def _regularisers(x, alpha=6.0, beta=2.0, b=B_NORM, v=V_NORM):
    """Alpha-norm and total-variation regularisers of a batch of mean-subtracted images.

    Parameters
    ----------
    x : tensor or ndarray, shape (N, H, W, C)
        Mean-subtracted images in [0, 255] units.
    alpha, beta : float
        Exponents of the two terms.
    b, v : float
        Normalisers of pixel values (``B``) and of pixel differences (``V``).

    Returns
    -------
    r_alpha, r_tv : tensors, shape (N,)
        ``mean_ij (sum_c (x_ijc / b)^2)^(alpha / 2)`` and
        ``mean_ij (sum_c ((x_i,j+1,c - x_ijc)^2 + (x_i+1,j,c - x_ijc)^2) / v^2)^(beta / 2)``, the
        differences taken over the pixels that have both neighbours, i.e. ``(H - 1) (W - 1)`` of them.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    xb = x / b
    r_alpha = tf.reduce_mean(tf.reduce_sum(xb * xb, axis=-1) ** (alpha / 2.0), axis=[1, 2])
    xv = x / v
    dx = xv[:, :-1, 1:, :] - xv[:, :-1, :-1, :]
    dy = xv[:, 1:, :-1, :] - xv[:, :-1, :-1, :]
    sq = tf.reduce_sum(dx * dx + dy * dy, axis=-1)
    if beta == 2.0:
        tv = sq
    else:
        tv = (sq + 1e-8) ** (beta / 2.0)  # the small constant keeps the gradient finite at 0 for beta < 2
    return r_alpha, tf.reduce_mean(tv, axis=[1, 2])


def _layer(model, layer):
    """The prepared model and ``layer`` checked on it (the error names the valid layers)."""
    prepared = graph.prepared(model)
    if not isinstance(layer, str):
        raise ValueError(f"layer={layer!r}: give a layer name, e.g. {prepared.layers[-1].name!r}")
    targets.find_layer(prepared, layer)
    return prepared


def _layer_stride(model, layer, size):
    try:
        stride = receptive_field(model, layer, input_size=size).stride
    except ValueError:
        return 1
    return max(int(max(stride)), 1)


def default_settings(stride):
    """Default ``(lambda_alpha, lambda_tv, jitter)`` for a layer of total stride ``stride``.

    Shallow layers (small stride) keep most of the image and need little regularisation; the
    TV weight grows with depth as in the paper: 0.005, 0.01, 0.05, 0.5 at strides 1, 2, 4, 8 and
    1 beyond (tuned on VGG16 at 64 and 128 pixels; larger values make the default momentum
    step unstable).
    """
    stride = max(int(stride), 1)
    lambda_tv = {1: 0.005, 2: 0.01, 4: 0.05, 8: 0.5}.get(stride, 1.0)
    lambda_alpha = 1e-5 if stride <= 2 else 1e-4
    jitter = max(int(round(stride / 4)), 1)
    return lambda_alpha, lambda_tv, jitter


#: Largest gain of :func:`precondition_gain`: frequencies below ``f_max / PRECONDITION_CAP`` get the same step.
PRECONDITION_CAP = 8.0


def precondition_gain(h, w, cap=PRECONDITION_CAP):
    """The per-frequency gain of the preconditioned gradient, ``(f_max / max(f, f_max / cap))^2``.

    ``f`` is the radial frequency of the real-FFT grid in cycles per pixel (``np.fft.fftfreq`` /
    ``rfftfreq``) and ``f_max`` the largest on the grid. The total-variation term's curvature grows
    as ``f^2``, so with this gain every frequency above ``f_max / cap`` sees the same curvature
    and the TV-stable learning rate stays stable; lower frequencies (the image's colour and
    layout) move ``cap^2`` times faster than with the plain gradient.

    Parameters
    ----------
    h, w : int
        Image height and width.
    cap : float
        Largest gain is ``cap^2``, at and below ``f_max / cap``.

    Returns
    -------
    ndarray, shape (h, w // 2 + 1), float32
        1 at ``f_max``.

    Examples
    --------
    >>> g = precondition_gain(16, 16)
    >>> float(g.max()), float(g.min())
    (64.0, 1.0)
    """
    fy = np.fft.fftfreq(int(h))[:, None]
    fx = np.fft.rfftfreq(int(w))[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f_max = float(f.max())
    return ((f_max / np.maximum(f, f_max / float(cap))) ** 2).astype(np.float32)


def _preconditioner(h, w, cap=PRECONDITION_CAP):
    """``g -> irfft2d(gain * rfft2d(g))`` over the spatial axes of an (N, H, W, C) gradient."""
    gain = tf.constant(precondition_gain(h, w, cap), tf.complex64)

    def apply(g):
        planes = tf.signal.rfft2d(tf.transpose(g, [0, 3, 1, 2]))  # (N, C, H, W // 2 + 1)
        return tf.transpose(tf.signal.irfft2d(planes * gain, fft_length=[h, w]), [0, 2, 3, 1])

    return apply


def invert(
    model,
    image,
    layer,
    steps=350,
    alpha=6,
    beta=2,
    lambda_alpha=None,
    lambda_tv=None,
    jitter=None,
    optimizer="momentum",
    learning_rate=None,
    seed=0,
    progress=False,
    settle=True,
    precondition=None,
):
    """Reconstruct an image from its representation at ``layer`` (Mahendran & Vedaldi).

    Gradient descent on the mean-subtracted image ``x`` (``image = x + mean``, the model's
    ``model_info(model).mean_rgb``) from small seeded noise, each step jittering ``x`` by a random
    circular shift of up to ``jitter`` pixels and projecting it back onto valid RGB values. For
    layers of total stride up to 2 the gradient is preconditioned (see the module's notes and
    :func:`precondition_gain`): without it, VGG16-hed's ``block2_conv2`` came back magenta.

    Parameters
    ----------
    model : keras.Model
        A model taking RGB images in [0, 255] (the zoo's convention).
    image : ndarray, shape (H, W, 3) or (N, H, W, 3)
        RGB image(s) in [0, 255] whose representation is inverted; a batch is inverted in one
        compiled optimisation (each image with its own normalised objective).
    layer : str
        Name of the layer whose output is matched, on :func:`tfvis.graph.prepared` (for a layer
        ``c`` with a fused activation, ``"c"`` is its pre-activation output, ``"c_relu"`` the
        post-activation one).
    steps : int
        Number of iterations; the last seventh runs at a tenth of the learning rate (their
        schedule: 300 then 50 at a tenth) and, with ``settle``, without jitter.
    alpha, beta : float
        Exponents of the alpha-norm and total-variation regularisers.
    lambda_alpha, lambda_tv : float, optional
        Regulariser weights; default from the layer's total stride (see :func:`default_settings`).
    jitter : int, optional
        Largest shift in pixels; default ``max(round(stride / 4), 1)``. 0 disables it.
    optimizer : {"momentum", "adam"}
        Momentum 0.9 (the paper's) or Adam (:mod:`tfvis.optim`).
    learning_rate : float, optional
        Default ``0.05 B^2 / alpha * H W / 4`` for momentum (their ``0.05 B^2 / alpha`` rescaled
        for this objective, whose per-pixel gradient shrinks as ``1 / (H W)``), 2.0 for Adam.
    seed : int
        Seeds the starting noise and the jitter.
    progress : bool
        Show a progress bar.
    settle : bool
        Switch the jitter off for the low-rate final steps, so that the reconstruction matches
        the unshifted representation (jitter otherwise sets a floor on the error of shallow layers).
    precondition : bool, optional
        Scale the gradient's spatial frequencies by :func:`precondition_gain` before each step, so
        that low frequencies (colour, layout) converge as fast as edges. Default: on for layers of
        total stride up to 2, off beyond (measured on VGG16: it overshoots there).

    Returns
    -------
    reconstruction : ndarray, float32, shape of ``image``
        RGB in [0, 255].
    error : float or ndarray of shape (N,)
        ``||Phi(x*) - Phi0||^2 / ||Phi0||^2`` of the reconstruction, without jitter.

    Raises
    ------
    ValueError
        Unknown layer (the message lists the valid ones), image not of rank 3 or 4 with 3
        channels or holding NaN or inf, unknown optimizer.

    Examples
    --------
    >>> model = tfvis.load_model("vgg16", weights="hed", include_top=False)  # doctest: +SKIP
    >>> photo = tfvis.images.sample_images(["chelsea"], size=64)["chelsea"]  # doctest: +SKIP
    >>> recon, err = invert(model, photo, "block1_conv2")  # doctest: +SKIP
    """
    prepared = _layer(model, layer)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) or (N, H, W, 3) RGB; got shape {image.shape}")
    if optimizer not in optim.NAMES:
        raise ValueError(f"optimizer must be one of {', '.join(optim.NAMES)}; got {optimizer!r}")
    single = image.ndim == 3
    batch = image[None] if single else image
    check_finite(batch, "image" if single else "images")
    n, h, w, _ = batch.shape

    stride = _layer_stride(prepared, layer, (h, w))
    d_alpha, d_tv, d_jitter = default_settings(stride)
    lambda_alpha = d_alpha if lambda_alpha is None else float(lambda_alpha)
    lambda_tv = d_tv if lambda_tv is None else float(lambda_tv)
    jitter = d_jitter if jitter is None else int(jitter)
    precondition = stride <= 2 if precondition is None else bool(precondition)
    if learning_rate is None:
        # Their 0.05 B^2 / alpha, times H W / 4: our data term is a ratio and the regularisers are
        # means over pixels, so the gradient at one pixel shrinks as 1 / (H W).
        learning_rate = 0.05 * B_NORM**2 / alpha * (h * w) / 4.0 if optimizer == "momentum" else 2.0
        if optimizer == "momentum" and lambda_tv > 0 and beta == 2:
            # Keep heavy-ball momentum stable on the TV term: its curvature is at most
            # 16 lambda_tv / (H W V^2), and momentum 0.9 needs lr * curvature < 2 (1 + 0.9).
            learning_rate = min(learning_rate, 1.9 * h * w * V_NORM**2 / (16.0 * lambda_tv))
    alpha, beta = float(alpha), float(beta)

    mean = np.asarray(model_info(model).mean_rgb, np.float32)
    settings = (alpha, beta, lambda_alpha, lambda_tv, jitter, optimizer, float(learning_rate), bool(settle), precondition)
    key = ("invert", layer, batch.shape) + settings
    loop = optim.cached_loop(model, key, lambda: _inversion_loop(prepared, layer, batch.shape, mean, *settings))
    try:
        loop.mean.assign(mean)
        loop.target.assign(loop.phi(tf.constant(batch - mean)))
        loop.start(seed)
        optim.optimize(loop, int(steps), seed, progress=progress, desc=f"invert {layer}")
        errors = loop.error().numpy()
        recon = (loop.x + mean).numpy().astype(np.float32)
    finally:
        loop.lock.release()
    if single:
        return recon[0], float(errors[0])
    return recon, errors


def _inversion_loop(
    prepared, layer, shape, mean, alpha, beta, lambda_alpha, lambda_tv, jitter, optimizer, learning_rate, settle, precondition
):
    """The :class:`tfvis.optim.Loop` of :func:`invert`: descent on the objective of the module's notes.

    The image ``x`` (mean-subtracted), the target representation and the model's mean are
    variables of the loop (``loop.x``, ``loop.target``, ``loop.mean``), so one trace inverts any
    image of this shape. Each step shifts
    ``x`` circularly by up to ``jitter`` pixels, a shift keyed by the seed and the step number
    (none in the last seventh of the steps with ``settle``), where the learning rate is a tenth.
    """
    features = graph.feature_net(prepared, layer, rules.for_input_gradients())
    mean = tf.Variable(mean, trainable=False, name="inversion_mean")  # the model's, set by each run (loop.mean)
    n, h, w, _ = shape

    def phi(x):
        return features(x + mean, training=False)

    x = tf.Variable(tf.zeros(shape), name="inversion_image")
    target = tf.Variable(tf.zeros_like(phi(x)), trainable=False, name="inversion_target")
    axes = list(range(1, len(target.shape)))

    def error():
        diff = phi(x) - target
        return tf.reduce_sum(diff * diff, axis=axes) / tf.reduce_sum(target * target, axis=axes)

    def fast(index, total):  # the first six sevenths of the steps: full rate, jitter
        return index < total - total // 7

    def objective(seed, index, total, aux):
        xin = x
        if jitter > 0:
            shake = tf.cast(tf.logical_or(fast(index, total), not settle), tf.int32)
            shift = tf.random.stateless_uniform([2], tf.stack([seed, index]), -jitter, jitter + 1, dtype=tf.int32) * shake
            xin = tf.roll(xin, shift=shift, axis=[1, 2])
        diff = phi(xin) - target
        data = tf.reduce_sum(diff * diff, axis=axes) / tf.reduce_sum(target * target, axis=axes)
        r_alpha, r_tv = _regularisers(xin, alpha, beta)
        return tf.reduce_sum(data + lambda_alpha * r_alpha + lambda_tv * r_tv)

    def schedule(index, total):  # their 300 steps, then 50 at a tenth of the rate
        return tf.where(fast(index, total), tf.constant(learning_rate, tf.float32), tf.constant(learning_rate / 10.0, tf.float32))

    def clip(value):  # onto valid RGB values
        return tf.clip_by_value(value, -mean, 255.0 - mean)

    def reset(seed):  # small seeded noise around the mean
        x.assign(np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32))

    if optimizer == "momentum":
        update = optim.Momentum([x], learning_rate, sign=-1, momentum=0.9, project=clip)
    else:
        update = optim.Adam([x], learning_rate, sign=-1, epsilon_hat=False, project=clip)
    loop = optim.Loop(
        objective, update, shape_gradient=_preconditioner(h, w) if precondition else None, schedule=schedule, reset=reset
    )
    loop.x, loop.target, loop.mean, loop.phi, loop.error = x, target, mean, phi, error
    return loop


def invert_layers(model, image, layers, **kwargs):
    """Invert one image at several layers and plot the reconstructions.

    Parameters
    ----------
    model : keras.Model
    image : ndarray, shape (H, W, 3)
        RGB in [0, 255].
    layers : list of str
    **kwargs
        Passed to :func:`invert` (each layer gets its own defaults for what is not given).

    Returns
    -------
    reconstructions : ndarray, shape (L, H, W, 3)
    errors : list of float
    figure : matplotlib.figure.Figure
        One row per layer: the image and its reconstruction, titled with the normalised error.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"invert_layers takes one (H, W, 3) image; got shape {image.shape}")
    for name in layers:
        _layer(model, name)
    recons, errors = [], []
    for name in layers:
        recon, err = invert(model, image, name, **kwargs)
        recons.append(recon)
        errors.append(err)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 2.0 * max(len(layers), 1)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(len(layers), 1), 2, squeeze=False)
    for row, (name, recon, err) in enumerate(zip(layers, recons, errors)):
        axes[row, 0].imshow(np.clip(image, 0, 255).astype(np.uint8))
        axes[row, 0].set_title("image", fontsize=8)
        axes[row, 1].imshow(np.clip(recon, 0, 255).astype(np.uint8))
        axes[row, 1].set_title(f"{name}: error {err:.3f}", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    return np.stack(recons) if recons else np.zeros((0,) + image.shape, np.float32), errors, fig
