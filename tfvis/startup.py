"""A quiet TensorFlow start-up: the lines every command would print on machines without a GPU.

Importing TensorFlow's CUDA build on a machine without an NVIDIA driver prints, from C++ and
before any Python logging applies, ``Could not find cuda drivers``, ``failed call to cuInit`` and
``All log messages before absl::InitializeLog() ...``: noise, since there is no GPU to use. On
CPUs where TensorFlow turns oneDNN on by default (those with AVX512_VNNI, AVX512_BF16 or AMX) it
also prints ``oneDNN custom operations are on`` (an information line, before
``TF_CPP_MIN_LOG_LEVEL`` applies), which differs from machine to machine and says nothing wrong.
:func:`import_tensorflow` imports TensorFlow and lists its devices with the process' standard
error redirected, then writes back every line except those known lines. It filters only where no
NVIDIA device node exists (``/dev/nvidia*``); on a GPU machine every line is shown, since there a
failed ``cuInit`` is a real error. ``TFVIS_TF_STARTUP=verbose`` shows everything.

``import tfvis`` does not import TensorFlow (``--help`` answers without it): it calls
:func:`install_import_hook`, so that the process' first ``import tensorflow`` -- by a tfvis
module, by ``import keras`` or by the user -- runs through the same filter.
"""

import contextlib
import glob
import importlib.util
import os
import re
import sys
import tempfile

#: Start-up lines that say only "there is no GPU here".
NOISE = (
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"cudart_stub\.cc.*Could not find cuda drivers"),
    re.compile(r"failed call to cuInit"),
    re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory"),
    re.compile(r"computation placer already registered"),
    re.compile(r"^I\S* .*\] oneDNN custom operations are on\b"),
)


def _has_gpu_driver():
    return bool(glob.glob("/dev/nvidia*"))


def _shown(lines):
    return [line for line in lines if not any(pattern.search(line) for pattern in NOISE)]


def _quiet():
    """Whether the no-GPU lines should be filtered here (no NVIDIA device node, ``TFVIS_TF_STARTUP`` not ``verbose``)."""
    return os.environ.get("TFVIS_TF_STARTUP") != "verbose" and not _has_gpu_driver()


@contextlib.contextmanager
def _filtered_stderr():
    """Run the body with file descriptor 2 captured, then write back every line but the known noise (even on errors)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real standard error (e.g. some notebook kernels): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf8", "replace")
            for line in _shown(text.splitlines()):
                print(line, file=sys.stderr)


def import_tensorflow():
    """Import TensorFlow (and initialise its devices) without the no-GPU start-up noise; returns the module.

    Where TensorFlow was imported before (``import keras`` first), its devices may still be
    uninitialised: listing them is filtered the same way (it prints nothing when they are).
    """
    uninstall_import_hook()  # imported here, filtered here
    if not _quiet():
        import tensorflow as tf

        return tf
    with _filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf


class _QuietLoader:
    """TensorFlow's own loader, its module run (and its devices listed) inside :func:`_filtered_stderr`."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its usual loader
        with _filtered_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()


class _QuietTensorFlowFinder:
    """A :data:`sys.meta_path` entry that sends the first ``import tensorflow``, whoever asks, through the quiet start-up.

    ``import tfvis`` installs it instead of importing TensorFlow (so that ``--help`` needs no
    TensorFlow); it removes itself at the first TensorFlow import.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall_import_hook()
        if not _quiet():
            return None
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietTensorFlowFinder()


def install_import_hook():
    """Make the process' first TensorFlow import quiet (as :func:`import_tensorflow`); where it came already, list its devices quietly now."""
    if "tensorflow" in sys.modules:
        import_tensorflow()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall_import_hook():
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
