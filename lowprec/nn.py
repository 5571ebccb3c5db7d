"""Layers and models on :mod:`lowprec.autograd`: Linear, LayerNorm, MLP, Sequential.

A :class:`Module` finds its parameters and sub-modules among its attributes (in the
order they were set), so ``named_parameters()`` gives names such as
``"layers.0.weight"``. Every module takes the precision policy explicitly; its
parameters hold values of ``policy.params``. Initial weights are drawn in float64
from a seeded generator and rounded once to ``policy.params``, so the same seed
gives every policy the same starting point up to that rounding.

A model called on a NumPy array checks it for NaN and inf (ValueError) and rounds
it to ``policy.activations``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd import Tensor, gelu, layer_norm, relu, tanh
from lowprec.rounding.rounder import as_float_array

__all__ = [
    "GELU",
    "LayerNorm",
    "Linear",
    "MLP",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Tanh",
    "as_input",
]


class Parameter(Tensor):
    """A trainable leaf tensor: values of ``policy.params``, ``requires_grad=True``.

    Examples
    --------
    >>> from lowprec.nn import Parameter
    >>> Parameter([0.1], policy="bf16_pure").data  # rounded to bf16
    array([0.10009766], dtype=float32)
    """

    __slots__ = ()

    def __init__(self, data: object, *, policy: Policy | str) -> None:
        policy = as_policy(policy)
        super().__init__(data, policy.params, policy=policy, requires_grad=True)

    def __repr__(self) -> str:
        return f"Parameter({self.data!r}, fmt={self.fmt.name})"


def as_input(x: object, policy: Policy) -> Tensor:
    """A model's input as a Tensor: arrays are checked and rounded to activations.

    Raises
    ------
    ValueError
        If the data hold NaN or inf, or a Tensor has another policy.
    """
    if isinstance(x, Tensor):
        if x.policy is not policy and x.policy != policy:
            raise ValueError(
                f"input: the tensor's policy {x.policy.name!r} is not the model's "
                f"{policy.name!r}"
            )
        data = x.data if x._backward is None else None  # user data, not a result
    else:
        data = as_float_array(x, "x")
    if data is not None and not np.isfinite(data).all():
        bad = np.count_nonzero(~np.isfinite(data))
        raise ValueError(f"input: {bad} of {data.size} values are NaN or inf")
    return x if isinstance(x, Tensor) else Tensor(data, policy=policy)


class Module:
    """Base class: parameters and sub-modules are found among the attributes.

    Subclasses set ``self.policy`` and define :meth:`forward`.
    """

    policy: Policy

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: object) -> Tensor:
        return self.forward(as_input(x, self.policy))

    def _children(self) -> Iterator[tuple[str, Parameter | Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter | Module):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Parameter | Module):
                        yield f"{name}.{i}", item

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs, depth first in attribute order."""
        out: list[tuple[str, Parameter]] = []
        for name, child in self._children():
            if isinstance(child, Parameter):
                out.append((name, child))
            else:
                out.extend((f"{name}.{n}", p) for n, p in child.named_parameters())
        return out

    def parameters(self) -> list[Parameter]:
        """Every parameter, in the order of :meth:`named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad`` and ``raw_grad``)."""
        for p in self.parameters():
            p.grad = None
            p.raw_grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameter values by name (float64, exact)."""
        return {n: p.data.astype(np.float64) for n, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set the parameters from ``state`` (rounded to ``policy.params``).

        Loading another policy's weights this way evaluates the same model in a
        different precision.
        """
        params = dict(self.named_parameters())
        if set(state) != set(params):
            raise ValueError(
                f"state: expected the parameters {sorted(params)}, got {sorted(state)}"
            )
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(
                    f"state[{name!r}]: expected shape {p.shape}, got {value.shape}"
                )
            p.data[...] = Parameter(value, policy=p.policy).data


