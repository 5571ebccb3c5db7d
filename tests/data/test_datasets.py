"""The bundled digits, the fixed stratified split and the synthetic generators.

References are independent of lowprec.datasets: the data file parsed here with the
csv module, the class counts published with the UCI data set, NumPy's own PCG64 test
vectors, and a split computed here with exact Fractions.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import lowprec
from lowprec.data import datasets
from lowprec.data.datasets import (
    DIGITS_SPLIT_SEED,
    Dataset,
    load_digits,
    make_blobs,
    make_spirals,
    read_digits,
    stratified_split,
)

DATA_DIR = Path(lowprec.__file__).parent / "data"
DIGITS_FILE = DATA_DIR / "digits.csv.gz"

# Published with the data set (UCI optdigits.names, "Class distribution", test part).
PUBLISHED_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
# SHA-256 of the uncompressed text, as recorded in lowprec/data/README.md.
DIGITS_SHA256 = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"


def _file_rows() -> list[list[int]]:
    """The bundled file parsed with the csv module, not with lowprec's loader."""
    with gzip.open(DIGITS_FILE, "rt", encoding="ascii") as fh:
        return [[int(v) for v in row] for row in csv.reader(fh)]


def _reference_split(labels: np.ndarray, fraction: float, seed: int):
    """The documented split rule, written out with Fractions and Python sorting."""
    n = len(labels)
    n_test = min(max(math.floor(Fraction(fraction) * n + Fraction(1, 2)), 1), n - 1)
    classes = sorted(set(labels.tolist()))
    share = {c: Fraction(int(np.sum(labels == c)) * n_test, n) for c in classes}
    quota = {c: math.floor(share[c]) for c in classes}
    left = n_test - sum(quota.values())
    by_remainder = sorted(classes, key=lambda c: (-(share[c] - quota[c]), c))
    for c in by_remainder[:left]:
        quota[c] += 1
    keys = [int(k) for k in np.random.PCG64(seed).random_raw(n)]
    test = set()
    for c in classes:
        members = [i for i in range(n) if labels[i] == c]
        members.sort(key=lambda i: (keys[i], i))
        test.update(members[: quota[c]])
    return sorted(set(range(n)) - test), sorted(test)


# -- the bundled file --------------------------------------------------------------


def test_bundled_file_is_the_uci_test_part():
    with gzip.open(DIGITS_FILE, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == DIGITS_SHA256
    rows = _file_rows()
    assert len(rows) == 1797
    assert all(len(row) == 65 for row in rows)
    labels = [row[-1] for row in rows]
    assert [labels.count(d) for d in range(10)] == PUBLISHED_COUNTS
    assert min(min(row[:-1]) for row in rows) == 0
    assert max(max(row[:-1]) for row in rows) == 16


def test_data_readme_states_source_and_licence():
    text = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    for needle in ("Alpaydin", "Kaynak", "10.24432/C50P49", "CC BY 4.0", DIGITS_SHA256):
        assert needle in text


def test_read_digits_matches_the_file():
    pixels, labels = read_digits()
    rows = np.array(_file_rows())
    assert pixels.shape == (1797, 64) and pixels.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    np.testing.assert_array_equal(pixels, rows[:, :64])
    np.testing.assert_array_equal(labels, rows[:, 64])
    assert np.bincount(labels).tolist() == PUBLISHED_COUNTS


def test_read_digits_returns_fresh_arrays():
    pixels, labels = read_digits()
    pixels[:] = 99
    labels[:] = -1
    again_pixels, again_labels = read_digits()
    assert again_pixels.max() == 16 and again_labels.min() == 0


# -- load_digits -------------------------------------------------------------------


def test_load_digits_shapes_dtypes_range():
    data = load_digits()
    assert isinstance(data, Dataset)
    assert data.name == "digits" and data.n_classes == 10 and data.n_features == 64
    assert data.x_train.shape == (1438, 64) and data.x_test.shape == (359, 64)
    assert data.y_train.shape == (1438,) and data.y_test.shape == (359,)
    for x in (data.x_train, data.x_test):
        assert x.dtype == np.float32
        assert x.min() == 0.0 and x.max() == 1.0
        # pixel / 16 exactly: 16 x is a whole number 0..16
        np.testing.assert_array_equal(16 * x, np.round(16 * x))
    for y in (data.y_train, data.y_test):
        assert y.dtype == np.int64
        assert set(np.unique(y).tolist()) == set(range(10))


def test_load_digits_description_cites_source():
    text = load_digits().description
    for needle in ("1,797", "Alpaydin", "Kaynak", "10.24432/C50P49", "CC BY 4.0"):
        assert needle in text


def test_load_digits_rows_are_the_file_rows_split():
    rows = np.array(_file_rows())
    train, test = _reference_split(rows[:, 64], 0.2, DIGITS_SPLIT_SEED)
    data = load_digits()
    np.testing.assert_array_equal(data.x_train * 16, rows[train, :64])
    np.testing.assert_array_equal(data.y_train, rows[train, 64])
    np.testing.assert_array_equal(data.x_test * 16, rows[test, :64])
    np.testing.assert_array_equal(data.y_test, rows[test, 64])


def test_digits_split_is_disjoint_covering_and_stratified():
    labels = np.array(_file_rows())[:, 64]
    train, test = stratified_split(labels, 0.2, seed=DIGITS_SPLIT_SEED)
    assert len(train) == 1438 and len(test) == 359
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    per_class = np.bincount(labels[test], minlength=10)
    # each class holds out 20% of its images, to the nearest image
    for count, held in zip(PUBLISHED_COUNTS, per_class, strict=True):
        assert abs(held - count / 5) <= 0.5 + 1e-12
    assert per_class.tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]


