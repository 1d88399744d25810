"""Image parameterizations: what the optimiser changes, and how it becomes an RGB image in [0, 1].

An :class:`ImageParam` holds trainable variables and maps them to a batch of images
``(B, H, W, 3)`` in [0, 1]:

* ``"pixel"``: one value per pixel and colour, normal noise of std 0.01 at the start;
* ``"fft"``: a spectrum in Fourier space, brought to pixels by ``irfft2d``, each frequency
  ``f`` (cycles per pixel, from ``np.fft.fftfreq`` / ``rfftfreq``) scaled by
  ``sqrt(w h) / max(f, 1 / max(w, h)) ** decay_power``, so that every frequency band starts with
  similar energy and the optimiser's steps favour low frequencies (Lucid's ``fft_image``);

then, with ``decorrelate=True``, the three channels are mixed by the square root of ImageNet's
colour covariance (:data:`COLOR_CORRELATION`, normalised by its largest column norm), and a
sigmoid maps the result to [0, 1].
"""

import numpy as np
import tensorflow as tf

#: Square root of ImageNet's colour covariance, rows R, G, B (Lucid's ``color_correlation_svd_sqrt``).
COLOR_CORRELATION = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
#: :data:`COLOR_CORRELATION` divided by its largest column norm.
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION / np.max(np.linalg.norm(COLOR_CORRELATION, axis=0))

#: Parameterizations accepted by :func:`image`.
PARAMS = ("fft", "pixel")

# irfft2d of a spectrum scaled by sqrt(w h) has per-pixel std about 4x the spectrum's; dividing
# by 4 brings the start near mid-grey (sigmoid(0) = 0.5) with small variations, as in Lucid.
_FFT_GAIN = 0.25


