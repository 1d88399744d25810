"""Console commands (``tfvis vgg``, ``tfvis-vgg``) and the options every command shares (parent parsers)."""

import shutil
import subprocess
import sys

import pytest

from tfvis.cli import entry
from tfvis.cli.compare import build_compare_parser
from tfvis.cli.report import build_parser
from tfvis.cli.saliency import build_saliency_parser


def test_shared_options_parse_alike_in_every_command():
    shared = ["--images", "photos/*.jpg", "--num-images", "5", "--seed", "3", "--batch-size", "8", "--quiet", "--out", "x"]
    report = build_parser("vgg", "vgg16").parse_args(shared + ["--fv-steps", "7"])
    compare = build_compare_parser().parse_args(shared + ["--a", "vgg16", "--b", "vgg16", "--layers", "l", "--steps", "7"])
    saliency = build_saliency_parser().parse_args(shared)
    for args in (report, compare, saliency):
        assert (args.images, args.num_images, args.seed, args.batch_size, args.quiet, args.out) == (
            "photos/*.jpg",
            5,
            3,
            8,
            True,
            "x",
        )
    assert report.fv_steps == compare.fv_steps == 7  # compare keeps its --steps spelling
    assert build_parser("vgg", "vgg16").parse_args([]).engine == "local"


def test_tfvis_command_dispatches_and_names_the_choices(capsys):
    with pytest.raises(SystemExit) as stop:
        entry.main(["nope"])
    assert stop.value.code == 2 and "choose from: vgg, alex, inception, saliency, caricature, compare" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        entry.main(["vgg", "--help"])
    assert stop.value.code == 0 and "--engine" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("tfvis-vgg") is None, reason="console scripts not installed (pip install -e .)")
def test_console_scripts_are_installed():
    for command in (["tfvis", "vgg", "--help"], ["tfvis-vgg", "--help"], ["tfvis-compare", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, (command, done.stderr)


def test_python_m_forms_still_work():
    done = subprocess.run([sys.executable, "-m", "tfvis.vgg", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--shard-images" in done.stdout