def test_load_digits_is_deterministic_and_independent():
    first = load_digits()
    first.x_train[:] = -1.0
    second, third = load_digits(), load_digits()
    assert second.x_train.min() == 0.0
    for a, b in zip(second[:4], third[:4], strict=True):
        np.testing.assert_array_equal(a, b)


def test_pcg64_stream_matches_numpy_reference_vectors():
    # numpy/random/tests/data/pcg64-testset-{1,2}.csv: the split's "same on every
    # machine" rests on PCG64's raw stream being fixed.
    assert np.random.PCG64(0xDEADBEAF).random_raw(3).tolist() == [
        0x60D24054E17A0698,
        0xD5E79D89856E4F12,
        0xD254972FE64BD782,
    ]
    assert np.random.PCG64(0).random_raw(3).tolist() == [
        0xA30FEBCFD9C2825F,
        0x4510BDF882D9D721,
        0x0A7D3DA94ECDE8B8,
    ]


# -- stratified_split --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "fraction", "seed"),
    [
        ([5, 5], 0.4, 0),
        ([7, 3, 1, 9], 0.25, 3),
        ([10, 10, 10], 0.2, 7),
        ([1, 1], 0.5, 1),
        ([50, 13, 2], 0.33, 11),
    ],
)
def test_stratified_split_matches_reference(sizes, fraction, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    train, test = stratified_split(labels, fraction, seed=seed)
    ref_train, ref_test = _reference_split(labels, fraction, seed)
    assert train.tolist() == ref_train and test.tolist() == ref_test
    assert train.dtype == np.int64 and test.dtype == np.int64


def test_stratified_split_depends_on_seed():
    labels = np.arange(100) % 4
    _, a = stratified_split(labels, seed=0)
    _, b = stratified_split(labels, seed=1)
    assert a.tolist() != b.tolist()
    assert np.bincount(labels[a]).tolist() == np.bincount(labels[b]).tolist()


@pytest.mark.parametrize(
    ("labels", "kwargs", "error"),
    [
        (np.array([0.0, 1.0]), {}, TypeError),
        (np.zeros((2, 2), dtype=int), {}, ValueError),
        (np.array([1]), {}, ValueError),
        (np.arange(4), {"test_fraction": 0.0}, ValueError),
        (np.arange(4), {"test_fraction": 1.0}, ValueError),
        (np.arange(4), {"test_fraction": float("nan")}, ValueError),
        (np.arange(4), {"test_fraction": "0.2"}, TypeError),
        (np.arange(4), {"seed": -1}, ValueError),
        (np.arange(4), {"seed": 1.5}, TypeError),
    ],
)
def test_stratified_split_rejects_bad_arguments(labels, kwargs, error):
    with pytest.raises(error):
        stratified_split(labels, **kwargs)


# -- synthetic ---------------------------------------------------------------------


def test_make_blobs_shapes_balance_determinism():
    data = make_blobs(103, 5, 4, seed=2)
    assert data.name == "blobs" and data.n_classes == 4 and data.n_features == 5
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert len(data.x_train) + len(data.x_test) == 103
    assert len(data.x_test) == 21  # round(0.2 * 103)
    y = np.concatenate([data.y_train, data.y_test])
    assert np.bincount(y).tolist() == [26, 26, 26, 25]  # sample i has class i % 4
    again = make_blobs(103, 5, 4, seed=2)
    other = make_blobs(103, 5, 4, seed=3)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.x_train, other.x_train)


