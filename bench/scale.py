"""brandmon on a large database: does it stay fast at a million mentions?

    .venv/bin/python bench/scale.py [--large 1000000] [--small 10000] [--add 10000]
                                    [--baseline SRC]

Builds two SQLite databases of scored mentions spread over the last 30 days (20 brands, a
third negative), one ``--small`` and one ``--large``, then measures on each, in one run:

- adding ``--add`` new mentions (published in the last hours) the way a poll stores them
  (``Storage.add_mentions``, in a process of its own), CPU time per mention: the target is at
  most 20 % more per mention on the large database than on the small one;
- the commands a person runs, as whole processes: ``brandmon mentions`` (newest first, one
  brand, 24 hours), ``brandmon report`` (one brand, 7 days) and ``brandmon backtest --from 30d``
  (one brand), each in seconds: the target is under 1 s at a million mentions.

It prints SQLite's query plan of the queries behind them, so a missing index shows.  With
``--baseline SRC``, a copy of an earlier version's packages (``monitor/``, ``connectors/`` and
``alerts/`` copied into SRC), each command also runs with SRC first on ``PYTHONPATH``,
alternating with the checkout's run on the same databases, and the ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from monitor.model import MentionRow
from monitor.storage import Storage

BRANDS = [f"Brand{i}" for i in range(20)]
CHUNK = 20_000


def mentions(
    start: int, count: int, now: datetime, *, new: bool = False
) -> Iterator[list[MentionRow]]:
    """``count`` mentions numbered from ``start``, in lists of ``CHUNK``: spread over the 30
    days before ``now``, or, ``new``, published in the minutes before it (as a poll finds
    them)."""
    span = timedelta(days=30).total_seconds()
    for first in range(start, start + count, CHUNK):
        chunk: list[MentionRow] = []
        for i in range(first, min(first + CHUNK, start + count)):
            negative = i % 3 == 0
            chunk.append(
                {
                    "source": f"feed{i % 50}",
                    "source_type": "rss",
                    "external_id": f"item-{i}",
                    "url": f"https://news.example/{i}",
                    "canonical_url": f"https://news.example/{i}",
                    "author": f"user{i % 5000}",
                    "author_followers": i % 100_000,
                    "likes": i % 7,
                    "reposts": 0,
                    "replies": 1,
                    "views": None,
                    "text": f"{BRANDS[i % 20]} order {i} is late again" if negative else "ok",
                    "language": "en",
                    "published_at": now - timedelta(seconds=i - start)
                    if new
                    else now - timedelta(seconds=span * ((i * 7919) % count) / count),
                    "fetched_at": now,
                    "sentiment_compound": -0.6 if negative else 0.3,
                    "sentiment_label": "negative" if negative else "positive",
                    "reach_score": float(i % 60),
                    "category": "complaint" if negative else "other",
                    "priority": "P2" if negative else "P4",
                    "brand": BRANDS[i % 20],
                }
            )
        yield chunk


def build(path: Path, count: int, now: datetime) -> Storage:
    storage = Storage(f"sqlite:///{path}", batch_size=1000)
    storage.create_schema()
    for chunk in mentions(0, count, now):
        storage.add_mentions(chunk)
    return storage


def adding(storage: Storage, count: int, add: int, now: datetime) -> float:
    """CPU microseconds per mention to store ``add`` new ones, 1,000 a call as a poll does
    (the best of three rounds of new mentions; CPU time, as other work on the machine would
    blur wall time)."""
    best = float("inf")
    for round in range(3):
        started = time.process_time()
        for chunk in mentions(count + round * add, add, now, new=True):
            for i in range(0, len(chunk), 1000):
                storage.add_mentions(chunk[i : i + 1000])
        best = min(best, (time.process_time() - started) / add * 1e6)
    return best


def adding_apart(path: Path, count: int, add: int, now: datetime) -> float:
    """``adding`` to the database at ``path`` in a new process, as a poll stores mentions in
    the daemon's: the process that built a million mentions holds their Python heap, which
    made storing there cost up to a tenth more CPU time than in a process of its own."""
    code = (
        "import sys; from datetime import datetime; from scale import adding; "
        "from monitor.storage import Storage; "
        "print(adding(Storage(sys.argv[1], batch_size=1000), int(sys.argv[2]), int(sys.argv[3]),"
        " datetime.fromisoformat(sys.argv[4])))"
    )
    argv = [sys.executable, "-c", code, f"sqlite:///{path}", str(count), str(add), now.isoformat()]
    here = Path(__file__).parent
    done = subprocess.run(argv, cwd=here, capture_output=True, text=True, check=True)
    return float(done.stdout)


def command(*args: str, baseline: Path | None = None) -> tuple[float, float | None]:
    """Seconds one ``brandmon`` command takes as a whole process (best of three), and with the
    ``baseline`` packages imported instead (None without), the two runs alternating."""
    script = Path(sys.executable).parent / "brandmon"
    trees = [None] if baseline is None else [None, baseline]
    best: dict[Path | None, float] = {tree: float("inf") for tree in trees}
    for _ in range(3):
        for tree in trees:
            env = None if tree is None else os.environ | {"PYTHONPATH": str(tree)}
            started = time.perf_counter()
            subprocess.run([script, *args], check=True, capture_output=True, env=env)
            best[tree] = min(best[tree], time.perf_counter() - started)
    return best[None], None if baseline is None else best[baseline]


def plans(storage: Storage) -> None:
    """SQLite's plan of the queries the commands lean on."""
    queries = {
        "mentions (brand, since, newest first)": "SELECT * FROM mention WHERE brand = 'Brand3' "
        "AND published_at >= datetime('now', '-1 day') ORDER BY published_at DESC LIMIT 50",
        "report / backtest (one brand's counts)": "SELECT strftime('%s', published_at) / 300 "
        "AS bucket, count(*), sum(sentiment_label = 'negative'), sum(CASE WHEN sentiment_label "
        "= 'negative' THEN reach_score ELSE 0 END) FROM mention WHERE brand = 'Brand3' AND "
        "published_at >= datetime('now', '-30 days') GROUP BY bucket",
        "report (most influential negative)": "SELECT * FROM mention WHERE brand = 'Brand3' "
        "AND sentiment_label = 'negative' AND published_at >= datetime('now', '-7 days') "
        "ORDER BY reach_score DESC, id LIMIT 10",
        "report (triage counts)": "SELECT category, priority, count(*) FROM mention WHERE "
        "brand = 'Brand3' AND published_at >= datetime('now', '-7 days') GROUP BY 1, 2",
        "known ids (a poll's dedup)": "SELECT external_id FROM mention WHERE source = 'feed1' "
        "AND external_id IN ('item-1', 'item-2')",
    }
    with storage.engine.connect() as connection:
        for name, query in queries.items():
            plan = connection.execute(text(f"EXPLAIN QUERY PLAN {query}")).all()
            print(f"  {name}: " + "; ".join(str(row[-1]) for row in plan))


