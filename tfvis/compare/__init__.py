"""Comparing networks: CKA between layers of two models, and similarity of feature visualizations.

:func:`cka` compares two activation matrices (Kornblith et al. 2019), :class:`MinibatchCKA`
accumulates it over batches (Nguyen et al. 2021), and :func:`model_cka` fills a layers x layers
matrix for two models in one streaming pass over a dataset; :func:`plot_cka` draws it.
:class:`StudyCKA` merges N models' per-minibatch Gram matrices (computed one model at a time, as
work units of :mod:`tfvis.pipeline.study_units`) into the CKA between every pair of their layers.
:func:`visualization_similarity`, :func:`gram_distance`, :func:`layout_correlation` and
:func:`dead_channels` compare and screen feature visualizations.

Examples
--------
>>> from tfvis import compare                                               # doctest: +SKIP
>>> result = compare.model_cka(vgg, ablated, "photos/", ["block4_conv3", "block5_conv3"], size=128)  # doctest: +SKIP
>>> compare.plot_cka(result.matrix, result.layers_a, result.layers_b).savefig("cka.png")            # doctest: +SKIP
"""

from .cka import (
    KERNELS,
    CKAResult,
    LayerPairsCKA,
    MinibatchCKA,
    center_gram,
    cka,
    gram_linear,
    gram_rbf,
    hsic,
    hsic_unbiased,
    hsic_unbiased_pairs,
    model_cka,
    plot_cka,
)
from .similarity import (
    DeadChannels,
    dead_channels,
    edge_layout,
    gram_distance,
    layout_correlation,
    normalized_grams,
    visualization_similarity,
    write_dead_csv,
)
from .study import StudyCKA, hsic_unbiased_all_pairs

__all__ = [
    "KERNELS",
    "CKAResult",
    "DeadChannels",
    "LayerPairsCKA",
    "MinibatchCKA",
    "StudyCKA",
    "center_gram",
    "cka",
    "dead_channels",
    "edge_layout",
    "gram_distance",
    "layout_correlation",
    "gram_linear",
    "gram_rbf",
    "hsic",
    "hsic_unbiased",
    "hsic_unbiased_all_pairs",
    "hsic_unbiased_pairs",
    "model_cka",
    "normalized_grams",
    "plot_cka",
    "visualization_similarity",
    "write_dead_csv",
]
