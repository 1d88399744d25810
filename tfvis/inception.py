"""``python -m tfvis.inception``: the InceptionV1 report (see ``python -m tfvis.inception --help``)."""

from .cli.report import main

if __name__ == "__main__":
    main("inceptionv1", "inception")
