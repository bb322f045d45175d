"""A review's stars are part of its score: 1 or 2 stars are negative whatever the words, and
4 or 5 stars over a complaint read as mixed, not as a complaint."""

from __future__ import annotations

import pytest

from monitor.scoring import Post
from monitor.scoring.complaints import ComplaintAwareScorer


@pytest.fixture(scope="module")
def scorer() -> ComplaintAwareScorer:
    return ComplaintAwareScorer()


def test_one_star_is_negative_even_in_kind_words(scorer: ComplaintAwareScorer) -> None:
    [kind, unrated] = scorer.score_many(
        [Post("Lovely design, thank you", "en", rating=1), Post("Lovely design, thank you", "en")]
    )
    assert unrated.label == "positive"
    assert kind.label == "negative"
    assert "stars:1" in kind.rules


def test_five_stars_over_a_complaint_is_mixed_not_a_complaint(
    scorer: ComplaintAwareScorer,
) -> None:
    text = "The app crashes when I upload a photo"
    [rated, unrated] = scorer.score_many([Post(text, "en", rating=5), Post(text, "en")])
    assert unrated.label == "negative"
    assert rated.label != "negative"
    assert rated.compound > unrated.compound


def test_stars_alone_score_a_review_without_text(scorer: ComplaintAwareScorer) -> None:
    [one, three, five] = scorer.score_many(
        [Post("", rating=1), Post("", rating=3), Post("", rating=5)]
    )
    assert (one.label, three.label, five.label) == ("negative", "neutral", "positive")
    assert one.confidence == "high"
    assert three.confidence == "low"


def test_stars_weigh_in_every_language(scorer: ComplaintAwareScorer) -> None:
    [german] = scorer.score_many([Post("Tolle App, gerne wieder", "de", rating=2)])
    assert german.label == "negative"
