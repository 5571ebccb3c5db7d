"""Automatic mixed precision: what a training run computes in, and loss scaling.

- :mod:`~lowprec.amp.policy`: the :class:`~lowprec.amp.policy.Policy` record and
  its presets (``fp16_mixed``, ``bf16_pure_sr``, ...);
- :mod:`~lowprec.amp.scaler`: :class:`~lowprec.amp.scaler.LossScaler`, static and
  dynamic loss scaling with PyTorch ``GradScaler``'s rules.

The FP8/FP4 scaling recipes belong here too. Stands on :mod:`lowprec.arith` (a
policy names a matmul preset); :mod:`lowprec.autograd` and everything above it
read the policy.
"""

from lowprec.amp.policy import POLICIES, Policy, as_policy
from lowprec.amp.scaler import LossScaler

__all__ = ["POLICIES", "LossScaler", "Policy", "as_policy"]
