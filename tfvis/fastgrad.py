"""Faster input gradients: convolutions that backpropagate with a forward convolution.

The rule itself lives in :mod:`tfvis.rules` (:func:`~tfvis.rules.fast_conv`); this module gives
the models that use it, for gradients with respect to the input. Every method that differentiates
a network with respect to its input reaches it through :func:`tfvis.graph.feature_net` with
:func:`tfvis.rules.for_input_gradients`.

The rewritten model computes the same outputs with the same weight variables; only the gradient
of eligible convolutions with respect to their input changes how it is computed (to float32
rounding). Gradients with respect to the weights are *not* computed through those layers.
"""

from .graph import feature_net, rewritten
from .rules import conv2d_fast_input_gradient, fast_conv
from .rules import fast_conv_eligible as eligible


def fast_input_gradients(model):
    """A model with ``model``'s layers and outputs whose eligible convolutions backpropagate faster.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential.

    Returns
    -------
    keras.Model
        Same inputs and outputs, cached per model; use it for gradients with respect to the input.

    Examples
    --------
    >>> fast = fast_input_gradients(tfvis.load_model("vgg16", weights="hed", include_top=False))  # doctest: +SKIP
    """
    return rewritten(model, (fast_conv,))


def fast_feature_model(model, layers):
    """A model from ``model``'s input to the outputs of ``layers``, with faster input gradients.

    Parameters
    ----------
    model : keras.Model
    layers : list of str
        Names of layers of ``model``.

    Returns
    -------
    keras.Model
        One output per name, in order (a single output for one name).
    """
    names = list(layers)
    return feature_net(model, names[0] if len(names) == 1 else names, (fast_conv,))


__all__ = ["conv2d_fast_input_gradient", "eligible", "fast_feature_model", "fast_input_gradients"]
