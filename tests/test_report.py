"""The model CLIs and their HTML reports: content, resume, errors, and a real browser.

The CLIs here get the session's shared models (conftest.py) for offline weights: they only read
them, and building and tracing a VGG16 anew costs about a second in each of the thirty runs.
"""

import functools
import re
import shutil

import numpy as np
import pytest
from browser import check_pages

import tfvis
from tfvis import cli, fileio
from tfvis.report import safe_name

ARGS = [
    "--weights",
    "random",
    "--layers",
    "block1_conv2,block2_conv1",
    "--channels",
    "2",
    "--num-images",
    "6",
    "--top-k",
    "4",
    "--size",
    "48",
    "--batch-size",
    "4",
    "--quiet",
]


def serving(zoo_model):
    """``tfvis.load_model`` as the CLIs call it, serving random and hed zoo models from the session cache."""
    real = tfvis.load_model

    def load(name, weights="auto", include_top=True, seed=0, input_shape=None):
        if weights in (None, "random", "hed") and not (weights == "hed" and include_top):
            return zoo_model(name, weights, include_top=include_top, seed=seed, input_shape=input_shape)
        return real(name, weights=weights, include_top=include_top, seed=seed, input_shape=input_shape)

    return load


@pytest.fixture(autouse=True)
def shared_models(monkeypatch, zoo_model):
    monkeypatch.setattr(tfvis, "load_model", serving(zoo_model))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, zoo_model):
    """The report of ARGS, left as the first run wrote it: tests that run again work on a copy (:func:`copied`)."""
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:  # set up before the tests' own shared_models
        patch.setattr(tfvis, "load_model", serving(zoo_model))
        status = cli.run("vgg16", "vgg", ARGS + ["--out", str(out)])
    assert status == 0
    return out


def copied(report_dir, tmp_path):
    """A copy of the report (file times kept), for a test that runs the CLI on it again."""
    return shutil.copytree(report_dir, tmp_path / "report", copy_function=shutil.copy2)


def test_cli_prints_index_path_last(tmp_path, capsys):
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(tmp_path), "--layers", "block1_conv1", "--channels", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str((tmp_path / "index.html").resolve())
    assert "1 channels computed" in lines[-2]


def test_layer_page_has_patches_and_reconstructions(report_dir):
    html = (report_dir / "block2_conv1.html").read_text()
    assert html.count('id="ch') == 2
    patches = re.findall(r'src="(assets/block2_conv1/[^"]+_patch\.png)"', html)
    deconvs = re.findall(r'src="(assets/block2_conv1/[^"]+_deconvnet\.png)"', html)
    guided = re.findall(r'src="(assets/block2_conv1/[^"]+_guided\.png)"', html)
    assert len(patches) == len(deconvs) == len(guided) == 2 * 4
    for src in patches + deconvs + guided:
        assert (report_dir / src).is_file()
    # Raw arrays beside the PNGs: one compressed .npz per channel, reconstructions in float16.
    with np.load(report_dir / "assets" / "block2_conv1" / "vgg16_block2_conv1_ch0.npz") as arrays:
        assert arrays["deconvnet"].shape == (4, 10, 10, 3) and arrays["deconvnet"].dtype == np.float16  # field 10 x 10
        assert arrays["patches"].shape == (4, 10, 10, 3) and arrays["image_ids"].shape == (4,)
        manifest = fileio.read_json(report_dir / "state" / "block2_conv1" / "ch0.json")
        assert [i["image"] for i in manifest["items"]] == arrays["image_ids"].tolist()
        np.testing.assert_array_equal([i["value"] for i in manifest["items"]], arrays["values"])
    assert not list((report_dir / "assets").rglob("*.npy"))
    assert "http" not in html.replace("http-equiv", "")  # nothing external: opens offline


