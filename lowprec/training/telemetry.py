"""What low precision does to a training run, measured step by step.

Three statistics say why a mixed-precision run fails or survives (Micikevicius et al.,
"Mixed Precision Training", ICLR 2018):

* how many gradient values the gradient format **flushes** to zero, makes
  **subnormal** (losing precision), or **overflows** (:func:`gradient_summary`);
* where the gradient exponents lie against the format's range, as a histogram of
  ``log2|g|`` (:func:`log2_histogram`, with :func:`format_range_marks` to draw the
  subnormal and normal range on it);
* how many weight updates are **swallowed**, ``round(w + dw) == w`` in the weight
  format (:func:`swallowed_fraction`): the updates that fp16 or bf16 weights lose
  without fp32 master weights, stochastic rounding or Kahan summation.

:class:`Telemetry` keeps these per step and per layer, with periodic evaluations, and
writes them as JSON. All functions are vectorized NumPy, cheap enough to call every
step on arrays of a few thousand values.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from lowprec.formats import Format, as_format
from lowprec.rounding.rounder import round as round_to

__all__ = [
    "DEFAULT_LOG2_EDGES",
    "Telemetry",
    "format_range_marks",
    "gradient_summary",
    "log2_histogram",
    "swallowed_fraction",
]

DEFAULT_LOG2_EDGES = np.arange(-149, 129, dtype=np.float64)
"""Integer bin edges -149, -148, ..., 128: one bin per binade of fp32, from its
smallest subnormal 2**-149 to its largest binade [2**127, 2**128)."""
DEFAULT_LOG2_EDGES.setflags(write=False)

_JSON_SCHEMA = "lowprec.telemetry"
_JSON_VERSION = 1
_FLOAT_TAG = "$float"  # {"$float": "inf"} stands for a non-finite float in JSON


# -- gradient statistics -----------------------------------------------------------


def gradient_summary(raw: np.ndarray, rounded: np.ndarray, fmt: Format | str) -> dict:
    """What rounding ``raw`` gradients to ``fmt`` did to them.

    Parameters
    ----------
    raw : ndarray
        The gradient before rounding (any float dtype).
    rounded : ndarray
        The same gradient after rounding to ``fmt``, same shape.
    fmt : Format or str
        The gradient format.

    Returns
    -------
    dict
        ``size`` and ``nonzero``: element count and count of nonzero raw values
        (NaN counts as nonzero); ``flushed``/``flushed_fraction``: nonzero raw values
        that rounded to zero, over ``nonzero``; ``subnormal``/``subnormal_fraction``:
        finite nonzero rounded values below ``fmt.smallest_normal`` in magnitude,
        over the nonzero rounded values; ``overflow``/``overflow_fraction``: values
        whose rounding is inf or NaN or whose raw magnitude exceeds ``fmt.max``, over
        ``nonzero``. A fraction with nothing to count is 0.0. Counts are ints,
        fractions floats.

    Raises
    ------
    TypeError
        For non-float arrays.
    ValueError
        For arrays of different shapes or an unknown format.

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> raw = np.array([1e-9, 1e-6, 0.5, 1e5, 0.0], dtype=np.float32)
    >>> s = gradient_summary(raw, lowprec.round(raw, "fp16"), "fp16")
    >>> s["nonzero"], s["flushed_fraction"], s["overflow_fraction"]
    (4, 0.25, 0.25)
    >>> s["subnormal"], s["subnormal_fraction"]
    (1, 0.3333333333333333)
    """
    fmt = as_format(fmt)
    raw = _float_array("raw", raw)
    rounded = _float_array("rounded", rounded)
    if raw.shape != rounded.shape:
        raise ValueError(
            f"raw and rounded must have the same shape, got {raw.shape} and "
            f"{rounded.shape}"
        )
    # np.float64 thresholds: a Python float would be cast to the array's dtype
    # (NEP 50) and could round; float64 compares exactly.
    normal = np.float64(fmt.smallest_normal)
    biggest = np.float64(fmt.max)
    raw_nz = raw != 0  # NaN != 0 is True: a NaN gradient is a nonzero one
    nonzero = int(np.count_nonzero(raw_nz))
    flushed = int(np.count_nonzero(raw_nz & (rounded == 0)))
    mag = np.abs(rounded)
    rounded_nz = int(np.count_nonzero(rounded))
    # NaN and inf fail `mag < normal`, so only finite subnormals count.
    subnormal = int(np.count_nonzero((mag < normal) & (rounded != 0)))
    overflow = int(np.count_nonzero(~np.isfinite(rounded) | (np.abs(raw) > biggest)))
    return {
        "size": int(raw.size),
        "nonzero": nonzero,
        "flushed": flushed,
        "flushed_fraction": _ratio(flushed, nonzero),
        "subnormal": subnormal,
        "subnormal_fraction": _ratio(subnormal, rounded_nz),
        "overflow": overflow,
        "overflow_fraction": _ratio(overflow, nonzero),
    }


def log2_histogram(
    values: np.ndarray, bins: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of ``log2|g|`` over the finite nonzero values ``g``.

    Bin ``i`` counts ``edges[i] <= log2|g| < edges[i + 1]``. Values below the first
    edge are counted in the first bin and values at or above the last edge in the
    last, so the counts always add up to the number of finite nonzero values (zeros,
    infinities and NaNs are left out: :func:`gradient_summary` counts those). With
    integer edges the exponent is read exactly with ``frexp`` (``log2`` of a value
    just below a power of two can round up to it).

    Parameters
    ----------
    values : array_like
        The values, any float dtype (typically a gradient before rounding).
    bins : array_like, optional
        Strictly increasing finite edges, at least two. Default
        :data:`DEFAULT_LOG2_EDGES`: integers -149..128, one bin per binade of fp32.

    Returns
    -------
    counts : ndarray of int64, shape (len(edges) - 1,)
    edges : ndarray of float64
        A copy of the edges.

    Examples
    --------
    >>> import numpy as np
    >>> counts, edges = log2_histogram(np.array([0.75, 1.0, 3.0, 0.0, -4.0]),
    ...                                bins=np.arange(-2, 4))
    >>> edges.tolist(), counts.tolist()
    ([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], [0, 1, 1, 1, 1])
    """
    edges = DEFAULT_LOG2_EDGES if bins is None else _check_edges(bins)
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"values must be a real array, got dtype {arr.dtype}")
    flat = arr.reshape(-1).astype(np.float64)  # float16 subnormals normalize here
    g = flat[(flat != 0) & np.isfinite(flat)]
    n_bins = edges.size - 1
    if np.all(edges == np.floor(edges)):
        # floor(log2|g|) exactly: g = m * 2**e with 0.5 <= |m| < 1
        binade = np.frexp(g)[1].astype(np.int64) - 1
        if np.all(np.diff(edges) == 1):  # one bin per binade: no search needed
            index = binade - int(edges[0])
        else:
            index = np.searchsorted(edges, binade, side="right") - 1
    else:
        index = np.searchsorted(edges, np.log2(np.abs(g)), side="right") - 1
    # out-of-range values go to the end bins (np.clip is slower on small arrays)
    np.maximum(index, 0, out=index)
    np.minimum(index, n_bins - 1, out=index)
    return np.bincount(index, minlength=n_bins).astype(np.int64), edges.copy()


