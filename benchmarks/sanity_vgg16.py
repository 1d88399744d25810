"""Adebayo et al.'s cascading randomization on VGG16 (offline hed weights): the README figure.

    python benchmarks/sanity_vgg16.py                       # docs/sanity_vgg16.png, the table in /tmp
    python benchmarks/sanity_vgg16.py --size 96 --images 3  # quicker
    python benchmarks/sanity_vgg16.py --page                # the report's page instead: docs/sanity_page.png

With ``--page``, runs ``python -m tfvis.vgg --methods sanity`` (two page images, the quick
methods, cascading) and takes a screenshot of its ``sanity.html`` in headless Chromium.

The fully connected layers of the offline VGG16 are not trained (its hed weights are conv layers
only), so the target of each image is its strongest channel of block5_conv3 on the trained model
(the mean of the channel's pre-activation map); the same channel is explained on every randomized
model. The 13 conv layers are randomized from the top down (cascading), with the seeded Keras
initialisers :func:`tfvis.models.spec.reinitialise_layers` draws. Prints the mean similarities at
block5_conv3 and block1_conv1 per method, and the run's time and CPU.
"""

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfvis  # noqa: E402
from tfvis.images import sample_images  # noqa: E402
from tfvis.saliency.sanity import METRICS, sanity_check, strongest_channel_targets  # noqa: E402

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def page_screenshot(out, shot, size):
    """Write the VGG16 report's sanity page into ``out`` and save a 1280 x 1500 screenshot of it at ``shot``."""
    from playwright.sync_api import sync_playwright

    from tfvis import cli

    args = ["--methods", "sanity", "--layers", "block5_conv3", "--channels", "1", "--num-images", "4", "--size", str(size)]
    args += ["--page-images", "2", "--sanity-methods", "vanilla,gradient_x_input,guided,grad_cam", "--sanity-modes", "cascading"]
    assert cli.run("vgg16", "vgg", args + ["--out", str(out), "--quiet"]) == 0
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto((Path(out) / "sanity.html").resolve().as_uri())
        page.wait_for_load_state("load")
        page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
        page.wait_for_timeout(500)
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    print(shot)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--images", type=int, default=len(PHOTOS))
    parser.add_argument("--steps", type=int, default=16, help="Integrated Gradients' steps")
    parser.add_argument("--samples", type=int, default=16, help="SmoothGrad's copies")
    parser.add_argument("--out", default=str(DOCS / "sanity_vgg16.png"))
    parser.add_argument("--csv", default="/tmp/sanity_vgg16.csv")
    parser.add_argument("--page", action="store_true", help="the report's page and its screenshot instead")
    args = parser.parse_args(argv)
    if args.page:
        return page_screenshot("/tmp/sanity_vgg16_report", DOCS / "sanity_page.png", args.size)
    started = time.perf_counter()
    model = tfvis.load_model("vgg16", include_top=False)  # conv layers only: any image size
    names = PHOTOS[: args.images]
    images = np.stack(list(sample_images(names, size=args.size).values()))
    targets = strongest_channel_targets(model, images, "block5_conv3")
    print("targets:", dict(zip(names, targets)))
    result = sanity_check(
        model,
        images,
        targets,
        modes=("cascading",),
        options={"steps": args.steps, "samples": args.samples},
        seed=1,
    )
    result.to_csv(args.csv)
    result.plot(args.out)
    print(f"{time.perf_counter() - started:.0f} s on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    for metric in METRICS:
        print(f"\n{metric}: block5_conv3 -> block4_conv1 -> block1_conv1")
        for name in result.names:
            values = [
                result.value("cascading", layer, name, metric) for layer in ("block5_conv3", "block4_conv1", "block1_conv1")
            ]
            print(f"  {name:26s} " + "  ".join(f"{v:6.3f}" for v in values))
    print(args.out, args.csv)


if __name__ == "__main__":
    main()