def test_raw_npy_keeps_a_float32_array_per_image(tmp_path):
    """--raw npy: the arrays named <model>_<layer>_<image>, equal to the compact ones to float16 rounding."""
    args = ARGS + ["--layers", "block2_conv1", "--channels", "1"]
    assert cli.run("vgg16", "vgg", args + ["--out", str(tmp_path / "npy"), "--raw", "npy"]) == 0
    assert cli.run("vgg16", "vgg", args + ["--out", str(tmp_path / "compact")]) == 0
    npys = sorted((tmp_path / "npy" / "assets" / "block2_conv1").glob("vgg16_block2_conv1_*_ch0_deconvnet.npy"))
    assert len(npys) == 4 and np.load(npys[0]).dtype == np.float32
    with np.load(tmp_path / "compact" / "assets" / "block2_conv1" / "vgg16_block2_conv1_ch0.npz") as arrays:
        for rank, image_id in enumerate(arrays["image_ids"]):
            full = np.load(tmp_path / "npy" / "assets" / "block2_conv1" / f"vgg16_block2_conv1_{image_id}_ch0_deconvnet.npy")
            np.testing.assert_allclose(arrays["deconvnet"][rank], full, rtol=1e-3, atol=1e-3 * np.abs(full).max())


def test_index_lists_layers_with_fields(report_dir):
    html = (report_dir / "index.html").read_text()
    assert 'href="block1_conv2.html"' in html and 'href="block2_conv1.html"' in html
    assert "5 x 5" in html and "10 x 10" in html  # receptive fields of block1_conv2 and block2_conv1
    assert "random (seed 0)" in html


def test_second_run_skips_done_channels_and_force_redoes(report_dir, tmp_path, capsys):
    report_dir = copied(report_dir, tmp_path)
    manifest = report_dir / "state" / "block2_conv1" / "ch0.json"
    before = manifest.stat().st_mtime_ns
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(report_dir), "--channels", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 channels computed, 4 already done" in out  # channel 2 of both layers is new
    assert manifest.stat().st_mtime_ns == before
    assert (report_dir / "block2_conv1.html").read_text().count('id="ch') == 3
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(report_dir), "--force"]) == 0
    assert manifest.stat().st_mtime_ns != before


def test_interrupted_run_resumes(tmp_path, monkeypatch, capsys):
    """A crash while writing leaves no half-written file, and the next run finishes the job."""
    from tfvis import report

    calls = {"n": 0}
    real = report.Report.add_top_k

    def crash_after_first_layer(self, result, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first channel of the second layer (one call per channel)
            raise KeyboardInterrupt
        return real(self, result, **kwargs)

    monkeypatch.setattr(report.Report, "add_top_k", crash_after_first_layer)
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(tmp_path)]) == 130  # Ctrl-C: status 130, one line
    assert "interrupted" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.tmp"))
    monkeypatch.setattr(report.Report, "add_top_k", real)
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(tmp_path)]) == 0
    assert "2 channels computed, 2 already done" in capsys.readouterr().out


