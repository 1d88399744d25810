"""The report pipeline: exact top-k merge across shards, the store, resume, and the Ray engine.

The reference for sharding is one pass of :func:`tfvis.top_k_layers` over the same images; for
the merge, a sort of every candidate by (value descending, image index) written out in NumPy.
"""

import json
import os
import threading

import numpy as np
import pytest

import tfvis
from tfvis.images import ArraySource, SampleSource, sample_dataset
from tfvis.pipeline import LocalEngine, Store, layer_report
from tfvis.pipeline import work as work_module
from tfvis.pipeline.plan import merge_top_k, shard_ranges, top_k_units
from tfvis.pipeline.work import Context, ModelSpec

LAYERS = ["block1_conv2", "block2_conv1"]


def reference_top_k(values, k):
    """Top-k per channel of (images, channels) values by (value desc, image index): a plain sort per column."""
    n, channels = values.shape
    out_values, out_images = np.full((k, channels), -np.inf, np.float32), np.full((k, channels), -1)
    for c in range(channels):
        order = sorted(range(n), key=lambda i: (-values[i, c], i))[:k]
        out_values[: len(order), c], out_images[: len(order), c] = values[order, c], order
    return out_values, out_images


@pytest.mark.parametrize("shards", [[(0, 7)], [(0, 3), (3, 7)], [(0, 2), (2, 4), (4, 7)], [(4, 7), (0, 2), (2, 4)]])
def test_merge_of_shards_equals_one_sort_with_ties(shards):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=(7, 5)).astype(np.float32)  # many ties: the image index decides
    results = []
    for start, stop in shards:
        part = values[start:stop]
        v, i = reference_top_k(part, 3)
        i = np.where(i >= 0, i + start, -1)
        results.append(
            {
                "values0": v,
                "images0": i,
                "flat0": i * 10,
                "meta": {"layers": ["L"], "ids": {str(x): f"im{x}" for x in i.ravel() if x >= 0}},
            }
        )
    merged_values, merged_images, flat, ids = merge_top_k(results, "L", 3)
    want_values, want_images = reference_top_k(values, 3)
    np.testing.assert_array_equal(merged_values, want_values)
    np.testing.assert_array_equal(merged_images, want_images)
    np.testing.assert_array_equal(flat, want_images * 10)
    assert set(ids) == set(want_images.ravel().tolist())


def test_shard_ranges_align_on_batches():
    assert shard_ranges(100, 30, 16) == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert shard_ranges(5, 512, 4) == [(0, 5)]


@pytest.fixture(scope="module")
def context(zoo_model):
    model = zoo_model("vgg16", "random", include_top=False)
    return Context(ModelSpec("vgg16", "random"), SampleSource(21, size=40, seed=3), model=model)


