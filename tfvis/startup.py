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
"""
import glob
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


def import_tensorflow():
    """Import TensorFlow (and initialise its devices) without the no-GPU start-up noise; returns the module.

    Where TensorFlow was imported before (``import keras`` first), its devices may still be
    uninitialised: listing them is filtered the same way (it prints nothing when they are).
    """
    if os.environ.get("TFVIS_TF_STARTUP") == "verbose" or _has_gpu_driver():
        import tensorflow as tf

        return tf
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real standard error (e.g. some notebook kernels): nothing to filter
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf8", "replace")
    for line in _shown(text.splitlines()):
        print(line, file=sys.stderr)
    return tf
