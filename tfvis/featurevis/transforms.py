"""Random image transforms applied before each optimisation step, for robust visualizations.

Every transform is a function ``(images, seed) -> images`` on a float batch ``(B, H, W, 3)``
in [0, 1], where ``seed`` is a ``(2,)`` int32 tensor. Randomness comes only from Philox
``tf.random.stateless_*`` ops keyed by ``seed`` (render derives it from its seed and the step
number), so a transform is deterministic, runs inside one compiled ``tf.function`` (XLA
included) and draws one set of parameters for the whole batch.

Output shapes are static: :func:`pad` grows the image by ``2 * width``, :func:`jitter` shrinks
it by ``d`` (a random crop, as in Lucid), and :func:`scale` and :func:`rotate` resample the
image about its centre on the same canvas (where Lucid's random scale resizes the canvas), with
exact bilinear gradients, filling what comes from outside with mid-grey 0.5.
"""

import math

import tensorflow as tf

#: Lucid's standard scales.
STANDARD_SCALES = tuple(1 + (i - 5) / 50 for i in range(11))


def _sub_seed(seed, k):
    """An independent stateless seed for the ``k``-th random draw of a composed transform."""
    seed = tf.cast(seed, tf.int32)
    return tf.stack([seed[0], seed[1] * 7919 + k * 104729 + 17])


def pad(width, value=0.5):
    """Pad each image by ``width`` pixels of the constant ``value`` on every side.

    Parameters
    ----------
    width : int
        Pixels added on each side.
    value : float
        Fill value in [0, 1] (mid-grey by default).

    Returns
    -------
    callable
        ``(images, seed) -> images`` of side ``H + 2 * width``.

    Examples
    --------
    >>> pad(12)(tf.zeros([1, 128, 128, 3]), tf.constant([0, 0])).shape
    TensorShape([1, 152, 152, 3])
    """
    width = int(width)

    def transform(images, seed):
        paddings = [[0, 0], [width, width], [width, width], [0, 0]]
        return tf.pad(images, paddings, constant_values=tf.cast(value, images.dtype))

    return transform


def jitter(d):
    """Crop each image at a random offset of up to ``d`` pixels (Lucid's jitter).

    Parameters
    ----------
    d : int
        Largest shift; the output is ``d`` pixels smaller in height and width.

    Returns
    -------
    callable
        ``(images, seed) -> images`` of side ``H - d``.

    Examples
    --------
    >>> jitter(8)(tf.zeros([2, 144, 144, 3]), tf.constant([0, 1])).shape
    TensorShape([2, 136, 136, 3])
    """
    d = int(d)

    def transform(images, seed):
        if d <= 0:
            return images
        shape = images.shape
        offset = tf.random.stateless_uniform([2], seed, 0, d + 1, dtype=tf.int32, alg="philox")
        begin = tf.stack([0, offset[0], offset[1], 0])
        return tf.slice(images, begin, [-1 if shape[0] is None else shape[0], shape[1] - d, shape[2] - d, shape[3]])

    return transform


def _bilinear(images, ys, xs, fill=0.5):
    """Sample ``images`` at float pixel coordinates ``ys, xs`` (each ``(H, W)``), one map for the batch."""
    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=tf.cast(fill, images.dtype))
    ys = tf.clip_by_value(ys + 1.0, 0.0, float(h + 1))  # padded coordinates; outside reads the fill
    xs = tf.clip_by_value(xs + 1.0, 0.0, float(w + 1))
    y0 = tf.minimum(tf.floor(ys), float(h))
    x0 = tf.minimum(tf.floor(xs), float(w))
    wy = tf.reshape(tf.cast(ys - y0, images.dtype), [1, -1, 1])  # (1, H * W, 1)
    wx = tf.reshape(tf.cast(xs - x0, images.dtype), [1, -1, 1])
    y0 = tf.cast(y0, tf.int32)
    x0 = tf.cast(x0, tf.int32)
    flat = tf.reshape(padded, [-1, (h + 2) * (w + 2), images.shape[3]])

    def take(yi, xi):
        return tf.gather(flat, tf.reshape(yi * (w + 2) + xi, [-1]), axis=1)

    top = take(y0, x0) * (1 - wx) + take(y0, x0 + 1) * wx
    bottom = take(y0 + 1, x0) * (1 - wx) + take(y0 + 1, x0 + 1) * wx
    return tf.reshape(top * (1 - wy) + bottom * wy, [-1, h, w, images.shape[3]])


