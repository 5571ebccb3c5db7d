"""Small classification data sets for training experiments: real digits, synthetic blobs
and spirals.

Every loader returns a :class:`Dataset` with a train part and a test part. The split is
*stratified* (each class keeps its share in both parts) and *fixed*: it depends only on
the labels and a seed, through the raw 64-bit output of NumPy's PCG64 bit generator,
whose stream is fixed by its algorithm. (The methods of ``numpy.random.Generator`` such
as ``permutation`` carry no such promise across NumPy versions, so the split does not
use them.) The digits split is therefore the same on every call, machine and NumPy
version.

The digits are bundled in ``lowprec/data/`` (see the README there for the source and the
CC BY 4.0 licence), so training runs offline and without scikit-learn.
"""

from __future__ import annotations

import gzip
import math
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = [
    "Dataset",
    "DIGITS_SPLIT_SEED",
    "TEST_FRACTION",
    "load_digits",
    "make_blobs",
    "make_spirals",
    "read_digits",
    "stratified_split",
]

TEST_FRACTION = 0.2
"""Share of each data set held out for testing."""

DIGITS_SPLIT_SEED = 1998
"""Seed of the fixed digits split (the year the data set was donated)."""

_DIGITS_FILE = "digits.csv.gz"
_DIGITS_ROWS = 1797
_DIGITS_PIXELS = 64

_DIGITS_DESCRIPTION = """\
8x8 handwritten digits: 1,797 images of the digits 0-9, 64 features each (an 8x8
grid read row by row), pixel counts 0..16 scaled to [0, 1] as float32 (count / 16).
Stratified split: {n_train} train / {n_test} test images (seed {seed}).

Source: the test part (optdigits.tes) of "Optical Recognition of Handwritten Digits",
E. Alpaydin and C. Kaynak, UCI Machine Learning Repository, 1998,
https://doi.org/10.24432/C50P49. Licensed under CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). Scans of forms filled in by 13
writers were reduced by NIST preprocessing to 32x32 bitmaps, and each 4x4 block to
the count of its set pixels."""


class Dataset(NamedTuple):
    """A classification data set split into a train part and a test part.

    Attributes
    ----------
    x_train, x_test : ndarray of float32, shape (n, n_features)
        The inputs.
    y_train, y_test : ndarray of int64, shape (n,)
        The class labels, ``0 <= y < n_classes``.
    n_classes : int
        Number of classes.
    name : str
        Short name (``"digits"``, ``"blobs"``, ``"spirals"``).
    description : str
        Where the data comes from, how it was made and split (and, for real data,
        its citation and licence).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    description: str

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``x_train``)."""
        return int(self.x_train.shape[1])