def format_range_marks(fmt: Format | str) -> dict[str, float]:
    """``log2`` of a format's range limits, to mark them on a :func:`log2_histogram`.

    Returns
    -------
    dict
        ``smallest_subnormal``, ``smallest_normal`` and ``max``: log2 of each (for a
        format without subnormals the first equals the second). Gradients left of
        ``smallest_subnormal - 1`` flush to zero; those between it and
        ``smallest_normal`` are subnormal; those right of ``max`` overflow.

    Examples
    --------
    >>> marks = format_range_marks("fp16")
    >>> marks["smallest_subnormal"], marks["smallest_normal"], round(marks["max"], 4)
    (-24.0, -14.0, 15.9993)
    """
    fmt = as_format(fmt)
    return {
        "smallest_subnormal": math.log2(fmt.smallest_subnormal),
        "smallest_normal": math.log2(fmt.smallest_normal),
        "max": math.log2(fmt.max),
    }


# -- swallowed updates -------------------------------------------------------------


def swallowed_fraction(
    w: np.ndarray,
    dw: np.ndarray,
    fmt: Format | str,
    rounding: str = "ties_to_even",
    *,
    rng: int | np.random.Generator | None = None,
) -> float:
    """Fraction of the nonzero updates that leave their weight unchanged.

    Among the elements with ``dw != 0``, the share where ``round(w + dw, fmt,
    rounding) == w``: the update is below half a unit in the last place of ``w``
    (for round-to-nearest) and is lost. The sum is rounded as if exact, once: in
    float64 with its error term kept by a sticky bit (rounded to odd; Boldo and
    Melquiond, 2008), which is exact for every deterministic mode when ``fmt`` has
    at most 51 significand bits, and exact for ties_to_even in fp64.

    Parameters
    ----------
    w : ndarray
        The weights, values of ``fmt`` (any float dtype holding them).
    dw : ndarray
        The updates, same shape (typically fp32, already multiplied by the lr).
    fmt : Format or str
        The weight format.
    rounding : str, default "ties_to_even"
        A mode of :func:`lowprec.round`. ``"kahan"`` is taken as ties_to_even: the
        fraction then says what the plain update would lose, which the Kahan
        buffer recovers. With stochastic modes the result is random (seed ``rng``),
        and the sticky bit moves the probability by less than ``2**(p - 53)``.
    rng : int or numpy.random.Generator, optional
        Passed to :func:`lowprec.round` for the stochastic modes.

    Returns
    -------
    float
        In [0, 1]; 0.0 when no update is nonzero. A NaN update never counts as
        swallowed.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([2048.0, 2048.0, 1.0], dtype=np.float32)
    >>> dw = np.array([1.0, 2.0, 0.0], dtype=np.float32)
    >>> swallowed_fraction(w, dw, "fp16")   # 2049 rounds back to 2048 in fp16
    0.5
    """
    fmt = as_format(fmt)
    w = _float_array("w", w)
    dw = _float_array("dw", dw)
    if w.shape != dw.shape:
        raise ValueError(
            f"w and dw must have the same shape, got {w.shape} and {dw.shape}"
        )
    if not isinstance(rounding, str):
        raise TypeError(f"rounding must be a str, got {type(rounding).__name__}")
    if rounding == "kahan":
        rounding = "ties_to_even"
    moved = (dw != 0).reshape(-1)
    n_moved = int(np.count_nonzero(moved))
    if n_moved == 0:
        round_to(np.zeros(0), fmt, rounding=rounding)  # still reject a bad mode
        return 0.0
    a = w.reshape(-1)[moved].astype(np.float64)
    b = dw.reshape(-1)[moved].astype(np.float64)
    total = _sum_rounded_to_odd(a, b) if fmt.precision <= 51 else a + b
    new = round_to(total, fmt, rounding=rounding, rng=rng)
    return int(np.count_nonzero(new == a)) / n_moved


