"""``python -m tfvis.vgg``: the VGG16 report (see ``python -m tfvis.vgg --help``)."""

from .cli.report import main

if __name__ == "__main__":
    main("vgg16", "vgg")
