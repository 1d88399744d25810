"""Layer names as users type them and as TensorFlow needs them.

:func:`split_layer_names` reads a comma-separated ``--layers`` whose names may hold commas or
spaces themselves. The rest makes layers whose names TensorFlow refuses as graph scope names
(``it's``, ``a b``, ``x<y``) runnable.

Keras 3 accepts almost any layer name (all but ``/``) and saves it, but its TensorFlow backend
opens a ``tf.name_scope`` named after the layer at every call, and inside a ``tf.function``
TensorFlow runs only ``[A-Za-z0-9_./-]`` there: such a model fails in ``model.predict``
and in every traced method of tfvis. :func:`allow_any_layer_name` makes the backend open the
scope under a cleaned name instead; the layer keeps its name (the one users type and pages show),
only the names of graph operations change, and only for names TensorFlow would have refused.
"""

import re

#: A scope name whose operations TensorFlow runs: its Python check (``tf.name_scope``) also takes
#: ``>`` and ``\\``, but the graph's node names then fail at run time.
VALID_SCOPE = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_./-]*")


def scope_name(name):
    """``name`` as TensorFlow accepts it for a graph scope: unchanged when valid, else cleaned.

    Parameters
    ----------
    name : str

    Returns
    -------
    str

    Examples
    --------
    >>> scope_name("block1_conv1"), scope_name("it's"), scope_name('conv"<script>')
    ('block1_conv1', 'it_s', 'conv__script_')
    """
    name = str(name)
    if not name or VALID_SCOPE.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_./-]", "_", name)
    return cleaned if VALID_SCOPE.fullmatch(cleaned) else f"x{cleaned}"


def allow_any_layer_name():
    """Make Keras' TensorFlow backend open each layer's scope under :func:`scope_name` of its name.

    Idempotent; a no-op on another backend. Models whose layer names are all valid scope names
    build exactly the graphs they built before.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    try:
        from keras.src.backend.tensorflow import core

        scope = core.name_scope
        scope.__init__  # noqa: B018 - a Keras without this class keeps its own behaviour
    except (ImportError, AttributeError):
        return
    if getattr(scope, "_tfvis_any_name", False):
        return
    original = scope.__init__

    def __init__(self, name, **kwargs):
        original(self, name, **kwargs)
        cleaned = scope_name(name)
        if cleaned != name:  # the Keras-side name (layer paths, weights) stays; only TensorFlow's scope is renamed
            import tensorflow as tf

            self._tf_name_scope = tf.name_scope(cleaned)

    scope.__init__ = __init__
    scope._tfvis_any_name = True


def split_layer_names(text, known=()):
    """The layer names of a comma-separated list, where a name of ``known`` may itself hold commas.

    Pieces are stripped of spaces unless the unstripped text is a known name; at each step the
    longest run of pieces that joins (with its commas) into a known name is taken as one name.

    Parameters
    ----------
    text : str
        E.g. ``"block1_conv1, block2_conv1"``.
    known : collection of str, optional
        The model's layer names.

    Returns
    -------
    list of str

    Examples
    --------
    >>> split_layer_names("conv1, a,b ,c", known={"a,b", "conv1"})
    ['conv1', 'a,b', 'c']
    """
    pieces, names, start = str(text).split(","), [], 0
    known = set(known)
    while start < len(pieces):
        for stop in range(len(pieces), start, -1):
            joined = ",".join(pieces[start:stop])
            name = joined if joined in known else joined.strip()
            if name in known or stop == start + 1:
                break
        if name:
            names.append(name)
        start = stop
    return names
