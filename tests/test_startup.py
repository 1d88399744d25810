"""A quiet start-up: TensorFlow's no-GPU lines are filtered, every other line is kept."""

import glob
import os
import subprocess
import sys

import pytest

from tfvis import startup


def test_only_the_known_no_gpu_lines_are_dropped():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795642525.132669    4753 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
        "E0000 00:00:1795642533.135689    4753 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
        "I0000 00:00:1796478907.411501    4174 port.cc:153] oneDNN custom operations are on. You may see slightly different "
        "numerical results due to floating-point round-off errors from different computation orders. To turn them off, "
        "set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
        "W0000 00:00:1796478907.411501    4174 port.cc:153] oneDNN custom operations are on, but this one is a warning",
        "E0000 00:00:1795642533.135689    4753 some_kernel.cc:12] a real error",
        "Traceback (most recent call last):",
    ]
    assert startup._shown(lines) == lines[4:]


NO_GPU_DRIVER = pytest.mark.skipif(bool(glob.glob("/dev/nvidia*")), reason="on a GPU machine every start-up line is shown")


def _stderr_lines(imports):
    """Standard error of a fresh Python that runs ``import <imports>``, one op, then prints 'kept'."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFVIS_TF_STARTUP")}
    code = f"import sys, {imports}, tensorflow as tf; tf.reduce_sum(tf.ones([2, 2])); print('kept', file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip().splitlines()


@NO_GPU_DRIVER
def test_import_prints_no_start_up_noise():
    assert _stderr_lines("tfvis") == ["kept"]


@NO_GPU_DRIVER
def test_devices_listed_quietly_when_tensorflow_came_first():
    """``import keras`` before tfvis prints TensorFlow's import lines itself; tfvis still keeps its device start quiet."""
    lines = _stderr_lines("keras, tfvis")
    assert lines[-1] == "kept" and not any("failed call to cuInit" in line for line in lines), lines
