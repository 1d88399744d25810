"""Showing results: signed maps as images, saliency overlays and figures, inline display in notebooks.

Every function that turns a result into pixels lives here: :func:`to_image` (signed
reconstructions around mid grey), :func:`to_uint8`, :func:`overlay` and :func:`figure` (saliency),
and :func:`html_images`, which gives tfvis' results their inline display in Jupyter
(``_repr_html_``), as Lucid's ``show`` does.
"""

import base64
import io
from html import escape

import numpy as np

#: Reconstructions are shown scaled per tile by this percentile of ``|r|`` around mid grey (values
#: beyond it clipped): with the maximum (100) a few extreme pixels leave block4/5 tiles flat grey
#: with a faint trace; 99.5 shows the structure at the contrast of Zeiler & Fergus' figure 2
#: (compared side by side in docs/reconstruction_display.png). The .npy arrays stay raw.
RECONSTRUCTION_PERCENTILE = 99.5


def to_image(reconstruction: np.ndarray, batch: bool | None = None, percentile: float = 100.0) -> np.ndarray:
    """Normalise reconstructions for display: centred at 0.5, scaled by the largest magnitude.

    The deconvnet papers show reconstructions as signed maps: zero is mid grey, and each image is
    scaled by its own largest absolute value, ``0.5 + 0.5 * r / max|r|``, so the sign and the
    relative strength of the colours are kept (a min-max stretch would move zero). A map that is
    zero everywhere gives flat 0.5 grey, never NaN.

    Parameters
    ----------
    reconstruction : ndarray
        One map ``(H, W)`` / ``(H, W, C)`` or a batch ``(N, H, W, C)``.
    batch : bool, optional
        Whether the first axis is the batch; default: True for 4-D arrays.
    percentile : float
        Scale by this percentile of ``|r|`` per image instead of the maximum (e.g. 99.5 to keep a
        few extreme pixels from washing out the rest); values beyond are clipped.

    Returns
    -------
    ndarray, float32
        Same shape, values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> to_image(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    array([[0.  , 0.5 ],
           [0.75, 1.  ]], dtype=float32)
    >>> to_image(np.zeros((2, 2)))
    array([[0.5, 0.5],
           [0.5, 0.5]], dtype=float32)
    """
    r = np.nan_to_num(np.asarray(reconstruction, dtype=np.float32))
    batch = r.ndim == 4 if batch is None else bool(batch)
    batched = r if batch else r[None]
    magnitude = np.abs(batched.reshape(len(batched), -1))
    if magnitude.shape[1] == 0:
        return np.full(r.shape, 0.5, dtype=np.float32)
    scale = np.percentile(magnitude, percentile, axis=1) if percentile < 100 else magnitude.max(axis=1)
    scale = scale.reshape((-1,) + (1,) * (batched.ndim - 1))
    safe = np.where(scale > 0, scale, 1.0)
    out = np.where(scale > 0, 0.5 + 0.5 * batched / safe, 0.5)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return out if batch else out[0]


