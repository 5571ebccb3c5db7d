"""The bundled Shakespeare text, the character tokenizer and the window sampler."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pytest

from lowprec.data.text import CharTokenizer, WindowSampler, load_shakespeare

SHA256 = "928a764607db5edfcb197be2eb47f6e8bb8010364692d08456bb40d31841f631"


def test_bundled_text_is_the_documented_slice():
    raw = resources.files("lowprec.data").joinpath("shakespeare.txt.gz").read_bytes()
    assert len(raw) <= 300_000
    text = gzip.decompress(raw)
    assert hashlib.sha256(text).hexdigest() == SHA256
    assert text.startswith(b"First Citizen:\nBefore we proceed any further")


def test_split_is_fixed_and_covers_the_text():
    data = load_shakespeare()
    assert data.tokenizer.vocab_size == 65
    assert (len(data.train), len(data.val)) == (647_868, 71_986)
    text = gzip.decompress(
        resources.files("lowprec.data").joinpath("shakespeare.txt.gz").read_bytes()
    ).decode()
    assert data.tokenizer.decode(np.concatenate([data.train, data.val])) == text
    assert data.tokenizer.chars == "".join(sorted(set(text)))
    with pytest.raises(ValueError):
        data.train[0] = 1  # read-only: a cached load cannot be corrupted


def test_tokenizer_round_trip_and_errors():
    tok = CharTokenizer.from_text("To be, or not to be")
    s = "be not to"
    assert tok.decode(tok.encode(s)) == s
    with pytest.raises(ValueError, match="not in the vocabulary: 'QZ'"):
        tok.encode("ZQ be")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 9\)"):
        tok.decode([0, 9])
    with pytest.raises(TypeError, match="ids must be integers"):
        tok.decode(np.array([0.0]))
    with pytest.raises(ValueError, match="distinct"):
        CharTokenizer("aa")


@pytest.mark.parametrize("seed", [0, 7])
def test_sampler_batches_come_from_the_raw_pcg64_stream(seed):
    data = np.arange(1000, dtype=np.int64) * 3
    s = WindowSampler(data, block_size=8, batch_size=5, seed=seed)
    words = np.random.PCG64(seed).random_raw(15)  # batches 0, 1, 2
    n = 1000 - 8
    for step in (2, 0, 1):  # any order: batch k depends on k only
        expected = [(int(w) * n) >> 64 for w in words[5 * step : 5 * step + 5]]
        assert s.starts(step).tolist() == expected
        x, y = s.batch(step)
        assert x.shape == y.shape == (5, 8)
        assert (x[:, 0] == data[expected]).all()
        assert (y == x + 3).all()


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="block_size must be < the data's length 5"):
        WindowSampler(np.arange(5), 5, 1)
    with pytest.raises(TypeError, match="data must be a 1-D integer array"):
        WindowSampler(np.zeros(5), 2, 1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        WindowSampler(np.arange(5), 2, 0)
    with pytest.raises(ValueError, match="step must be >= 0"):
        WindowSampler(np.arange(5), 2, 1).batch(-1)
