"""Images in, images out: reading files, the offline sample photos, and batches from any source.

Every function returns float32 RGB arrays with values in [0, 255], the input contract of the
zoo models and of every model loaded with its input convention. Images given as arrays follow
one rule, :func:`pixel_values`: pixels as given, never rescaled by their range nor clipped, with a
warning for float arrays that look like [0, 1] images.
"""

import contextlib
import fnmatch
import hashlib
import itertools
import math
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import graph

#: scikit-image's bundled photos, colour first, then greyscale scenes and textures (as RGB).
SAMPLE_NAMES = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "coins",
    "clock",
    "moon",
    "brick",
    "grass",
    "gravel",
)


#: Most pixels (width x height) an image file may declare; larger files are skipped unread, whatever
#: their size on disk (a 100 KB PNG can declare 30000 x 30000). 8192 x 8192 holds every camera photo
#: up to 61-megapixel full-frame sensors and 50-megapixel phones, and caps the decoded image of a
#: lossless file near 256 MiB (Pillow keeps RGB at 4 bytes a pixel). Readers take ``max_pixels`` to
#: raise it (``--max-pixels`` on the command line); Pillow's own bomb check is replaced by this one.
MAX_PIXELS = 8192 * 8192

#: Most elongation (long side over short side, relative to the shape cropped to) of an image that
#: is centre-cropped: beyond it the crop would keep under 5% of the picture, a sliver of a strip or
#: banner rather than an image of it.
MAX_ASPECT_RATIO = 20

#: Images up to this many pixels (and whose resize before the crop stays this small) are resized as
#: float arrays with scikit-image, as always; larger ones are decoded reduced, cropped and resized by
#: Pillow in their own precision, so that the float array made is only the size asked for.
FLOAT_RESIZE_PIXELS = 2048 * 2048

#: Pillow reduces by a whole factor (JPEG while decoding) to no less than this many times the pixels
#: needed, then resamples: 3 is indistinguishable from resampling the whole image (Pillow's docs).
_REDUCING_GAP = 3.0


class ImageLoadError(ValueError):
    """A file could not be read as an image."""


class ImageSizeError(ImageLoadError):
    """An image file declares more pixels than allowed, or a shape too elongated to centre-crop."""


class ImageBatch(NamedTuple):
    """A batch from :func:`iter_batches`: string ids and float32 RGB images (N, H, W, 3) in [0, 255]."""

    ids: list
    images: np.ndarray


class PixelRangeWarning(UserWarning):
    """An array of images whose values look like [0, 1] images, given where tfvis takes [0, 255] pixels."""


#: What :func:`pixel_values` warns of when a float array's largest value is at most 1.
LOOKS_LIKE_UNIT_RANGE = (
    "{what} looks like [0, 1] images (largest value {peak:.3g}); tfvis takes RGB in [0, 255] "
    "(multiply by 255, or declare the model's input: input='0-1')"
)


def pixel_values(array, what="the image array", warn=True):
    """The one rule for images given as arrays: float32 pixel values in [0, 255], as given.

    Every method that takes arrays reads them with it (:func:`tfvis.activations`,
    :func:`tfvis.top_k` and the dataset readers, saliency, the deconvnet, feature visualization),
    so one array gives one set of activations everywhere. Values are never rescaled by what they
    hold, nor clipped: floats and integers are pixels as they are. Only the dtype decides a scale:
    ``bool`` is 0 or 255 and ``uint16`` (16-bit images) is divided by 257. A float array whose
    largest value is positive and at most 1 was most likely made for a network trained on [0, 1]:
    it is used as given, with a :class:`PixelRangeWarning` saying so.

    Parameters
    ----------
    array : array_like
        Images of any shape.
    what : str
        How the warning names the array.
    warn : bool
        Whether to check the range (callers reading a dataset check once, not per image).

    Returns
    -------
    ndarray of float32

    Examples
    --------
    >>> pixel_values(np.array([0, 128, 300], np.int32)).tolist()
    [0.0, 128.0, 300.0]
    >>> pixel_values(np.array([True, False])).tolist()
    [255.0, 0.0]
    """
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.float32) * 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 257.0
    if warn:
        check_pixel_range(array, what)
    return array.astype(np.float32, copy=False)


