"""Bit-exact models of NVIDIA tensor-core block FMAs (V100, A100, H100).

A tensor core computes ``D = C + A @ B`` as a chain of *block FMAs*: for each
output, the inner dimension is cut into chunks of ``k`` products, and one block
FMA adds ``k`` products to the fp32 accumulator ``c`` at once,
``d = c + a[0]*b[0] + ... + a[k-1]*b[k-1]``, the result becoming ``c`` of the
next chunk. This module holds the per-GPU parameters (:class:`TensorCoreModel`,
:data:`MODELS`), a slow exact reference for one block and for a dot product
(:func:`block_fma_reference`, :func:`tensor_core_dot_reference`), and the public
matrix product :func:`tensor_core_matmul`, which runs the Numba kernel of
:mod:`lowprec.arith._tensorcore_kernel`.

Sources
-------
[FHMP21] M. Fasi, N. J. Higham, M. Mikaitis and S. Pranesh, "Numerical behavior
    of NVIDIA tensor cores", PeerJ Computer Science 7:e330 (2021),
    https://doi.org/10.7717/peerj-cs.330, and its test suite
    (github.com/north-numerical-computing/tensor-cores-numerical-behavior:
    ``tc_test_numerics-V100.cu``, ``tc_test_numerics-T4-A100-binary16.cu``,
    ``tc_test_numerics-A100-bf16.cu``), whose groups A (subnormals), B (accuracy
    of the dot products), C (rounding) and D (features of the accumulator)
    mirror the paper's experiments.
[KM25] F. A. Khattak and M. Mikaitis, "Accurate Models of NVIDIA Tensor Cores",
    arXiv:2512.07004 (2025), and its MATLAB models
    (github.com/north-numerical-computing/MATLAB-tensor-core:
    ``models/V100TC.m``, ``A100TC.m``, ``H100TC.m``, ``tools/GEMM.m``,
    ``tools/Generic_BFMA_TC.m``), refined until they matched the GPUs bit for
    bit on randomised inputs (10**5 values, per the abstract).

The block FMA (what this module computes)
-----------------------------------------
Inputs ``a``, ``b`` are values of the input format (fp16; on A100/H100 also bf16
or tf32), ``c`` is an fp32 value. With ``e(x) = max(floor(log2|x|), emin)`` the
exponent of ``x`` in its own format (a subnormal keeps ``emin`` and a
significand below 1):

1. Products are exact [FHMP21, B "Products are computed exactly"]. A nonzero
   product ``a_i*b_i`` takes the exponent ``E_i = e(a_i) + e(b_i)`` and keeps
   its significand in ``[0, 4)``: it is *not* normalised before alignment
   (``denorm_prd = 1`` in [KM25]'s V100TC.m and H100TC.m; the earlier
   A100TC.m gets the same alignment by granting one more bit when the largest
   product is 2 or more). Zero products take no part.
2. The alignment exponent is ``emax = max(E_i, e(c))`` over the nonzero
   products and a nonzero ``c`` (``e(c)`` with fp32's ``emin = -126``): the
   accumulator takes part in the alignment, so ``c = 1`` cuts away four
   products ``2**-24`` although ``1 + 2**-22`` is an fp32 number [FHMP21, B
   "Products are accumulated in binary32"], and the order of the terms does
   not matter [B "Sum starts from largest element"]; [KM25]
   ``global_alignment = 1``, ``c_min_exp_limit = 0``, so ``c = 0`` takes no
   part. H100 floors ``emax`` at -133 (``min_exp_limit``).
3. Every term's magnitude is cut to a multiple of ``2**(emax - 23 - neab)``: 24
   bits (fp32's significand) from the ``2**emax`` position down, plus ``neab``
   extra alignment bits, with no guard, round or sticky bit. The cut is of the
   magnitude (sign-magnitude truncation, toward zero per term): V100 ``neab =
   0`` gives ``1 - (1 - 2**-24) = 2**-23`` [FHMP21, D.1 "Extra bits in the
   significand alignment"], A100 ``neab = 1`` gives the exact ``2**-24``
   [same test, A100 file]; H100 ``neab = 2`` [KM25].
4. The truncated terms are added exactly: the accumulator has enough carry bits
   for any block (``1 + 1.5 + 1.75 + 1.875 + 1.875 = 8`` needs three, [FHMP21,
   D.4 "Extra bits for carry out"]; :meth:`TensorCoreModel.carry_bits`).
   Nothing is normalised between the terms [FHMP21, D.2/D.3].
5. The sum is normalised once and rounded toward zero to fp32, subnormals
   included [FHMP21, C "Round-down for positive values", "Round-up for
   negative values", D.4 "Round-down in normalization"; A "subnormals in
   output"]. An exactly zero sum is +0; a nonzero sum that truncates to zero
   keeps its sign (as ``Generic_BFMA_TC.m`` does).

Steps 2 and 3 make the block FMA non-monotonic [FHMP21, D.5 "Monotonicity of
dot product"]: raising ``c`` from ``1 - 2**-24`` to ``1`` raises ``emax`` from -1
to 0, so four products ``2**-24`` are cut away and ``d`` falls from
``1 + 2**-23`` to ``1`` on a V100.

Block sizes (products per block FMA, [FHMP21] for V100/A100 fp16, [KM25] for the
rest): V100 fp16 4; A100 fp16 and bf16 8, tf32 4; H100 fp16 and bf16 16, tf32 8.
A dot product of length ``n`` is ``ceil(n / k)`` chained block FMAs over
consecutive chunks, in order, the last one shorter (zero padded, which changes
nothing since zero products take no part) [KM25 ``GEMM.m``].

Special values and overflow (decided here, following [KM25] where it speaks):
a NaN input, ``0 * inf``, or infinities of both signs among the products and
``c`` give NaN; otherwise an infinite product or ``c`` gives that infinity. A
finite block whose truncated sum reaches ``2**128`` gives ±inf, not ±max:
``Generic_BFMA_TC.m`` returns inf whenever the result's exponent reaches the
fp32 inf exponent, whatever the rounding mode, and its exceptional-case test
expects +inf for ``2**127 + 2**127``. We have not seen hardware evidence
either way for the round-toward-zero fp32 output.

Not modelled: fp16 output (round to nearest), fp8 inputs, and B200 (whose
published fp16 model interleaves two 16-element vectors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from lowprec.arith._tensorcore_kernel import tensor_core_matmul_kernel
from lowprec.formats import Format, as_format, fp32
from lowprec.rounding.rounder import as_float_array
from lowprec.rounding.rounder import round as lp_round

__all__ = [
    "TensorCoreModel",
    "MODELS",
    "as_model",
    "block_fma_reference",
    "tensor_core_dot_reference",
    "tensor_core_matmul",
]

# The accumulator and output are fp32 on every model here: 24 significand bits,
# emin = -126, the inf exponent 128.
_ACC = fp32
# "No floor" for the alignment exponent: below any exponent a block can have
# (bf16 products reach 2 * (-126) = -252, fp32 c reaches -126).
_NO_FLOOR = -1024


@dataclass(frozen=True)
class TensorCoreModel:
    """The numerical features of one GPU's tensor-core block FMA.

    Parameters
    ----------
    name : str
        The GPU, e.g. ``"v100"``.
    block_sizes : mapping of str to int
        Products per block FMA for each supported input format name
        (``{"fp16": 4}``); stored as a tuple of pairs so the record is hashable.
    extra_alignment_bits : int
        ``neab``: bits kept below fp32's 24 when the terms are aligned to the
        largest exponent (V100 0, A100 1, H100 2).
    alignment_exponent_floor : int or None
        The alignment exponent is at least this (H100: -133), or None.
    output_rounding : str
        Rounding of the normalised sum to fp32; ``"toward_zero"`` on every
        NVIDIA model with fp32 output.
    reference : str
        Where the parameters come from.

    Examples
    --------
    >>> from lowprec.tensorcore import MODELS
    >>> m = MODELS["a100"]
    >>> m.block_size("bf16"), m.alignment_bits, m.carry_bits("fp16")
    (8, 25, 5)
    """

    name: str
    block_sizes: tuple[tuple[str, int], ...] | Mapping[str, int]
    extra_alignment_bits: int
    alignment_exponent_floor: int | None = None
    output_rounding: str = "toward_zero"
    reference: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        sizes = self.block_sizes
        pairs = tuple(sizes.items()) if isinstance(sizes, Mapping) else tuple(sizes)
        for name, k in pairs:
            # the kernel holds exact products of two significands in int64 and
            # shifts them left by 23 + neab - 2(p-1) bits: p <= 11 keeps that sane
            if as_format(name, "block_sizes").precision > 11:
                raise ValueError(
                    f"block_sizes: {name!r} has more than 11 significand bits; "
                    "tensor-core inputs here are fp16, bf16, tf32 or narrower"
                )
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(
                    f"block_sizes: {name!r} needs a positive int, got {k!r}"
                )
        if not pairs:
            raise ValueError("block_sizes: give at least one input format")
        object.__setattr__(self, "block_sizes", pairs)
        if not isinstance(self.extra_alignment_bits, int) or not (
            0 <= self.extra_alignment_bits <= 8
        ):
            raise ValueError(
                "extra_alignment_bits must be an int from 0 to 8, got "
                f"{self.extra_alignment_bits!r}"
            )
        if self.output_rounding != "toward_zero":
            raise ValueError(
                "output_rounding: only 'toward_zero' (fp32 output) is modelled, "
                f"got {self.output_rounding!r}"
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input format names this model accepts."""
        return tuple(name for name, _ in self.block_sizes)

    def block_size(self, inputs: str | Format) -> int:
        """Products per block FMA for input format ``inputs``."""
        key = as_format(inputs, "inputs").name
        for name, k in self.block_sizes:
            if as_format(name).name == key:
                return k
        raise ValueError(
            f"inputs: model {self.name!r} takes {', '.join(self.inputs)}, "
            f"not {inputs!r}"
        )

    @property
    def alignment_bits(self) -> int:
        """Bits kept from the ``2**emax`` position down: ``24 + neab``."""
        return _ACC.precision + self.extra_alignment_bits

    def carry_bits(self, inputs: str = "fp16") -> int:
        """Bits above the ``2**emax`` position that the exact block sum can reach.

        Each aligned product is below ``4 * 2**emax`` and ``c`` below
        ``2 * 2**emax``, so the sum is below ``(4k + 2) * 2**emax``. The model
        adds exactly, which is what having this many carry bits means.
        """
        k = self.block_size(inputs)
        return math.ceil(math.log2(4 * k + 2)) - 1


