"""``python -m tfvis.saliency``: quick saliency maps of images (see ``python -m tfvis.saliency --help``)."""

from ..cli.saliency import saliency_main

saliency_main()