def test_make_blobs_clusters_are_tight_around_their_centres():
    data = make_blobs(400, 3, 5, seed=0, std=0.01, spread=5.0)
    x = np.concatenate([data.x_train, data.x_test]).astype(np.float64)
    y = np.concatenate([data.y_train, data.y_test])
    for c in range(5):
        points = x[y == c]
        centre = points.mean(axis=0)
        assert np.abs(centre).max() <= 5.0 + 0.01
        # normal noise of std 0.01 in 3-D: no point within 200 is 0.1 away
        assert np.linalg.norm(points - centre, axis=1).max() < 0.1
        assert abs(points.std(axis=0).mean() - 0.01) < 0.003


def test_make_spirals_points_lie_on_their_arms():
    turns = 1.25
    data = make_spirals(300, seed=4, n_classes=3, turns=turns, noise=0.0)
    assert data.name == "spirals" and data.n_features == 2 and data.n_classes == 3
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    x = np.concatenate([data.x_train, data.x_test]).astype(np.float64)
    y = np.concatenate([data.y_train, data.y_test])
    assert np.bincount(y).tolist() == [100, 100, 100]
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.max() <= 1.0 + 1e-6
    expected = 2 * np.pi * (turns * r + y / 3)
    # the angle of each point matches its arm's angle at its radius (float32 data)
    gap = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    assert np.abs(gap[r > 1e-3]).max() < 1e-3


def test_make_spirals_noise_and_seed():
    a = make_spirals(200, seed=1)
    b = make_spirals(200, seed=1)
    c = make_spirals(200, seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert len(a.x_test) == 40


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: make_blobs(5, 2, 3), ValueError),  # fewer than 2 per class
        (lambda: make_blobs(100, 2, 1), ValueError),
        (lambda: make_blobs(100, 0, 3), ValueError),
        (lambda: make_blobs(100.0, 2, 3), TypeError),
        (lambda: make_blobs(True, 2, 3), TypeError),
        (lambda: make_blobs(100, 2, 3, std=0.0), ValueError),
        (lambda: make_blobs(100, 2, 3, spread=float("inf")), ValueError),
        (lambda: make_blobs(100, 2, 3, seed=-2), ValueError),
        (lambda: make_blobs(100, 2, 3, test_fraction=1.5), ValueError),
        (lambda: make_spirals(3), ValueError),
        (lambda: make_spirals(100, noise=-0.1), ValueError),
        (lambda: make_spirals(100, turns=0), ValueError),
        (lambda: make_spirals(100, n_classes="2"), TypeError),
    ],
)
def test_generators_reject_bad_arguments(call, error):
    with pytest.raises(error):
        call()


def test_dataset_module_has_no_sklearn_dependency():
    source = Path(datasets.__file__).read_text(encoding="utf-8")
    assert "sklearn" not in source
