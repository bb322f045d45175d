"""A long replay: does memory stay flat?

    .venv/bin/python bench/soak.py [--mentions 1000000]

Streams N generated mentions (one every 6 s of simulated time, 69 days for a million) through
the daemon's own pieces — pipeline (match, de-duplicate, score, store), the brand watchers
judging every closed 5-minute bucket, the outbox sender, and hourly retention pruning (14 days)
— into SQLite, and samples the process's resident memory.  After a warm-up (the first 14
simulated days, while the detectors' history and the retention window fill: a quarter of the
run), resident memory must stay within ±10 % of its mean: no cache, de-duplication set or
detector history may grow with the number of mentions.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from ingest import generate_mentions

from alerts.console import ConsoleSink
from alerts.outbox import OutboxSender
from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.storage import Storage
from monitor.watcher import Watcher

BATCH = 1000
EVERY = timedelta(seconds=6)
RETENTION = timedelta(days=14)


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(n: int) -> None:
    rng = random.Random(9)
    brands = [f"Brand{k}" for k in range(20)]
    section = "".join(f'\n[[brands]]\nname = "{b}"\nkeywords = ["{b}"]\n' for b in brands)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        text = f'[storage]\nurl = "sqlite:///{Path(tmp) / "soak.db"}"\n{section}'
        config = parse_config(text, "soak.toml")
        storage = Storage(config.storage.url)
        storage.create_schema()
        pipeline = Pipeline(config, storage)
        watcher = Watcher(config, storage)
        devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the whole replay
        sender = OutboxSender(storage, [ConsoleSink(devnull)])
        stream = generate_mentions(n, brands, rng, start=start, every=EVERY)
        samples: list[tuple[int, float]] = []
        done, pruned_at, started = 0, start, time.perf_counter()
        while batch := list(islice(stream, BATCH)):
            pipeline.process(batch)
            done += len(batch)
            now = batch[-1].published_at
            assert now is not None
            watcher.judge(now)
            sender.deliver_due()
            if now - pruned_at >= timedelta(hours=1):
                storage.prune(now - RETENTION)
                pruned_at = now
            if done % (50_000 if n >= 500_000 else 25_000) == 0:
                samples.append((done, resident_mb()))
                print(f"{done:>9,} mentions  {resident_mb():7.1f} MB resident", flush=True)
        seconds = time.perf_counter() - started
        storage.close()
        devnull.close()
    after = [mb for count, mb in samples if count > n // 4]
    mean = sum(after) / len(after)
    spread = max(abs(mb - mean) / mean for mb in after)
    print(
        f"{n:,} mentions in {seconds:.0f} s ({n / seconds:,.0f}/s); resident memory after "
        f"warm-up {min(after):.0f}–{max(after):.0f} MB, within ±{spread:.1%} of its mean "
        "(target ±10 %)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    main(parser.parse_args().mentions)
