"""End-to-end ingest throughput against bare VADER.

    .venv/bin/python bench/ingest.py [--mentions 20000] [--workers 1] [--profile] [--repeat 5]
                                     [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Generates mentions from hand-written ones (mixed sources and so lengths, languages, brands,
duplicates), pushes them through the whole pipeline (match, de-duplicate, score, triage, store
into SQLite, then aggregate per brand), and times bare VADER over the same texts.  Prints
mentions/s for both and the ratio, for the whole mix and for its short posts alone (X, Bluesky,
Mastodon: the per-mention costs weigh most there); the target is the pipeline at >= 50 % of
bare VADER's throughput on one core.  Then the same for the whole process as a user runs it:
``brandmon ingest --jsonl`` (which scores in ``[service] workers`` processes while it stores:
one on a machine of two cores) and ``brandmon ingest --workers 0`` (all in one process) against
a Python process that reads the same JSON lines and runs VADER over each text (start-up and
JSON parsing count on all sides).  ``--workers N`` adds the in-process pipeline with N worker
processes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.config import parse_config
from monitor.model import RawMention
from monitor.pipeline import Pipeline
from monitor.scoring.language import detect_language
from monitor.storage import Storage

CONFIG = """
[storage]
url = "{db}"
{brands}
"""  # {db} is filled per run, {brands} once
CORPUS = [Path(__file__).parent / "data" / "heldout.jsonl"]
CORPUS.append(Path(__file__).parents[1] / "tests" / "data" / "labelled.jsonl")


def sentences() -> list[list[str]]:
    """Hand-written mentions (eight industries, nine languages) to build texts from, grouped
    by language so that a generated post is written in one."""
    by_language: dict[str | None, list[str]] = {}
    for path in CORPUS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line)["text"]
                by_language.setdefault(detect_language(text), []).append(text)
    return list(by_language.values())


@dataclass(frozen=True)
class SourceMix:
    """One kind of source in the generated stream: its share of mentions, how many sentences
    its posts have, and how its URLs look."""

    source_type: str
    share: float
    sentences: tuple[int, ...]  # drawn uniformly: repeat a length to make it likelier
    url: str


# Our estimate of a brand-monitoring stream (an assumption, not a measurement): mostly short
# social posts, then news and alert items (a title and a summary), forum threads and video
# descriptions.  Short posts are 60 % of mentions.
SOURCES = (
    SourceMix("x", 0.40, (1, 1, 1, 2), "https://x.com/u/status/{id}"),
    SourceMix("bluesky", 0.10, (1, 1, 2), "https://bsky.app/profile/u/post/{id}"),
    SourceMix("mastodon", 0.10, (1, 2, 3), "https://mastodon.social/@u/{id}"),
    SourceMix("rss", 0.20, (2, 3, 4, 5), "https://news.example.com/{id}/brand-story"),
    SourceMix("reddit", 0.12, (1, 2, 3, 4, 6, 8, 12), "https://www.reddit.com/r/x/comments/{id}"),
    SourceMix("hackernews", 0.03, (2, 3, 5, 8), "https://news.ycombinator.com/item?id={id}"),
    SourceMix("youtube", 0.05, (2, 4, 6, 10), "https://www.youtube.com/watch?v={id}"),
)
SHORT = {"x", "bluesky", "mastodon"}


def generate_mentions(
    n: int,
    brands: list[str],
    rng: random.Random,
    *,
    start: datetime | None = None,
    every: timedelta = timedelta(seconds=30),
) -> Iterator[RawMention]:
    """``n`` mentions, one every ``every`` from ``start`` (by default the last up to now: none
    dated ahead, which the pipeline would clamp and log), written from hand-labelled sentences
    (one language per post) as the ``SOURCES`` would carry them: a one-line post, a news
    summary, a forum thread.  About 5 % repeat an earlier id and 10 % name no brand."""
    if start is None:
        start = datetime.now(UTC).replace(microsecond=0) - every * n
    pools = sentences()
    weights = [len(pool) for pool in pools]
    shares = [source.share for source in SOURCES]
    for i in range(n):
        brand = rng.choice(brands)
        source = rng.choices(SOURCES, shares)[0]
        pool = rng.choices(pools, weights)[0]
        parts = rng.sample(pool, k=min(len(pool), rng.choice(source.sentences)))
        text = f"@{brand} " + " ".join(parts)
        if rng.random() < 0.1:  # not about any brand
            text = " ".join(parts)
        ident = str(rng.randrange(n)) if rng.random() < 0.05 else f"u{i}"  # some duplicates
        yield RawMention(
            source=source.source_type,
            source_type=source.source_type,
            external_id=ident,
            text=text,
            url=source.url.format(id=ident),
            author=f"user{i % 5000}",
            author_followers=int(rng.lognormvariate(6, 2)),
            likes=rng.randrange(100),
            published_at=start + every * i,
        )


def run_pipeline(
    config_text: str, mentions: list[RawMention], workers: int, postgres: str | None = None
) -> tuple[float, int]:
    """Mentions per second through the whole pipeline into a fresh SQLite file (or a fresh
    schema on ``postgres``, its tables dropped first), and how many were stored."""
    with tempfile.TemporaryDirectory() as tmp:
        if postgres:
            empty = Storage(postgres)
            empty.drop_schema()
            empty.close()
        url = postgres or f"sqlite:///{Path(tmp) / 'bench.db'}"
        config = parse_config(config_text.format(db=url), "bench.toml")
        storage = Storage(config.storage.url, batch_size=config.storage.batch_size)
        storage.create_schema()
        pipeline = Pipeline(config, storage, workers=workers)
        pipeline.process(mentions[:50])  # start the workers and load the language models
        started = time.perf_counter()
        batches = (mentions[i : i + 1000] for i in range(50, len(mentions), 1000))
        stored = sum(report.stored for report, _ in pipeline.process_all(batches))
        end = mentions[-1].published_at + timedelta(minutes=5)  # type: ignore[operator]
        for brand in config.brands:
            storage.activity(brand.name, mentions[0].published_at, end, timedelta(minutes=5))  # type: ignore[arg-type]
        rate = (len(mentions) - 50) / (time.perf_counter() - started)
        pipeline.close()
        storage.close()
    return rate, stored


def vader_rate(texts: list[str]) -> float:
    """Bare VADER's mentions per second over ``texts``."""
    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    for text in texts:
        analyzer.polarity_scores(text)
    return len(texts) / (time.perf_counter() - started)


