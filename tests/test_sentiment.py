from __future__ import annotations

import pytest

from monitor.scoring import Sentiment, VaderScorer
from monitor.scoring.sentiment import label_for


@pytest.fixture(scope="module")
def scorer() -> VaderScorer:
    return VaderScorer()


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("This product is terrible, I hate it and want a refund.", "negative"),
        ("Worst customer service ever. Awful.", "negative"),
        ("I love this, it is great and works perfectly!", "positive"),
        ("Thanks Acme, excellent support, really happy.", "positive"),
        ("The store opens at 9 on Monday.", "neutral"),
    ],
)
def test_clear_english_texts_get_the_right_label(
    scorer: VaderScorer, text: str, label: str
) -> None:
    sentiment = scorer.score(text)
    assert sentiment.label == label
    assert sentiment.confidence == "high"


def test_compound_sign_follows_the_label(scorer: VaderScorer) -> None:
    assert scorer.score("I hate this awful thing").compound < -0.5
    assert scorer.score("I love this wonderful thing").compound > 0.5


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_neutral_zero(scorer: VaderScorer, text: str) -> None:
    assert scorer.score(text) == Sentiment(compound=0.0, label="neutral")


def test_empty_text_stays_neutral_even_if_thresholds_exclude_zero() -> None:
    assert VaderScorer(negative_below=0.1, positive_above=0.2).score("").label == "neutral"


@pytest.mark.parametrize(
    ("compound", "label"),
    [
        (-1.0, "negative"),
        (-0.05, "negative"),
        (-0.0499, "neutral"),
        (0.0, "neutral"),
        (0.0499, "neutral"),
        (0.05, "positive"),
        (1.0, "positive"),
    ],
)
def test_default_thresholds_are_inclusive_at_plus_minus_0_05(compound: float, label: str) -> None:
    assert label_for(compound) == label


def test_custom_threshold_changes_the_label() -> None:
    text = "ok"  # VADER compound ~0.3: mildly positive
    assert VaderScorer().score(text).label == "positive"
    strict = VaderScorer(negative_below=-0.5, positive_above=0.5)
    sentiment = strict.score(text)
    assert sentiment.label == "neutral"
    assert sentiment.compound == VaderScorer().score(text).compound


def test_crossed_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError):
        VaderScorer(negative_below=0.2, positive_above=-0.2)


def test_the_analyzer_is_built_once_per_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.scoring.sentiment as module

    built = 0
    real = module.Vader

    def counting() -> object:
        nonlocal built
        built += 1
        return real()

    monkeypatch.setattr(module, "Vader", counting)
    scorer = VaderScorer()
    for text in ["good", "bad", "fine"]:
        scorer.score(text)
    assert built == 1
