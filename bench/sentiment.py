"""How well and how fast complaints are recognised: bare VADER against brandmon's scorer.

    .venv/bin/python bench/sentiment.py [--data bench/data/heldout.jsonl] [--repeat 20]

The data is a held-out set of hand-labelled mentions addressed to brands (telecom, food, retail,
banking, airlines, software, delivery, utilities; English and eight other languages), written
separately from the tuning set in ``tests/data/labelled.jsonl`` and never used to tune the rules.
Prints precision, recall and F1 of the negative class for both, their speed in texts per second
over the same texts in the same process, and triage accuracy.  Targets: F1 >= 0.80 with
precision >= 0.85, at no less than half of bare VADER's speed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.scoring.sentiment import NEGATIVE_BELOW
from monitor.triage import triage


def negative_class(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float, float]:
    """Precision, recall and F1 of the negative class."""
    hits = sum(p and a for p, a in zip(predicted, actual, strict=True))
    precision = hits / max(1, sum(predicted))
    recall = hits / max(1, sum(actual))
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def speeds(
    scorers: Sequence[Callable[[str], object]], texts: Sequence[str], repeat: int
) -> list[float]:
    """Texts per second of each scorer: the best of ``repeat`` passes, taken in turns so a
    busy moment on the machine does not land on one scorer only."""
    best = [0.0] * len(scorers)
    for _ in range(repeat):
        for i, score in enumerate(scorers):
            started = time.perf_counter()
            for text in texts:
                score(text)
            best[i] = max(best[i], len(texts) / (time.perf_counter() - started))
    return best


def main(data: Path, repeat: int) -> None:
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line]
    texts = [r["text"] for r in rows]
    actual = [r["label"] == "negative" for r in rows]
    vader = SentimentIntensityAnalyzer()
    scorer = ComplaintAwareScorer()
    scorer.score("Dziękuję, świetna obsługa")  # loads the language models

    bare = [vader.polarity_scores(t)["compound"] <= NEGATIVE_BELOW for t in texts]
    scored = [scorer.score(t) for t in texts]
    ours = [s.label == "negative" for s in scored]
    vader_speed, our_speed = speeds([vader.polarity_scores, scorer.score], texts, repeat)
    right = sum(
        triage(r["text"], s, 0.0).category == r["category"]
        for r, s in zip(rows, scored, strict=True)
    )

    print(f"{len(rows)} mentions, {sum(actual)} negative ({data})")
    print(f"{'':22}{'precision':>10}{'recall':>8}{'F1':>7}{'texts/s':>10}")
    for name, predicted, rate in (
        ("bare VADER", bare, vader_speed),
        ("complaint-aware", ours, our_speed),
    ):
        precision, recall, f1 = negative_class(predicted, actual)
        print(f"{name:22}{precision:10.2f}{recall:8.2f}{f1:7.2f}{rate:10,.0f}")
    print(f"speed ratio: {our_speed / vader_speed:.2f} of bare VADER (target >= 0.50)")
    english = [t for t, s in zip(texts, scored, strict=True) if s.language == "en"]
    vader_english, ours_english = speeds([vader.polarity_scores, scorer.score], english, repeat)
    print(f"  on the {len(english)} English texts alone: {ours_english / vader_english:.2f}")
    print(f"triage category right: {right}/{len(rows)} ({right / len(rows):.0%})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data/heldout.jsonl")
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args()
    main(arguments.data, arguments.repeat)
