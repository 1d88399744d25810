"""The saliency methods, one entry each: name, title, function, the options it takes, how SmoothGrad wraps it.

Every command and page that shows saliency maps reads this table (:data:`METHODS`): the saliency
command's ``--methods`` and column titles, the report's image pages, and
:func:`tfvis.saliency.smoothgrad`, which wraps any entry that gives an ``attribution`` builder.
Adding a method is one :class:`SaliencyMethod` here.

The table imports no TensorFlow: functions are named as ``"module:function"`` and imported on
first call, so that ``python -m tfvis.saliency --help`` lists the methods without it.

Examples
--------
>>> [method.name for method in METHODS.values()][:3]
['vanilla', 'smoothgrad', 'integrated']
>>> method("grad_cam").title, method("grad_cam").options
('Grad-CAM', ('layer',))
>>> method("gradient").name  # an alias
'vanilla'
"""

import importlib
from dataclasses import dataclass, field


def _resolve(reference):
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class SaliencyMethod:
    """One saliency method of the table.

    Attributes
    ----------
    name : str
        What ``--methods`` and ``smoothgrad(method=...)`` call it.
    title : str
        Its column title on the pages.
    function : str
        ``"module:function"``, called ``function(model, images, target, batch_size=..., **options)``
        and returning maps (N, H, W).
    options : tuple of str
        The keyword options ``function`` takes besides ``batch_size``.
    attribution : str or None
        ``"module:builder"`` of its per-row attributions inside a compiled function, which is what
        SmoothGrad averages over noisy copies (see :func:`tfvis.saliency.smoothing.smoothgrad`):
        ``builder(model, net, target, **graph_options)`` returns an :class:`Attribution`. None:
        SmoothGrad cannot wrap it.
    graph_options : tuple of str
        The options the builder takes (a subset of ``options``).
    reference : str or None
        The option holding a per-image reference input that SmoothGrad leaves without noise
        (Integrated Gradients' ``baseline``).
    fixed : dict
        Options always passed to the builder (the backward rule of a gradient method).
    wraps : bool
        Whether the method wraps another one of the table (SmoothGrad: its ``method`` option),
        whose options it then takes too.
    """

    name: str
    title: str
    function: str
    options: tuple = ()
    attribution: str = None
    graph_options: tuple = ()
    reference: str = None
    fixed: dict = field(default_factory=dict)
    wraps: bool = False

    def options_for(self, settings):
        """The options of ``settings`` (a dict) that this method takes, a wrapped method's included."""
        names = list(self.options)
        if self.wraps:
            names += method(settings.get("method", "vanilla")).options
        return {name: settings[name] for name in names if name in settings}

    def __call__(self, model, images, target, batch_size=16, **settings):
        """The method's maps of ``images`` for ``target``; ``settings`` may hold other methods' options (ignored here)."""
        return _resolve(self.function)(model, images, target, batch_size=batch_size, **self.options_for(settings))

    def build_attribution(self, model, net, target, options):
        """The :class:`Attribution` of this method for the prepared ``net`` (``ValueError`` when it has none)."""
        if self.attribution is None:
            raise ValueError(f"{self.name} cannot be smoothed; choose one of: {', '.join(SMOOTHABLE)}")
        graph_options = {name: options[name] for name in self.graph_options if name in options}
        return _resolve(self.attribution)(model, net, target, **self.fixed, **graph_options)


_GRADIENT = "tfvis.saliency.gradient:gradient_attribution"

