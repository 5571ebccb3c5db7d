"""Layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout, the activations and
Sequential."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd import (
    Tensor,
    dropout,
    embedding,
    gelu,
    layer_norm,
    relu,
    rms_norm,
    tanh,
)
from lowprec.nn.module import Module, Parameter, _check_size


class Linear(Module):
    """``y = x @ weight + bias`` with ``weight`` of shape (n_in, n_out).

    The input is ``(batch, n_in)`` or any ``(..., n_in)``; the product runs
    through :func:`lowprec.autograd.matmul` (flattened to 2-D, so every row is
    computed as in the 2-D case). ``bias=False`` leaves the bias out.

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
        self,
        n_in: int,
        n_out: int,
        *,
        policy: Policy | str,
        seed: int | list[int],
        bias: bool = True,
    ) -> None:
        self.policy = as_policy(policy)
        self.n_in = _check_size(n_in, "n_in")
        self.n_out = _check_size(n_out, "n_out")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.n_in)
        self.weight = Parameter(
            rng.uniform(-bound, bound, (self.n_in, self.n_out)), policy=self.policy
        )
        self.bias = None
        if bias:
            self.bias = Parameter(
                rng.uniform(-bound, bound, self.n_out), policy=self.policy
            )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[-1] != self.n_in:
            raise ValueError(
                f"Linear({self.n_in}, {self.n_out}): input must have shape "
                f"(batch, {self.n_in}) or (..., {self.n_in}), got {x.shape}"
            )
        y = x @ self.weight
        return y if self.bias is None else y + self.bias

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


class RMSNorm(Module):
    """RMS normalization over the last axis with a learned scale (starts at 1).

    See :func:`lowprec.autograd.rms_norm`.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import RMSNorm
    >>> y = RMSNorm(4, policy="bf16_mixed")(np.full((2, 4), 3.0))
    >>> y.fmt.name, y.data[0, 0]  # normalization stays in fp32
    ('fp32', np.float32(0.99999994))
    """

    def __init__(self, n: int, *, policy: Policy | str, eps: float = 1e-6) -> None:
        self.policy = as_policy(policy)
        self.n = _check_size(n, "n")
        if not (isinstance(eps, float | int) and eps > 0):
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.weight = Parameter(np.ones(self.n), policy=self.policy)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.n:
            raise ValueError(
                f"RMSNorm({self.n}): the input's last axis must be {self.n}, "
                f"got shape {x.shape}"
            )
        return rms_norm(x, self.weight, self.eps)

    def __repr__(self) -> str:
        return f"RMSNorm({self.n}, policy={self.policy.name!r})"


class Embedding(Module):
    """A table of ``num`` vectors of length ``dim``, looked up by integer index.

    Weight of shape (num, dim), drawn N(0, 1) in float64 (PyTorch's default)
    from ``numpy.random.default_rng(seed)`` and rounded to ``policy.params``.
    Called on an integer array of any shape (not rounded: indices are not
    values); see :func:`lowprec.autograd.embedding` for the backward.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import Embedding
    >>> wte = Embedding(65, 8, policy="fp16_mixed", seed=0)
    >>> wte(np.array([[0, 1, 2], [3, 4, 5]])).shape
    (2, 3, 8)
    """

    def __init__(
        self, num: int, dim: int, *, policy: Policy | str, seed: int | list[int]
    ) -> None:
        self.policy = as_policy(policy)
        self.num = _check_size(num, "num")
        self.dim = _check_size(dim, "dim")
        rng = np.random.default_rng(seed)
        self.weight = Parameter(
            rng.standard_normal((self.num, self.dim)), policy=self.policy
        )

    def __call__(self, idx: object) -> Tensor:
        return self.forward(idx)

    def forward(self, idx: object) -> Tensor:
        return embedding(self.weight, idx)

    def __repr__(self) -> str:
        return f"Embedding({self.num}, {self.dim}, policy={self.policy.name!r})"


class Dropout(Module):
    """Seeded inverted dropout (:func:`lowprec.autograd.dropout`) as a module.

    In training mode (the default; see :meth:`Module.train`) call ``k`` of the
    module draws its mask from the seed ``[seed, k]``, so a run is reproducible
    from ``seed``; in eval mode, or with ``p = 0``, it is the identity.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.nn import Dropout
    >>> drop = Dropout(0.5, policy="fp32", seed=1)
    >>> a, b = drop(np.ones(6)), drop(np.ones(6))  # two calls, two masks
    >>> drop.calls
    2
    >>> drop.eval()(np.ones(3)).data.tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float, *, policy: Policy | str, seed: int = 0) -> None:
        self.policy = as_policy(policy)
        dropout(Tensor([0.0], policy=self.policy), p, seed=0)  # validates p
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.p = float(p)
        self.seed = int(seed)
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        out = dropout(x, self.p, seed=[self.seed, self.calls])
        self.calls += 1
        return out

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


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
    """GELU as a module: the exact (erf) form, or ``approximate="tanh"``.

    See :func:`lowprec.autograd.gelu`. (The MLP's ``"gelu"`` activation is the
    tanh form, as it has always been.)
    """

    def __init__(self, *, policy: Policy | str, approximate: str = "none") -> None:
        super().__init__(policy=policy)
        gelu(Tensor([0.0], policy=self.policy), approximate)  # validates the form
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"


class Tanh(_Activation):
    """tanh as a module."""

    fn = staticmethod(tanh)


# the MLP's activations; its "gelu" stays the tanh form it always was
ACTIVATIONS = {
    "relu": ReLU,
    "gelu": functools.partial(GELU, approximate="tanh"),
    "tanh": Tanh,
}


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