@pytest.mark.parametrize("shard_images", [None, 8, 4])
def test_any_sharding_gives_the_one_pass_top_k(context, tmp_path, shard_images):
    """1, 3 and 6 shards against top_k_layers over the same images: values, images and positions bit for bit."""
    store = Store(tmp_path)
    units = top_k_units(context, LAYERS, 4, batch_size=4, shard_images=shard_images)
    assert len(units) == {None: 1, 8: 3, 4: 6}[shard_images]
    merged = layer_report.top_k(LocalEngine(progress=False), context, store, LAYERS, 4, 4, shard_images)
    ids, images = sample_dataset(21, size=40, seed=3)
    one_pass = tfvis.top_k_layers(
        context.model, dict(zip(ids, images)), {name: None for name in LAYERS}, k=4, batch_size=4, methods=(), progress=False
    )
    for name in LAYERS:
        values, image_index, flat, found = merged[name]
        expected = one_pass[name]
        np.testing.assert_array_equal(values.T, expected.values)
        np.testing.assert_array_equal(image_index.T, expected.image_index)
        width = expected.receptive_field.output_size[1]
        np.testing.assert_array_equal(np.stack([flat.T // width, flat.T % width], -1), expected.positions)
        assert [found[i] for i in image_index[:, 0]] == list(expected.image_ids[0])


def test_units_resume_and_changed_settings_make_new_units(context, tmp_path, monkeypatch):
    store = Store(tmp_path)
    units = top_k_units(context, LAYERS, 4, batch_size=4, shard_images=8)
    calls = []
    real = work_module.COMPUTE["topk"]

    def failing(ctx, params, progress=False):
        calls.append(params["start"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed in the middle of the second unit
        return real(ctx, params, progress)

    monkeypatch.setitem(work_module.COMPUTE, "topk", failing)
    with pytest.raises(KeyboardInterrupt):
        LocalEngine(progress=False).run(units, context, store)
    assert [store.has(u) for u in units] == [True, False, False]
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written
    calls.clear()
    monkeypatch.setitem(
        work_module.COMPUTE,
        "topk",
        lambda ctx, params, progress=False: calls.append(params["start"]) or real(ctx, params, progress),
    )
    assert LocalEngine(progress=False).run(units, context, store) == 2
    assert calls == [8, 16]  # only the two missing units ran
    assert all(store.has(u) for u in units)
    other_k = top_k_units(context, LAYERS, 5, batch_size=4, shard_images=8)
    assert not any(store.has(u) for u in other_k)  # another k: other keys, nothing reused
    # float32 (the default) keeps the keys; bfloat16 forward passes are other units
    assert [u.key for u in top_k_units(context, LAYERS, 4, 4, 8, precision="float32")] == [u.key for u in units]
    assert not any(store.has(u) for u in top_k_units(context, LAYERS, 4, 4, 8, precision="bfloat16"))


def test_image_sources_read_by_index(tmp_path):
    from PIL import Image

    ids, images = sample_dataset(6, size=24)
    for name, image in zip(ids, images):
        Image.fromarray(np.rint(image).astype(np.uint8)).save(tmp_path / f"{name}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    source = tfvis.images.FileSource(tmp_path, size=24)
    assert len(source) == 7
    batches = list(source.batches(0, 7, batch_size=3))
    assert [b.indices.tolist() for b in batches] == [[0, 2], [3, 4, 5], [6]]  # index 1 (broken.png) skipped
    got = {i: im for b in batches for i, im in zip(b.ids, b.images)}
    assert "broken.png" not in got and len(got) == 6
    assert [b.indices.tolist() for b in SampleSource(10, 16).batches(2, 9, batch_size=4)] == [[2, 3], [4, 5, 6, 7], [8]]
    array = ArraySource(images)
    np.testing.assert_array_equal(array.read([4])[2][0], images[4])


def _report_arrays(out):
    """Every manifest's top-k lists and every channel's raw arrays."""
    manifests = {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in sorted((out / "state").rglob("ch*.json"))}
    arrays = {}
    for path in sorted((out / "assets").rglob("*.npz")):
        with np.load(path) as data:
            arrays[path.name] = {name: data[name] for name in data.files}
    return manifests, arrays


ARGS = [
    "--weights",
    "random",
    "--layers",
    "block1_conv2,block2_conv1",
    "--channels",
    "3",
    "--num-images",
    "12",
    "--top-k",
    "3",
    "--size",
    "40",
    "--batch-size",
    "4",
    "--quiet",
    "--shard-images",
    "4",
]


@pytest.mark.slow
def test_ray_engine_writes_the_local_report(tmp_path):
    """A local Ray cluster with 2 workers: same manifests (top-k bit for bit) and raw arrays as the local engine."""
    pytest.importorskip("ray")
    from tfvis import cli

    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(tmp_path / "local")]) == 0
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 0
    local, ray_run = _report_arrays(tmp_path / "local"), _report_arrays(tmp_path / "ray")
    assert local[0] == ray_run[0] and len(local[0]) == 6
    assert local[1].keys() == ray_run[1].keys()
    for name, arrays in local[1].items():
        for key, value in arrays.items():
            other = ray_run[1][name][key]
            if value.dtype == np.float16:  # reconstructions: equal to float rounding (other thread counts sum in other orders)
                scale = np.abs(value.astype(np.float32)).max() + 1e-12
                np.testing.assert_allclose(
                    value.astype(np.float32), other.astype(np.float32), atol=2e-3 * scale, err_msg=f"{name}:{key}"
                )
            else:  # top-k values, ids, positions, boxes and patches: bit for bit
                np.testing.assert_array_equal(value, other, err_msg=f"{name}:{key}")


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_with_the_same_result(context, tmp_path):
    """kill -9 of a worker while it computes: Ray restarts it, the unit runs again, the results match the local engine's."""
    pytest.importorskip("ray")
    from tfvis.pipeline import RayEngine

    units = top_k_units(context, LAYERS, 4, batch_size=4, shard_images=4)
    local = Store(tmp_path / "local")
    LocalEngine(progress=False).run(units, context, local)
    engine = RayEngine(workers=2, progress=False)
    try:
        engine._start(context)
        pids = engine.worker_pids()
        killer = threading.Timer(1.0, lambda: os.kill(pids[0], 9))
        killer.start()
        remote = Store(tmp_path / "ray")
        assert engine.run(units, context, remote) == len(units)
        killer.join()
        assert pids[0] not in engine.worker_pids()  # the worker was killed and restarted
    finally:
        engine.close()
    for unit in units:
        a, b = local.load(unit), remote.load(unit)
        for key in a:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key])
        assert a["meta"]["ids"] == b["meta"]["ids"]


def test_images_kept_from_top_k_equal_a_fresh_read_and_stay_bounded(zoo_model, monkeypatch):
    """Channel units reuse the top-k shard's images: the same uint8 pixels and ids a fresh read gives."""
    from tfvis.topk import as_uint8

    source = SampleSource(12, size=40, seed=3)
    context = Context(ModelSpec("vgg16", "random"), source, model=zoo_model("vgg16", "random", include_top=False))
    unit = top_k_units(context, LAYERS, 2, batch_size=4)[0]
    work_module.compute(unit, context)
    kept = sorted(context._kept)
    assert kept
    indices, ids, images = context.read_uint8(kept + [11])
    fresh_indices, fresh_ids, fresh = source.read(kept + [11])
    assert indices == [int(i) for i in fresh_indices] and ids == list(fresh_ids)
    for image, expected in zip(images, fresh):
        np.testing.assert_array_equal(image, as_uint8(expected))
    monkeypatch.setattr(Context, "KEPT_BYTES", 2 * images[0].nbytes)
    context.keep({i: image for i, image in zip(indices, images)}, dict(zip(indices, ids)))
    assert len(context._kept) == 2 and 11 in context._kept  # the oldest dropped first, the newest kept


@pytest.mark.slow
def test_ray_data_source_gives_the_one_pass_top_k_on_ray_workers(context, tmp_path):
    """A Ray Data dataset as the image source, sharded over 2 Ray workers: the one-pass top-k, ids included."""
    pytest.importorskip("ray.data")
    from tfvis.pipeline import RayEngine
    from tfvis.pipeline.raydata import RayDataSource

    ids, images = sample_dataset(21, size=40, seed=3)
    engine = RayEngine(workers=2, progress=False)  # starts the local cluster the dataset lives in
    try:
        import ray.data

        rows = [{"image": np.rint(image).astype(np.uint8), "name": image_id} for image_id, image in zip(ids, images)]
        source = RayDataSource(ray.data.from_items(rows), "samples21", size=40, id_column="name")
        indices, read_ids, read_images = source.read([20, 3, 4])
        assert indices.tolist() == [3, 4, 20] and read_ids == [ids[3], ids[4], ids[20]]
        np.testing.assert_array_equal(read_images, np.rint(images[[3, 4, 20]]))
        with pytest.raises(ValueError, match="no column 'label'"):
            RayDataSource(ray.data.from_items(rows), "samples21", size=40, id_column="label")
        ray_context = Context(context.spec, source)
        merged = layer_report.top_k(engine, ray_context, Store(tmp_path), LAYERS, 4, 4, shard_images=8)
    finally:
        engine.close()
    rounded = {image_id: np.rint(image) for image_id, image in zip(ids, images)}
    one_pass = tfvis.top_k_layers(
        context.model, rounded, {name: None for name in LAYERS}, k=4, batch_size=4, methods=(), progress=False
    )
    for name in LAYERS:
        values, image_index, _, found = merged[name]
        np.testing.assert_array_equal(values.T, one_pass[name].values)
        np.testing.assert_array_equal(image_index.T, one_pass[name].image_index)
        assert [found[i] for i in image_index[:, 0]] == list(one_pass[name].image_ids[0])