def process_rates(config_text: str, mentions: list[RawMention]) -> tuple[float, float, float]:
    """Mentions per second of a bare-VADER process, of the whole ``brandmon ingest`` process
    (into a fresh SQLite file) over ``mentions`` written as JSON lines, and of the same with
    ``--workers 0`` (scoring in the process that stores)."""
    with tempfile.TemporaryDirectory() as tmp:
        lines, config = Path(tmp) / "mentions.jsonl", Path(tmp) / "brandmon.toml"
        lines.write_text("".join(json.dumps(_line(m)) + "\n" for m in mentions), "utf-8")
        config.write_text(config_text.format(db=f"sqlite:///{Path(tmp) / 'bench.db'}"), "utf-8")
        brandmon = str(Path(sys.executable).with_name("brandmon"))
        vader = _process_rate([sys.executable, "-c", _BARE_VADER, str(lines)], len(mentions))
        command = [brandmon, "ingest", "--jsonl", str(lines), "--config", str(config)]
        ours = _process_rate(command, len(mentions))
        Path(tmp, "bench.db").unlink()
        alone = _process_rate([*command, "--workers", "0"], len(mentions))
    return vader, ours, alone


def _line(mention: RawMention) -> dict[str, object]:
    """``mention`` as a line of ``brandmon ingest``'s input."""
    return {
        "id": mention.external_id,
        "source": mention.source,
        "text": mention.text,
        "author": mention.author,
        "followers": mention.author_followers,
        "likes": mention.likes,
        "url": mention.url,
        "published_at": mention.published_at.isoformat() if mention.published_at else None,
    }


