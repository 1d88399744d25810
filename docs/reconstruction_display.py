"""Make docs/reconstruction_display.png: top-k reconstructions shown with the old and the new display scaling.

    python docs/reconstruction_display.py [--images 32]

Rows: the strongest unit of a few channels of VGG16 (hed weights) block4_conv3 and block5_conv3 over
the sample photos and crops at 224 px. Columns: the patch; the deconvnet and guided-backprop
reconstructions scaled by their maximum (``to_image(percentile=100)``, before) and by their
99.5th percentile (``RECONSTRUCTION_PERCENTILE``, what the report pages show now).
"""

import argparse
from pathlib import Path

import numpy as np

TILE = 160  # every tile shown at this side (receptive fields differ between the layers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".png")))
    args = parser.parse_args()
    from PIL import Image, ImageDraw

    import tfvis
    from tfvis.display import RECONSTRUCTION_PERCENTILE, to_image, to_uint8

    model = tfvis.load_model("vgg16", weights="hed", include_top=False)
    ids, images = tfvis.images.sample_dataset(args.images, size=224)
    source = dict(zip(ids, images))
    rows = []
    for layer, channels in (("block4_conv3", [0, 1, 2]), ("block5_conv3", [0, 1, 2])):
        result = tfvis.top_k(model, source, layer, channels=channels, k=1, batch_size=16, progress=False)
        for row in range(len(channels)):
            tiles = [result.patches[row, 0] / 255.0]
            for method in ("deconvnet", "guided"):
                r = result.reconstructions[method][row, 0]
                tiles += [to_image(r), to_image(r, percentile=RECONSTRUCTION_PERCENTILE)]
            shown = [np.asarray(Image.fromarray(to_uint8(t)).resize((TILE, TILE), Image.BILINEAR)) / 255.0 for t in tiles]
            rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=1.0) for t in shown], axis=1))
    grid = np.concatenate(rows)

    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + 18), "white")
    canvas.paste(Image.fromarray(to_uint8(grid)), (0, 18))
    labels = [
        "patch",
        "deconvnet max",
        f"deconvnet p{RECONSTRUCTION_PERCENTILE:g}",
        "guided max",
        f"guided p{RECONSTRUCTION_PERCENTILE:g}",
    ]
    step = grid.shape[1] / len(labels)
    for i, label in enumerate(labels):
        ImageDraw.Draw(canvas).text((int(i * step) + 4, 3), label, fill="black")
    canvas.save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