def _check_size(value: object, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{arg} must be at least 1, got {value}")
    return int(value)


class Linear(Module):
    """``y = x @ weight + bias`` with ``weight`` of shape (n_in, n_out).

    Initialisation as PyTorch's default: weight and bias uniform on
    ``[-1/sqrt(n_in), 1/sqrt(n_in)]`` (Kaiming-uniform with a = sqrt(5); He et al.,
    "Delving Deep into Rectifiers", 2015), drawn in float64 from
    ``numpy.random.default_rng(seed)`` (an int or a list of ints) and rounded to
    ``policy.params``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import Linear
    >>> layer = Linear(3, 2, policy="fp16_mixed", seed=0)
    >>> layer(np.ones((4, 3))).shape
    (4, 2)
    """

    def __init__(
        self, n_in: int, n_out: int, *, policy: Policy | str, seed: int | list[int]
    ) -> None:
        self.policy = as_policy(policy)
        self.n_in = _check_size(n_in, "n_in")
        self.n_out = _check_size(n_out, "n_out")
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.n_in)
        self.weight = Parameter(
            rng.uniform(-bound, bound, (self.n_in, self.n_out)), policy=self.policy
        )
        self.bias = Parameter(
            rng.uniform(-bound, bound, self.n_out), policy=self.policy
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(
                f"Linear({self.n_in}, {self.n_out}): input must have shape "
                f"(batch, {self.n_in}), got {x.shape}"
            )
        return x @ self.weight + self.bias

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out}, policy={self.policy.name!r})"


class LayerNorm(Module):
    """Layer normalization over the last axis with a learned scale and shift.

    See :func:`lowprec.autograd.layer_norm`; weight starts at 1, bias at 0.
    """

    def __init__(self, n: int, *, policy: Policy | str, eps: float = 1e-5) -> None:
        self.policy = as_policy(policy)
        self.n = _check_size(n, "n")
        if not (isinstance(eps, float | int) and eps > 0):
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.weight = Parameter(np.ones(self.n), policy=self.policy)
        self.bias = Parameter(np.zeros(self.n), policy=self.policy)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.n:
            raise ValueError(
                f"LayerNorm({self.n}): the input's last axis must be {self.n}, "
                f"got shape {x.shape}"
            )
        return layer_norm(x, self.weight, self.bias, self.eps)

    def __repr__(self) -> str:
        return f"LayerNorm({self.n}, policy={self.policy.name!r})"


class _Activation(Module):
    fn = staticmethod(relu)

    def __init__(self, *, policy: Policy | str) -> None:
        self.policy = as_policy(policy)

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    """``max(x, 0)`` as a module."""

    fn = staticmethod(relu)


class GELU(_Activation):
    """GELU (tanh form) as a module."""

    fn = staticmethod(gelu)


class Tanh(_Activation):
    """tanh as a module."""

    fn = staticmethod(tanh)


ACTIVATIONS = {"relu": ReLU, "gelu": GELU, "tanh": Tanh}


class Sequential(Module):
    """Modules applied in order; their parameters are named ``"0.weight"``, ...

    All modules must share one policy.
    """

    def __init__(self, *modules: Module) -> None:
        if not modules:
            raise ValueError("Sequential needs at least one module")
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(
                    f"modules[{i}] must be a Module, got {type(m).__name__}"
                )
        policies = {m.policy for m in modules}
        if len(policies) != 1:
            names = sorted(p.name for p in policies)
            raise ValueError(f"Sequential: the modules have different policies {names}")
        self.policy = modules[0].policy
        self.modules = list(modules)

    def _children(self) -> Iterator[tuple[str, Parameter | Module]]:
        for i, m in enumerate(self.modules):
            yield str(i), m

    def forward(self, x: Tensor) -> Tensor:
        for m in self.modules:
            x = m.forward(x)
        return x

    def __len__(self) -> int:
        return len(self.modules)

    def __getitem__(self, i: int) -> Module:
        return self.modules[i]

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.modules))
        return f"Sequential({inner})"


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
