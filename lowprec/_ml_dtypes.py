"""The optional ml_dtypes package: which of its dtypes is which lowprec format.

ml_dtypes (the NumPy dtypes of JAX: ``bfloat16``, ``float8_*``, ``float6_*``,
``float4_e2m1fn``, ``int4``...) is an optional dependency, ``lowprec[ml_dtypes]``.
Nothing here imports it unless asked for a dtype (:func:`dtype_of`): an array can
only have an ml_dtypes dtype once the user has imported ml_dtypes, so recognising
one (:func:`float_name`, :func:`is_ml_integer`) looks only at modules already
loaded, and ``import lowprec`` never imports it.

The table holds each format's five defining parameters (precision with the hidden
bit, exponent bits, bias, subnormals, specials), as :class:`lowprec.Format` names
them; this module sits below ``formats`` and imports nothing of lowprec.
``tests/rounding/test_ml_dtypes.py`` checks every row against ``ml_dtypes.finfo``
and against ml_dtypes' own decoding of every code.
"""

from __future__ import annotations

import sys
from types import ModuleType

import numpy as np

__all__ = ["INSTALL_HINT", "dtype_of", "float_name", "is_ml_integer", "module",
           "params_of"]

Params = tuple[int, int, int, bool, str]

INSTALL_HINT = "pip install 'lowprec[ml_dtypes]' (or pip install ml_dtypes)"

# ml_dtypes name -> (precision, exponent_bits, bias, subnormals, specials).
# float8_e8m0fnu and float8_e5m3fnu are absent: they have no sign bit, which every
# lowprec Format has.
ML_FLOATS: dict[str, Params] = {
    "bfloat16": (8, 8, 127, True, "ieee"),
    "float8_e5m2": (3, 5, 15, True, "ieee"),
    "float8_e4m3": (4, 4, 7, True, "ieee"),
    "float8_e3m4": (5, 3, 3, True, "ieee"),
    "float8_e4m3fn": (4, 4, 7, True, "fn"),
    "float8_e4m3fnuz": (4, 4, 8, True, "fnuz"),
    "float8_e5m2fnuz": (3, 5, 16, True, "fnuz"),
    "float8_e4m3b11fnuz": (4, 4, 11, True, "fnuz"),
    "float6_e2m3fn": (4, 2, 1, True, "none"),
    "float6_e3m2fn": (3, 3, 3, True, "none"),
    "float4_e2m1fn": (2, 2, 1, True, "none"),
}
# NumPy's own IEEE formats: fp16 maps to numpy.float16 (ml_dtypes has no other)
NUMPY_FLOATS: dict[Params, np.dtype] = {
    (11, 5, 15, True, "ieee"): np.dtype(np.float16),
    (24, 8, 127, True, "ieee"): np.dtype(np.float32),
    (53, 11, 1023, True, "ieee"): np.dtype(np.float64),
}
_BY_PARAMS = {p: n for n, p in ML_FLOATS.items()}
_INTEGERS = ("int1", "uint1", "int2", "uint2", "int4", "uint4")
_ALL_FLOATS = (*ML_FLOATS, "float8_e8m0fnu", "float8_e5m3fnu")
_SEEN: dict[tuple[int, tuple[str, ...]], dict[np.dtype, str]] = {}


def module() -> ModuleType:
    """Import ml_dtypes; ImportError naming the extra to install when it is absent."""
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError(f"this needs the ml_dtypes package: {INSTALL_HINT}") from None
    return ml_dtypes


def _loaded_dtypes(names) -> dict[np.dtype, str]:
    """{dtype: name} for the ``names`` the loaded ml_dtypes has (empty if unloaded)."""
    md = sys.modules.get("ml_dtypes")
    if md is None:
        return {}
    key = (id(md), names)
    if key not in _SEEN:
        # older ml_dtypes releases lack some types (float8_e3m4 came in 0.5)
        _SEEN[key] = {np.dtype(getattr(md, n)): n for n in names if hasattr(md, n)}
    return _SEEN[key]


def float_name(dtype: np.dtype) -> str | None:
    """The ml_dtypes name of a floating-point ml_dtypes dtype, else None.

    Every ml_dtypes float is recognised, float8_e8m0fnu and float8_e5m3fnu included
    (their values are float32 values too); :func:`params_of` says which of them
    lowprec has a format for.
    """
    if dtype in _STORAGE_DTYPES or dtype.kind not in "Vf":
        return None  # the common case: no dictionary to build
    return _loaded_dtypes(_ALL_FLOATS).get(np.dtype(dtype))


def is_ml_integer(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is one of ml_dtypes' narrow integers (int4, uint2, ...)."""
    return dtype.kind == "V" and np.dtype(dtype) in _loaded_dtypes(_INTEGERS)


def params_of(dtype: np.dtype) -> tuple[str, Params] | None:
    """(name, parameters) of an ml_dtypes float dtype lowprec has a format for."""
    name = float_name(np.dtype(dtype))
    if name is None or name not in ML_FLOATS:
        return None
    return name, ML_FLOATS[name]


def dtype_of(params: Params) -> np.dtype | None:
    """The NumPy or ml_dtypes dtype with these parameters, or None when none has.

    Imports ml_dtypes (ImportError when absent) unless the answer is a NumPy dtype
    or certainly None.
    """
    if params in NUMPY_FLOATS:
        return NUMPY_FLOATS[params]
    name = _BY_PARAMS.get(params)
    if name is None:
        return None
    md = module()
    if not hasattr(md, name):
        raise ImportError(f"the installed ml_dtypes {md.__version__} has no {name}; "
                          "upgrade it (pip install -U ml_dtypes)")
    return np.dtype(getattr(md, name))


_STORAGE_DTYPES = frozenset(NUMPY_FLOATS.values())
