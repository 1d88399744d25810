"""Per-image work units (the report's image pages, ``python -m tfvis.saliency``): resume after kill -9, Ray equals local.

A kill test runs the units of one kind in a subprocess on a tiny saved model, kills it with
SIGKILL once the first result is stored, runs the same units again here, and compares every
stored array with a fresh run's, bit for bit. The references of the maps themselves are the
library functions called directly on the same images (test_saliency.py and test_smoothgrad.py
check those against NumPy and finite differences).
"""

import functools
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import tiny_classifier

from tfvis.pipeline import LocalEngine, Store, image_units

SIZE = 16
IMAGES = 6
INVERT_STEPS = 12


def _tiny_model(path):
    """Rescaling -> Conv2D(relu) -> MaxPooling -> Conv2D(relu) -> GlobalAveragePooling -> Dense logits, saved to ``path``."""
    tiny_classifier().save(path)  # any size: the inversions run at 12 px


def _images():
    return np.random.default_rng(7).uniform(0, 255, (IMAGES, SIZE, SIZE, 3)).astype(np.float32)


#: Builds the context and the units of one kind; run here and, with KILLED_RUN, in the victim subprocess.
PLAN = """
import numpy as np
from tfvis.images import ArraySource
from tfvis.models import ModelSpec
from tfvis.pipeline import image_units
from tfvis.pipeline.context import Context

images = np.random.default_rng(7).uniform(0, 255, ({count}, {size}, {size}, 3)).astype(np.float32)
context = Context(ModelSpec({model!r}), ArraySource(images))
indices = list(range({count}))
if {kind!r} == "page_saliency":
    units = image_units.page_units(context, indices, ["c1", "c2"], {{"c1": [0, 1, 2], "c2": [1, 3]}}, ["saliency"], batch_size=2)
elif {kind!r} == "page_classes":
    units = [u for u in image_units.page_units(context, indices, [], {{}}, ["saliency"], batch_size=2, classes=True) if u.kind == {kind!r}]
elif {kind!r} == "page_inversion":
    units = image_units.page_units(context, indices, [], {{}}, ["inversion"], invert_layers=["c1", "c2"], invert_size=12, batch_size=2)
else:
    plan = image_units.saliency_units(context, indices, [None, "c2:4"], ["smoothgrad", "integrated", "grad_cam"],
                                      {{"samples": 3, "noise": 0.2, "steps": 4, "layer": "c1_relu"}}, batch_size=2, seed=1)
    units = [u for batch in plan.values() for u in batch if u.kind == {kind!r}]
"""

#: The victim: runs the units, sleeping after each stored result so that the kill lands between units or inside one.
KILLED_RUN = """
import functools, time
from tfvis import inversion
from tfvis.pipeline import LocalEngine, Store
inversion.invert = functools.partial(inversion.invert, steps={steps})  # this process only (the test patches its own)
LocalEngine(progress=False).run(units, context, Store({store!r}), on_result=lambda unit, result: time.sleep(0.7))
print("finished")
"""

KINDS = ["page_saliency", "page_classes", "page_inversion", "saliency_scores", "saliency_maps"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    _tiny_model(path)
    return path


def _plan(model_file, kind):
    namespace = {}
    exec(PLAN.format(count=IMAGES, size=SIZE, model=str(model_file), kind=kind), namespace)  # noqa: S102
    return namespace["context"], namespace["units"]


def _stored(store, units):
    return [store.load(unit) for unit in units]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_unit_kind_resumes_after_kill_9(model_file, tmp_path, kind, monkeypatch):
    """SIGKILL mid-run leaves only whole results; the rerun computes the rest and equals a fresh run."""
    from tfvis import inversion

    monkeypatch.setattr(inversion, "invert", functools.partial(inversion.invert, steps=INVERT_STEPS))
    context, units = _plan(model_file, kind)
    assert len(units) >= 3 and all(unit.kind == kind for unit in units)
    killed = tmp_path / "killed"
    script = PLAN.format(count=IMAGES, size=SIZE, model=str(model_file), kind=kind) + KILLED_RUN.format(
        store=str(killed), steps=INVERT_STEPS
    )
    victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list((killed / kind).glob("*.npz")) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the subprocess ended before it was killed"
    store = Store(killed)
    done = [store.has(unit) for unit in units]
    assert 1 <= sum(done) < len(units)
    assert not list(killed.rglob("*.tmp*"))  # nothing half-written
    assert LocalEngine(progress=False).run(units, context, store) == len(units) - sum(done)
    fresh = Store(tmp_path / "fresh")
    LocalEngine(progress=False).run(units, context, fresh)
    for resumed, expected in zip(_stored(store, units), _stored(fresh, units)):
        assert resumed.keys() == expected.keys() and resumed["meta"] == expected["meta"]
        for name in expected:
            if name != "meta":
                np.testing.assert_array_equal(resumed[name], expected[name], err_msg=f"{kind}: {name}")


def test_page_saliency_unit_is_the_library_on_its_images(model_file):
    """A page unit's maps are the table's methods on its images, for each image's strongest channel (a NumPy argmax)."""
    import tfvis
    from tfvis import saliency

    context, units = _plan(model_file, "page_saliency")
    unit = next(u for u in units if u.params["layer"] == "c2" and u.params["indices"] == [2, 3])
    result = image_units.page_saliency(context, unit.params)
    images = _images()[2:4]
    means = tfvis.activations(context.model, ["c2"], images)["c2"].mean(axis=(1, 2))[:, [1, 3]]
    targets = [f"c2:{[1, 3][i]}" for i in means.argmax(axis=1)]
    assert result["meta"]["targets"] == targets and result["meta"]["ids"] == ["2", "3"]
    np.testing.assert_array_equal(result["maps_guided"], saliency.guided(context.model, images, targets))
    np.testing.assert_array_equal(result["maps_grad_cam"], saliency.grad_cam(context.model, images, targets, "c2"))
    # SmoothGrad's noise is that of the images' places on the page (2 and 3), as in one call on all the page images
    everything = saliency.smoothgrad(context.model, _images(), targets * 3, noise=0.15, samples=16, seed=0)
    np.testing.assert_allclose(result["maps_smoothgrad"], everything[2:4], rtol=1e-5, atol=1e-7)


def test_unit_keys_hold_only_the_options_their_method_takes(model_file):
    """Changing IG's steps makes new integrated units and keeps the Grad-CAM and SmoothGrad ones."""
    context, _ = _plan(model_file, "saliency_maps")
    options = {"samples": 3, "noise": 0.2, "steps": 4, "layer": "c1_relu", "method": "vanilla"}
    one = image_units.saliency_units(context, [0, 1], ["c2:4"], ["smoothgrad", "integrated", "grad_cam"], options)
    other = image_units.saliency_units(
        context, [0, 1], ["c2:4"], ["smoothgrad", "integrated", "grad_cam"], {**options, "steps": 8}
    )
    keys = {part: [u.key for u in units] for part, units in one.items()}
    assert keys[(0, "grad_cam")] == [u.key for u in other[(0, "grad_cam")]]
    assert keys[(0, "smoothgrad")] == [u.key for u in other[(0, "smoothgrad")]]
    assert keys[(0, "integrated")] != [u.key for u in other[(0, "integrated")]]
    assert all(unit.kind == "saliency_scores" for unit in one[(0, "scores")])
    assert one[(0, "scores")][0].key == other[(0, "scores")][0].key