def to_uint8(image):
    """An image in [0, 1] (float) or [0, 255] (uint8) as uint8; greyscale stays 2-D."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.nan_to_num(image, nan=0.5) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return image


def _as_display_image(image):
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3); got {image.shape}")
    image = image[..., :3]
    if image.size and image.max() > 1.0:  # [0, 255]
        image = image / 255.0
    return np.clip(image, 0.0, 1.0)


def _normalised(saliency):
    saliency = np.nan_to_num(np.asarray(saliency, np.float32))
    low, high = float(saliency.min()), float(saliency.max())
    if high <= low:
        return np.zeros_like(saliency)
    return (saliency - low) / (high - low)


def shown_map(values):
    """What a page draws of a map: its magnitude when it is signed (Gradient x Input), so that zero is the cold end.

    The raw arrays beside the pictures keep the sign.
    """
    values = np.asarray(values, np.float32)
    return np.abs(values) if values.min() < 0 else values


def overlay(image, saliency, cmap="jet", alpha=0.5):
    """Blend a saliency map, coloured with a matplotlib colormap, over an image.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), (H, W, 1) or (H, W)
        RGB or grey, in [0, 255] (when its maximum exceeds 1) or [0, 1].
    saliency : ndarray, shape (H, W)
        Scaled to [0, 1] by its minimum and maximum (a constant map is 0); resized bilinearly
        when its size differs from the image's.
    cmap : str or matplotlib colormap
    alpha : float
        Weight of the coloured map, in [0, 1].

    Returns
    -------
    ndarray, float32, shape (H, W, 3)
        RGB in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> overlay(np.zeros((4, 5, 3)), np.eye(4, 5)).shape
    (4, 5, 3)
    """
    import matplotlib  # here, as TensorFlow below: tfvis.report's --help reads this module, and matplotlib is slow to import

    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha}")
    rgb = _as_display_image(image)
    saliency = np.asarray(saliency, np.float32)
    if saliency.ndim != 2:
        raise ValueError(f"saliency must have shape (H, W); got {saliency.shape}")
    if saliency.shape != rgb.shape[:2]:
        import tensorflow as tf  # here, not at the top: tfvis.report reads this module and its --help needs no TensorFlow

        saliency = tf.image.resize(saliency[..., None], rgb.shape[:2], method="bilinear").numpy()[..., 0]
    colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    coloured = colormap(_normalised(saliency))[..., :3].astype(np.float32)
    return np.clip((1.0 - alpha) * rgb + alpha * coloured, 0.0, 1.0).astype(np.float32)


def figure(images, maps, titles=None, cmap="jet", size=2.5):
    """A matplotlib Figure (Agg canvas) with each image beside its saliency map, one row per image.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, C) or sequence of images
        In [0, 255] or [0, 1].
    maps : ndarray, shape (N, H, W) or sequence of maps
    titles : sequence of str, optional
        One per image, shown above the image.
    cmap : str
        Colormap of the maps.
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per row; save it with ``fig.savefig(path)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images, maps = list(images), list(maps)
    if len(images) != len(maps):
        raise ValueError(f"got {len(images)} images and {len(maps)} maps")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    rows = max(len(images), 1)
    fig = Figure(figsize=(2 * size, rows * size))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, squeeze=False)
    for i, (image, saliency) in enumerate(zip(images, maps)):
        axes[i, 0].imshow(_as_display_image(image))
        axes[i, 1].imshow(_normalised(saliency), cmap=cmap, vmin=0.0, vmax=1.0)
        if titles is not None:
            axes[i, 0].set_title(str(titles[i]))
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Inline display in notebooks
# --------------------------------------------------------------------------------------------


def png_bytes(image):
    """PNG bytes of an image in [0, 1] (float) or uint8, greyscale or RGB."""
    from PIL import Image  # here: tfvis.report's --help reads this module, and Pillow adds 10% to its 0.2 s

    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(image):
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def html_images(images, labels=None, width=128, title=None):
    """HTML of images side by side, each with its label: what notebooks show for tfvis' results.

    Parameters
    ----------
    images : sequence of ndarray
        Each (H, W), (H, W, 1) or (H, W, 3), in [0, 1] or uint8.
    labels : sequence of str, optional
        One caption per image.
    width : int
        Display width of each image in CSS pixels (pixels stay sharp when enlarged).
    title : str, optional
        A line above the images.

    Returns
    -------
    str
        Self-contained HTML (images inlined as PNG data URIs).

    Examples
    --------
    >>> import numpy as np
    >>> html = html_images([np.zeros((4, 4)), np.ones((4, 4, 3))], ["a", "b"])
    >>> html.count("<img")
    2
    """
    images = list(images)
    labels = [""] * len(images) if labels is None else [str(label) for label in labels]
    if len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    cells = "".join(
        f'<figure style="margin:2px;text-align:center"><img src="{_data_uri(image)}" alt="{escape(label)}" '
        f'style="width:{int(width)}px;image-rendering:pixelated"/><figcaption style="font-size:11px">{escape(label)}'
        "</figcaption></figure>"
        for image, label in zip(images, labels)
    )
    head = f'<div style="font-weight:bold">{escape(title)}</div>' if title else ""
    return f'<div>{head}<div style="display:flex;flex-wrap:wrap">{cells}</div></div>'


def heatmap(values, cmap="jet"):
    """A map ``(H, W)`` coloured with a matplotlib colormap after scaling it to [0, 1] (RGB, float32)."""
    import matplotlib

    colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    return colormap(_normalised(values))[..., :3].astype(np.float32)


class Maps(np.ndarray):
    """Saliency maps ``(N, H, W)`` (or one ``(H, W)``): a NumPy array that displays as heatmaps in notebooks."""

    def __array_finalize__(self, source):
        pass

    def _repr_html_(self):
        values = np.asarray(self)
        if values.ndim == 2:
            values = values[None]
        if values.ndim != 3 or values.shape[0] > 64:
            return None  # not a batch of maps: the plain array repr
        return html_images([heatmap(v) for v in values], [f"map {i}" for i in range(len(values))])


def as_maps(values):
    """``values`` viewed as :class:`Maps` (no copy)."""
    return np.asarray(values).view(Maps)
