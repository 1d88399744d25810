"""``python -m tfvis.caricature``: what layers see in images (see ``python -m tfvis.caricature --help``)."""

from .cli.caricature import caricature_main

if __name__ == "__main__":
    caricature_main()