MODELS: dict[str, TensorCoreModel] = {
    "v100": TensorCoreModel(
        "v100",
        {"fp16": 4},
        extra_alignment_bits=0,
        reference="[FHMP21] V100 results; [KM25] models/V100TC.m",
    ),
    "a100": TensorCoreModel(
        "a100",
        {"fp16": 8, "bf16": 8, "tf32": 4},
        extra_alignment_bits=1,
        reference="[FHMP21] A100 results; [KM25] models/A100TC.m",
    ),
    "h100": TensorCoreModel(
        "h100",
        {"fp16": 16, "bf16": 16, "tf32": 8},
        extra_alignment_bits=2,
        alignment_exponent_floor=-133,
        reference="[KM25] models/H100TC.m",
    ),
}


def as_model(model: TensorCoreModel | str, arg: str = "model") -> TensorCoreModel:
    """A :class:`TensorCoreModel` from itself or from a name in :data:`MODELS`."""
    if isinstance(model, TensorCoreModel):
        return model
    if isinstance(model, str):
        key = model.strip().lower()
        if key in MODELS:
            return MODELS[key]
        raise ValueError(
            f"{arg}: unknown tensor-core model {model!r}; known models are "
            f"{', '.join(MODELS)}"
        )
    raise TypeError(
        f"{arg} must be a TensorCoreModel or one of {', '.join(MODELS)}, "
        f"got {type(model).__name__}"
    )