# -- the split ---------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into train and test parts, class by class.

    The test part has ``round(test_fraction * n)`` samples, shared among the classes in
    proportion to their sizes by the largest-remainder rule (ties go to the smaller
    label), so every class keeps its share up to one sample. Inside a class, the
    samples with the smallest PCG64 raw words (one word per sample index, from
    ``numpy.random.PCG64(seed)``) go to the test part: a uniformly random choice that
    only depends on the seed and the labels.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        The class label of each sample.
    test_fraction : float, default 0.2
        Share of the samples to hold out, strictly between 0 and 1.
    seed : int, default 0
        Non-negative seed of the PCG64 stream.

    Returns
    -------
    train_idx, test_idx : ndarray of int64
        Disjoint sorted index arrays that together cover ``range(n)``.

    Raises
    ------
    TypeError
        For non-integer labels or seed.
    ValueError
        For labels that are not 1-D, fewer than two samples, or a fraction outside
        (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> train, test = stratified_split(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), 0.4)
    >>> len(train), len(test)
    (6, 4)
    """
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer array, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    n = y.size
    if n < 2:
        raise ValueError(f"labels must have at least 2 samples to split, got {n}")
    fraction = _check_fraction(test_fraction)
    seed = _check_int("seed", seed, 0)

    n_test = min(max(math.floor(fraction * n + 0.5), 1), n - 1)
    classes, counts = np.unique(y, return_counts=True)
    # Largest remainder on exact integers: class c's quota is counts[c] * n_test / n.
    exact = counts.astype(np.int64) * n_test
    quota = exact // n
    remainder = exact % n
    extra = n_test - int(quota.sum())
    winners = np.argsort(-remainder, kind="stable")[:extra]
    quota[winners] += 1

    keys = np.random.PCG64(seed).random_raw(n)
    test_parts = []
    for cls, q in zip(classes, quota, strict=True):
        members = np.flatnonzero(y == cls)
        order = np.argsort(keys[members], kind="stable")
        test_parts.append(members[order[:q]])
    is_test = np.zeros(n, dtype=bool)
    is_test[np.concatenate(test_parts)] = True
    train_idx = np.flatnonzero(~is_test).astype(np.int64)
    test_idx = np.flatnonzero(is_test).astype(np.int64)
    return train_idx, test_idx


# -- digits ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_table() -> np.ndarray:
    """The bundled file as a read-only (1797, 65) int64 table, parsed once."""
    source = resources.files("lowprec").joinpath("data", _DIGITS_FILE)
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64, ndmin=2)
    # A damaged or replaced file must fail loudly, not train on garbage.
    if table.shape != (_DIGITS_ROWS, _DIGITS_PIXELS + 1):
        raise RuntimeError(
            f"lowprec/data/{_DIGITS_FILE}: expected {_DIGITS_ROWS} rows of "
            f"{_DIGITS_PIXELS + 1} values, got shape {table.shape}"
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise RuntimeError(
            f"lowprec/data/{_DIGITS_FILE}: pixels must be 0..16 and labels 0..9"
        )
    table.setflags(write=False)
    return table


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled 8x8 digits as stored, unscaled and unsplit.

    Returns
    -------
    pixels : ndarray of uint8, shape (1797, 64)
        Pixel counts 0..16, each row an 8x8 image read row by row.
    labels : ndarray of int64, shape (1797,)
        The digit, 0..9.

    Examples
    --------
    >>> pixels, labels = read_digits()
    >>> pixels.shape, int(pixels.max()), labels[:5].tolist()
    ((1797, 64), 16, [0, 1, 2, 3, 4])
    """
    table = _digits_table()
    return table[:, :-1].astype(np.uint8), table[:, -1].copy()


def load_digits() -> Dataset:
    """The 8x8 handwritten digits, scaled to [0, 1], with the fixed 80/20 split.

    1,797 images of 10 classes; 1,438 for training and 359 for testing, each class
    split 80/20 (:func:`stratified_split` with seed :data:`DIGITS_SPLIT_SEED`). The data
    is the test part of the UCI "Optical Recognition of Handwritten Digits" set
    (Alpaydin and Kaynak, 1998; CC BY 4.0; see ``Dataset.description``).

    Returns
    -------
    Dataset
        ``x`` float32 of shape (n, 64) holding pixel / 16 (exact), ``y`` int64 labels,
        rows in their order in the file.

    Examples
    --------
    >>> data = load_digits()
    >>> data.x_train.shape, data.x_test.shape, data.n_classes
    ((1438, 64), (359, 64), 10)
    >>> float(data.x_train.max())
    1.0
    """
    pixels, labels = read_digits()
    train, test = stratified_split(labels, TEST_FRACTION, seed=DIGITS_SPLIT_SEED)
    x = pixels.astype(np.float32) / np.float32(16)  # k/16 is exact in float32
    description = _DIGITS_DESCRIPTION.format(
        n_train=train.size, n_test=test.size, seed=DIGITS_SPLIT_SEED
    )
    return Dataset(
        x[train], labels[train], x[test], labels[test], 10, "digits", description
    )


# -- synthetic ---------------------------------------------------------------------


