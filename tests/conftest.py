"""Shared test settings: offline, a private weights folder, quiet TensorFlow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TFVIS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_weights_dir(tmp_path_factory, monkeypatch):
    """Each test sees an empty weights folder and Keras cache, never the user's files."""
    root = tmp_path_factory.mktemp("weights")
    monkeypatch.setenv("TFVIS_WEIGHTS_DIR", str(root))
    from tfvis.models import weights

    monkeypatch.setattr(weights, "KERAS_CACHE_DIR", root / "keras_cache")
    return root
