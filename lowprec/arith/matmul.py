"""Sums, dot products and matrix products with a chosen product format, accumulator
format, rounding mode and order of additions.

``lowprec.matmul(a, b, "fp16_fp32acc")`` is the standard mixed-precision GEMM: fp16
inputs, exact products, each addition rounded to fp32, the result rounded to fp16.
Each step is "exact result, rounded once" in its format (see
:mod:`lowprec.arith._matmul_kernel` for the orders); ``model="v100"`` and friends run
the tensor-core block-FMA models of :mod:`lowprec.arith.tensorcore` instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lowprec.arith._matmul_kernel import ORDERS, matmul_kernel, operand_test, to_float32
from lowprec.formats import Format, as_format, fp32
from lowprec.rounding.rounder import as_float_array, fits, make_plan, prepare_rounding
from lowprec.rounding.rounder import round as round_to
from lowprec.rounding.stats import RoundingStats

__all__ = ["PRESETS", "Preset", "dot", "matmul", "sum"]


@dataclass(frozen=True)
class Preset:
    """A named matmul configuration: input, product, accumulator, output formats."""

    inputs: str
    accumulate: str
    output: str
    products: str | None = None


PRESETS = {
    # fp16 inputs, exact products, fp32 accumulation, fp16 output: mixed precision
    "fp16_fp32acc": Preset("fp16", "fp32", "fp16"),
    # everything in fp16: what a pure-fp16 GEMM without a wide accumulator gives
    "fp16_fp16acc": Preset("fp16", "fp16", "fp16"),
    "bf16_fp32acc": Preset("bf16", "fp32", "bf16"),
    "bf16_bf16acc": Preset("bf16", "bf16", "bf16"),
    "tf32_fp32acc": Preset("tf32", "fp32", "fp32"),
    "fp32": Preset("fp32", "fp32", "fp32"),
}

_NO_WORDS = np.empty(0, dtype=np.uint64)


class _Ones(np.ndarray):
    """The exact ones that :func:`sum` multiplies its terms by: not checked against
    the input format, which need not contain 1 (a format with emax < 0)."""


def _matrix(x: object, arg: str) -> np.ndarray:
    if isinstance(x, _Ones):
        return x
    arr = as_float_array(x, arg)
    if arr.ndim != 2:
        raise ValueError(f"{arg} must be a 2-D array, got {arr.ndim}-D")
    return arr


def _inputs(x: np.ndarray, fmt: Format, arg: str, round_inputs: bool) -> np.ndarray:
    if isinstance(x, _Ones):
        return np.ones(x.shape)
    v = np.ascontiguousarray(x, dtype=np.float64)
    rounded = round_to(v, fmt)
    if round_inputs:
        return rounded
    bad = (rounded.view(np.int64) != v.view(np.int64)) & ~np.isnan(v)
    if bad.any():
        raise ValueError(
            f"{arg}: {np.count_nonzero(bad)} of {v.size} values are not values of "
            f"{fmt.name} (e.g. {v[bad][0]!r}); round them first or pass "
            "round_inputs=True"
        )
    return v


def matmul(
    a: object,
    b: object,
    preset: str | None = None,
    *,
    inputs: Format | str | None = None,
    products: Format | str | None = None,
    accumulate: Format | str | None = None,
    output: Format | str | None = None,
    rounding: str = "ties_to_even",
    order: str = "sequential",
    block_size: int = 32,
    fma: bool = False,
    model: str | None = None,
    round_inputs: bool = False,
    rng: int | np.random.Generator | None = None,
    random_bits: int | None = None,
    stats: RoundingStats | None = None,
) -> np.ndarray:
    """Emulated matrix product ``a @ b``.

    Parameters
    ----------
    a, b : array_like, 2-D
        Values of the ``inputs`` format, shapes (m, k) and (k, n).
    preset : str, optional
        One of :data:`PRESETS` (``"fp16_fp32acc"``, ``"fp16_fp16acc"``,
        ``"bf16_fp32acc"``, ``"bf16_bf16acc"``, ``"tf32_fp32acc"``, ``"fp32"``);
        explicit format arguments override its fields.
    inputs : Format or str
        Format of the operands (default from the preset, else fp32).
    products : Format or str, optional
        Round each product to this format; None keeps products exact.
    accumulate : Format or str
        Every addition is rounded to this format (default: ``inputs``).
    output : Format or str
        The result is rounded to this format (default: ``accumulate``).
    rounding : str
        Mode of every rounding (products, additions, output); see
        :func:`lowprec.round`.
    order : {"sequential", "pairwise", "blocked", "kahan", "unspecified"}
        The order of additions. ``"unspecified"`` is the fast path: float32 BLAS
        on the inputs, allowed when products are exact, the accumulator is fp32,
        the inputs have at most 12 significand bits (so products are exact in
        float32) and rounding is ties_to_even. BLAS sums in its own order, so the
        result is *not* bit-identical to ``"sequential"``.
    block_size : int
        Terms per block for ``order="blocked"``.
    fma : bool
        Round each product and addition once together. Products are then exact,
        so ``products`` must be None (with exact products every step already is a
        fused multiply-add).
    model : {"v100", "a100", "h100"}, optional
        Use a tensor-core block-FMA model
        (:func:`lowprec.arith.tensorcore.tensor_core_matmul`) for the products and fp32
        accumulation; the result is then rounded to
        ``output`` (default: the preset's output format if a preset is given,
        else fp32; pass ``output="fp32"`` to see the accumulator itself).
    round_inputs : bool
        Round operands to ``inputs`` (ties_to_even) instead of raising ValueError
        for values that are not of that format.
    rng, random_bits
        For the stochastic modes, as in :func:`lowprec.round`.
    stats : RoundingStats, optional
        Counts over every rounding: products, additions and the output.

    Returns
    -------
    ndarray of float64, shape (m, n)

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> a = np.full((1, 4096), 1.0); b = np.full((4096, 1), 1.0)
    >>> lowprec.matmul(a, b, "fp16_fp16acc")  # the running sum stops at 2048
    array([[2048.]])
    >>> lowprec.matmul(a, b, "fp16_fp32acc")  # 4096 is an fp16 value
    array([[4096.]])
    """
    a_arr, b_arr = _operands(a, b, rng)
    inputs, products, accumulate, output = _preset_formats(
        preset, inputs, products, accumulate, output
    )
    in_fmt = as_format(inputs if inputs is not None else fp32, "inputs")
    if model is not None:
        return _tensor_core(
            a_arr,
            b_arr,
            model,
            in_fmt,
            products,
            accumulate,
            output,
            rounding,
            order,
            fma,
            round_inputs,
            rng,
            random_bits,
            stats,
        )
    acc_fmt = as_format(accumulate if accumulate is not None else in_fmt, "accumulate")
    out_fmt = as_format(output if output is not None else acc_fmt, "output")
    prod_fmt = None if products is None else as_format(products, "products")
    if not isinstance(fma, bool):
        raise TypeError(f"fma must be True or False, got {fma!r}")
    if fma and prod_fmt is not None:
        raise ValueError(
            "fma=True rounds product and sum once together: products must be None"
        )
    if order == "unspecified":
        return _blas_fast_path(
            a_arr,
            b_arr,
            in_fmt,
            prod_fmt,
            acc_fmt,
            out_fmt,
            rounding,
            round_inputs,
            stats,
        )
    av = _inputs(a_arr, in_fmt, "a", round_inputs)
    bv = _inputs(b_arr, in_fmt, "b", round_inputs)
    _check_order(order, block_size, in_fmt, prod_fmt)
    return _emulated(
        av, bv, in_fmt, prod_fmt, acc_fmt, out_fmt, rounding, order, int(block_size),
        rng, random_bits, stats,
    )  # fmt: skip


def _operands(a: object, b: object, rng: object) -> tuple[np.ndarray, np.ndarray]:
    """The two matrices, checked to align; ``rng`` checked not to be words."""
    a_arr = _matrix(a, "a")
    b_arr = _matrix(b, "b")
    if a_arr.shape[1] != b_arr.shape[0]:
        raise ValueError(
            f"a and b do not align: a is {a_arr.shape}, b is "
            f"{b_arr.shape} (a.shape[1] must equal b.shape[0])"
        )
    if isinstance(rng, np.ndarray):
        raise TypeError(
            "rng: matmul, dot and sum take a seed or a numpy.random.Generator, not "
            "an array of random words (they draw one word per rounding, not per "
            "element of the result)"
        )
    return a_arr, b_arr


def _preset_formats(preset, inputs, products, accumulate, output) -> tuple:
    """(inputs, products, accumulate, output): the preset's, where not given."""
    if preset is None:
        return inputs, products, accumulate, output
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    p = PRESETS[preset]
    return (
        p.inputs if inputs is None else inputs,
        p.products if products is None else products,
        p.accumulate if accumulate is None else accumulate,
        p.output if output is None else output,
    )


