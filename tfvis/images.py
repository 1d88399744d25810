"""Images in, images out: reading files, the offline sample photos, and batches from any source.

Every function returns float32 RGB arrays with values in [0, 255], the input contract of the
zoo models.
"""
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: scikit-image's bundled photos, colour first, then greyscale scenes and textures (as RGB).
SAMPLE_NAMES = (
    "chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "camera", "coins", "clock", "moon", "brick", "grass", "gravel",
)  # fmt: skip


class ImageLoadError(ValueError):
    """A file could not be read as an image."""


class ImageBatch(NamedTuple):
    """A batch from :func:`iter_batches`: string ids and float32 RGB images (N, H, W, 3) in [0, 255]."""

    ids: list
    images: np.ndarray


def to_rgb_array(array):
    """Convert an image array (greyscale, RGB or RGBA; uint8, uint16, bool or float) to float32 RGB in [0, 255].

    Floats are taken to be in [0, 1] when their maximum is at most 1, else in [0, 255].
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.float32) * 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 257.0
    elif np.issubdtype(array.dtype, np.floating) and array.size and np.nanmax(array) <= 1.0:
        array = array.astype(np.float32) * 255.0
    array = array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1|3|4); got {array.shape}")
    if array.shape[-1] in (2, 4):  # drop alpha
        array = array[..., :-1]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.clip(array, 0.0, 255.0)


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
    from skimage.transform import resize

    height, width = (size, size) if np.isscalar(size) else size
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        image = resize(image, (new_h, new_w), order=1, preserve_range=True, anti_aliasing=scale < 1)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width], dtype=np.float32)


def load_image(path, size=None):
    """Read an image file as float32 RGB in [0, 255].

    JPEG, PNG, BMP, TIFF and anything else Pillow reads; greyscale, RGBA, palette, CMYK and 16-bit
    images all become RGB.

    Parameters
    ----------
    path : str or Path
        The file.
    size : int or (int, int), optional
        Resize the shorter side and centre-crop to this size.

    Returns
    -------
    ndarray of float32, shape (H, W, 3)

    Raises
    ------
    ImageLoadError
        The file is missing or not an image; the message names it.

    Examples
    --------
    >>> image = load_image("photos/cat.jpg", size=224)  # doctest: +SKIP
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            array = _pil_to_array(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        reason = str(err).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or type(err).__name__
        raise ImageLoadError(f"{path} could not be read as an image ({reason})") from err
    array = to_rgb_array(array)
    return fit_image(array, size) if size is not None else array


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
    import skimage.data

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


def _iter_dir(directory, size):
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and not p.name.startswith("."))
    skipped, reasons = 0, []
    for path in files:
        try:
            yield path.relative_to(directory).as_posix(), load_image(path, size=size)
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
    for i, element in enumerate(dataset.as_numpy_iterator()):
        image = to_rgb_array(element[0] if isinstance(element, (tuple, list)) else element)
        yield str(i), fit_image(image, size) if size is not None else image


def iter_images(source, size=None):
    """Yield ``(id, image)`` pairs from an array, a list of files, a directory or a ``tf.data.Dataset``.

    Directories are walked recursively in sorted order; unreadable files are skipped with one
    warning each and a count at the end. A dict maps ids to images; array and dataset items get
    their index as id.
    """
    if isinstance(source, ImageSource):
        for batch in source.batches(batch_size=64):
            for image_id, image in zip(batch.ids, batch.images):
                yield image_id, image if size is None or image.shape[:2] == (size, size) else fit_image(image, size)
    elif isinstance(source, dict):
        if not source:
            raise NoImagesError("the image source is empty (an empty dict)")
        for image_id, image in source.items():
            image = to_rgb_array(image)
            yield str(image_id), fit_image(image, size) if size is not None else image
    elif isinstance(source, (str, Path)):
        if not Path(source).is_dir():
            raise ValueError(f"{source} is not a directory of images")
        yield from _iter_dir(Path(source), size)
    elif isinstance(source, np.ndarray) or (isinstance(source, (list, tuple)) and source and np.ndim(source[0]) >= 2):
        for i, image in enumerate(source):
            image = to_rgb_array(image)
            yield str(i), fit_image(image, size) if size is not None else image
    elif isinstance(source, (list, tuple)):
        for path in source:
            yield str(path), load_image(path, size=size)
    elif hasattr(source, "element_spec"):
        yield from _iter_dataset(source, size)
    else:
        raise TypeError(f"cannot read images from {type(source).__name__}: give an array, files, a folder or a tf.data.Dataset")


def iter_batches(source, batch_size=32, size=None, limit=None):
    """Group :func:`iter_images` into :class:`ImageBatch` es of at most ``batch_size``.

    Images within a batch must share a shape: pass ``size`` for folders of mixed sizes.
    ``limit`` stops after that many images.
    """
    import itertools

    ids, images = [], []
    for image_id, image in itertools.islice(iter_images(source, size=size), limit):
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

    The one check of the images every method takes: rank and size against the model's input,
    and finite values (NaN or inf would silently give NaN maps).

    Parameters
    ----------
    model : keras.Model
        A model with one image input.
    images : array_like, shape (N, H, W, C) or (H, W, C)

    Returns
    -------
    batch : ndarray, float32, shape (N, H, W, C)
    single : bool

    Raises
    ------
    ValueError
        More than one model input, the wrong rank or size (naming the axis), or non-finite values
        (naming the images that hold them).
    """
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs; tfvis needs a single image input")
    images = np.asarray(images, dtype=np.float32)
    shape = tuple(model.inputs[0].shape)
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
    """The image files of a folder (walked recursively) or a glob pattern, sorted; hidden files left out."""
    import glob

    path = Path(pattern)
    if path.is_dir():
        files = (p for p in path.rglob("*") if p.is_file())
        return sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(path).parts))
    return sorted(Path(p) for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())


class FileSource(ImageSource):
    """Image files (a folder or a glob pattern) read by index, resized and centre-cropped to ``size``.

    Ids are the paths relative to the folder (or to the glob's fixed prefix). Unreadable files
    are skipped with a warning; ``limit`` keeps the first files only.
    """

    def __init__(self, pattern, size, limit=None):
        self.pattern, self.size = str(pattern), int(size)
        self.files = image_files(pattern)[:limit]
        base = Path(pattern) if Path(pattern).is_dir() else Path(os.path.commonpath([str(p.parent) for p in self.files])) if self.files else Path(".")
        self.ids = [p.relative_to(base).as_posix() for p in self.files]
        self._warned = set()

    def __len__(self):
        return len(self.files)

    def describe(self):
        stamps = [(i, p.stat().st_size, int(p.stat().st_mtime)) for i, p in zip(self.ids, self.files)]
        return {"files": self.pattern, "size": self.size, "count": len(self.files), "stamp": _digest(stamps)}

    def _read(self, index):
        try:
            return self.ids[index], load_image(self.files[index], size=self.size)
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
        self.images = [to_rgb_array(im) if size is None else fit_image(to_rgb_array(im), size) for _, im in pairs]
        self.size = size or (self.images[0].shape[0] if self.images else None)

    def __len__(self):
        return len(self.images)

    def describe(self):
        return {"arrays": len(self.images), "size": self.size, "digest": _digest([im.tobytes() for im in self.images])}

    def _read(self, index):
        return self.ids[index], self.images[index]


def _digest(parts):
    import hashlib

    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()[:16]