# --------------------------------------------------------------------------
# The reference: exact rational arithmetic, one block at a time.
# --------------------------------------------------------------------------


def _floor_log2(x: Fraction) -> int:
    """``floor(log2(x))`` of a positive rational, exactly."""
    # n / d with 2**(ln-1) <= n < 2**ln, 2**(ld-1) <= d < 2**ld lies in
    # (2**(ln-ld-1), 2**(ln-ld+1)): the answer is ln - ld or one less
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e if x >= Fraction(2) ** e else e - 1


def _exponent(x: Fraction, fmt: Format) -> int:
    """``e(x)``: the exponent ``x`` has in ``fmt``, ``emin`` for a subnormal."""
    return max(_floor_log2(abs(x)), fmt.emin)


def _exact(value: float, fmt: Format, arg: str) -> Fraction:
    """The value as a Fraction, checked to be a finite value of ``fmt``."""
    x = Fraction(float(value))
    if x != 0:
        e = _exponent(x, fmt)
        steps = abs(x) / Fraction(2) ** (e - fmt.precision + 1)
        if steps.denominator != 1 or e > fmt.emax:
            raise ValueError(f"{arg}: {float(value)!r} is not a {fmt.name} value")
    return x


def _special(a: Sequence[float], b: Sequence[float], c: float) -> float | None:
    """The result of a block with a NaN or inf in it, or None if all is finite."""
    signs = set()
    nan = math.isnan(c)
    if math.isinf(c):
        signs.add(c > 0)
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            nan = True
        elif math.isinf(x) or math.isinf(y):
            if x == 0 or y == 0:
                nan = True  # 0 * inf
            else:
                signs.add((x > 0) == (y > 0))
    if nan or len(signs) == 2:
        return math.nan
    if signs:
        return math.inf if signs.pop() else -math.inf
    return None