def _sum_rounded_to_odd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` rounded to odd in float64: the nearest sum, moved one float64 step
    toward the exact sum when that sum is inexact and the nearest one is even.

    Rounding this once more to a format with p <= 51 bits gives the rounding of the
    exact sum in every deterministic mode (Boldo and Melquiond, "Emulation of FMA
    and correctly rounded sums: proved algorithms using rounding to odd", IEEE TC
    57(4), 2008).
    """
    s = a + b
    # TwoSum (Knuth): err is the exact a + b - s, whatever the magnitudes.
    bv = s - a
    err = (a - (s - bv)) + (b - bv)
    even = (s.view(np.int64) & 1) == 0
    fix = even & (err != 0) & np.isfinite(err)
    if np.any(fix):
        s[fix] = np.nextafter(s[fix], np.where(err[fix] > 0, np.inf, -np.inf))
    return s


# -- the recorder ------------------------------------------------------------------


class Telemetry:
    """Per-step and per-evaluation records of a training run, exportable as JSON.

    Records are plain Python (NumPy scalars and arrays become ints, floats, bools
    and lists when recorded), so they can be kept, compared and written as they are.
    In the JSON file a non-finite float is written ``{"$float": "inf"}`` (or
    ``"-inf"``, ``"nan"``), which keeps the file valid JSON and reads back as the
    float; tuples read back as lists.

    Parameters
    ----------
    meta : mapping, optional
        Anything that describes the run (policy name, learning rate, seed ...).

    Attributes
    ----------
    meta : dict
    steps : list of dict
        One per :meth:`record_step`: ``step``, ``loss``, ``scale``, ``skipped``,
        ``layers`` and any extra keys.
    evals : list of dict
        One per :meth:`record_eval`: ``step`` and the metrics.

    Examples
    --------
    >>> import numpy as np
    >>> t = Telemetry(meta={"policy": "fp16_mixed"})
    >>> _ = t.record_step(0, np.float32(2.3), 65536.0, False,
    ...                   {"layers.0.weight": {"flushed_fraction": 0.0}})
    >>> _ = t.record_step(1, float("inf"), 65536.0, True)
    >>> _ = t.record_eval(1, accuracy=0.5)
    >>> t.series("loss"), t.series("flushed_fraction", layer="layers.0.weight")
    ([2.299999952316284, inf], [0.0, None])
    """

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        if meta is not None and not isinstance(meta, Mapping):
            raise TypeError(f"meta must be a mapping, got {type(meta).__name__}")
        self.meta: dict = _plain(dict(meta or {}), "meta")
        self.steps: list[dict] = []
        self.evals: list[dict] = []

    def __repr__(self) -> str:
        return f"Telemetry({len(self.steps)} steps, {len(self.evals)} evals)"

    def record_step(
        self,
        step: int,
        loss: float,
        scale: float | None,
        skipped: bool,
        layers: Mapping[str, Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> dict:
        """Record one optimizer step.

        Parameters
        ----------
        step : int
            The step number, >= 0.
        loss : float
            The (unscaled) loss; inf or NaN are recorded as they are.
        scale : float or None
            The loss scale used for the step; None without loss scaling.
        skipped : bool
            Whether the update was skipped (inf/NaN gradients).
        layers : mapping of str to mapping, optional
            Per-parameter statistics (e.g. :func:`gradient_summary` plus a
            histogram), keyed by parameter name.
        **extra
            Any other per-step values (learning rate, gradient norm ...).

        Returns
        -------
        dict
            The stored record (also appended to :attr:`steps`).
        """
        step = _check_step(step)
        record = {
            "step": step,
            "loss": _check_real("loss", loss),
            "scale": None if scale is None else _check_real("scale", scale),
            "skipped": _check_bool("skipped", skipped),
            "layers": _plain_layers(layers),
        }
        for key, value in extra.items():
            record[key] = _plain(value, key)
        self.steps.append(record)
        return record

    def record_eval(self, step: int, **metrics: Any) -> dict:
        """Record an evaluation (e.g. ``accuracy``, ``loss``, ``fp32_accuracy``).

        Returns
        -------
        dict
            The stored record (also appended to :attr:`evals`).
        """
        record = {"step": _check_step(step)}
        for key, value in metrics.items():
            if key == "step":
                raise ValueError("metrics cannot be named 'step'")
            record[key] = _plain(value, key)
        self.evals.append(record)
        return record

    def series(self, key: str, *, layer: str | None = None) -> list:
        """One value per recorded step: ``steps[i][key]``, or
        ``steps[i]["layers"][layer][key]`` with ``layer``; None where it is missing.
        """
        if layer is None:
            return [record.get(key) for record in self.steps]
        return [record["layers"].get(layer, {}).get(key) for record in self.steps]

    # -- JSON --------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Everything recorded, as one JSON-ready dict (non-finite floats tagged)."""
        return _encode(
            {
                "schema": _JSON_SCHEMA,
                "version": _JSON_VERSION,
                "meta": self.meta,
                "steps": self.steps,
                "evals": self.evals,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Telemetry:
        """Rebuild a recorder from :meth:`to_dict`'s output (tags still in place or
        already decoded)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, got {type(data).__name__}")
        if data.get("schema") != _JSON_SCHEMA:
            raise ValueError(
                f"not a lowprec telemetry record (schema {data.get('schema')!r})"
            )
        if data.get("version") != _JSON_VERSION:
            raise ValueError(
                f"unsupported telemetry version {data.get('version')!r}; this "
                f"lowprec reads version {_JSON_VERSION}"
            )
        decoded = _decode(data)
        telemetry = cls(decoded.get("meta") or {})
        telemetry.steps = list(decoded.get("steps", []))
        telemetry.evals = list(decoded.get("evals", []))
        return telemetry

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` to ``path`` as strict JSON (no bare NaN/Infinity)."""
        text = json.dumps(self.to_dict(), allow_nan=False)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Telemetry:
        """Read a file written by :meth:`to_json`."""
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return cls.from_dict(data)


# -- conversion to plain Python and JSON tags ------------------------------------------


def _plain(value: Any, where: str) -> Any:
    """A copy of ``value`` made of None, bool, int, float, str, list and dict."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{where}: cannot record an array of dtype {value.dtype}")
        return value.tolist()  # Python ints/floats/bools, copied
    if isinstance(value, Format):
        return value.name
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where}: keys must be str, got {type(key).__name__} {key!r}"
                )
            if key == _FLOAT_TAG:
                raise ValueError(f"{where}: the key {_FLOAT_TAG!r} is reserved")
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, where) for item in value]
    raise TypeError(
        f"{where}: cannot record a {type(value).__name__} (expected numbers, "
        "strings, bools, None, arrays, lists or dicts)"
    )


