"""``python -m tfvis.compare``: what fine-tuning changed (see ``python -m tfvis.compare --help``)."""

from ..cli.compare import compare_main

compare_main()