def main(small: int, large: int, add: int, baseline: Path | None) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    commands = ("mentions cmd", "report", "backtest")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for count in (small, large):
            path = Path(tmp) / f"m{count}.db"
            started = time.perf_counter()
            storage = build(path, count, now)
            print(f"built {count:,} mentions in {time.perf_counter() - started:.0f} s")
            config = Path(tmp) / "brandmon.toml"
            config.write_text(
                f'[storage]\nurl = "sqlite:///{path}"\n'
                + "".join(f'[[brands]]\nname = "{b}"\nkeywords = ["{b}"]\n' for b in BRANDS)
            )
            if count == large:
                plans(storage)
            storage.close()
            per = adding_apart(path, count, add, now)
            c = ("--config", str(config))
            results[count] = (
                per,
                command("mentions", *c, "--brand", "Brand3", "--since", "24h", baseline=baseline),
                command(
                    "report",
                    *c,
                    "--brand",
                    "Brand3",
                    "--out",
                    str(Path(tmp) / "r.html"),
                    baseline=baseline,
                ),
                command("backtest", *c, "--from", "30d", "--brand", "Brand3", baseline=baseline),
            )
    print(f"{'mentions':>12} {'add CPU-µs each':>17} " + " ".join(f"{c:>13}" for c in commands))
    for count, (per, *timed) in results.items():
        print(
            f"{count:>12,} {per:>17.1f} " + " ".join(f"{seconds:>12.2f}s" for seconds, _ in timed)
        )
    print(
        f"adding at {large:,} costs {results[large][0] / results[small][0]:.2f}× "
        f"what it costs at {small:,} (target ≤ 1.20)"
    )
    if baseline is not None:
        print(f"the same commands with {baseline} (before) and the ratio now/before:")
        for count, (_, *timed) in results.items():
            print(
                f"{count:>12,} {'':>17} "
                + " ".join(f"{was:>5.2f}s {seconds / was:>5.2f}×" for seconds, was in timed if was)
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--add", type=int, default=10_000)
    parser.add_argument("--baseline", type=Path, help="an earlier version's packages, to compare")
    arguments = parser.parse_args()
    main(arguments.small, arguments.large, arguments.add, arguments.baseline)
