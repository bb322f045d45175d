"""The features a sentiment model reads: hashed character n-grams.

A text becomes the buckets (in ``[0, BUCKETS)``) of the character 1–5-grams of its normalised
form, padded with a space so word starts and ends are grams of their own.  Character grams need
no word splitting (Chinese has no spaces, Polish and Serbian inflect every word), no vocabulary
file, and are the same in training and at run time; on the training sets they score as well as
character 1–4-grams plus word 1–2-grams.  A whole batch of texts is hashed in a handful of numpy
operations, which keeps a model at a few microseconds per mention.

Models read texts masked as the scorer masks them (links, handles and brand names replaced by
one token, hashtags split: ``monitor.scoring.masking``).  Normalising then makes the grams
generalise: case folded, digits replaced by 0, a character repeated three or more times cut to
two ("sooooo" → "soo").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BUCKETS_LOG2 = 18
BUCKETS = 1 << BUCKETS_LOG2
LONGEST = 5
"""Grams are 1 to ``LONGEST`` characters long."""
FEATURES_VERSION = 3
"""Changed whenever the features change, so a model trained on other features is refused."""

_DIGIT = re.compile(r"\d")
_PAD = "\0" * (LONGEST - 1)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(0x100000001B3)
_SHIFT = np.uint64(64 - BUCKETS_LOG2)
_SALT = [np.uint64(n * 0x51ED2701) for n in range(1, LONGEST + 1)]


def normalise(text: str) -> str:
    """The form of ``text`` that grams are taken from, but for its runs of a character (cut
    to two in ``grams``, over a whole batch at once: a regular expression with a
    back-reference cost more than the rest of the normalising)."""
    return " ".join(_DIGIT.sub("0", text.casefold()).split())


def grams(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(buckets, owners)``: the bucket of every gram of every text, repeats included, and the
    index in ``texts`` of the text each gram comes from, in the order of ``texts`` (every text
    has grams: its padding)."""
    if not texts:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    forms = [f" {normalise(text)} " for text in texts]
    lengths = np.fromiter((len(form) for form in forms), dtype=np.int64, count=len(forms))
    # each form is followed by LONGEST - 1 NULs, so no gram reaches into the next text
    joined = _PAD.join(forms) + _PAD + _PAD
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    spans = lengths + (LONGEST - 1)
    # a character that repeats the two before it goes: runs are cut to two ("sooo" → "soo"),
    # but for the padding
    repeats = np.zeros(len(points), dtype=bool)
    repeats[2:] = (points[2:] == points[1:-1]) & (points[1:-1] == points[:-2])
    ends = np.cumsum(spans)  # each form's padding ends there, the last one's before two pads
    repeats[spans.sum() :] = False
    for n in range(1, LONGEST):
        repeats[ends - n] = False
    if repeats.any():
        lengths -= np.add.reduceat(repeats[: spans.sum()], ends - spans)
        spans = lengths + (LONGEST - 1)
        points = points[~repeats]
    points = points.astype(np.uint64)
    starts = len(points) - (LONGEST - 1)
    owners = np.repeat(np.arange(len(forms)), spans)
    offset = np.arange(starts) - np.repeat(np.cumsum(spans) - spans, spans)
    inside = offset < np.repeat(lengths, spans)
    rolling = np.zeros(starts, dtype=np.uint64)
    hashed = np.empty((starts, LONGEST), dtype=np.uint64)
    for n in range(LONGEST):
        rolling = rolling * _STEP + points[n : n + starts]
        hashed[:, n] = ((rolling + _SALT[n]) * _MIX) >> _SHIFT
    return hashed[inside].ravel().astype(np.intp), np.repeat(owners[inside], LONGEST)


@dataclass(frozen=True, slots=True)
class Grams:
    """The grams of a batch of texts, hashed once for every model that reads some of them (the
    language model and a sentiment model read the same masked texts)."""

    buckets: np.ndarray
    """The bucket of every gram, text after text."""
    counts: np.ndarray
    """How many grams each text has."""

    @classmethod
    def of(cls, texts: Sequence[str]) -> Grams:
        buckets, owners = grams(texts)
        return cls(buckets, np.bincount(owners, minlength=len(texts)))

    def __len__(self) -> int:
        return len(self.counts)

    def select(self, indices: Sequence[int]) -> Grams:
        """The grams of the texts at ``indices``, in that order."""
        counts = self.counts[indices]
        ends = np.cumsum(counts)
        starts = np.cumsum(self.counts) - self.counts
        moves = np.repeat(starts[indices] - (ends - counts), counts)
        return Grams(self.buckets[np.arange(ends[-1] if len(ends) else 0) + moves], counts)
