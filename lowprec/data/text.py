"""Character-level text for language-model experiments: a bundled slice of Shakespeare,
a character tokenizer, a fixed train/validation split and seeded random windows.

The text is the first 719,854 characters (cut at the end of a speech) of the
"tiny shakespeare" file of Karpathy's char-rnn, a selection of Shakespeare's plays,
which are in the public domain; it is bundled gzipped (``shakespeare.txt.gz``, see the
README beside it), so a GPT trains offline.

Batches are windows of ``block_size + 1`` consecutive tokens, whose start positions
come from the raw 64-bit words of NumPy's PCG64 bit generator: batch ``k`` uses words
``k * batch_size`` to ``(k + 1) * batch_size - 1`` of the stream of ``seed``, reached
with ``PCG64.advance``. The words are fixed by the algorithm (unlike the methods of
``numpy.random.Generator``), so batch ``k`` is the same on every machine and NumPy
version, and a resumed run draws the batches it would have drawn.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np

from lowprec.data.datasets import _check_int

__all__ = [
    "CharTokenizer",
    "TextData",
    "VAL_FRACTION",
    "WindowSampler",
    "load_shakespeare",
]

VAL_FRACTION = 0.1
"""Share of the text, at its end, held out for validation (as nanoGPT's char data)."""

_SHAKESPEARE_FILE = "shakespeare.txt.gz"
_SHAKESPEARE_CHARS = 719_854

_SHAKESPEARE_DESCRIPTION = """\
Shakespeare, character level: the first 719,854 characters (65 distinct) of the
"tiny shakespeare" selection of his plays (Karpathy's char-rnn,
data/tinyshakespeare/input.txt), cut at the end of a speech. The plays are in the
public domain. Split: the first {n_train:,} characters train, the last {n_val:,}
validate."""


class CharTokenizer:
    """Characters to token ids and back; the vocabulary is the sorted set of characters.

    Parameters
    ----------
    chars : str
        The vocabulary: distinct characters, in id order.

    Examples
    --------
    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.chars, tok.vocab_size
    ('ehlo', 4)
    >>> ids = tok.encode("hole")
    >>> ids.tolist(), tok.decode(ids)
    ([1, 3, 2, 0], 'hole')
    """

    def __init__(self, chars: str) -> None:
        if not isinstance(chars, str):
            raise TypeError(f"chars must be a str, got {type(chars).__name__}")
        if not chars:
            raise ValueError("chars must hold at least one character, got ''")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must be distinct characters")
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is the sorted set of ``text``'s characters."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``, as int64.

        Raises
        ------
        ValueError
            Naming the characters of ``text`` that are not in the vocabulary.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        unknown = sorted(set(text) - self._ids.keys())
        if unknown:
            raise ValueError(
                f"text has characters not in the vocabulary: {''.join(unknown)!r}"
            )
        return np.fromiter((self._ids[c] for c in text), np.int64, len(text))

    def decode(self, ids: object) -> str:
        """The text of token ids ``ids`` (any integer array-like)."""
        a = np.asarray(ids)
        if a.size and a.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {a.dtype}")
        a = a.reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
            raise ValueError(
                f"ids must lie in [0, {self.vocab_size}), got values in "
                f"[{a.min()}, {a.max()}]"
            )
        return "".join(self.chars[i] for i in a.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class TextData(NamedTuple):
    """A tokenized text split into a train part and a validation part.

    Attributes
    ----------
    train, val : ndarray of int64, shape (n,)
        Token ids.
    tokenizer : CharTokenizer
        The tokenizer that made them.
    name : str
        Short name (``"shakespeare"``).
    description : str
        Source, licence and split.
    """

    train: np.ndarray
    val: np.ndarray
    tokenizer: CharTokenizer
    name: str
    description: str


@lru_cache(maxsize=1)
def _shakespeare_text() -> str:
    raw = resources.files("lowprec.data").joinpath(_SHAKESPEARE_FILE).read_bytes()
    text = gzip.decompress(raw).decode("utf-8")
    if len(text) != _SHAKESPEARE_CHARS:
        raise RuntimeError(
            f"{_SHAKESPEARE_FILE} holds {len(text)} characters, expected "
            f"{_SHAKESPEARE_CHARS}: the package data is damaged"
        )
    return text


def load_shakespeare() -> TextData:
    """The bundled Shakespeare text, tokenized by character, split 90/10.

    The split is fixed: the first 90% of the characters train, the last 10% validate
    (so no window straddles the two parts).

    Examples
    --------
    >>> data = load_shakespeare()
    >>> data.tokenizer.vocab_size, len(data.train), len(data.val)
    (65, 647868, 71986)
    >>> data.tokenizer.decode(data.train[:14])
    'First Citizen:'
    """
    text = _shakespeare_text()
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    n_train = int(len(ids) * (1 - VAL_FRACTION))
    train, val = ids[:n_train], ids[n_train:]
    for part in (train, val):
        part.flags.writeable = False
    description = _SHAKESPEARE_DESCRIPTION.format(n_train=len(train), n_val=len(val))
    return TextData(train, val, tok, "shakespeare", description)


class WindowSampler:
    """Seeded random windows of a token array: inputs and next-token targets.

    Parameters
    ----------
    data : ndarray of int, shape (n,)
        Token ids.
    block_size : int
        Tokens per window (the model's context length), ``1 <= block_size < n``.
    batch_size : int
        Windows per batch.
    seed : int, default 0
        Non-negative seed of the PCG64 stream of start positions.

    Examples
    --------
    >>> import numpy as np
    >>> s = WindowSampler(np.arange(100), block_size=4, batch_size=2, seed=1)
    >>> x, y = s.batch(0)
    >>> x.shape, bool((y == x + 1).all())
    ((2, 4), True)
    >>> bool((s.batch(0)[0] == x).all())
    True
    """

    def __init__(
        self, data: np.ndarray, block_size: int, batch_size: int, *, seed: int = 0
    ) -> None:
        data = np.asarray(data)
        if data.ndim != 1 or data.dtype.kind not in "iu":
            raise TypeError(
                f"data must be a 1-D integer array, got {data.dtype} of shape "
                f"{data.shape}"
            )
        self.block_size = _check_int("block_size", block_size, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        if data.size <= self.block_size:
            raise ValueError(
                f"block_size must be < the data's length {data.size}, got "
                f"{self.block_size}"
            )
        self.data = data.astype(np.int64, copy=False)
        self.n_starts = data.size - self.block_size

    def starts(self, step: int) -> np.ndarray:
        """The window start positions of batch ``step`` (int64, shape (batch_size,))."""
        step = _check_int("step", step, 0)
        bits = np.random.PCG64(self.seed)
        bits.advance(step * self.batch_size)
        words = bits.random_raw(self.batch_size)
        # Multiply-shift maps a 64-bit word to [0, n_starts) (Lemire 2019), in exact
        # Python integers: no float rounding, no modulo of a non-power of two.
        return np.array([(int(w) * self.n_starts) >> 64 for w in words], np.int64)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of batch ``step``: int64 arrays of shape (B, T)."""
        offsets = self.starts(step)[:, None] + np.arange(self.block_size + 1)
        windows = self.data[offsets]
        return windows[:, :-1], windows[:, 1:]
