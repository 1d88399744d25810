"""``python -m tfvis.alex``: the AlexNet report (see ``python -m tfvis.alex --help``)."""

from .cli.report import main

if __name__ == "__main__":
    main("alexnet", "alex")
