"""A small reverse-mode autograd on NumPy arrays that computes in emulated precision.

The shape is micrograd's: every op returns a :class:`Tensor` that remembers its
parents and a backward closure; :meth:`Tensor.backward` walks the graph in
topological order and the closures' results accumulate into the parents' ``.grad``.
Only a few primitives have hand-written derivatives; the rest (``-x``, ``x - 1``,
``Linear``, attention) are compositions. The primitives, by module:

- :mod:`~lowprec.autograd.elementwise`: add, sub, mul, div, exp, log, relu, gelu
  (exact erf form, or tanh), tanh, masked_fill, dropout;
- :mod:`~lowprec.autograd.shape`: reshape, transpose, concat, split;
- :mod:`~lowprec.autograd.reductions`: sum, mean;
- :mod:`~lowprec.autograd.softmax`: softmax (with a causal mask), log_softmax;
- :mod:`~lowprec.autograd.losses`: cross_entropy (with a z-loss);
- :mod:`~lowprec.autograd.normalization`: layer_norm, rms_norm;
- :mod:`~lowprec.autograd.products`: matmul (2-D and batched);
- :mod:`~lowprec.autograd.indexing`: embedding.

Precision rules
---------------
All arrays are stored in the policy's storage dtype (float32, or float64 when a
format is wider than fp32, :attr:`lowprec.amp.policy.Policy.dtype`) and hold values of
their tensor's format ``.fmt``.

*Forward.* Each op computes its exact-as-NumPy-gives result in the storage dtype
and rounds it **once** to its result format, ties to even:

- the result format is ``policy.activations``, or the widest operand format when
  an operand is in a strictly wider format (NumPy and PyTorch type promotion: an
  fp32 loss times a loss scale stays fp32 under fp16 activations). Python scalars
  and arrays given as operands are constants in the storage dtype and do not
  promote;
- an op named in ``policy.fp32_ops`` keeps its result in fp32 (or in the activation
  format if that is wider) instead: ``"softmax"`` (softmax, log_softmax),
  ``"cross_entropy"``, ``"layer_norm"`` (layer_norm, rms_norm), ``"reduction"``
  (sum, mean), as PyTorch autocast does; exp and log ask for ``"exp_log"``
  (autocast keeps them in fp32 too), which takes effect once a policy may list
  it (today :data:`lowprec.amp.policy.FP32_OPS` does not, so they round to the
  activations);
- relu, reshape, transpose, split, masked_fill (its fill value rounded to the
  format) and embedding (the table's format) are exact and keep their input's
  format; concat takes the first of its operands' formats (or fp32, fp64) that
  holds them all.

*Statistics.* softmax, layer_norm and rms_norm round each named intermediate step
to their *statistics format*, the format their result would have from their
input alone: fp32 when the op is one of ``policy.fp32_ops``, else the
activations. The steps are listed in each docstring (for layer norm the mean,
the deviations, each square, the variance, eps, variance + eps and the
reciprocal square root; for softmax x - max, exp and the row sum). With fp32
statistics in float32 storage every such rounding is the identity and the op is
its float32 expression rounded once; with fp16 statistics (``fp16_naive``,
``fp16_pure``) they overflow, underflow and lose eps where an fp16 kernel would.
log_softmax and cross_entropy evaluate their whole expression in the storage
dtype and round once.

Why float32 compute plus one rounding is right: for one +, -, *, / or square root
of operands of a format with p significand bits, rounding the exact result first
to a format with p' >= 2p + 2 bits and then to p bits gives the correctly rounded
result (Figueroa, "When is double rounding innocuous?", SIGNUM Newsletter 30(3),
1995). float32 has p' = 24 >= 2*11 + 2, so for fp16 and bf16 operands a float32
operation followed by one rounding is exactly what an fp16 or bf16 unit returns.
Longer expressions (tanh-form gelu, tanh, log_softmax, the cross-entropy, and the
final step of the normalizations and the softmax) are evaluated in float32 and
rounded once at the end, as mixed-precision hardware and PyTorch's
half-precision kernels do (they accumulate such expressions in float). The exact
GELU is evaluated in float64 (NumPy has no erf; :mod:`lowprec.autograd._erf`)
and rounded once from there. Dropout draws its mask from the seed it is given
(:func:`dropout_mask`), never from a global generator.

*Matmul.* With ``policy.matmul`` None, plain NumPy in the storage dtype, result
rounded to the activations. Otherwise the policy's :data:`lowprec.arith.matmul.PRESETS`
entry fixes the input format, the accumulator and the order of additions: operands
not already in the input format are first rounded to it (autocast's cast; the
cast's derivative is the identity), and the result is rounded to the activations.
``order="unspecified"`` is computed here as float32 BLAS on the operands (products
of <= 12-bit inputs are exact in float32) plus one rounding of the fp32 accumulator:
the same computation as :func:`lowprec.matmul`'s fast path, without its float64
round trips and input checks, which cost more than the product at these sizes
(tests check the two agree bit for bit). Other orders call :func:`lowprec.matmul`.
A batch ``(..., m, k) @ (k, n)`` is the 2-D product of the rows flattened to
``(-1, k)``; a stack ``(..., m, k) @ (..., k, n)`` is the 2-D product of each pair
of matrices.

*Backward.* Each closure computes its parents' gradient contributions in the
storage dtype from the rounded forward values and the output's rounded gradient;
each contribution is rounded once, ties to even, to the parent's gradient format:
``policy.gradients``, or the tensor's own format when that is strictly wider (the
gradient of an fp32 loss is fp32, as in PyTorch). Contributions accumulate as
``grad = round(grad + contribution)`` in that format. The backward matmuls
``dA = dC @ B.T`` and ``dB = A.T @ dC`` use the same preset (accumulator and
order); when dC's format is not the preset's input format the inputs are taken in
a format that holds both (fp32, on the sequential order if that is wider than 12
bits), and the accumulator's value is rounded to the gradient format. The
embedding's backward is a scatter-add into a zero table, sequential in the
flattened order of the indices, each addition rounded to the table's gradient
format (for fp32 gradients in float32 storage, :func:`numpy.add.at`).

Leaves (tensors made by the user, such as parameters) also keep ``.raw_grad``: the
sum of their contributions before rounding to the gradient format, in the storage
dtype (for a matmul, the accumulator's value). Telemetry compares it with
``.grad`` to count flushed and overflowed gradients.

Rounding to fp16 and bf16 uses a small serial kernel on the float32 bits
(:func:`lowprec.rounding._rne.round_rne`; the tests check it against
:func:`lowprec.round` around every midpoint), which costs one to two
microseconds on the small arrays of a training step, most of it the call itself.
Rounding to the storage format itself is skipped: it is the identity. What an op
decides from formats alone (promotion, which format holds which, a backward
matmul's input format) is derived once per policy and pair of formats, since the
engine asks thousands of times per epoch.
"""

from lowprec.autograd.elementwise import (
    add,
    div,
    dropout,
    dropout_mask,
    exp,
    gelu,
    log,
    masked_fill,
    mul,
    relu,
    sub,
    tanh,
)
from lowprec.autograd.indexing import embedding
from lowprec.autograd.losses import cross_entropy
from lowprec.autograd.normalization import layer_norm, rms_norm
from lowprec.autograd.products import matmul
from lowprec.autograd.reductions import mean, sum
from lowprec.autograd.shape import concat, reshape, split, transpose
from lowprec.autograd.softmax import causal_mask, log_softmax, softmax
from lowprec.autograd.tensor import Tensor

__all__ = [
    "Tensor",
    "add",
    "causal_mask",
    "concat",
    "cross_entropy",
    "div",
    "dropout",
    "dropout_mask",
    "embedding",
    "exp",
    "gelu",
    "layer_norm",
    "log",
    "log_softmax",
    "masked_fill",
    "matmul",
    "mean",
    "mul",
    "relu",
    "reshape",
    "rms_norm",
    "softmax",
    "split",
    "sub",
    "sum",
    "tanh",
    "transpose",
]
