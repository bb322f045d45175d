"""How often and how fast ``detect_language`` names the language of short social posts.

    .venv/bin/python bench/language.py [--data ../shared/data/sentiment] [--sample 500]
                                       [--seed 0] [--repeat 3]

For each ``train/<lang>.csv`` (``label,text``) of the shared sentiment sets, takes ``--sample``
texts (a fixed-seed shuffle, see ``held_out``) and runs ``detect_language(text)`` with no hint.
Prints per language the share detected as that language, the most common wrong answers and
texts per second; then ``brand_tweets_apple.csv`` (English brand tweets: English or None is
right), and detection's speed against bare VADER's (``polarity_scores``) on the same mixed
texts in the same run.  Targets: >= 95 % right in each language, and the whole scorer at no
less than half of bare VADER's speed, so detection has to cost well under what VADER does.

Texts go one at a time here, as a caller of ``detect_language`` sends them; the scorer sends a
batch (``detect_languages``), where the language-identification model costs far less per text.
That model was trained on 80 % of the same files, so some texts here are ones it learnt from:
``bench/sentiment.py`` measures detection on the held-out rows alone.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.scoring.language import detect_language

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"


def read_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as file:
        return [row["text"] for row in csv.DictReader(file) if row["text"].strip()]


def held_out(texts: Sequence[str], sample: int, seed: int) -> list[str]:
    """The first ``sample`` texts of a ``seed``-shuffled copy of ``texts``: what this bench
    measures on, and so what anything trained from the same files must leave out."""
    shuffled = list(texts)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:sample]


def speed(function: Callable[[str], object], texts: Sequence[str], repeat: int) -> float:
    """Texts per second: the best of ``repeat`` passes."""
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            function(text)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def report(name: str, texts: Sequence[str], right: set[str | None], repeat: int) -> None:
    found = Counter(detect_language(text) for text in texts)
    hits = sum(n for language, n in found.items() if language in right)
    wrong = ", ".join(
        f"{language} {n}" for language, n in found.most_common() if language not in right
    )
    rate = speed(detect_language, texts, repeat)
    print(f"{name:8}{len(texts):6}{hits / len(texts):9.1%}{rate:10,.0f}   {wrong[:60]}")


def main(data: Path, sample: int, seed: int, repeat: int) -> None:
    detect_language("Dziękuję, świetna obsługa")  # builds the detector
    mixed: list[str] = []
    print(f"{'language':8}{'texts':>6}{'right':>9}{'texts/s':>10}   wrong answers")
    for path in sorted((data / "train").glob("*.csv")):
        texts = held_out(read_texts(path), sample, seed)
        mixed += texts
        report(path.stem, texts, {path.stem}, repeat)
    apple = held_out(read_texts(data / "brand_tweets_apple.csv"), sample, seed)
    report("apple", apple, {"en", None}, repeat)

    random.Random(seed).shuffle(mixed)
    vader = SentimentIntensityAnalyzer()
    detection, bare = 0.0, 0.0
    for _ in range(repeat):  # in turns, so a busy moment on the machine does not hit one only
        detection = max(detection, speed(detect_language, mixed, 1))
        bare = max(bare, speed(vader.polarity_scores, mixed, 1))
    print(
        f"mixed stream of {len(mixed)} texts: detection {detection:,.0f}/s, bare VADER"
        f" {bare:,.0f}/s; detection is {detection / bare:.2f}x VADER's speed"
        f" (VADER + detection: {1 / (1 + bare / detection):.2f} of bare VADER)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    main(arguments.data, arguments.sample, arguments.seed, arguments.repeat)
