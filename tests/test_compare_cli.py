"""python -m tfvis.compare: the fine-tuning change report, on a surgically changed copy."""

import csv

import numpy as np
import pytest
from browser import check_pages

from tfvis import cli, fileio

ARGS = [
    "--a",
    "vgg16:hed",
    "--b",
    "vgg16:hed",
    "--reinit-b",
    "block2",
    "--layers",
    "block1_conv2,block2_conv2",
    "--cka-layers",
    "block1_conv1,block1_conv2,block2_conv1,block2_conv2",
    "--channels",
    "3",
    "--num-images",
    "12",
    "--size",
    "32",
    "--steps",
    "4",
    "--fv-size",
    "32",
    "--fv-batch",
    "3",
    "--batch-size",
    "4",
    "--quiet",
]
# --fv-batch 3: one render (one trace, the cost of a render at these sizes) per model and layer.


def _run(args):
    with pytest.raises(SystemExit) as done:
        cli.compare_main(args)
    return done.value.code


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    assert _run(ARGS + ["--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_cka_shows_the_ablation(compare_dir):
    saved = fileio.read_json(compare_dir / "cka.json")
    matrix = np.asarray(saved["matrix"])
    assert saved["layers_a"] == saved["layers_b"] == ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2"]
    np.testing.assert_allclose(np.diag(matrix)[:2], 1.0, atol=1e-5)  # untouched block1
    assert np.all(np.diag(matrix)[2:] < 0.99)  # re-initialised block2


@pytest.mark.slow
def test_channels_sorted_by_change_and_dead_csv(compare_dir):
    page = (compare_dir / "block2_conv2.html").read_text()
    scores = [float(s) for s in __import__("re").findall(r"similarity (-?[0-9.]+)", page)]
    assert len(scores) == 3 and scores == sorted(scores)  # most changed first
    unchanged = [
        float(s) for s in __import__("re").findall(r"similarity (-?[0-9.]+)", (compare_dir / "block1_conv2.html").read_text())
    ]
    assert np.allclose(unchanged, 1.0, atol=1e-4)  # same weights, same seed: the same visualizations
    with open(compare_dir / "dead_channels.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3 and {r["dead"] for r in rows} <= {"0", "1"}
    # every result is a unit in the store (one Gram unit per model, a render per model and layer); no state files
    assert len(list((compare_dir / "store" / "grams").glob("*.npz"))) == 2
    assert len(list((compare_dir / "store" / "featurevis").glob("*.npz"))) == 2 * 2
    assert not (compare_dir / "state").exists() or not list((compare_dir / "state").rglob("*.json"))


@pytest.mark.browser
@pytest.mark.slow
def test_compare_report_opens_in_chromium(compare_dir):
    results = check_pages(compare_dir / "index.html")
    assert len(results) == 3  # index and two layer pages
    for url, (widths, errors, _) in results.items():
        assert not errors and widths and all(w > 0 for w in widths), url
    layer = next(r for u, r in results.items() if u.endswith("block2_conv2.html"))
    assert len(layer[0]) == 3 * 2


@pytest.mark.slow
def test_second_run_reuses_saved_work(compare_dir, monkeypatch):
    from tfvis import compare, featurevis

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(compare, "model_cka", fail)
    monkeypatch.setattr(featurevis, "render", fail)
    assert _run(ARGS + ["--out", str(compare_dir)]) == 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--layers", "block9_conv1"], "has no layer block9_conv1; choose from"),
        (["--reinit-b", "block9"], "--reinit-b block9: no weighted layer"),
        (["--batch-size", "2"], "at least 4 images"),
        (["--a", "nonet"], "--a nonet: not a zoo model"),
    ],
)
def test_bad_options_exit_2_with_one_line(bad, message, tmp_path, capsys):
    args = list(ARGS)
    for i in range(0, len(bad), 2):
        if bad[i] in args:
            args[args.index(bad[i]) + 1] = bad[i + 1]
        else:
            args += bad[i : i + 2]
    assert _run(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
