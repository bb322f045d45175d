"""``brandmon demo``: a crisis in the manner of KFC Malaysia (2011), replayed in seconds.

A fictional brand, Crestfield Chicken, has two quiet days of mixed mentions across sources and
languages.  Then one video of a kitchen worker mishandling food is posted, complaints grow fast
across X, Reddit, YouTube and news feeds, the brand answers with an apology video in Malay and
English, and the talk calms down.  Every mention goes through the real pipeline (matching,
scoring, storage), the real detector judges each 5-minute bucket as the daemon would, and alerts
go through the outbox to the configured sinks, so what is printed is what a PR team would get.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from alerts.outbox import OutboxSender
from monitor.alert import plain_time
from monitor.config import Config
from monitor.model import RawMention, utcnow
from monitor.pipeline import Pipeline
from monitor.storage import Storage, bucket_floor
from monitor.watcher import Watcher

BRAND = "Crestfield Chicken"
BUCKET = timedelta(minutes=5)
QUIET_DAYS = 2

QUIET = [
    ("x", "Lunch at Crestfield again, the spicy wings are honestly the best in KL"),
    ("x", "@CrestfieldMY what time does the Bangsar outlet close on Sundays?"),
    ("x", "Crestfield Chicken delivery was quick tonight, thanks!"),
    ("reddit", "Anyone tried the new Crestfield rice bowl? Worth it?"),
    ("mastodon", "Crestfield Chicken sponsoring the food bank drive this month, nice"),
    ("x", "Ayam goreng Crestfield memang sedap, anak-anak suka"),
    ("x", "今天的克雷斯特菲尔德炸鸡套餐不错"),
    ("x", "My Crestfield order was cold and late again, not impressed"),
    ("rss", "Crestfield Chicken opens its 200th restaurant in Malaysia"),
]
VIDEO = (
    "youtube",
    "Crestfield Chicken kitchen worker caught on camera mishandling raw chicken",
)
COMPLAINTS = [
    "Disgusting. Just watched the Crestfield kitchen video. Never eating there again",
    "The Crestfield Chicken video is horrifying. Where are the health inspectors?",
    "Crestfield, this is unacceptable. My kids ate there last week and now I feel sick",
    "Shame on Crestfield Chicken. Terrible hygiene, awful management #CrestfieldChicken",
    "@CrestfieldMY explain this video now. Boycott until you do",
    "Worst thing I have seen all year, Crestfield kitchen is a disgrace",
    "Jijik betul video dapur Crestfield tu, saya tak akan makan sana lagi",
    "克雷斯特菲尔德炸鸡的厨房视频太恶心了，食品安全在哪里？",
    "הסרטון מהמטבח של קרסטפילד מזעזע",
]
OUTLETS = [("The Star Online", 1_900_000), ("Malaysiakini", 1_200_000), ("FoodWatch Asia", 310_000)]
RESPONSE = (
    "youtube",
    "Crestfield Chicken: our restaurant director apologises and explains the steps we are "
    "taking in every kitchen (Bahasa Melayu & English)",
)
# Complaints per 5-minute bucket after the video: a fast wave, the response, then calm.
WAVE = [1, 2, 3, 5, 8, 12, 18, 25, 32, 38, 42, 44, 40, 36, 30, 24, 18, 12, 8, 6, 4, 3, 2, 2, 1]
WAVE_SOURCES = ("x", "x", "x", "reddit", "youtube")
RESPONSE_AT = 12  # buckets after the video
CALM_BUCKETS = 144


def scenario(end: datetime, rng: random.Random) -> Iterator[tuple[datetime, list[RawMention]]]:
    """Yield each 5-minute bucket's start and the mentions published in it."""
    total = QUIET_DAYS * 288 + len(WAVE) + CALM_BUCKETS
    start = bucket_floor(end, BUCKET) - BUCKET * total
    video_at = QUIET_DAYS * 288
    counter = iter(range(1_000_000))

    def mention(at: datetime, source: str, text: str, followers: int, author: str) -> RawMention:
        n = next(counter)
        return RawMention(
            source=f"demo-{source}",
            source_type=source,
            external_id=f"demo-{n}",
            text=text,
            url=f"https://example.com/{source}/{n}",
            author=author,
            author_followers=followers,
            likes=int(rng.expovariate(1 / max(1, followers / 200))),
            reposts=int(rng.expovariate(1 / max(1, followers / 1000))),
            published_at=at + timedelta(seconds=rng.randrange(300)),
        )

    def crowd(at: datetime, count: int, pick: Callable[[], tuple[str, str]]) -> list[RawMention]:
        rows = []
        for _ in range(count):
            source, text = pick()
            followers = int(rng.lognormvariate(5.5, 1.6))
            rows.append(mention(at, source, text, followers, f"user{rng.randrange(10**6)}"))
        return rows

    for i in range(total):
        at = start + BUCKET * i
        rows = crowd(at, int(rng.random() < 0.25), lambda: rng.choice(QUIET))
        offset = i - video_at
        if offset == 0:
            rows.append(mention(at, *VIDEO, 182_000, "FoodieTravels MY"))
        if 0 <= offset < len(WAVE):
            rows += crowd(
                at, WAVE[offset], lambda: (rng.choice(WAVE_SOURCES), rng.choice(COMPLAINTS))
            )
            if offset in (6, 9):
                outlet, readers = OUTLETS[offset % len(OUTLETS)]
                text = f"{BRAND} under fire after kitchen video sparks hygiene outrage"
                rows.append(mention(at, "rss", text, readers, outlet))
        if offset == RESPONSE_AT:
            rows.append(mention(at, *RESPONSE, 410_000, BRAND))
        yield at, rows


def demo_config(config: Config, db: Path) -> Config:
    """``config`` for the demo: stored in the SQLite file ``db``, never in the real database,
    and a baseline learned from the two quiet days (one day of warm-up and history)."""
    detection = config.detection.model_copy(
        update={"warmup": timedelta(days=1), "history": timedelta(days=1)}
    )
    storage = config.storage.model_copy(update={"url": f"sqlite:///{db}"})
    return config.model_copy(update={"detection": detection, "storage": storage})


def remove_database(db: Path) -> None:
    """Remove the SQLite file ``db`` and its write-ahead log, so the demo starts afresh."""
    for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)


def run_demo(
    config: Config,
    storage: Storage,
    sender: OutboxSender,
    progress: Callable[[str], None],
    *,
    seed: int = 2011,
) -> None:
    """Replay the scenario through pipeline, detector and outbox, ending now."""
    pipeline = Pipeline(config, storage)
    watcher = Watcher(config, storage)
    rng = random.Random(seed)
    now = utcnow()
    for at, rows in scenario(now, rng):
        pipeline.process(rows)
        watcher.judge(at + BUCKET * 2)
        sender.deliver_due()
        if at.minute == 0 and at.hour % 6 == 0:
            levels = ", ".join(f"{b}: {level.said}" for b, level in watcher.levels().items())
            progress(f"{plain_time(at)}  {levels}")