def check_pixel_range(array, what="the image array"):
    """Warn (:class:`PixelRangeWarning`) when a float ``array`` looks like [0, 1] images (see :func:`pixel_values`)."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating) or not array.size:
        return
    finite = array[np.isfinite(array)]
    peak = float(finite.max()) if finite.size else 0.0
    if 0 < peak <= 1.0:
        warnings.warn(LOOKS_LIKE_UNIT_RANGE.format(what=what, peak=peak), PixelRangeWarning, stacklevel=3)


def to_rgb_array(array, warn=True):
    """Convert an image array (greyscale, RGB or RGBA; any dtype) to float32 RGB pixels.

    Values follow :func:`pixel_values` (as given, never rescaled by their range nor clipped);
    greyscale becomes RGB and an alpha channel is dropped.
    """
    array = pixel_values(array, "an image", warn=warn)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1|3|4); got {array.shape}")
    if array.shape[-1] in (2, 4):  # drop alpha
        array = array[..., :-1]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def _decoded(array):
    """A decoded file's pixels as float32 RGB in [0, 255] (:func:`_pil_to_array` has already scaled 16-bit and float files)."""
    return np.clip(to_rgb_array(array, warn=False), 0.0, 255.0)


def _pil_to_array(image):
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        values = np.asarray(image, dtype=np.float32)
        return values / 257.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else values
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        return values * 255.0 if values.max(initial=0) <= 1.0 else values
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return np.asarray(image)


def fit_image(image, size):
    """Resize the shorter side to ``size`` and centre-crop to ``size`` x ``size`` (or to ``(h, w)``)."""
    from skimage.transform import resize  # here: importing it takes about a second, and only this path needs it

    height, width = (size, size) if np.isscalar(size) else size
    h, w = image.shape[:2]
    new_h, new_w, top, left = _fit_geometry((h, w), (height, width))
    if (new_h, new_w) != (h, w):
        scale = max(height / h, width / w)
        image = resize(image, (new_h, new_w), order=1, preserve_range=True, anti_aliasing=scale < 1)
    return np.ascontiguousarray(image[top : top + height, left : left + width], dtype=np.float32)


def _fit_geometry(shape, target):
    """``(new_h, new_w, top, left)``: :func:`fit_image` resizes an image of ``shape`` to ``new_h`` x ``new_w``, then crops ``target`` there."""
    (h, w), (height, width) = shape, target
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    return new_h, new_w, (new_h - height) // 2, (new_w - width) // 2


def load_image(path, size=None, max_pixels=MAX_PIXELS):
    """Read an image file as float32 RGB in [0, 255].

    JPEG, PNG, BMP, TIFF and anything else Pillow reads; greyscale, RGBA, palette, CMYK and 16-bit
    images all become RGB. The size the file declares is checked before any pixel is decoded.

    Parameters
    ----------
    path : str or Path
        The file.
    size : int or (int, int), optional
        Resize the shorter side and centre-crop to this size. An image of more than
        :data:`FLOAT_RESIZE_PIXELS` is decoded reduced (JPEG) and cropped and resized in its own
        precision before it becomes float, so memory stays near the decoded file plus the result.
    max_pixels : int or None, optional
        Refuse a file that declares more pixels than this (default :data:`MAX_PIXELS`); None for
        no limit.

    Returns
    -------
    ndarray of float32, shape (H, W, 3)

    Raises
    ------
    ImageSizeError
        The file declares more than ``max_pixels`` pixels, or (with ``size``) a shape more
        elongated than :data:`MAX_ASPECT_RATIO` to one; the message names the file and the reason.
    ImageLoadError
        The file is missing or not an image; the message names it.

    Examples
    --------
    >>> image = load_image("photos/cat.jpg", size=224)  # doctest: +SKIP
    """
    target = None if size is None else _target_shape(size)
    try:
        with _pillow_bomb_check_off(), Image.open(path) as image:
            _check_declared_size(path, image.size, target, max_pixels)
            if target is not None and _too_large_for_float_resize(image.size, target):
                return _read_fitted(image, target)
            image.load()
            array = _pil_to_array(image)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        reason = str(err).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or type(err).__name__
        raise ImageLoadError(f"{path} could not be read as an image ({reason})") from err
    array = _decoded(array)
    return fit_image(array, size) if size is not None else array


