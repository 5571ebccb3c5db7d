"""Layers and models on :mod:`lowprec.autograd`: Linear, Embedding, LayerNorm,
RMSNorm, Dropout, the activations, Sequential, MLP and GPT.

A :class:`Module` finds its parameters and sub-modules among its attributes (in the
order they were set), so ``named_parameters()`` gives names such as
``"layers.0.weight"``. Every module takes the precision policy explicitly; its
parameters hold values of ``policy.params``. Initial weights are drawn in float64
from a seeded generator and rounded once to ``policy.params``, so the same seed
gives every policy the same starting point up to that rounding.

A model called on a NumPy array checks it for NaN and inf (ValueError) and rounds
it to ``policy.activations``.
"""

from lowprec.nn.gpt import GPT, GPTConfig
from lowprec.nn.layers import ACTIVATIONS as ACTIVATIONS  # importable, as before
from lowprec.nn.layers import (
    GELU,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    ReLU,
    RMSNorm,
    Sequential,
    Tanh,
)
from lowprec.nn.mlp import MLP
from lowprec.nn.module import Module, Parameter, as_input

__all__ = [
    "GELU",
    "Dropout",
    "Embedding",
    "GPT",
    "GPTConfig",
    "LayerNorm",
    "Linear",
    "MLP",
    "Module",
    "Parameter",
    "RMSNorm",
    "ReLU",
    "Sequential",
    "Tanh",
    "as_input",
]
