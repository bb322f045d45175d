"""Storing scored mentions: PostgreSQL against SQLite, in one run.

    .venv/bin/python bench/store.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                    [--rows 20000] [--repeat 3]

Stores the same pre-scored mention rows, 1,000 per call as the pipeline does, into a fresh
SQLite file and into a fresh schema on PostgreSQL (its tables are dropped first: point it at a
scratch database), in turns, then all of them again (every row already stored: what a feed that
re-serves its items costs).  Prints rows per second for each and PostgreSQL's as a share of
SQLite's; the issue's target for whole ingest is at least 0.8.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.model import MentionRow
from monitor.storage import Storage


def rows(n: int) -> list[MentionRow]:
    start, fetched = datetime(2026, 11, 1, tzinfo=UTC), datetime.now(UTC)
    return [
        {
            "source": "x",
            "source_type": "x",
            "external_id": f"u{i}",
            "url": f"https://x.example/status/{i}",
            "canonical_url": f"https://x.example/status/{i}",
            "author": f"user{i % 500}",
            "author_followers": i,
            "likes": i % 7,
            "reposts": 0,
            "replies": 1,
            "views": None,
            "text": f"@brand{i % 20} my order is late again and nobody answers the phone #{i}",
            "language": "en",
            "published_at": start + timedelta(seconds=i),
            "fetched_at": fetched,
            "sentiment_compound": -0.55,
            "sentiment_label": "negative",
            "reach_score": 12.5,
            "category": "complaint",
            "priority": "P2",
            "brand": f"Brand{i % 20}",
        }
        for i in range(n)
    ]


def store(url: str, data: list[MentionRow]) -> tuple[float, float]:
    """Rows per second into an empty schema, then again with every row already stored."""
    storage = Storage(url)
    storage.create_schema()
    rates = []
    try:
        for _ in range(2):
            started = time.perf_counter()
            for i in range(0, len(data), 1000):
                storage.add_mentions([dict(row) for row in data[i : i + 1000]])
            rates.append(len(data) / (time.perf_counter() - started))
    finally:
        storage.close()
    return rates[0], rates[1]


def fresh(url: str) -> str:
    empty = Storage(url)
    empty.drop_schema()
    empty.close()
    return url


def main(postgres: str, n: int, repeat: int) -> None:
    data = rows(n)
    results = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            lite = store(f"sqlite:///{Path(tmp) / 'bench.db'}", data)
        results.append((lite, store(fresh(postgres), data)))
    for name, pick in (("new rows", 0), ("already stored", 1)):
        lite = max(r[0][pick] for r in results)
        pg = max(r[1][pick] for r in results)
        print(f"{name:15} SQLite {lite:9,.0f}/s  PostgreSQL {pg:9,.0f}/s  ratio {pg / lite:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    main(arguments.postgres, arguments.rows, arguments.repeat)