def _target_shape(size):
    height, width = (size, size) if np.isscalar(size) else size
    return int(height), int(width)


_BOMB_CHECK = {"readers": 0, "saved": None}
_BOMB_CHECK_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_bomb_check_off():
    """Pillow's decompression-bomb check off while any tfvis read runs (threads included).

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and raises above twice that, inside
    ``Image.open``, before the declared size can be looked at; tfvis checks that size itself
    against ``max_pixels`` right after opening, so that the caller's limit is the one that holds.
    """
    with _BOMB_CHECK_LOCK:
        if not _BOMB_CHECK["readers"]:
            _BOMB_CHECK["saved"], Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        _BOMB_CHECK["readers"] += 1
    try:
        yield
    finally:
        with _BOMB_CHECK_LOCK:
            _BOMB_CHECK["readers"] -= 1
            if not _BOMB_CHECK["readers"]:
                Image.MAX_IMAGE_PIXELS = _BOMB_CHECK["saved"]


def _check_declared_size(path, declared, target, max_pixels):
    """Raise :class:`ImageSizeError` for a declared ``(width, height)`` over ``max_pixels`` or too elongated to crop to ``target``."""
    width, height = declared
    if width < 1 or height < 1:
        raise ImageSizeError(f"{path} declares an empty image ({width} x {height} pixels)")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageSizeError(
            f"{path} declares {width} x {height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(raise max_pixels, --max-pixels on the command line, to read it)"
        )
    if target is not None:
        out_height, out_width = target
        elongation = max(width * out_height / (height * out_width), height * out_width / (width * out_height))
        if elongation > MAX_ASPECT_RATIO:
            raise ImageSizeError(
                f"{path} is {width} x {height} pixels, too elongated to centre-crop to {out_width} x {out_height} "
                f"(the crop would keep 1/{elongation:,.0f} of it; at most 1/{MAX_ASPECT_RATIO} is read)"
            )


def _too_large_for_float_resize(declared, target):
    """Whether :func:`fit_image` on the whole image, or its resize before the crop, passes :data:`FLOAT_RESIZE_PIXELS`."""
    width, height = declared
    resized_height, resized_width, _, _ = _fit_geometry((height, width), target)
    return max(width * height, resized_height * resized_width) > FLOAT_RESIZE_PIXELS


#: Modes Pillow resamples as they are; others are converted first, as :func:`_pil_to_array` would.
_RESAMPLED_MODES = {
    "L": "L",
    "RGB": "RGB",
    "I": "I",
    "F": "F",
    "1": "L",
    "LA": "L",
    "La": "L",
    "I;16": "I",
    "I;16B": "I",
    "I;16L": "I",
    "I;16N": "I",
}