#: Every saliency method by name, in the order pages show them.
METHODS = {
    entry.name: entry
    for entry in [
        SaliencyMethod(
            "vanilla",
            "Gradient (Simonyan)",
            "tfvis.saliency.gradient:vanilla",
            attribution=_GRADIENT,
            fixed={"method": "vanilla"},
        ),
        SaliencyMethod(
            "smoothgrad",
            "SmoothGrad",
            "tfvis.saliency.smoothing:smoothgrad",
            options=("noise", "samples", "seed", "magnitude", "value_range", "method", "image_indices"),
            wraps=True,
        ),
        SaliencyMethod(
            "integrated",
            "Integrated gradients",
            "tfvis.saliency.integrated:integrated_gradients",
            options=("baseline", "steps", "rule", "gradient"),
            attribution="tfvis.saliency.integrated:integrated_attribution",
            graph_options=("steps", "rule", "gradient"),
            reference="baseline",
        ),
        SaliencyMethod(
            "guided", "Guided backprop", "tfvis.saliency.gradient:guided", attribution=_GRADIENT, fixed={"method": "guided"}
        ),
        SaliencyMethod(
            "deconvnet", "Deconvnet", "tfvis.saliency.gradient:deconvnet", attribution=_GRADIENT, fixed={"method": "deconvnet"}
        ),
        SaliencyMethod(
            "grad_cam",
            "Grad-CAM",
            "tfvis.saliency.gradcam:grad_cam",
            options=("layer",),
            attribution="tfvis.saliency.gradcam:cam_attribution",
            graph_options=("layer",),
        ),
        SaliencyMethod(
            "grad_cam_pp",
            "Grad-CAM++",
            "tfvis.saliency.cams:grad_cam_plus_plus",
            options=("layer",),
            attribution="tfvis.saliency.cams:grad_cam_pp_attribution",
            graph_options=("layer",),
        ),
        SaliencyMethod(
            "layer_cam",
            "LayerCAM",
            "tfvis.saliency.cams:layer_cam",
            options=("layer",),
            attribution="tfvis.saliency.cams:layer_cam_attribution",
            graph_options=("layer",),
        ),
        SaliencyMethod("score_cam", "Score-CAM", "tfvis.saliency.cams:score_cam", options=("layer", "max_channels", "rank_by")),
        SaliencyMethod(
            "gradient_x_input",
            "Gradient x Input",
            "tfvis.saliency.perturbation:gradient_x_input",
            attribution="tfvis.saliency.perturbation:input_gradient_attribution",
        ),
        SaliencyMethod(
            "occlusion", "Occlusion", "tfvis.saliency.perturbation:occlusion", options=("patch", "stride", "baseline")
        ),
        SaliencyMethod("rise", "RISE", "tfvis.saliency.perturbation:rise", options=("masks", "cell", "p", "seed")),
    ]
}

#: Other names of methods (``smoothgrad(method="gradient")`` as before).
ALIASES = {"gradient": "vanilla"}
#: The methods the report's image pages show by default (``--saliency-methods``), and the saliency command's.
DEFAULT_METHODS = ("vanilla", "smoothgrad", "guided", "grad_cam")

#: Names SmoothGrad can wrap (aliases included).
SMOOTHABLE = tuple(name for name, entry in METHODS.items() if entry.attribution) + tuple(
    alias for alias, name in ALIASES.items() if METHODS[name].attribution
)


def method(name):
    """The :class:`SaliencyMethod` called ``name`` (or an alias); ``ValueError`` naming the choices otherwise."""
    entry = METHODS.get(ALIASES.get(name, name))
    if entry is None:
        raise ValueError(f"unknown saliency method {name!r}; choose one of: {', '.join(METHODS)}")
    return entry


def titles(names=None):
    """``{name: title}`` of ``names`` (default every method), in table order."""
    return {name: method(name).title for name in (names if names is not None else METHODS)}


class Attribution:
    """What SmoothGrad's compiled function needs of a method: its key, its cost and its graph code.

    Parameters
    ----------
    key : tuple
        Everything the graph depends on besides the prepared model and the target (the compiled
        function is cached by it).
    build : callable
        ``build()`` returns ``attribute(rows, references, channels, positions)``, graph code
        giving one attribution per row, shape (B, H, W, C) or (B, H, W, 1) for a map without
        colour channels (Grad-CAM); ``references`` are the rows' reference inputs (a copy of the
        noiseless row for methods without one).
    rows : int
        Model rows per input row (Integrated Gradients: its path points), for batching.
    """

    def __init__(self, key, build, rows=1):
        self.key, self.build, self.rows = tuple(key), build, int(rows)


__all__ = ["ALIASES", "DEFAULT_METHODS", "Attribution", "METHODS", "SMOOTHABLE", "SaliencyMethod", "method", "titles"]