def make_blobs(
    n: int,
    n_features: int = 2,
    n_classes: int = 3,
    *,
    seed: int = 0,
    std: float = 1.0,
    spread: float = 4.0,
    test_fraction: float = TEST_FRACTION,
) -> Dataset:
    """Gaussian clusters, one per class, with a stratified train/test split.

    Sample ``i`` has class ``i % n_classes`` (so the classes differ in size by at most
    one); each class centre is drawn uniformly from ``[-spread, spread]**n_features``
    and each sample is its centre plus normal noise of standard deviation ``std``.

    Parameters
    ----------
    n : int
        Total number of samples (train and test), at least ``2 * n_classes``.
    n_features : int, default 2
        Input dimension, at least 1.
    n_classes : int, default 3
        Number of clusters, at least 2.
    seed : int, default 0
        Seeds both the data (``numpy.random.default_rng(seed)``) and the split.
    std : float, default 1.0
        Standard deviation of each cluster, > 0.
    spread : float, default 4.0
        Half-width of the box the centres are drawn from, > 0.
    test_fraction : float, default 0.2
        Share held out for testing.

    Returns
    -------
    Dataset
        float32 inputs, int64 labels, ``name="blobs"``.

    Examples
    --------
    >>> data = make_blobs(100, 5, 4, seed=1)
    >>> data.x_train.shape, data.x_test.shape, data.n_classes
    ((80, 5), (20, 5), 4)
    """
    n_classes = _check_int("n_classes", n_classes, 2)
    n = _check_int("n", n, 2 * n_classes)
    n_features = _check_int("n_features", n_features, 1)
    seed = _check_int("seed", seed, 0)
    std = _check_positive("std", std)
    spread = _check_positive("spread", spread)
    fraction = _check_fraction(test_fraction)

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-spread, spread, size=(n_classes, n_features))
    y = np.arange(n, dtype=np.int64) % n_classes
    x = centres[y] + std * rng.standard_normal((n, n_features))
    description = (
        f"{n_classes} Gaussian blobs in {n_features} dimensions: {n} samples, "
        f"centres uniform in [-{spread:g}, {spread:g}], standard deviation {std:g}, "
        f"seed {seed}; stratified {1 - fraction:.0%}/{fraction:.0%} split."
    )
    return _split_dataset(x, y, n_classes, "blobs", description, fraction, seed)


def make_spirals(
    n: int,
    *,
    seed: int = 0,
    n_classes: int = 2,
    turns: float = 1.5,
    noise: float = 0.05,
    test_fraction: float = TEST_FRACTION,
) -> Dataset:
    """Interleaved 2-D spiral arms, one per class, with a stratified split.

    Sample ``i`` has class ``k = i % n_classes`` and a radius ``r`` uniform in [0, 1];
    it lies at angle ``2*pi*(turns*r + k/n_classes)`` on its arm, plus normal noise of
    standard deviation ``noise`` in each coordinate. The classes are not linearly
    separable, so a linear model fails where a small MLP succeeds.

    Parameters
    ----------
    n : int
        Total number of samples, at least ``2 * n_classes``.
    seed : int, default 0
        Seeds both the data and the split.
    n_classes : int, default 2
        Number of arms, at least 2.
    turns : float, default 1.5
        How many times each arm winds around the origin, > 0.
    noise : float, default 0.05
        Standard deviation of the added noise, >= 0.
    test_fraction : float, default 0.2
        Share held out for testing.

    Returns
    -------
    Dataset
        float32 inputs of shape (n, 2), int64 labels, ``name="spirals"``.

    Examples
    --------
    >>> data = make_spirals(200, seed=3)
    >>> data.x_train.shape, data.n_classes
    ((160, 2), 2)
    """
    n_classes = _check_int("n_classes", n_classes, 2)
    n = _check_int("n", n, 2 * n_classes)
    seed = _check_int("seed", seed, 0)
    turns = _check_positive("turns", turns)
    noise = _check_real("noise", noise)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    fraction = _check_fraction(test_fraction)

    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % n_classes
    r = rng.uniform(0.0, 1.0, size=n)
    angle = 2 * np.pi * (turns * r + y / n_classes)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    x += noise * rng.standard_normal((n, 2))
    description = (
        f"{n_classes} interleaved spiral arms in 2 dimensions: {n} samples, "
        f"{turns:g} turns, noise {noise:g}, seed {seed}; stratified "
        f"{1 - fraction:.0%}/{fraction:.0%} split."
    )
    return _split_dataset(x, y, n_classes, "spirals", description, fraction, seed)


# -- helpers -----------------------------------------------------------------------


def _split_dataset(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    name: str,
    description: str,
    fraction: float,
    seed: int,
) -> Dataset:
    train, test = stratified_split(y, fraction, seed=seed)
    x = x.astype(np.float32)
    return Dataset(x[train], y[train], x[test], y[test], n_classes, name, description)


def _check_int(arg: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{arg} must be >= {lo}, got {value}")
    return int(value)


def _check_real(arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(f"{arg} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{arg} must be finite, got {value!r}")
    return float(value)


def _check_positive(arg: str, value: object) -> float:
    value = _check_real(arg, value)
    if value <= 0:
        raise ValueError(f"{arg} must be > 0, got {value!r}")
    return value


def _check_fraction(value: object) -> float:
    value = _check_real("test_fraction", value)
    if not 0 < value < 1:
        raise ValueError(
            f"test_fraction must be strictly between 0 and 1, got {value!r}"
        )
    return value
