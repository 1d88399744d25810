"""The command lines: one module per command, on shared option checks and image sources (:mod:`.common`).

==============================================  =====================================
command                                         module
==============================================  =====================================
``python -m tfvis.report --model SPEC``          :mod:`tfvis.cli.report`
``python -m tfvis.vgg`` / ``alex`` / ``inception``  :mod:`tfvis.cli.report` (zoo presets)
``python -m tfvis.saliency``                    :mod:`tfvis.cli.saliency`
``python -m tfvis.caricature``                  :mod:`tfvis.cli.caricature`
``python -m tfvis.compare``                     :mod:`tfvis.cli.compare`
==============================================  =====================================
"""

from .caricature import caricature_main
from .common import UsageError, load_model_spec, parse_channels
from .compare import compare_main, reinitialise
from .report import main, report_main, run
from .saliency import saliency_main

__all__ = [
    "UsageError",
    "caricature_main",
    "compare_main",
    "load_model_spec",
    "main",
    "parse_channels",
    "reinitialise",
    "report_main",
    "run",
    "saliency_main",
]