def test_changed_settings_recompute(report_dir, tmp_path, capsys):
    report_dir = copied(report_dir, tmp_path)
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(report_dir), "--top-k", "3"]) == 0
    captured = capsys.readouterr()
    assert "other settings" in captured.err and "4 channels computed" in captured.out
    assert fileio.read_json(report_dir / "run.json")["settings"]["top-k"] == 3


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--layers", "block9_conv1"], "no layer block9_conv1; choose from: block1_conv1"),
        (["--channels", "70-80"], "has channels 0-63"),
        (["--channels", "x"], "use 'all'"),
        (["--methods", "magic"], "choose from: deconv"),
        (["--top-k", "0"], "at least 1"),
        (["--images", "/no/such/folder"], "not a folder"),
        (["--weights", "nonsense"], "neither a file nor one of"),
    ],
)
def test_bad_options_exit_2_with_one_line(bad, message, tmp_path, capsys):
    assert cli.run("vgg16", "vgg", ARGS + ["--out", str(tmp_path)] + bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_alexnet_without_weights_explains_how_to_get_them(tmp_path, capsys):
    assert cli.run("alexnet", "alex", ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bvlc_alexnet.npy" in err and "https://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy" in err


def test_images_folder_with_a_broken_file(tmp_path, capsys):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).save(photos / f"p{i}.jpg")
    (photos / "broken.png").write_bytes(b"nope")
    args = ARGS + ["--out", str(tmp_path / "out"), "--images", str(photos), "--layers", "block1_conv1"]
    args[args.index("--num-images") + 1] = "100"
    assert cli.run("vgg16", "vgg", args) == 0
    assert "skipped 1 unreadable file(s) of 6" in capsys.readouterr().err


@pytest.mark.browser
def test_report_opens_in_chromium(report_dir, tmp_path):
    screenshot = tmp_path / "index.png"
    results = check_pages(report_dir / "index.html", screenshot=screenshot)
    # Reached by following links: the index, and per layer its page, its atlas and its 2 channel pages.
    assert len(results) == 1 + 2 * (1 + 1 + 2)
    for url, (widths, errors, links) in results.items():
        assert widths and all(w > 0 for w in widths) or url.endswith("index.html"), url
        assert not errors, (url, errors)
    layer_page = next(r for u, r in results.items() if u.endswith("block2_conv1.html"))
    assert len(layer_page[0]) == 2 * 3 * 4  # 2 channels x (patches, deconvnet, guided) x top-4
    assert screenshot.stat().st_size > 1000


#: Inversion steps of the image-pages test: the CLI's 350 give errors near 0.07, 40 give 0.1-0.4,
#: still far below the bound checked (the error of the mean image is about 1).
PAGE_INVERT_STEPS = 40


@pytest.mark.browser
@pytest.mark.slow
def test_image_pages_show_saliency_and_inversion(tmp_path, capsys, monkeypatch, vgg16_random):
    """--methods all: one page per image, resumable, opened in Chromium.

    Featurevis at 2 steps of 32 px and inversions of 40 steps: this test checks the pages, not the
    methods' quality (test_featurevis.py, test_inversion.py do).
    """
    from tfvis import images, inversion

    monkeypatch.setattr(inversion, "invert", functools.partial(inversion.invert, steps=PAGE_INVERT_STEPS))
    out = tmp_path / "pages"
    args = ARGS + [
        "--out",
        str(out),
        "--methods",
        "all",
        "--page-images",
        "2",
        "--invert-size",
        "32",
        "--fv-steps",
        "2",
        "--fv-size",
        "32",
    ]
    assert cli.run("vgg16", "vgg", args) == 0
    run = fileio.read_json(out / "run.json")
    assert run["settings"]["inversion"] == "block1_conv2, block2_conv1 at 32 px"  # one layer per stride
    # The page images are the first --page-images of the source, in its order: the sample photos first.
    ids, batch = images.sample_dataset(6, size=48, seed=0)
    assert ids[:2] == list(images.SAMPLE_NAMES[:2])
    pages = [f"image_{name}.html" for name in ids[:2]]
    assert sorted(p.name for p in out.glob("image_*.html")) == sorted(pages)
    index = (out / "index.html").read_text()
    assert all(f'href="{p}"' in index for p in pages)
    assert index.index(f'href="{pages[0]}"') < index.index(f'href="{pages[1]}"')
    page_html = [(out / page).read_text() for page in pages]
    for layer in ("block1_conv2", "block2_conv1"):
        # Each image's strongest channel among the two shown: the larger spatial mean, by NumPy.
        means = tfvis.activations(vgg16_random, [layer], batch[:2])[layer][..., :2].astype(np.float64).mean(axis=(1, 2))
        assert np.all(np.abs(means[:, 0] - means[:, 1]) > 1e-3 * np.abs(means).max())  # no near-tie
        for i, image_id in enumerate(ids[:2]):
            target = f"{layer}:{means[i].argmax()}"
            assert f">{target}<" in page_html[i]  # the row of this layer names the image's own strongest channel
            for method in ("vanilla", "smoothgrad", "guided", "grad_cam"):
                stem = out / "assets" / "pages" / f"vgg16_{layer}_{image_id}_{method}"
                assert stem.with_suffix(".png").is_file() and np.load(stem.with_suffix(".npy")).shape == (48, 48)
            vanilla = np.load(out / "assets" / "pages" / f"vgg16_{layer}_{image_id}_vanilla.npy")
            np.testing.assert_allclose(vanilla, tfvis.saliency.vanilla(vgg16_random, batch[i], target), rtol=1e-4, atol=1e-7)
    errors = [float(e) for e in re.findall(r"error (\d+\.\d+)", page_html[0])]
    assert len(errors) == 2 and all(0 <= e < 1 for e in errors)
    assert np.load(out / "assets" / "pages" / f"vgg16_block1_conv2_{ids[0]}_inversion.npy").shape == (32, 32, 3)
    capsys.readouterr()
    from tfvis.pipeline import work

    for kind in ("page_saliency", "page_inversion", "topk", "channels", "featurevis"):  # a rerun computes nothing
        monkeypatch.setitem(work.COMPUTE, kind, lambda *a, **k: pytest.fail("a finished unit was computed again"))
    assert cli.run("vgg16", "vgg", args) == 0  # everything is reloaded, nothing recomputed
    assert "0 channels computed" in capsys.readouterr().out
    undated = functools.partial(re.sub, r"\d{4}-\d\d-\d\d \d\d:\d\d", "")
    assert [undated((out / page).read_text()) for page in pages] == [undated(text) for text in page_html]  # the same pages
    results = check_pages(out / "index.html")
    page = next(r for u, r in results.items() if u.endswith(pages[0]))
    widths, errors, _ = page
    assert not errors and all(w > 0 for w in widths)
    assert len(widths) == 1 + 2 * 4 + 2  # the image, 2 layers x 4 maps, 2 inversions


@pytest.mark.browser
@pytest.mark.slow
def test_saliency_cli_writes_maps_and_page(tmp_path, capsys, vgg16_random):
    out = tmp_path / "sal"
    args = [
        "--model",
        "vgg16",
        "--weights",
        "random",
        "--target",
        "block2_conv1:3;block1_conv1:0@4,4",
        "--size",
        "32",
        "--num-images",
        "2",
        "--samples",
        "3",
        "--steps",
        "8",
        "--methods",
        "all",
        "--out",
        str(out),
        "--quiet",
    ]
    with pytest.raises(SystemExit) as done:
        cli.saliency_main(args)
    assert done.value.code == 0
    stems = sorted(p.name for p in (out / "assets" / "saliency").glob("*_vanilla.npy"))
    # <model>_<target>_<image>: a target is no plain name ("block2_conv1:3"), so its part ends in a digest of it
    assert stems == [
        f"vgg16_block1_conv1_0_4_4-{safe_name('block1_conv1:0@4,4')[-8:]}_chelsea_vanilla.npy",
        f"vgg16_block1_conv1_0_4_4-{safe_name('block1_conv1:0@4,4')[-8:]}_coffee_vanilla.npy",
        f"vgg16_block2_conv1_3-{safe_name('block2_conv1:3')[-8:]}_chelsea_vanilla.npy",
        f"vgg16_block2_conv1_3-{safe_name('block2_conv1:3')[-8:]}_coffee_vanilla.npy",
    ]
    from tfvis import images, saliency
    from tfvis.cli.saliency import SALIENCY_METHODS

    photo = images.sample_images(["chelsea"], size=32)["chelsea"]
    saved = np.load(out / "assets" / "saliency" / stems[2])
    np.testing.assert_allclose(saved, saliency.vanilla(vgg16_random, photo, "block2_conv1:3"), rtol=1e-4, atol=1e-6)
    results = check_pages(out / "index.html")
    widths, errors, _ = results[(out / "index.html").resolve().as_uri()]
    shown = 1 + len(SALIENCY_METHODS)  # the image and each method's map
    assert not errors and len(widths) == 2 * 2 * shown and all(w > 0 for w in widths)  # targets x images x shown


def test_saliency_cli_resumes_and_force_recomputes(tmp_path, capsys, monkeypatch, vgg16_random):
    """A rerun computes no unit and writes the same maps; --force computes every unit again; new options only their units."""
    from tfvis import saliency
    from tfvis.pipeline import work

    out = tmp_path / "sal"
    args = [
        "--model",
        "vgg16",
        "--weights",
        "random",
        "--target",
        "block2_conv1:3",
        "--size",
        "32",
        "--num-images",
        "2",
        "--samples",
        "2",
        "--methods",
        "vanilla,smoothgrad,grad_cam",
        "--out",
        str(out),
        "--quiet",
    ]
    calls = []
    for kind in ("saliency_scores", "saliency_maps"):
        real = work.COMPUTE[kind]
        monkeypatch.setitem(
            work.COMPUTE,
            kind,
            lambda context, params, progress=False, real=real: (
                calls.append(params["methods"] if "methods" in params else ["scores"]) or real(context, params, progress)
            ),
        )

    def run(*extra):
        calls.clear()
        with pytest.raises(SystemExit) as done:
            cli.saliency_main(args + list(extra))
        assert done.value.code == 0
        return sorted(m for c in calls for m in c), {p.name: np.load(p) for p in (out / "assets" / "saliency").glob("*.npy")}

    first, maps = run()
    assert first == ["grad_cam", "scores", "smoothgrad", "vanilla"]
    again, same = run()
    assert again == [] and same.keys() == maps.keys() and all(np.array_equal(same[k], maps[k]) for k in maps)
    assert run("--force")[0] == first
    assert run("--samples", "3")[0] == ["smoothgrad"]  # only SmoothGrad takes --samples
    photo = tfvis.images.sample_images(["coffee"], size=32)["coffee"]
    smooth = next(v for k, v in run("--samples", "3")[1].items() if k.endswith("coffee_smoothgrad.npy"))
    # coffee is the second image: its noise is SmoothGrad's for image 1 of the command's images
    both = np.stack([tfvis.images.sample_images(["chelsea"], size=32)["chelsea"], photo])
    np.testing.assert_allclose(
        smooth, saliency.smoothgrad(vgg16_random, both, "block2_conv1:3", samples=3)[1], rtol=1e-5, atol=1e-8
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--methods", "magic"], "choose from: vanilla"),
        (["--target", "block9_conv1:0"], "has no layer 'block9_conv1'"),
        (["--target", "block1_conv1:99"], "channels 0..63"),
        (["--model", "nosuchnet"], "not a zoo model"),
    ],
)
def test_saliency_cli_bad_options(bad, message, tmp_path, capsys):
    args = ["--weights", "random", "--size", "32", "--num-images", "1", "--out", str(tmp_path), "--quiet"] + bad
    with pytest.raises(SystemExit) as done:
        cli.saliency_main(args)
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_featurevis_slots_rendered_in_batches_and_resumed(tmp_path, monkeypatch):
    from tfvis.pipeline import work

    calls = []
    real = work.render

    def counting(model, objective, **kwargs):
        calls.append(list(objective))
        return real(model, objective, **kwargs)

    monkeypatch.setattr(work, "render", counting)
    out = tmp_path / "fv"
    args = ARGS + [
        "--out",
        str(out),
        "--methods",
        "deconv,featurevis",
        "--fv-steps",
        "3",
        "--fv-size",
        "32",
        "--fv-batch",
        "3",
        "--channels",
        "0-3",
    ]
    assert cli.run("vgg16", "vgg", args) == 0
    assert calls == [
        [f"block1_conv2:{c}" for c in (0, 1, 2)],
        ["block1_conv2:3"],
        [f"block2_conv1:{c}" for c in (0, 1, 2)],
        ["block2_conv1:3"],
    ]
    for channel in range(4):
        slot = fileio.read_json(out / "state" / "block2_conv1" / f"ch{channel}.json")["slots"]["featurevis"]
        assert (out / slot["src"]).is_file() and slot["title"].startswith("Feature visualization")
        assert len(fileio.read_json(out / "state" / "block2_conv1" / f"ch{channel}.json")["items"]) == 4  # top-k kept
    assert 'alt="Feature visualization' in (out / "block2_conv1.html").read_text()
    calls.clear()
    assert cli.run("vgg16", "vgg", args) == 0
    assert calls == []  # resumed: every channel has its picture