def _read_fitted(image, target):
    """The centre crop of an opened, unloaded Pillow ``image`` at ``target`` (height, width), as float32 RGB.

    Only the pixels of the crop are resampled, in the image's own precision (uint8, or int32 and
    float32 for 16-bit and float files); a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that
    still leaves :data:`_REDUCING_GAP` times the pixels needed.
    """
    out_height, out_width = target
    width, height = image.size
    scale = max(out_height / height, out_width / width)
    # The crop fit_image takes from its resized image, in this image's pixels: the same pixels, to a fraction of one.
    resized_height, resized_width, top, left = _fit_geometry((height, width), target)
    x_step, y_step = width / resized_width, height / resized_height
    box = [left * x_step, top * y_step, (left + out_width) * x_step, (top + out_height) * y_step]
    if image.format == "JPEG" and scale * _REDUCING_GAP < 1:
        wanted = (math.ceil(width * scale * _REDUCING_GAP), math.ceil(height * scale * _REDUCING_GAP))
        drafted = image.draft(None, wanted)
        if drafted is not None:  # the decoder now gives 1/n of each side: the crop box shrinks alike
            box = [edge * drafted[1][2] / width for edge in box]
    image.load()
    value_scale = _value_scale(image)
    work_mode = _RESAMPLED_MODES.get(image.mode, "RGB")
    if work_mode != image.mode:
        # Convert only the pixels around the crop (with a pixel to spare for the filter's edge).
        left, top = max(0, math.floor(box[0]) - 1), max(0, math.floor(box[1]) - 1)
        right, bottom = min(image.width, math.ceil(box[2]) + 1), min(image.height, math.ceil(box[3]) + 1)
        if (left, top, right, bottom) != (0, 0, image.width, image.height):
            image = image.crop((left, top, right, bottom))
            box = [box[0] - left, box[1] - top, box[2] - left, box[3] - top]
        image = image.convert(work_mode)
    fitted = image.resize((out_width, out_height), Image.Resampling.BILINEAR, box=tuple(box), reducing_gap=_REDUCING_GAP)
    array = np.asarray(fitted, dtype=np.float32 if value_scale != 1 or fitted.mode in ("I", "F") else None)
    return _decoded(array * value_scale if value_scale != 1 else array)


def _value_scale(image):
    """The factor :func:`_pil_to_array` applies to a loaded image's values (16-bit and float modes; else 1)."""
    if image.mode.startswith("I;16"):
        return 1 / 257.0
    if image.mode == "I":
        return 1 / 257.0 if (image.getextrema()[1] or 0) > 255 else 1
    if image.mode == "F":
        return 255.0 if (image.getextrema()[1] or 0) <= 1.0 else 1
    return 1


def sample_images(names=None, size=None):
    """scikit-image's natural sample photos, the offline default dataset.

    Parameters
    ----------
    names : sequence of str, optional
        A subset of :data:`SAMPLE_NAMES`; default all of them.
    size : int or (int, int), optional
        Resize the shorter side and centre-crop to this size.

    Returns
    -------
    dict of str to ndarray
        Name to float32 RGB image in [0, 255], in the order asked.

    Examples
    --------
    >>> photos = sample_images(["chelsea", "coffee"], size=224)
    >>> photos["chelsea"].shape
    (224, 224, 3)
    """
    import skimage.data  # here, as skimage.transform above: only the sample photos need it

    names = SAMPLE_NAMES if names is None else tuple(names)
    unknown = [n for n in names if n not in SAMPLE_NAMES]
    if unknown:
        raise ValueError(f"unknown sample image(s) {unknown}; choose from: {', '.join(SAMPLE_NAMES)}")
    photos = {}
    for name in names:
        image = to_rgb_array(getattr(skimage.data, name)())
        photos[name] = fit_image(image, size) if size is not None else image
    return photos


def random_crops(image, size, count, seed=0, min_scale=0.25):
    """``count`` random square crops of ``image``, each resized to ``size`` x ``size``.

    Crop sides are drawn from ``[min_scale, 1]`` times the shorter side; used to enlarge the
    offline sample set with parts of the photos.
    """
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    crops = []
    for _ in range(count):
        side = int(rng.uniform(min_scale, 1.0) * min(h, w))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crops.append(fit_image(image[top : top + side, left : left + side], size))
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.float32)


def sample_dataset(count, size=224, seed=0):
    """The offline dataset: the sample photos, then random crops of them, ``count`` images in all.

    Returns
    -------
    ids : list of str
        ``"chelsea"`` for a whole photo, ``"chelsea_crop3"`` for a crop.
    images : ndarray of float32, shape (count, size, size, 3)
    """
    photos = sample_images()
    ids, images = [], []
    for name, photo in list(photos.items())[:count]:
        ids.append(name)
        images.append(fit_image(photo, size))
    extra = count - len(ids)
    names = list(photos)
    for i in range(extra):
        name = names[i % len(names)]
        crop = random_crops(photos[name], size, 1, seed=seed * 100003 + i)[0]
        ids.append(f"{name}_crop{i // len(names)}")
        images.append(crop)
    return ids, np.stack(images) if images else np.zeros((0, size, size, 3), np.float32)