def _truncate(x: Fraction, quantum: Fraction) -> Fraction:
    """Cut ``|x|`` down to a multiple of ``quantum``, keeping the sign."""
    kept = (abs(x) // quantum) * quantum
    return kept if x >= 0 else -kept


def _round_toward_zero_fp32(s: Fraction) -> float:
    """Round an exact sum toward zero onto fp32 (subnormals kept, inf above)."""
    if s == 0:
        return 0.0  # an exact zero sum is +0
    e = _floor_log2(abs(s))
    if e > _ACC.emax:
        return math.inf if s > 0 else -math.inf  # overflow: inf, see docstring
    quantum = Fraction(2) ** (max(e, _ACC.emin) - _ACC.precision + 1)
    d = float((abs(s) // quantum) * quantum)  # exact: an fp32 value
    return -d if s < 0 else d  # a negative sum cut to zero is -0


def block_fma_reference(
    a: Sequence[float],
    b: Sequence[float],
    c: float,
    model: TensorCoreModel | str,
    inputs: str = "fp16",
) -> float:
    """One tensor-core block FMA ``c + sum(a*b)``, in exact rational arithmetic.

    The slow, readable statement of the model (see the module docstring):
    exact products, alignment to the largest exponent among the products and
    ``c``, truncation of every term to ``24 + neab`` bits, an exact sum, and one
    rounding toward zero to fp32.

    Parameters
    ----------
    a, b : sequence of float
        At most ``model.block_size(inputs)`` values each, of format ``inputs``
        (given as Python or NumPy floats); fewer act as if zero padded.
    c : float
        The accumulator, an fp32 value.
    model : TensorCoreModel or str
        ``"v100"``, ``"a100"``, ``"h100"`` or a custom record.
    inputs : str, default "fp16"
        The format of ``a`` and ``b``.

    Returns
    -------
    float
        The fp32 result, as a Python float.

    Raises
    ------
    ValueError
        If a value is not of its format, or the block is too long.

    Examples
    --------
    The non-monotonicity of [FHMP21, D.5] on a V100: a larger ``c``, a smaller d.

    >>> from lowprec.tensorcore import block_fma_reference
    >>> a, b = [1.0] * 4, [2.0**-24] * 4
    >>> block_fma_reference(a, b, 1 - 2**-24, "v100") == 1 + 2**-23
    True
    >>> block_fma_reference(a, b, 1.0, "v100")
    1.0
    """
    model = as_model(model)
    fmt = as_format(inputs, "inputs")
    k = model.block_size(inputs)
    a = [float(x) for x in np.asarray(a, dtype=np.float64).reshape(-1)]
    b = [float(y) for y in np.asarray(b, dtype=np.float64).reshape(-1)]
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length, got {len(a)}, {len(b)}")
    if len(a) > k:
        raise ValueError(
            f"a block of {model.name} with {fmt.name} has at most {k} "
            f"products, got {len(a)}"
        )
    c = float(c)
    special = _special(a, b, c)
    if special is not None:
        return special

    # 1. exact products, each with the exponent e(a) + e(b) (not normalised)
    terms: list[tuple[Fraction, int]] = []
    for x, y in zip(a, b, strict=True):
        fx, fy = _exact(x, fmt, "a"), _exact(y, fmt, "b")
        if fx != 0 and fy != 0:
            terms.append((fx * fy, _exponent(fx, fmt) + _exponent(fy, fmt)))
    fc = _exact(c, _ACC, "c")
    if fc != 0:
        terms.append((fc, _exponent(fc, _ACC)))
    if not terms:
        return 0.0

    # 2. align to the largest exponent, 3. truncate each magnitude to 24+neab bits
    emax = max(e for _, e in terms)
    if model.alignment_exponent_floor is not None:
        emax = max(emax, model.alignment_exponent_floor)
    quantum = Fraction(2) ** (emax - _ACC.precision + 1 - model.extra_alignment_bits)
    # 4. exact sum, 5. one rounding toward zero
    return _round_toward_zero_fp32(sum(_truncate(t, quantum) for t, _ in terms))


def tensor_core_dot_reference(
    a: Sequence[float],
    b: Sequence[float],
    model: TensorCoreModel | str,
    c: float = 0.0,
    inputs: str = "fp16",
) -> float:
    """A dot product ``c + a @ b`` as the tensor core chains its block FMAs.

    The inner dimension is cut into consecutive chunks of
    ``k = model.block_size(inputs)``; each chunk is one
    :func:`block_fma_reference` whose result is the ``c`` of the next.

    Examples
    --------
    One block of 8 on an A100 keeps both ``2**-24``; two blocks of 4 on a V100
    (which also keeps one bit fewer) lose them:

    >>> from lowprec.tensorcore import tensor_core_dot_reference
    >>> b = [1.0, 2.0**-24, 0.0, 0.0, 2.0**-24, 0.0, 0.0, 0.0]
    >>> tensor_core_dot_reference([1.0] * 8, b, "a100") == 1 + 2**-23
    True
    >>> tensor_core_dot_reference([1.0] * 8, b, "v100")
    1.0
    """
    model = as_model(model)
    k = model.block_size(inputs)
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same length, got {a.size}, {b.size}")
    d = float(c)
    for start in range(0, a.size, k):
        d = block_fma_reference(
            a[start : start + k], b[start : start + k], d, model, inputs
        )
    return d


# --------------------------------------------------------------------------
# The public matrix product: validate, then run the Numba kernel.
# --------------------------------------------------------------------------


def _check_values(x: np.ndarray, fmt: Format, arg: str) -> None:
    """Raise ValueError if an entry of x is not a value of fmt (NaN/inf allowed)."""
    r = lp_round(x, fmt)
    bad = ~((r == x) | (np.isnan(r) & np.isnan(x)))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{arg}: {float(x[where])!r} at index {where} is not a {fmt.name} value; "
            f"round the input first, e.g. lowprec.round({arg}, {fmt.name!r})"
        )


def _as_matrix(x: object, arg: str) -> np.ndarray:
    arr = as_float_array(x, arg)
    if arr.ndim != 2:
        raise ValueError(f"{arg} must be a 2-D array, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def tensor_core_matmul(
    a: object,
    b: object,
    model: TensorCoreModel | str = "v100",
    *,
    c: object = None,
    inputs: str | Format = "fp16",
) -> np.ndarray:
    """``c + a @ b`` as an NVIDIA tensor core computes it, bit for bit.

    Each output is a chain of block FMAs along the inner dimension, exactly as
    :func:`tensor_core_dot_reference` (see the module docstring for the model).
    Not "exact result, rounded once": every block truncates its terms when it
    aligns them and rounds its sum toward zero to fp32.

    Parameters
    ----------
    a : array_like, shape (m, k)
        Values of format ``inputs`` (float16, float32 or float64 data).
    b : array_like, shape (k, n)
        Values of format ``inputs``.
    model : TensorCoreModel or str, default "v100"
        ``"v100"``, ``"a100"``, ``"h100"`` or a custom record.
    c : array_like, optional
        The initial accumulator, fp32 values, broadcastable to (m, n); zeros
        when omitted.
    inputs : str or Format, default "fp16"
        The format of a and b: ``"fp16"``; ``"bf16"`` or ``"tf32"`` on A100 and
        H100.

    Returns
    -------
    ndarray of float32, shape (m, n)

    Raises
    ------
    TypeError
        For a non-float, non-integer dtype, or a model of the wrong type.
    ValueError
        For shapes that are not 2-D or do not match, values not of their
        format, or an unknown model or input format.

    Examples
    --------
    >>> import numpy as np
    >>> from lowprec.tensorcore import tensor_core_matmul
    >>> a = np.ones((1, 4))
    >>> b = np.full((4, 1), 2.0**-24)
    >>> tensor_core_matmul(a, b, "v100", c=[[1 - 2**-24]])  # 1 + 2**-23
    array([[1.0000001]], dtype=float32)
    >>> tensor_core_matmul(a, b, "v100", c=[[1.0]])  # larger c, smaller result
    array([[1.]], dtype=float32)
    """
    model = as_model(model)
    k = model.block_size(inputs)
    fmt = as_format(inputs, "inputs")
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"a and b do not match: a is {a.shape[0]}x{a.shape[1]}, "
            f"b is {b.shape[0]}x{b.shape[1]}"
        )
    m, n = a.shape[0], b.shape[1]
    _check_values(a, fmt, "a")
    _check_values(b, fmt, "b")
    if c is None:
        acc = np.zeros((m, n))
    else:
        c_arr = as_float_array(c, "c").astype(np.float64)
        try:
            acc = np.ascontiguousarray(np.broadcast_to(c_arr, (m, n)))
        except ValueError:
            raise ValueError(
                f"c: shape {c_arr.shape} does not broadcast to the result's "
                f"shape {(m, n)}"
            ) from None
        _check_values(acc, _ACC, "c")
    out = np.empty((m, n))
    floor = model.alignment_exponent_floor
    tensor_core_matmul_kernel(
        a,
        b,
        acc,
        out,
        fmt.precision,
        fmt.emin,
        fmt.emax,
        k,
        model.extra_alignment_bits,
        _NO_FLOOR if floor is None else floor,
    )
    return out.astype(np.float32)  # exact: the results are fp32 values
