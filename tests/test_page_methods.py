"""The report's image pages with any method of the saliency table (``--saliency-methods``).

The maps on the pages are the library functions' on the same images (checked here for two of the
new methods; test_cams.py and test_perturbation.py check those against the papers' formulas).
"""

import re

import numpy as np
import pytest
from helpers import tiny_classifier

from tfvis.cli.report import run
from tfvis.pipeline import LocalEngine, Store, image_units
from tfvis.saliency.methods import METHODS, method

SIZE = 32


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """Conv(relu) -> pool -> conv(relu) -> global pool -> Dense logits, saved as a .keras file."""
    path = tmp_path_factory.mktemp("pages") / "tiny.keras"
    tiny_classifier(SIZE, classes=3, seed=3).save(path)
    return path


def _images(folder, count=2):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


def _argv(model_file, images, out, methods):
    return [
        "--model", str(model_file), "--images", str(images), "--layers", "c2", "--channels", "3",
        "--methods", "saliency", "--saliency-methods", methods, "--page-images", "2", "--out", str(out),
        "--quiet",
    ]  # fmt: skip


@pytest.mark.slow
def test_all_methods_are_columns_of_the_image_pages(model_file, tmp_path):
    out = tmp_path / "report"
    assert run(None, "report", _argv(model_file, _images(tmp_path / "images"), out, "all")) == 0
    page = next(out.glob("image_im0*.html")).read_text()
    channel_table = page[page.index('id="saliency"') :]
    header = channel_table[: channel_table.index("</thead>")]
    assert re.findall(r"<th>([^<]+)</th>", header) == [entry.title for entry in METHODS.values()]
    missing = [src for src in re.findall(r'src="([^"]+)"', page) if not (out / src).is_file()]
    assert not missing
    assert 'width="96"' in page  # twelve columns: the smaller tiles


def test_a_pages_unit_computes_the_methods_asked_for(model_file, tmp_path):
    from tfvis.images import ArraySource
    from tfvis.models import ModelSpec
    from tfvis.pipeline.context import Context

    images = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    context = Context(ModelSpec(str(model_file)), ArraySource(images))
    units = image_units.page_units(
        context, [0, 1], ["c2"], {"c2": [0, 1, 2]}, ["saliency"], saliency_methods=("gradient", "layer_cam", "rise")
    )
    assert [unit.params["methods"] for unit in units] == [["vanilla", "layer_cam", "rise"]]
    store = Store(tmp_path / "store")
    LocalEngine(progress=False).run(units, context, store)
    result = store.load(units[0])
    model = context.model
    targets = result["meta"]["targets"]
    for name in ("layer_cam", "rise"):
        expected = method(name)(model, images, targets, layer="c2", seed=0, image_indices=[0, 1])
        np.testing.assert_allclose(result[f"maps_{name}"], expected, rtol=1e-5, atol=1e-6)


def test_unknown_saliency_method_names_the_choices(model_file, tmp_path, capsys):
    status = run(None, "report", _argv(model_file, _images(tmp_path / "images"), tmp_path / "out", "vanilla,salient"))
    assert status == 2
    err = capsys.readouterr().err
    assert "--saliency-methods: unknown salient" in err and "grad_cam_pp" in err and "all" in err