def _affine(images, scale, angle):
    """Resample ``images`` zoomed by ``scale`` and rotated by ``angle`` (radians) about the centre."""
    h, w = images.shape[1], images.shape[2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = tf.meshgrid(tf.range(h, dtype=tf.float32) - cy, tf.range(w, dtype=tf.float32) - cx, indexing="ij")
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale  # output -> input: inverse rotation and zoom
    ys = cos * yy - sin * xx + cy
    xs = sin * yy + cos * xx + cx
    return _bilinear(images, ys, xs)


def scale(scales=STANDARD_SCALES):
    """Zoom each image about its centre by a factor drawn uniformly from ``scales``.

    Parameters
    ----------
    scales : sequence of float
        Candidate zoom factors (> 1 enlarges the content).

    Returns
    -------
    callable
        ``(images, seed) -> images`` of the same shape.

    Examples
    --------
    >>> scale([0.9, 1.1])(tf.zeros([1, 64, 64, 3]), tf.constant([0, 2])).shape
    TensorShape([1, 64, 64, 3])
    """
    choices = tf.constant([float(s) for s in scales], tf.float32)
    if any(s <= 0 for s in scales) or not len(scales):
        raise ValueError(f"scales={tuple(scales)!r}: give one or more positive zoom factors")

    def transform(images, seed):
        index = tf.random.stateless_uniform([], seed, 0, len(scales), dtype=tf.int32, alg="philox")
        return _affine(images, tf.gather(choices, index), tf.constant(0.0))

    return transform


def rotate(degrees=10):
    """Rotate each image about its centre by an angle drawn uniformly from ``[-degrees, degrees]``.

    Parameters
    ----------
    degrees : float or (float, float)
        Largest angle, or the ``(low, high)`` range, in degrees.

    Returns
    -------
    callable
        ``(images, seed) -> images`` of the same shape.

    Examples
    --------
    >>> rotate(10)(tf.zeros([1, 64, 64, 3]), tf.constant([0, 3])).shape
    TensorShape([1, 64, 64, 3])
    """
    low, high = (-float(degrees), float(degrees)) if isinstance(degrees, (int, float)) else map(float, degrees)

    def transform(images, seed):
        # an integer draw: XLA and TensorFlow turn Philox bits into floats differently
        u = tf.cast(tf.random.stateless_uniform([], seed, 0, 1 << 24, dtype=tf.int32, alg="philox"), tf.float32) / (1 << 24)
        angle = (low + u * (high - low)) * (math.pi / 180.0)
        return _affine(images, tf.constant(1.0), angle)

    return transform


def compose(*transforms):
    """Apply ``transforms`` in order, each with its own seed derived from the step's seed.

    Parameters
    ----------
    *transforms : callable
        ``(images, seed) -> images`` functions.

    Returns
    -------
    callable
        The composed transform.

    Examples
    --------
    >>> t = compose(pad(4), jitter(2))
    >>> t(tf.zeros([1, 32, 32, 3]), tf.constant([0, 0])).shape
    TensorShape([1, 38, 38, 3])
    """
    transforms = [t for t in transforms if t is not None]

    def transform(images, seed):
        for k, t in enumerate(transforms):
            images = t(images, _sub_seed(seed, k))
        return images

    return transform


def standard():
    """Lucid's standard set: pad 12, jitter 8, random scale, rotate in [-10, 10] degrees, jitter 4.

    Returns
    -------
    callable
        ``(images, seed) -> images``; a 128 px image comes out at 140 px.

    Examples
    --------
    >>> standard()(tf.zeros([1, 128, 128, 3]), tf.constant([0, 0])).shape
    TensorShape([1, 140, 140, 3])
    """
    return compose(pad(12), jitter(8), scale(STANDARD_SCALES), rotate(10), jitter(4))


#: The zoom factors of Lucid's caricature recipe: 1 half of the time.
CARICATURE_SCALES = (0.9, 0.95, 1.05, 1.1, 1.0, 1.0, 1.0, 1.0)


def caricature():
    """Lucid's milder set for caricatures: pad 8, jitter 8, scale, rotate in [-5, 5] degrees, jitter 2.

    The scale is drawn from :data:`CARICATURE_SCALES` (no zoom half of the time). Milder than
    :func:`standard`, so that the layout the caricature keeps stays where the photo has it.

    Returns
    -------
    callable
        ``(images, seed) -> images``; a 128 px image comes out at 134 px.

    Examples
    --------
    >>> caricature()(tf.zeros([1, 128, 128, 3]), tf.constant([0, 0])).shape
    TensorShape([1, 134, 134, 3])
    """
    return compose(pad(8), jitter(8), scale(CARICATURE_SCALES), rotate(5), jitter(2))


def identity(images, seed):
    """No transform."""
    return images


#: Names accepted by :func:`get`.
NAMES = ("standard", "none", "caricature")


def get(transforms):
    """A transform from a name (``"standard"``, ``"caricature"``, ``"none"``), None, a callable or a list of callables."""
    if transforms is None or (isinstance(transforms, str) and transforms == "none"):
        return identity
    if isinstance(transforms, str):
        if transforms == "standard":
            return standard()
        if transforms == "caricature":
            return caricature()
        raise ValueError(f"transforms={transforms!r}; choose one of: {', '.join(NAMES)}, a callable or a list of them")
    if callable(transforms):
        return transforms
    try:
        items = list(transforms)
    except TypeError:
        raise ValueError(f"transforms={transforms!r}; choose one of: {', '.join(NAMES)}, a callable or a list of them") from None
    return compose(*items)


def output_size(transform, size):
    """The side of the image that ``transform`` makes from a ``size`` x ``size`` one."""
    out = transform(tf.zeros([1, size, size, 3]), tf.constant([0, 0]))
    return int(out.shape[1]), int(out.shape[2])