def frequencies(h, w):
    """Radial frequency ``sqrt(fy^2 + fx^2)`` in cycles per pixel of the real-FFT grid ``(h, w // 2 + 1)``.

    Parameters
    ----------
    h, w : int
        Image height and width.

    Returns
    -------
    ndarray, shape (h, w // 2 + 1)

    Examples
    --------
    >>> frequencies(4, 4)[0]
    array([0.  , 0.25, 0.5 ])
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fy * fy + fx * fx)


def spectrum_scale(h, w, decay_power=1.0):
    """The per-frequency scale ``sqrt(w h) / max(f, 1 / max(w, h)) ** decay_power``.

    Parameters
    ----------
    h, w : int
        Image height and width.
    decay_power : float
        1 gives a ``1 / f`` spectrum (natural images'); 0 a flat one.

    Returns
    -------
    ndarray, shape (h, w // 2 + 1), float32

    Examples
    --------
    >>> spectrum_scale(8, 8).shape
    (8, 5)
    """
    f = np.maximum(frequencies(h, w), 1.0 / max(w, h))
    return (np.sqrt(w * h) / f**decay_power).astype(np.float32)


def to_rgb(x, decorrelate=True):
    """Map unbounded ``(B, H, W, 3)`` values to RGB in [0, 1]: optional colour decorrelation, then a sigmoid.

    Parameters
    ----------
    x : tf.Tensor, shape (B, H, W, 3)
    decorrelate : bool
        Mix the channels with :data:`COLOR_CORRELATION_NORMALIZED` first.

    Returns
    -------
    tf.Tensor
        Same shape, in (0, 1).

    Examples
    --------
    >>> float(to_rgb(tf.zeros([1, 1, 1, 3]))[0, 0, 0, 0])
    0.5
    """
    if decorrelate:
        x = tf.tensordot(x, tf.constant(COLOR_CORRELATION_NORMALIZED.T, x.dtype), axes=1)
    return tf.sigmoid(x)


class ImageParam:
    """A batch of images as trainable variables; calling it gives the images in [0, 1].

    Parameters
    ----------
    variables : list of tf.Variable
        What the optimiser updates.
    to_unbounded : callable
        ``() -> (B, H, W, 3)`` unbounded values from the variables.
    shape : tuple
        ``(batch, h, w, 3)``.
    decorrelate : bool
        Mix the colours before the sigmoid (see :func:`to_rgb`).
    initial : callable, optional
        ``seed -> list of tensors``, the starting values of ``variables`` for a seed (used by
        :meth:`reset`).

    Attributes
    ----------
    variables : list of tf.Variable
        What the optimiser updates.
    shape : tuple
        ``(batch, h, w, 3)`` of the images.
    """

    def __init__(self, variables, to_unbounded, shape, decorrelate, initial=None):
        self.variables = list(variables)
        self._to_unbounded = to_unbounded
        self.shape = tuple(shape)
        self.decorrelate = bool(decorrelate)
        self._initial = initial

    def __call__(self):
        return to_rgb(self._to_unbounded(), self.decorrelate)

    def reset(self, seed):
        """Set the variables to their starting values for ``seed``: the images a new parameterization with that seed starts from.

        Lets a compiled render that holds these variables start another render without tracing again.

        Parameters
        ----------
        seed : int

        Examples
        --------
        >>> images = fourier(16, seed=1)
        >>> start = images().numpy()
        >>> images.variables[0].assign_add(tf.ones_like(images.variables[0]))  # doctest: +ELLIPSIS
        <...>
        >>> images.reset(1)
        >>> bool(np.array_equal(images().numpy(), start))
        True
        """
        if self._initial is None:
            raise ValueError("this parameterization was built without its starting values; build a new one instead")
        for variable, value in zip(self.variables, self._initial(int(seed))):
            variable.assign(value)


def _normal(shape, seed, sd):
    return tf.random.stateless_normal(shape, tf.constant([int(seed), 0x7F4A7C15 & 0x7FFFFFFF], tf.int32), stddev=sd, alg="philox")


def pixel(size, batch=1, sd=0.01, decorrelate=True, seed=0):
    """Images parameterized by their pixels.

    Parameters
    ----------
    size : int or (int, int)
        Image side, or ``(h, w)``.
    batch : int
        Number of images.
    sd : float
        Std of the starting normal noise (before the sigmoid).
    decorrelate : bool
        Decorrelate colours (see :func:`to_rgb`).
    seed : int
        Seeds the starting noise.

    Returns
    -------
    ImageParam

    Examples
    --------
    >>> pixel(32, batch=2)().shape
    TensorShape([2, 32, 32, 3])
    """
    h, w = _hw(size)
    shape = [batch, h, w, 3]

    def initial(seed):
        return [_normal(shape, seed, sd)]

    values = tf.Variable(initial(seed)[0], name="pixels")
    return ImageParam([values], lambda: values, (batch, h, w, 3), decorrelate, initial)


def fourier(size, batch=1, sd=0.01, decay_power=1.0, decorrelate=True, seed=0):
    """Images parameterized by their spectra (Lucid's ``fft_image``).

    Parameters
    ----------
    size : int or (int, int)
        Image side, or ``(h, w)``.
    batch : int
        Number of images.
    sd : float
        Std of the starting normal noise of the real and imaginary parts.
    decay_power : float
        Exponent of the frequency scaling (see :func:`spectrum_scale`).
    decorrelate : bool
        Decorrelate colours (see :func:`to_rgb`).
    seed : int
        Seeds the starting spectrum.

    Returns
    -------
    ImageParam

    Examples
    --------
    >>> fourier(32, batch=2)().shape
    TensorShape([2, 32, 32, 3])
    """
    h, w = _hw(size)
    shape = [2, batch, 3, h, w // 2 + 1]  # real and imaginary parts, channels first for irfft2d

    def initial(seed):
        return [_normal(shape, seed, sd)]

    spectrum = tf.Variable(initial(seed)[0], name="spectrum")
    scale = tf.constant(spectrum_scale(h, w, decay_power) * _FFT_GAIN)

    def to_unbounded():
        complex_ = tf.complex(spectrum[0] * scale, spectrum[1] * scale)
        planes = tf.signal.irfft2d(complex_, fft_length=[h, w])  # (B, 3, h, w)
        return tf.transpose(planes, [0, 2, 3, 1])

    return ImageParam([spectrum], to_unbounded, (batch, h, w, 3), decorrelate, initial)


def image(size, batch=1, param="fft", decorrelate=True, seed=0, sd=0.01, decay_power=1.0):
    """An :class:`ImageParam` by name: ``"fft"`` (:func:`fourier`) or ``"pixel"`` (:func:`pixel`).

    Parameters
    ----------
    size : int or (int, int)
        Image side, or ``(h, w)``.
    batch : int
        Number of images.
    param : {"fft", "pixel"}
        The parameterization.
    decorrelate : bool
        Decorrelate colours.
    seed : int
        Seeds the starting values.
    sd, decay_power : float
        See :func:`fourier`.

    Returns
    -------
    ImageParam

    Examples
    --------
    >>> image(64, batch=4, param="pixel").shape
    (4, 64, 64, 3)
    """
    if param == "fft":
        return fourier(size, batch, sd=sd, decay_power=decay_power, decorrelate=decorrelate, seed=seed)
    if param == "pixel":
        return pixel(size, batch, sd=sd, decorrelate=decorrelate, seed=seed)
    raise ValueError(f"param={param!r}; choose one of: {', '.join(PARAMS)}")


def _hw(size):
    h, w = (size, size) if np.isscalar(size) else size
    if int(h) < 2 or int(w) < 2:
        raise ValueError(f"size={size!r}: give a side (or (h, w)) of at least 2 pixels")
    return int(h), int(w)