@pytest.mark.browser
@pytest.mark.slow
def test_caricature_cli_files_page_and_resume(tmp_path, capsys):
    out = tmp_path / "car"
    args = [
        "--model",
        "vgg16:random,vgg16:hed",
        "--layers",
        "block1_conv2,block2_conv1",
        "--num-images",
        "2",
        "--size",
        "32",
        "--steps",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    with pytest.raises(SystemExit) as done:
        cli.caricature_main(args)
    assert done.value.code == 0
    for model in ("vgg16-random", "vgg16-hed"):
        for layer in ("block1_conv2", "block2_conv1"):
            for image in ("chelsea", "coffee"):
                array = np.load(out / f"{model}_{layer}_{image}.npy")
                assert array.shape == (32, 32, 3) and 0 <= array.min() and array.max() <= 1
                assert (out / f"{model}_{layer}_{image}.png").is_file()
    results = check_pages(out / "index.html")
    widths, errors, _ = results[(out / "index.html").resolve().as_uri()]
    assert not errors and len(widths) == 2 * (1 + 2) * 2 and all(w > 0 for w in widths)  # models x (image + layers) x images
    before = (out / "vgg16-hed_block2_conv1_coffee.npy").stat().st_mtime_ns
    with pytest.raises(SystemExit):
        cli.caricature_main(args)
    assert (out / "vgg16-hed_block2_conv1_coffee.npy").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--model", "vgg16:hed", "--layers", "block9_conv1"], "vgg16-hed has no layer block9_conv1; choose from"),
        (["--model", "lenet", "--layers", "c1"], "not a zoo model"),
        (["--model", "vgg16:nonsense", "--layers", "block1_conv1"], "--model vgg16:nonsense"),
        (["--layers", "block1_conv1", "--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_caricature_cli_bad_options(bad, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.caricature_main(bad + ["--out", str(tmp_path), "--quiet"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def _arrays(folder):
    return {path.name: np.load(path) for path in sorted(folder.glob("*.npy"))}


@pytest.mark.slow
def test_ray_engine_writes_the_local_image_pages_and_saliency_maps(tmp_path):
    """One local Ray cluster, 2 workers: the image pages and ``python -m tfvis.saliency`` give the local engine's arrays."""
    ray = pytest.importorskip("ray")
    pages = ARGS + ["--methods", "saliency,inversion", "--page-images", "2", "--invert-size", "32", "--layers", "block1_conv2"]
    maps = [
        "--model",
        "vgg16",
        "--weights",
        "random",
        "--target",
        "block2_conv1:3",
        "--size",
        "32",
        "--num-images",
        "2",
        "--samples",
        "3",
        "--steps",
        "4",
        "--methods",
        "all",
        "--quiet",
    ]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        for engine in ("local", "ray"):
            extra = ["--engine", "ray", "--workers", "2"] if engine == "ray" else []
            assert cli.run("vgg16", "vgg", pages + ["--out", str(tmp_path / f"pages_{engine}")] + extra) == 0
            with pytest.raises(SystemExit) as done:
                cli.saliency_main(maps + ["--out", str(tmp_path / f"maps_{engine}")] + extra)
            assert done.value.code == 0
    finally:
        ray.shutdown()
    for folder in ("pages", "maps"):
        kind = "pages" if folder == "pages" else "saliency"
        local, remote = (
            _arrays(tmp_path / f"{folder}_local" / "assets" / kind),
            _arrays(tmp_path / f"{folder}_ray" / "assets" / kind),
        )
        assert local.keys() == remote.keys() and len(local) >= 8
        for name, array in local.items():  # inversions at their default steps: a patch here would not reach the workers
            np.testing.assert_array_equal(remote[name], array, err_msg=name)
