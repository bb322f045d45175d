"""How well and how fast brandmon's scorer reads sentiment, next to bare VADER and to itself
without its models, on real labelled posts.

    .venv/bin/python bench/sentiment.py [--shared ../shared/data/sentiment] [--repeat 5]

Prints, as negative-class precision / recall / F1 and 3-class accuracy:
- the hand-written mentions of ``bench/data/heldout.jsonl`` (and triage accuracy on them);
- the real brand tweets of ``brand_tweets_apple.csv``, on the rows the English model did not
  train on (``monitor.training.split``), with the brand's terms configured as a user would;
- each language's ``train/<language>.csv``, on its held-out rows: brandmon without models (the
  keyword lists; VADER and the rules for English) and with them, and how often the language was
  detected right (no hint given);
- speed: ``score_many`` and the whole ``brandmon score`` process against bare VADER over the
  same mixed-language texts, as ratios (target: at least half of bare VADER's speed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.scoring.language import detect_language
from monitor.scoring.model import ModelShelf
from monitor.scoring.sentiment import Post, label_for
from monitor.training import Figures, read_labelled_csv, split
from monitor.triage import triage

HERE = Path(__file__).parent
SHARED = HERE.resolve().parents[1] / "shared" / "data" / "sentiment"
BRAND = {"Apple": ["apple", "@apple", "#apple", "aapl", "$aapl", "#aapl"]}
"""The brand of the brand tweets, configured as its team would (name, handle, ticker)."""
PROCESS_PASSES = 50
"""The whole-process run reads the mixed texts this many times over: enough lines that what
each process loads at start (models, lexicons) counts as it does in a daemon, hardly at all."""


def vader_labels(texts: Sequence[str]) -> list[str]:
    vader = SentimentIntensityAnalyzer()
    return [label_for(vader.polarity_scores(t)["compound"]) for t in texts]


def labels(scorer: ComplaintAwareScorer, texts: Sequence[str], brands=()) -> list[str]:
    return [s.label for s in scorer.score_many([Post(t, None, brands) for t in texts])]


def line(name: str, figures: Figures, extra: str = "") -> None:
    f = figures
    print(f"  {name:24}{f.precision:6.2f}{f.recall:6.2f}{f.f1:6.2f}{f.accuracy:7.2f}  {extra}")


def header(title: str) -> None:
    print(f"\n{title}\n  {'':24}{'P':>6}{'R':>6}{'F1':>6}{'acc':>7}")


def handwritten(plain: ComplaintAwareScorer, full: ComplaintAwareScorer) -> list[str]:
    rows = [json.loads(x) for x in (HERE / "data/heldout.jsonl").read_text().splitlines() if x]
    texts = [r["text"] for r in rows]
    actual = [r["label"] for r in rows]
    header(f"hand-written mentions ({len(rows)}, bench/data/heldout.jsonl)")
    line("bare VADER", Figures.of(vader_labels(texts), actual))
    line("brandmon, no models", Figures.of(labels(plain, texts), actual))
    scored = full.score_many([Post(t) for t in texts])
    line("brandmon", Figures.of([s.label for s in scored], actual))
    right = sum(
        triage(r["text"], s, 0.0).category == r["category"]
        for r, s in zip(rows, scored, strict=True)
    )
    print(f"  triage category right: {right}/{len(rows)} ({right / len(rows):.0%})")
    return texts


def brand_tweets(
    shared: Path, plain: ComplaintAwareScorer, full: ComplaintAwareScorer
) -> list[str]:
    _, test = split(read_labelled_csv(shared / "brand_tweets_apple.csv"))
    texts, actual = [e.text for e in test], [e.label for e in test]
    header(f"real brand tweets ({len(test)} held out of brand_tweets_apple.csv)")
    line("bare VADER", Figures.of(vader_labels(texts), actual))
    line("brandmon, no models", Figures.of(labels(plain, texts, ["Apple"]), actual))
    line("brandmon", Figures.of(labels(full, texts, ["Apple"]), actual))
    return texts


def languages(shared: Path, plain: ComplaintAwareScorer, full: ComplaintAwareScorer) -> list[str]:
    print(f"\nheld-out rows of {shared / 'train'}/<language>.csv (no language hint)")
    columns = "P   R   F1  acc"
    print(f"  {'':4}{'rows':>6}  {'no models: ' + columns:>27}  {'brandmon: ' + columns:>27}")
    mixed: list[str] = []
    for path in sorted((shared / "train").glob("*.csv")):
        _, test = split(read_labelled_csv(path))
        texts, actual = [e.text for e in test], [e.label for e in test]
        mixed += texts[:150]
        before = Figures.of(labels(plain, texts), actual)
        after = Figures.of(labels(full, texts), actual)
        detected = sum(detect_language(t) == path.stem for t in texts) / len(texts)
        three = "neutral" in actual
        cells = [
            f"{f.precision:5.2f}{f.recall:5.2f}{f.f1:5.2f}"
            + (f"{f.accuracy:5.2f}" if three else "    -")
            for f in (before, after)
        ]
        print(
            f"  {path.stem:4}{len(test):6}  {cells[0]:>27}  {cells[1]:>27}  language {detected:.1%}"
        )
    return mixed


def texts_per_second(
    score: Callable[[Sequence[str]], object], texts: Sequence[str], repeat: int
) -> float:
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        score(texts)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def speed(
    full: ComplaintAwareScorer, texts: Sequence[str], english: Sequence[str], repeat: int
) -> None:
    vader = SentimentIntensityAnalyzer()
    print(f"\nspeed, best of {repeat}")
    for name, some in (
        (f"{len(texts)} mixed-language texts", texts),
        ("the brand tweets", english),
    ):
        bare = texts_per_second(lambda ts: [vader.polarity_scores(t) for t in ts], some, repeat)
        ours = texts_per_second(lambda ts: full.score_many([Post(t) for t in ts]), some, repeat)
        print(f"  {name}: bare VADER {bare:,.0f}/s, brandmon {ours:,.0f}/s: {ours / bare:.2f}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
        for _ in range(PROCESS_PASSES):
            file.writelines(t.replace("\n", " ") + "\n" for t in texts)
    count = len(texts) * PROCESS_PASSES
    bare_process = _process_rate([sys.executable, "-c", _BARE_VADER], file.name, count)
    brandmon = str(Path(sys.executable).with_name("brandmon"))
    ours_process = _process_rate([brandmon, "score"], file.name, count)
    os.unlink(file.name)
    print(
        f"  whole process over {count} lines: `python -c <VADER loop>` {bare_process:,.0f}/s, "
        f"`brandmon score` {ours_process:,.0f}/s, ratio {ours_process / bare_process:.2f}"
    )


_BARE_VADER = """
import sys, json
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
v = SentimentIntensityAnalyzer()
for line in sys.stdin:
    sys.stdout.write(json.dumps(v.polarity_scores(line.rstrip("\\n"))) + "\\n")
"""


def _process_rate(command: list[str], path: str, count: int) -> float:
    with open(path, encoding="utf-8") as lines:
        started = time.perf_counter()
        subprocess.run(command, stdin=lines, stdout=subprocess.DEVNULL, check=True)
    return count / (time.perf_counter() - started)


def main(shared: Path, repeat: int) -> None:
    plain = ComplaintAwareScorer(brand_terms=BRAND, models=ModelShelf([]))
    full = ComplaintAwareScorer(brand_terms=BRAND)
    handwritten(plain, full)
    english = brand_tweets(shared, plain, full)
    mixed = languages(shared, plain, full)
    speed(full, mixed, english, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.shared, arguments.repeat)
