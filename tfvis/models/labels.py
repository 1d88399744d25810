"""Class names of a model's output, read from a labels file (``--labels FILE``)."""

import json
from pathlib import Path

#: Largest labels file read, in bytes (ImageNet-21k's names take about 1 MB).
MAX_LABELS_BYTES = 64 << 20


def read_labels(path):
    """The class names in a labels file, by class index.

    Three forms: a JSON list of names (index = position); a JSON object mapping names to indices,
    as Keras' ``class_indices`` (``{"cat": 0, "dog": 1}``), or indices to names, as Keras'
    ``imagenet_class_index.json`` (``{"0": ["n01440764", "tench"]}``: the last item of a list is the
    name); or text, one name a line (blank lines at the end are ignored).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of str
        Name of class ``i`` at position ``i``; ``""`` for an index the file leaves out.

    Raises
    ------
    ValueError
        An unreadable or empty file, an index that is not a non-negative integer, or two names for
        one index; the message names the file.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     _ = f.write('{"glioma": 0, "notumor": 2, "meningioma": 1}')
    >>> read_labels(f.name)
    ['glioma', 'meningioma', 'notumor']
    >>> os.remove(f.name)
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LABELS_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size:,} bytes is too large for a labels file")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: cannot read it as a labels file ({err.strerror if isinstance(err, OSError) else err})"
        ) from None
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{path}: the labels file is empty")
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return _from_json(data, path)
    return [line.strip() for line in text.rstrip().splitlines()]


def _from_json(data, path):
    if isinstance(data, list):
        return [_name(item) for item in data]
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a JSON list of names or an object of names and indices")
    if all(str(key).strip().isdigit() for key in data):  # index to name
        pairs = [(int(key), _name(value)) for key, value in data.items()]
    else:  # name to index (Keras' class_indices)
        pairs = []
        for name, index in data.items():
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"{path}: class {name!r} has index {index!r}; indices are integers from 0")
            pairs.append((index, str(name)))
    names = [""] * (max(index for index, _ in pairs) + 1)
    for index, name in pairs:
        if names[index]:
            raise ValueError(f"{path}: index {index} has two names, {names[index]!r} and {name!r}")
        names[index] = name
    return names


def _name(value):
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


__all__ = ["read_labels"]
