"""``python -m tfvis.activation_atlas``: an activation atlas of a layer (see ``python -m tfvis.activation_atlas --help``)."""

from .cli.activation_atlas import activation_atlas_main

if __name__ == "__main__":
    activation_atlas_main()
