"""``Vader`` must score exactly as the vaderSentiment library does: it only skips work."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.scoring.vader import Vader

ROOT = Path(__file__).parents[1]
# VADER's own examples, and the cases each of its rules is written for
RULE_CASES = [
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "The book was good.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "no good, no no bad, no or nor happy",
    "it was never so good, never this bad, without doubt great, without a doubt awful",
    "the shit, the bomb, yeah right, kiss of death, to die for, bus stop fine",
    "least good, at least good, very least good, the least bad thing",
    "sort of happy, kind of sad, just enough love",
    "I don’t like it – the app isn’t working 😡",
    "",
    "   ",
    "!!!???",
    "ok ok ok?? good!!!!!",
]


def corpus() -> list[str]:
    texts = list(RULE_CASES)
    for path in (
        ROOT / "tests" / "data" / "labelled.jsonl",
        ROOT / "bench" / "data" / "heldout.jsonl",
    ):
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]
    return texts


def word_salads(texts: list[str], n: int) -> list[str]:
    """Texts that put negations, boosters, caps and idioms in every position."""
    rng = random.Random(6)
    words = " ".join(texts).split()
    salads = [" ".join(rng.choices(words, k=rng.randrange(1, 50))) for _ in range(n)]
    return salads + [salad.upper() for salad in salads[:200]]


@pytest.fixture(scope="module")
def analyzers() -> tuple[SentimentIntensityAnalyzer, Vader]:
    return SentimentIntensityAnalyzer(), Vader()


def test_scores_every_written_text_as_the_library_does(
    analyzers: tuple[SentimentIntensityAnalyzer, Vader],
) -> None:
    library, ours = analyzers
    texts = corpus()
    assert len(texts) > 350
    differ = [t for t in texts if ours.polarity_scores(t) != library.polarity_scores(t)]
    assert differ == []


def test_scores_shuffled_words_as_the_library_does(
    analyzers: tuple[SentimentIntensityAnalyzer, Vader],
) -> None:
    library, ours = analyzers
    salads = word_salads(corpus(), 3000)
    differ = [t for t in salads if ours.polarity_scores(t) != library.polarity_scores(t)]
    assert differ == []
    assert len({ours.polarity_scores(t)["compound"] for t in salads}) > 500  # not all zero


def test_scores_texts_with_emoji_as_the_library_does(
    analyzers: tuple[SentimentIntensityAnalyzer, Vader],
) -> None:
    library, ours = analyzers
    rng = random.Random(7)
    emoji = sorted(key for key in library.emojis if len(key) == 1)
    texts = []
    for salad in word_salads(corpus(), 500):
        chars = list(salad)
        for _ in range(rng.randrange(1, 4)):  # inside words, after spaces, at either end
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(emoji))
        texts.append("".join(chars))
    differ = [t for t in texts if ours.polarity_scores(t) != library.polarity_scores(t)]
    assert differ == []
