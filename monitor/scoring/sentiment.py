"""Sentiment scoring behind a small interface, so a better scorer can replace VADER later.

A scorer turns a text into a ``Sentiment``: a compound score in ``[-1, 1]``, a label, and how
much to trust it.  ``VaderScorer`` is the default; it is lexicon based and English only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from monitor.scoring.limits import SCORED_CHARS, head
from monitor.scoring.vader import Vader

NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05


@dataclass(frozen=True, slots=True)
class Sentiment:
    """The sentiment of one text."""

    compound: float
    """From -1 (most negative) to 1 (most positive)."""
    label: str
    """``"negative"``, ``"neutral"`` or ``"positive"``."""
    confidence: str = "high"
    """``"high"`` or ``"low"``; low for scores a scorer is unsure of, e.g. non-English text."""
    language: str | None = None
    """ISO 639-1 code of the language the text was scored as, when the scorer knows it."""
    rules: tuple[str, ...] = ()
    """The complaint rule families (or keyword kinds) that matched, for triage."""


class Post(NamedTuple):
    """A text to score, the language its source reported (if any), the brands it mentions (a
    brand may have rules of its own), and the stars a review gave (1 to 5), if it is one."""

    text: str
    language: str | None = None
    brands: Sequence[str] = ()
    rating: int | None = None


class SentimentScorer(Protocol):
    """Anything that can score texts, one or a batch at a time (a batch may be much faster)."""

    def score(
        self, text: str, *, language: str | None = None, brands: Sequence[str] = ()
    ) -> Sentiment: ...

    def score_many(self, posts: Sequence[Post]) -> list[Sentiment]: ...


def label_for(
    compound: float,
    negative_below: float = NEGATIVE_BELOW,
    positive_above: float = POSITIVE_ABOVE,
) -> str:
    """Label ``compound``: at or below ``negative_below`` is negative, at or above
    ``positive_above`` positive, anything between neutral (VADER's documented convention)."""
    if compound <= negative_below:
        return "negative"
    if compound >= positive_above:
        return "positive"
    return "neutral"


class VaderScorer:
    """VADER compound with the usual ±0.05 label thresholds."""

    def __init__(
        self, negative_below: float = NEGATIVE_BELOW, positive_above: float = POSITIVE_ABOVE
    ) -> None:
        if negative_below >= positive_above:
            raise ValueError(
                f"negative_below ({negative_below}) must be less than "
                f"positive_above ({positive_above})"
            )
        self.negative_below = negative_below
        self.positive_above = positive_above
        # Building the analyzer loads the lexicon from disk, so do it once per scorer.
        self._analyzer = Vader()

    def score(
        self, text: str, *, language: str | None = None, brands: Sequence[str] = ()
    ) -> Sentiment:
        """Score the first ``SCORED_CHARS`` characters of ``text`` as English; empty or blank
        text is neutral 0.0."""
        text = head(text, SCORED_CHARS)
        if not text.strip():
            return Sentiment(compound=0.0, label="neutral")
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        return Sentiment(
            compound=compound,
            label=label_for(compound, self.negative_below, self.positive_above),
        )

    def score_many(self, posts: Sequence[Post]) -> list[Sentiment]:
        return [self.score(post.text) for post in posts]
