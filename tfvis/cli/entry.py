"""Console commands: ``tfvis <command> ...`` and ``tfvis-<command> ...``, beside the ``python -m tfvis.<command>`` forms.

``pip install`` puts them on the PATH (setup.py's ``console_scripts``); each one runs the same
function as its ``python -m`` form, with the same options.
"""

import sys

from .activation_atlas import activation_atlas_main
from .caricature import caricature_main
from .compare import compare_main
from .report import main as preset_main
from .report import report_main
from .saliency import saliency_main

#: Command name to the function that runs it with a list of arguments.
COMMANDS = {
    "vgg": lambda argv: preset_main("vgg16", "vgg", argv),
    "alex": lambda argv: preset_main("alexnet", "alex", argv),
    "inception": lambda argv: preset_main("inceptionv1", "inception", argv),
    "saliency": saliency_main,
    "caricature": caricature_main,
    "compare": compare_main,
    "report": report_main,
    "activation-atlas": activation_atlas_main,
}


def main(argv=None):
    """``tfvis <command> [options]``: run one of :data:`COMMANDS`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        usage = f"usage: tfvis {{{','.join(COMMANDS)}}} [options]   (tfvis <command> --help for its options)"
        if argv and argv[0] not in ("-h", "--help"):
            print(f"tfvis: unknown command {argv[0]!r}; choose from: {', '.join(COMMANDS)}\n{usage}", file=sys.stderr)
            sys.exit(2)
        print(usage)
        sys.exit(0 if argv else 2)
    COMMANDS[argv[0]](argv[1:])


def _command(name):
    def run():
        COMMANDS[name](sys.argv[1:])

    run.__name__ = name
    return run


vgg, alex, inception, saliency, caricature, compare, report, activation_atlas = (_command(name) for name in COMMANDS)
