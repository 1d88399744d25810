"""``import tfvis`` is light (PEP 562): the commands answer ``--help`` without TensorFlow; every public name still resolves."""

import subprocess
import sys

import pytest

import tfvis

#: Runs a ``python -m`` module with ``--help`` in this process, then says whether TensorFlow was imported.
HELP = """
import runpy, sys
sys.argv = [{module!r}, *{args!r}]
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as stop:
    print("exit", stop.code, file=sys.stderr)
print("tensorflow" in sys.modules, "keras" in sys.modules, file=sys.stderr)
"""

#: The console script ``tfvis`` (tfvis.cli.entry:main) with ``args``.
ENTRY = """
import sys
sys.argv = ["tfvis", *{args!r}]
from tfvis.cli.entry import main
try:
    main()
except SystemExit as stop:
    print("exit", stop.code, file=sys.stderr)
print("tensorflow" in sys.modules, "keras" in sys.modules, file=sys.stderr)
"""


def _run(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return done.stdout, done.stderr.strip().splitlines()


@pytest.mark.parametrize(
    "module",
    ["tfvis.vgg", "tfvis.alex", "tfvis.inception", "tfvis.caricature", "tfvis.compare", "tfvis.report", "tfvis.saliency"],
)
def test_python_m_help_needs_no_tensorflow(module):
    out, err = _run(HELP.format(module=module, args=["--help"]))
    assert err[-2:] == ["exit 0", "False False"], err
    assert out.startswith("usage: ")


def test_saliency_package_is_lazy_and_every_public_name_resolves():
    """``import tfvis.saliency`` loads no TensorFlow; each name of its ``__all__`` then resolves from its module."""
    _, err = _run(
        "import sys, tfvis.saliency as s; print('tensorflow' in sys.modules, s.SALIENCY_METHODS['grad_cam'].title, "
        "'tensorflow' in sys.modules, file=sys.stderr)"
    )
    assert err[-1] == "False Grad-CAM False"
    from tfvis import saliency
    from tfvis.saliency import gradient, smoothing

    assert all(getattr(saliency, name) is not None for name in saliency.__all__)
    assert saliency.vanilla is gradient.vanilla and saliency.METHODS is smoothing.METHODS
    with pytest.raises(AttributeError):
        saliency.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["vgg", "--help"],
        ["report", "--help"],
        ["saliency", "--help"],
        ["compare", "--help"],
        ["caricature", "--help"],
        ["inception", "--help"],
    ],
)
def test_console_help_needs_no_tensorflow(args):
    out, err = _run(ENTRY.format(args=args))
    assert err[-2:] == ["exit 0", "False False"], err
    assert out.startswith("usage: ")


def test_import_tfvis_is_light():
    _, err = _run(
        "import sys, tfvis; print(sorted(m for m in sys.modules if m.startswith(('tfvis', 'tensorflow', 'keras'))), file=sys.stderr)"
    )
    assert err == ["['tfvis', 'tfvis.startup']"]


def test_every_public_name_resolves():
    names = tfvis.__all__
    assert set(names) <= set(dir(tfvis))
    for name in names:
        assert getattr(tfvis, name) is not None, name
    namespace = {}
    exec(f"from tfvis import {', '.join(names)}", namespace)
    assert all(namespace[name] is getattr(tfvis, name) for name in names)
    assert callable(tfvis.activations) and callable(tfvis.receptive_field)  # functions named like their modules
    assert tfvis.graph.__name__ == "tfvis.graph" and tfvis.load_model is tfvis.models.load_model
    with pytest.raises(AttributeError):
        tfvis.no_such_name  # noqa: B018


def test_submodule_import_keeps_the_function_named_like_it():
    _, err = _run(
        "import sys, tfvis.activations, tfvis.receptive_field, tfvis; "
        "print(callable(tfvis.activations), callable(tfvis.receptive_field), tfvis.graph.__name__, file=sys.stderr)"
    )
    assert err[-1] == "True True tfvis.graph"


def test_help_defaults_agree_with_the_library():
    from tfvis.cli import common
    from tfvis.images import MAX_PIXELS
    from tfvis.models import ZOO

    assert common.DEFAULT_MAX_PIXELS == MAX_PIXELS
    assert common.ZOO_NAMES == tuple(ZOO)