class NoImagesError(ValueError):
    """A folder (or other source) that gave no readable image; the message says where and why."""


def _iter_dir(directory, size, max_pixels=MAX_PIXELS):
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and not p.name.startswith("."))
    skipped, reasons = 0, []
    for path in files:
        try:
            yield path.relative_to(directory).as_posix(), load_image(path, size=size, max_pixels=max_pixels)
        except ImageLoadError as err:
            skipped += 1
            reasons.append(str(err))
            print(f"tfvis: warning: skipped {err}", file=sys.stderr)
    if skipped and skipped < len(files):
        print(f"tfvis: skipped {skipped} unreadable file(s) of {len(files)} in {directory}", file=sys.stderr)
    if skipped == len(files):
        if not files:
            raise NoImagesError(f"{directory}: no images (the folder holds no files)")
        raise NoImagesError(f"{directory}: no readable images: all {skipped} file(s) skipped as unreadable (first: {reasons[0]})")


def _iter_dataset(dataset, size):
    spec = dataset.element_spec
    image_spec = spec[0] if isinstance(spec, (tuple, list)) else spec
    if image_spec.shape.rank == 4:
        dataset = dataset.unbatch()
    warned = False
    for i, element in enumerate(dataset.as_numpy_iterator()):
        image = np.asarray(element[0] if isinstance(element, (tuple, list)) else element)
        if not warned and np.issubdtype(image.dtype, np.floating):
            check_pixel_range(image, "the dataset")
            warned = True
        image = to_rgb_array(image, warn=False)
        yield str(i), fit_image(image, size) if size is not None else image


def iter_images(source, size=None, max_pixels=MAX_PIXELS):
    """Yield ``(id, image)`` pairs from an array, a list of files, a directory or a ``tf.data.Dataset``.

    Directories are walked recursively in sorted order; unreadable files, and files that declare
    more than ``max_pixels`` pixels (see :func:`load_image`), are skipped with one warning each and
    a count at the end. A dict maps ids to images; array and dataset items get their index as id.
    An :class:`ImageSource` applies its own limit.
    """
    if isinstance(source, ImageSource):
        for batch in source.batches(batch_size=64):
            for image_id, image in zip(batch.ids, batch.images):
                yield image_id, image if size is None or image.shape[:2] == (size, size) else fit_image(image, size)
    elif isinstance(source, dict):
        if not source:
            raise NoImagesError("the image source is empty (an empty dict)")
        check_pixel_range(max(source.values(), key=_peak), "the image dict")
        for image_id, image in source.items():
            image = to_rgb_array(image, warn=False)
            yield str(image_id), fit_image(image, size) if size is not None else image
    elif isinstance(source, (str, Path)):
        if not Path(source).is_dir():
            raise ValueError(f"{source} is not a directory of images")
        yield from _iter_dir(Path(source), size, max_pixels)
    elif isinstance(source, np.ndarray) or (isinstance(source, (list, tuple)) and source and np.ndim(source[0]) >= 2):
        check_pixel_range(source if isinstance(source, np.ndarray) else max(source, key=_peak), "the image array")
        for i, image in enumerate(source):
            image = to_rgb_array(image, warn=False)
            yield str(i), fit_image(image, size) if size is not None else image
    elif isinstance(source, (list, tuple)):
        for path in source:
            yield str(path), load_image(path, size=size, max_pixels=max_pixels)
    elif hasattr(source, "element_spec"):
        yield from _iter_dataset(source, size)
    else:
        raise TypeError(f"cannot read images from {type(source).__name__}: give an array, files, a folder or a tf.data.Dataset")


def _peak(image):
    values = np.asarray(image)
    return float(np.nanmax(values)) if values.size and np.issubdtype(values.dtype, np.number) else 0.0


