"""The multilayer perceptron that ``lowprec train`` trains."""

from __future__ import annotations

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd import Tensor
from lowprec.nn.layers import ACTIVATIONS, LayerNorm, Linear, Sequential
from lowprec.nn.module import Module, _check_size


class MLP(Module):
    """A multilayer perceptron: Linear, [LayerNorm], activation, ..., Linear.

    Parameters
    ----------
    sizes : list of int
        Widths from the input to the output (the logits), at least two.
    policy : Policy or str
    activation : {"relu", "gelu", "tanh"}
    layer_norm : bool
        Put a LayerNorm after every hidden Linear, before the activation.
    seed : int
        Seeds the layers' initialisation (layer i draws from seed ``[seed, i]``).

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import MLP
    >>> model = MLP([64, 32, 10], policy="bf16_mixed", layer_norm=True)
    >>> [name for name, _ in model.named_parameters()][:3]
    ['layers.0.weight', 'layers.0.bias', 'layers.1.weight']
    >>> model(np.zeros((5, 64))).shape
    (5, 10)
    """

    def __init__(
        self,
        sizes: list[int],
        *,
        policy: Policy | str,
        activation: str = "relu",
        layer_norm: bool = False,
        seed: int = 0,
    ) -> None:
        self.policy = as_policy(policy)
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least two widths, got {sizes}")
        for i, s in enumerate(sizes):
            _check_size(s, f"sizes[{i}]")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {activation!r}"
            )
        if not isinstance(layer_norm, bool):
            raise TypeError(f"layer_norm must be True or False, got {layer_norm!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.sizes = sizes
        self.activation = activation
        modules: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            modules.append(Linear(n_in, n_out, policy=self.policy, seed=[int(seed), i]))
            if i < len(sizes) - 2:
                if layer_norm:
                    modules.append(LayerNorm(n_out, policy=self.policy))
                modules.append(ACTIVATIONS[activation](policy=self.policy))
        self.layers = Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(
                f"MLP: input must have shape (batch, {self.sizes[0]}), got {x.shape}"
            )
        return self.layers.forward(x)

    def __repr__(self) -> str:
        return f"MLP({self.sizes}, policy={self.policy.name!r}, {self.layers!r})"