def _plain_layers(layers: Mapping[str, Mapping[str, Any]] | None) -> dict:
    if layers is None:
        return {}
    if not isinstance(layers, Mapping):
        raise TypeError(f"layers must be a mapping, got {type(layers).__name__}")
    for name, stats in layers.items():
        if not isinstance(stats, Mapping):
            raise TypeError(
                f"layers[{name!r}] must be a mapping of statistics, got "
                f"{type(stats).__name__}"
            )
    return _plain(layers, "layers")


def _encode(value: Any) -> Any:
    """Replace non-finite floats by ``{"$float": "inf" | "-inf" | "nan"}``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {_FLOAT_TAG: "nan" if math.isnan(value) else str(value)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    """Undo :func:`_encode`."""
    if isinstance(value, Mapping):
        if len(value) == 1 and _FLOAT_TAG in value:
            tag = value[_FLOAT_TAG]
            if tag not in ("inf", "-inf", "nan"):
                raise ValueError(f"bad non-finite float tag {tag!r}")
            return float(tag)
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


# -- argument checks ---------------------------------------------------------------


def _ratio(count: int, total: int) -> float:
    return count / total if total else 0.0


def _float_array(arg: str, value: object) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array, got dtype {arr.dtype}")
    return arr


def _check_edges(bins: object) -> np.ndarray:
    edges = np.asarray(bins)
    if edges.dtype.kind not in "fiu":
        raise TypeError(f"bins must be an array of numbers, got dtype {edges.dtype}")
    edges = edges.astype(np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"bins must be a 1-D array of at least 2 edges, got {bins!r}")
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be finite and strictly increasing")
    return edges


def _check_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int | np.integer):
        raise TypeError(f"step must be an int, got {type(step).__name__}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return int(step)


def _check_real(arg: str, value: object) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(f"{arg} must be a real number, got {type(value).__name__}")
    return float(value)


def _check_bool(arg: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{arg} must be a bool, got {type(value).__name__}")
    return bool(value)