def iter_batches(source, batch_size=32, size=None, limit=None, max_pixels=MAX_PIXELS):
    """Group :func:`iter_images` into :class:`ImageBatch` es of at most ``batch_size``.

    Images within a batch must share a shape: pass ``size`` for folders of mixed sizes.
    ``limit`` stops after that many images; ``max_pixels`` is :func:`iter_images`'s.
    """
    ids, images = [], []
    for image_id, image in itertools.islice(iter_images(source, size=size, max_pixels=max_pixels), limit):
        if images and image.shape != images[0].shape:
            raise ValueError(
                f"image {image_id} has shape {image.shape}, the batch has {images[0].shape}: pass size=... to resize"
            )
        ids.append(image_id)
        images.append(image)
        if len(images) == batch_size:
            yield ImageBatch(ids, np.stack(images))
            ids, images = [], []
    if images:
        yield ImageBatch(ids, np.stack(images))


def model_batch(model, images):
    """``(batch, single)``: ``images`` as a float32 batch that fits ``model``'s input, and whether one image was given.

    The one check of the images every method takes: values by :func:`pixel_values` (as given;
    a warning for arrays that look like [0, 1] images), rank and size against the model's input,
    and finite values (NaN or inf would silently give NaN maps).

    Parameters
    ----------
    model : keras.Model
        A model with one image input, or several inputs of which :func:`tfvis.graph.image_input`
        finds the image.
    images : array_like, shape (N, H, W, C) or (H, W, C)

    Returns
    -------
    batch : ndarray, float32, shape (N, H, W, C)
    single : bool

    Raises
    ------
    ValueError
        No image input among several, the wrong rank or size (naming the axis), or non-finite values
        (naming the images that hold them).
    """
    image_input = graph.image_input(model)  # of several inputs, the image (tfvis.graph.set_image_input)
    images = pixel_values(images, "images")
    shape = tuple(image_input.shape)
    rank = len(shape)
    single = images.ndim == rank - 1
    if single:
        images = images[None]
    if images.ndim != rank:
        raise ValueError(
            f"images must have shape {('N',) + shape[1:]} (or one image {shape[1:]}) for model "
            f"{model.name!r}; got an array of shape {images.shape}"
        )
    for axis, (want, got) in enumerate(zip(shape[1:], images.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(
                f"images of shape {images.shape} do not fit model {model.name!r}, which takes "
                f"{('N',) + shape[1:]} (axis {axis}: {got} instead of {want})"
            )
    check_finite(images)
    return images, single


def check_finite(images, what="images"):
    """Raise ``ValueError`` naming the images (first axis) that hold NaN or inf."""
    finite = np.isfinite(images).reshape(len(images), -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite).tolist()
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(f"{what} {shown} (of {len(images)}) hold NaN or inf values; give finite pixel values")


class IndexedBatch(NamedTuple):
    """A batch from :meth:`ImageSource.batches`: stream indices, string ids and float32 RGB images."""

    indices: np.ndarray
    ids: list
    images: np.ndarray


class ImageSource:
    """A dataset whose images are read by index, so that each shard of a run streams only its part.

    Subclasses give ``__len__`` and ``_read(index)`` (an ``(id, image)`` pair, or None for an image
    that cannot be read). Index order is the dataset order; ``batches(start, stop)`` groups the
    indices ``start..stop-1`` by ``batch_size`` counted from index 0, so that any sharding on
    multiples of the batch size feeds the model exactly the same batches as one pass.
    """

    size = None

    def __len__(self):
        raise NotImplementedError

    def _read(self, index):
        raise NotImplementedError

    def describe(self):
        """A JSON-able description that identifies the images (part of every unit's key)."""
        raise NotImplementedError

    def read(self, indices):
        """``(ids, images)`` of ``indices`` (readable ones only; unreadable images are skipped with a warning)."""
        pairs = [(int(i), self._read(int(i))) for i in indices]
        kept = [(i, pair) for i, pair in pairs if pair is not None]
        ids = [pair[0] for _, pair in kept]
        images = np.stack([pair[1] for _, pair in kept]) if kept else np.zeros((0, self.size, self.size, 3), np.float32)
        return np.array([i for i, _ in kept], np.int64), ids, images

    def batches(self, start=0, stop=None, batch_size=32):
        """Yield :class:`IndexedBatch` es of the indices ``start..stop-1``, aligned on ``batch_size`` from 0."""
        stop = len(self) if stop is None else min(stop, len(self))
        first = start
        while first < stop:
            last = min((first // batch_size + 1) * batch_size, stop)
            indices, ids, images = self.read(range(first, last))
            if len(ids):
                yield IndexedBatch(indices, ids, images)
            first = last


class SampleSource(ImageSource):
    """The offline dataset of :func:`sample_dataset`, generated image by image (memory flat in ``count``).

    Examples
    --------
    >>> source = SampleSource(20, size=32)
    >>> ids, images = sample_dataset(20, size=32)
    >>> bool(np.array_equal(source.read([17])[2][0], images[17])), source.read([17])[1] == [ids[17]]
    (True, True)
    """

    def __init__(self, count, size=224, seed=0):
        self.count, self.size, self.seed = int(count), int(size), int(seed)

    def __len__(self):
        return self.count

    def describe(self):
        return {"samples": self.count, "size": self.size, "seed": self.seed}

    def _read(self, index):
        photos = _full_samples()
        names = list(photos)
        if index < len(names):
            return names[index], fit_image(photos[names[index]], self.size)
        extra = index - len(names)
        name = names[extra % len(names)]
        crop = random_crops(photos[name], self.size, 1, seed=self.seed * 100003 + extra)[0]
        return f"{name}_crop{extra // len(names)}", crop


_SAMPLES = {}


def _full_samples():
    """The sample photos at full size, read once per process."""
    if not _SAMPLES:
        _SAMPLES.update(sample_images())
    return _SAMPLES


def image_files(pattern):
    """The image files of a folder or a glob pattern, sorted.

    A folder is walked recursively, without following links to folders; hidden files are left
    out. A pattern matches what ``glob.glob(pattern, recursive=True)`` matches on a tree without
    links to folders (``**`` is any depth; names starting with a dot only where the pattern's part
    starts with one). Links to folders are followed, as glob does, but each folder is walked once:
    a link loop (``loop -> ..``), which glob follows until paths grow too long, ends there, and a
    folder reached by several paths is listed under the one the walk meets first (the walk is in
    sorted order, a folder's entries before what lies below them).

    Parameters
    ----------
    pattern : str or Path
        A folder, or a pattern such as ``"photos/**/*.jpg"``.

    Returns
    -------
    list of Path
    """
    path = Path(pattern)
    if path.is_dir():
        files = (p for p in path.rglob("*") if p.is_file())
        return sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(path).parts))
    return sorted({Path(p) for p in _glob_paths(str(pattern)) if os.path.isfile(p)})


def _has_magic(part):
    return any(ch in part for ch in "*?[")


def _glob_paths(pattern):
    """The paths matching ``pattern`` with glob's rules, each folder walked at most once per part of the pattern.

    What matches below a folder depends only on the folder and on the part of the pattern reached
    there, so a second way to the same pair (through a link) can only repeat paths: skipping it
    bounds the walk by folders times parts, whatever links the tree holds.
    """
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _has_magic(part)), len(parts))
    start = os.path.join(*parts[:fixed]) if fixed else ""
    if fixed == len(parts):
        return [start] if os.path.lexists(start) else []
    found, seen, stack = [], set(), []  # depth-first without recursion: deep trees must not reach Python's recursion limit

    def push(folder, index):
        key = (_folder_identity(folder), index)
        if key[0] is not None and key not in seen:
            seen.add(key)
            stack.append((folder, index))

    push(start, fixed)
    while stack:
        folder, index = stack.pop()
        part, last = parts[index], index == len(parts) - 1
        below = []  # (folder, index) to walk next, in sorted order
        if part == "**":
            if not last:
                below.append((folder, index + 1))
            for name, path, is_folder in _entries(folder):
                if not name.startswith("."):
                    if last:
                        found.append(path)
                    if is_folder:
                        below.append((path, index))
        elif not _has_magic(part):
            path = os.path.join(folder, part)
            if last:
                found.append(path)
            elif os.path.isdir(path):
                below.append((path, index + 1))
        else:
            hidden_too = part.startswith(".")
            for name, path, is_folder in _entries(folder):
                if (hidden_too or not name.startswith(".")) and fnmatch.fnmatchcase(name, part):
                    if last:
                        found.append(path)
                    elif is_folder:
                        below.append((path, index + 1))
        for folder_below, index_below in reversed(below):
            push(folder_below, index_below)
    return found


