"""Downloads: pinned hash, atomic placement, clear errors. Served from a loopback HTTP server."""

import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from tfvis.models import weights


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def weight_file(url, payload, md5=None):
    return weights.WeightFile("w.bin", url + "w.bin", md5 or hashlib.md5(payload).hexdigest(), "test weights", 1)


def test_download_checks_hash_and_places_file(server, private_weights_dir, monkeypatch):
    monkeypatch.delenv("TFVIS_OFFLINE")
    root, url = server
    payload = np.random.default_rng(0).bytes(300_000)
    (root / "w.bin").write_bytes(payload)
    path = weights.locate(weight_file(url, payload))
    assert path == private_weights_dir / "w.bin" and path.read_bytes() == payload
    assert sorted(p.name for p in private_weights_dir.iterdir()) == ["w.bin"]  # no temp file left


def test_hash_mismatch_leaves_nothing(server, private_weights_dir, monkeypatch):
    monkeypatch.delenv("TFVIS_OFFLINE")
    root, url = server
    (root / "w.bin").write_bytes(b"tampered")
    wf = weight_file(url, b"original")
    with pytest.raises(weights.WeightsHashError, match=wf.md5):
        weights.locate(wf)
    assert not any(private_weights_dir.iterdir())


def test_unreachable_url_names_file_url_hash_and_folder(server, private_weights_dir, monkeypatch):
    monkeypatch.delenv("TFVIS_OFFLINE")
    _, url = server
    wf = weight_file(url, b"x")  # the server has no such file: 404
    with pytest.raises(weights.WeightsUnavailableError) as err:
        weights.locate(wf)
    for part in ("w.bin", wf.url, wf.md5, str(private_weights_dir)):
        assert part in str(err.value)
    assert not any(private_weights_dir.iterdir())


def test_offline_does_not_try(private_weights_dir):
    wf = weights.WeightFile("w.bin", "http://127.0.0.1:9/w.bin", None, "test weights", 1)
    with pytest.raises(weights.WeightsUnavailableError, match="downloads are off"):
        weights.locate(wf)


def test_file_in_keras_cache_is_found(private_weights_dir):
    cache = weights.KERAS_CACHE_DIR
    cache.mkdir(parents=True)
    (cache / "w.bin").write_bytes(b"abc")
    wf = weights.WeightFile("w.bin", "http://127.0.0.1:9/w.bin", hashlib.md5(b"abc").hexdigest(), "t", 1)
    assert weights.locate(wf) == cache / "w.bin"


def test_assign_checks_every_shape_before_changing_anything():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d2")(keras.layers.Dense(3, name="d1")(inputs)))
    before = model.get_layer("d1").get_weights()[0].copy()
    good = [np.ones((4, 3), np.float32), np.ones(3, np.float32)]
    bad = [np.ones((3, 3), np.float32), np.ones(2, np.float32)]
    with pytest.raises(weights.WeightsFormatError, match=r"'d2' kernel .*\(3, 2\).*\(3, 3\)"):
        weights.assign(model, {"d1": good, "d2": bad}, "f.h5")
    np.testing.assert_array_equal(model.get_layer("d1").get_weights()[0], before)
    with pytest.raises(weights.WeightsFormatError, match="no layer 'd9'"):
        weights.assign(model, {"d9": good}, "f.h5")


def test_weight_table_lists_the_files_without_published_hashes():
    """Files read by their format but not pinned yet (Frossard's VGG16, BVLC AlexNet, Lucid's InceptionV1) are in the table, empty."""
    for name in ("vgg16_weights.npz", "bvlc_alexnet.npy", "InceptionV1.pb"):
        assert weights.PINNED_HASHES[name] == {}