def _check_order(
    order: object, block_size: object, in_fmt: Format, prod_fmt: Format | None
) -> None:
    """Check ``order`` and ``block_size`` for the emulated kernels."""
    if order not in ORDERS:
        raise ValueError(
            f"order must be one of {', '.join(ORDERS)}, unspecified; got {order!r}"
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer):
        raise TypeError(f"block_size must be an int, got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    exact_products = 2 * in_fmt.precision <= 53
    if not exact_products and prod_fmt is None and order in ("pairwise", "kahan"):
        raise ValueError(
            f"order={order!r} needs products that fit in float64: inputs of "
            f"{in_fmt.name} have {in_fmt.precision} bits; pass products=..."
        )


def _emulated(
    av, bv, in_fmt, prod_fmt, acc_fmt, out_fmt, rounding, order, block_size, rng,
    random_bits, stats,
):  # fmt: skip
    """The emulated product of checked float64 operands: the rounding plans of
    products, additions and output, then the kernel of
    :func:`lowprec.arith._matmul_kernel.matmul_kernel`."""
    m, n = av.shape[0], bv.shape[1]
    aprep = prepare_rounding(
        acc_fmt, rounding, False, acc_fmt.subnormals, rng, random_bits, stats, (m, n)
    )

    def plan(fmt):  # products and output share the additions' seed
        return prepare_rounding(
            fmt, rounding, False, fmt.subnormals, None, random_bits, None, (m, n),
            seed=aprep.seed,
        ).plan  # fmt: skip

    pplan = plan(prod_fmt) if prod_fmt is not None else aprep.plan
    oplan = plan(out_fmt)
    kernel = matmul_kernel(
        aprep.mode,
        ORDERS.index(order),
        prod_fmt is not None,
        2 * in_fmt.precision <= 53,
        stats is not None,
    )
    out = np.empty((m, n))
    counts = kernel(
        av,
        bv,
        out,
        pplan,
        aprep.plan,
        oplan,
        aprep.seed,
        aprep.rshift,
        aprep.rmask,
        _NO_WORDS,
        block_size,
    )
    if stats is not None:
        stats.add_counts(counts[:6], int(counts[6]))
    return out


def _blas_fast_path(
    a, b, in_fmt, prod_fmt, acc_fmt, out_fmt, rounding, round_inputs, stats
):
    """``round(float32(a) @ float32(b), out_fmt)``: sgemm on float32 copies of the
    operands (checked against, or rounded to, ``in_fmt``), the result rounded once.

    sgemm at n = 256 takes about 0.4 ms on one core, so the O(n**2) steps around
    it count: one pass per operand checks and converts it
    (:func:`_float32_operand`), and one rounds the float32 result into the float64
    output. tests/test_matmul.py holds this to the plain NumPy statement above.
    """
    if (
        prod_fmt is not None
        or acc_fmt != fp32
        or 2 * in_fmt.precision > 24
        or (rounding != "ties_to_even")
    ):
        raise ValueError(
            "order='unspecified' (float32 BLAS) needs exact products (products=None,"
            " inputs with at most 12 significand bits), accumulate=fp32 and "
            "rounding='ties_to_even'"
        )
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    out = np.empty((m, n))
    # The float32 operands go into out's buffer when they fit (square matrices fill
    # it exactly), and the rounded result overwrites them: memory fresh from the
    # system costs a page fault per 4 KiB on first touch, at n = 256 as much as
    # the rest of the O(n**2) work.
    room = out.reshape(-1).view(np.float32)
    if m * k + k * n <= room.size:
        a32 = room[: m * k].reshape(m, k)
        b32 = room[m * k : m * k + k * n].reshape(k, n)
    else:
        a32, b32 = np.empty((m, k), np.float32), np.empty((k, n), np.float32)
    a32 = _float32_operand(a, in_fmt, "a", round_inputs, a32)
    b32 = _float32_operand(b, in_fmt, "b", round_inputs, b32)
    # inf * 0 and inf - inf are NaN, as the emulation's: no RuntimeWarning
    with np.errstate(invalid="ignore", over="ignore"):
        c = a32 @ b32
    if stats is None and fits(out_fmt, fp32):
        # Rounding the float32 values gives the values (and NaNs) that rounding
        # them as float64 gives, so the same bits. (Into out, not in place in c:
        # lowprec.round's loop does not vectorize when out overlaps x, 3x slower.)
        return round_to(c, out_fmt, out=out)
    return np.asarray(round_to(c.astype(np.float64), out_fmt, stats=stats))


@functools.lru_cache(maxsize=64)
def _operand_test(fmt: Format, nan_ok: bool) -> tuple | None:
    return operand_test(make_plan(fmt, "ties_to_even", False, fmt.subnormals), nan_ok)


def _float32_operand(
    x: np.ndarray, fmt: Format, arg: str, round_inputs: bool, out: np.ndarray
) -> np.ndarray:
    """``_inputs(x, fmt, arg, round_inputs)`` as float32, written into ``out``
    (C-contiguous, x's shape), which is returned.

    One pass (:func:`lowprec.arith._matmul_kernel.to_float32`) converts x and proves
    that its elements are values of fmt; where it cannot (a value not of fmt, or
    a NaN that round_inputs would make canonical), :func:`_inputs` decides.
    """
    if isinstance(x, _Ones):
        out[...] = 1.0
        return out
    test = _operand_test(fmt, not round_inputs)
    if test is not None:
        src = x.astype(np.float32) if x.dtype == np.float16 else x
        src = np.ascontiguousarray(src).reshape(-1)
        if to_float32(src, out.reshape(-1), *test):
            return out
    np.copyto(out, _inputs(x, fmt, arg, round_inputs), casting="unsafe")
    return out


def _tensor_core(
    a,
    b,
    model,
    in_fmt,
    products,
    accumulate,
    output,
    rounding,
    order,
    fma,
    round_inputs,
    rng,
    random_bits,
    stats,
):
    from lowprec.arith.tensorcore import tensor_core_matmul

    if (
        products is not None
        or fma
        or order != "sequential"
        or (accumulate not in (None, "fp32", fp32))
    ):
        raise ValueError(
            "model=: the tensor core fixes products, accumulation and "
            "order; leave products, accumulate, order and fma unset"
        )
    av = _inputs(a, in_fmt, "a", round_inputs)
    bv = _inputs(b, in_fmt, "b", round_inputs)
    c = np.asarray(
        tensor_core_matmul(av, bv, model, inputs=in_fmt.name), dtype=np.float64
    )
    out_fmt = as_format(output if output is not None else fp32, "output")
    kw = {} if rounding not in ("stochastic", "stochastic_equal") else {"rng": rng}
    if random_bits is not None:
        kw["random_bits"] = random_bits
    return np.asarray(round_to(c, out_fmt, rounding=rounding, stats=stats, **kw))


def dot(a: object, b: object, fmt: Format | str, **options: object) -> float:
    """Emulated dot product of two 1-D arrays of values of ``fmt``.

    ``accumulate`` defaults to ``fmt`` and the result is rounded to ``fmt``; the
    other options are those of :func:`matmul`.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> float(lowprec.dot(np.ones(300), np.ones(300), "bf16"))  # stops at 256
    256.0
    """
    av = np.asarray(as_float_array(a, "a"))
    bv = np.asarray(as_float_array(b, "b"))
    if av.ndim != 1 or bv.ndim != 1 or av.shape != bv.shape:
        raise ValueError(
            f"a and b must be 1-D of the same length, got {av.shape} and {bv.shape}"
        )
    options.setdefault("output", fmt)
    return np.float64(matmul(av[None, :], bv[:, None], inputs=fmt, **options)[0, 0])


def sum(
    x: object, fmt: Format | str, *, axis: int | None = None, **options: object
) -> np.ndarray:
    """Emulated sum of values of ``fmt`` along an axis (all of them by default).

    Each addition is rounded to ``accumulate`` (default ``fmt``) in the chosen
    ``order``, then the result to ``output`` (default ``fmt``); the other options
    are those of :func:`matmul`.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> float(lowprec.sum(np.ones(10_000), "fp16"))  # repeated + 1 stops at 2048
    2048.0
    >>> float(lowprec.sum(np.ones(10_000), "fp16", accumulate="fp32", output="fp32"))
    10000.0
    """
    arr = np.asarray(as_float_array(x, "x"), dtype=np.float64)
    if axis is None:
        arr = arr.reshape(-1, 1)
        rest = ()
    else:
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise TypeError(f"axis must be an int or None, got {axis!r}")
        if not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"axis {axis} is out of bounds for a {arr.ndim}-D x")
        arr = np.moveaxis(arr, axis, 0)
        rest = arr.shape[1:]
        arr = arr.reshape(arr.shape[0], -1)
    options.setdefault("output", fmt)
    # the terms are x itself: multiply by exact ones
    ones = np.ones((1, arr.shape[0])).view(_Ones)
    result = matmul(ones, arr, inputs=fmt, **options).reshape(rest)
    return result[()] if result.ndim == 0 else result