def _entries(folder):
    """``(name, path, is_folder)`` of each entry of ``folder`` ("" for the current one, its paths bare names), sorted by name."""
    try:
        with os.scandir(folder or os.curdir) as entries:
            listed = [(entry.name, os.path.join(folder, entry.name), _is_folder(entry)) for entry in entries]
    except OSError:
        return []
    return sorted(listed)


def _is_folder(entry):
    try:
        return entry.is_dir()  # follows links, as glob does
    except OSError:
        return False


def _folder_identity(path):
    try:
        stat = os.stat(path or os.curdir)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class FileSource(ImageSource):
    """Image files (a folder or a glob pattern, see :func:`image_files`) read by index, resized and centre-cropped to ``size``.

    Ids are the paths relative to the folder (or to the glob's fixed prefix). Unreadable files,
    and files that declare more than ``max_pixels`` pixels or a shape too elongated to crop (see
    :func:`load_image`), are skipped with a warning naming the file; ``limit`` keeps the first
    files only. The limit is part of the source, so workers that receive it apply the same one.
    """

    def __init__(self, pattern, size, limit=None, max_pixels=MAX_PIXELS):
        self.pattern, self.size, self.max_pixels = str(pattern), int(size), max_pixels
        self.files = image_files(pattern)[:limit]
        base = (
            Path(pattern)
            if Path(pattern).is_dir()
            else Path(os.path.commonpath([str(p.parent) for p in self.files]))
            if self.files
            else Path(".")
        )
        self.ids = [p.relative_to(base).as_posix() for p in self.files]
        self._warned = set()

    def __len__(self):
        return len(self.files)

    def describe(self):
        stamps = [(i, p.stat().st_size, int(p.stat().st_mtime)) for i, p in zip(self.ids, self.files)]
        described = {"files": self.pattern, "size": self.size, "count": len(self.files), "stamp": _digest(stamps)}
        if self.max_pixels != MAX_PIXELS:  # another limit may read other files; the default keeps earlier keys
            described["max_pixels"] = self.max_pixels
        return described

    def _read(self, index):
        try:
            return self.ids[index], load_image(self.files[index], size=self.size, max_pixels=self.max_pixels)
        except ImageLoadError as err:
            if index not in self._warned:  # once per file, however many times a run reads it
                self._warned.add(index)
                print(f"tfvis: warning: skipped {err}", file=sys.stderr)
            return None


class ArraySource(ImageSource):
    """Images held in memory (an array, or a dict of id to image), fitted to ``size``."""

    def __init__(self, images, size=None):
        pairs = list(images.items()) if isinstance(images, dict) else [(str(i), im) for i, im in enumerate(images)]
        self.ids = [str(i) for i, _ in pairs]
        if pairs:
            check_pixel_range(max((im for _, im in pairs), key=_peak), "the image array")
        self.images = [
            to_rgb_array(im, warn=False) if size is None else fit_image(to_rgb_array(im, warn=False), size) for _, im in pairs
        ]
        self.size = size or (self.images[0].shape[0] if self.images else None)

    def __len__(self):
        return len(self.images)

    def describe(self):
        return {"arrays": len(self.images), "size": self.size, "digest": _digest([im.tobytes() for im in self.images])}

    def _read(self, index):
        return self.ids[index], self.images[index]


def _digest(parts):
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()[:16]
