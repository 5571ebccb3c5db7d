"""The base of every layer: :class:`Module`, :class:`Parameter` and a model's input."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lowprec.amp.policy import Policy, as_policy
from lowprec.autograd import Tensor
from lowprec.rounding.rounder import as_float_array


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
    training: bool = True  # read by Dropout; set by train() and eval()

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode``) on this module and every sub-module."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be True or False, got {mode!r}")
        self.training = mode
        for _, child in self._children():
            if isinstance(child, Module):
                child.train(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)`` (dropout becomes the identity)."""
        return self.train(False)

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