def _process_rate(command: list[str], count: int) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return count / (time.perf_counter() - started)


_BARE_VADER = """
import json, sys
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
v = SentimentIntensityAnalyzer()
with open(sys.argv[1], encoding="utf-8") as lines:
    for line in lines:
        v.polarity_scores(json.loads(line)["text"])
"""


def _median(ratios: list[float], note: str = "") -> str:
    """The median of ``ratios`` and their range, as printed."""
    ratios = sorted(ratios)
    spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
    return f"{ratios[len(ratios) // 2]:10.2f}  ({note}median of {len(ratios)}, {spread})"


def main(n: int, workers: int, profile: bool, repeat: int, postgres: str | None) -> None:
    rng = random.Random(8)
    brands = [f"Brand{k}" for k in range(20)]
    section = "".join(f'\n[[brands]]\nname = "{b}"\nkeywords = ["{b}"]\n' for b in brands)
    mentions = list(generate_mentions(n, brands, rng))
    short = [m for m in mentions if m.source_type in SHORT]
    config_text = CONFIG.replace("{brands}", section)
    if profile:  # where the time goes, by the functions' own time
        profiler = cProfile.Profile()
        profiler.runcall(run_pipeline, config_text, mentions, 0)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    mean = sum(len(m.text) for m in mentions) / n
    print(f"{n:,} mentions, {mean:.0f} characters on average; {len(short):,} short posts")
    for label, subset in (("all sources", mentions), ("short posts", short)):
        # VADER and the pipeline in turns, the ratio of each pair: a slow spell of a shared
        # machine then slows both sides of a ratio, and the median ignores the odd one out.
        runs = [
            (vader_rate([m.text for m in subset]), run_pipeline(config_text, subset, 0))
            for _ in range(repeat)
        ]
        vader, (full, stored) = max(runs, key=lambda run: run[1][0])
        print(f"{label}:")
        print(f"  bare VADER:      {vader:10,.0f} mentions/s")
        print(f"  whole pipeline:  {full:10,.0f} mentions/s  ({stored:,} stored)")
        ratios = [full / vader for vader, (full, _) in runs]
        print(f"  ratio:           {_median(ratios, 'target >= 0.50; ')}")
        processes = [process_rates(config_text, subset) for _ in range(repeat)]
        vader, ours, alone = max(processes, key=lambda run: run[1])
        print(
            f"  whole process:   `brandmon ingest` {ours:,.0f}/s, `--workers 0` {alone:,.0f}/s,"
            f" VADER process {vader:,.0f}/s"
        )
        print(f"  ratio:           {_median([ours / vader for vader, ours, _ in processes])}")
        print(f"  --workers 0:     {_median([alone / vader for vader, _, alone in processes])}")
        if workers:
            parallel, _ = max(run_pipeline(config_text, subset, workers) for _ in range(repeat))
            print(f"  with {workers} workers: {parallel:8,.0f} mentions/s", end="")
            print(f"  (speed-up {parallel / full:.2f}x)")
        if postgres:
            on_pg = [
                (
                    run_pipeline(config_text, subset, 0)[0],
                    run_pipeline(config_text, subset, 0, postgres)[0],
                )
                for _ in range(repeat)
            ]
            shares = sorted(pg / lite for lite, pg in on_pg)
            best = max(pg for _, pg in on_pg)
            print(f"  on PostgreSQL:   {best:10,.0f} mentions/s", end="")
            print(f"  ({shares[len(shares) // 2]:.2f} of SQLite's, median of {repeat})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument(
        "--workers", type=int, default=0, help="also time scoring in N worker processes"
    )
    parser.add_argument("--profile", action="store_true", help="first print a profile of one run")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, in turns")
    parser.add_argument(
        "--postgres", help="also store into this PostgreSQL database (its tables are dropped)"
    )
    arguments = parser.parse_args()
    main(
        arguments.mentions,
        arguments.workers,
        arguments.profile,
        arguments.repeat,
        arguments.postgres,
    )
