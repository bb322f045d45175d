"""Time to alert: a burst already unmistakable inside the open bucket pages on the next pass."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select
from test_alerting import CONFIG, negative  # two days of history, one of warm-up

from monitor.config import parse_config
from monitor.detection import Detector, Level
from monitor.model import AlertOutbox, BrandWatch, Incident
from monitor.storage import Storage
from monitor.watcher import Watcher, replay

T0 = datetime(2026, 11, 2, tzinfo=UTC)
BUCKET = timedelta(minutes=5)
WAVE = T0 + timedelta(days=2)  # bucket-aligned: the open bucket of the tests starts here


def quiet_days(storage: Storage) -> Watcher:
    """Two quiet days (a complaint or two an hour), judged up to the wave's bucket."""
    rows = [negative(i, T0 + timedelta(minutes=37 * i + 2)) for i in range(2 * 24 * 60 // 37)]
    storage.add_mentions(rows)
    watcher = Watcher(parse_config(CONFIG, "test.toml"), storage)
    assert watcher.judge(WAVE) == 0
    return watcher


def burst(storage: Storage, first: int, count: int, at: datetime) -> None:
    storage.add_mentions(
        [negative(10_000 + first + k, at, author=f"u{first + k}") for k in range(count)]
    )


def pages(storage: Storage) -> list[tuple[str, str]]:
    with storage.session() as session:
        rows = session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)).all()
    return [(json.loads(r.payload)["at"], json.loads(r.payload)["level"]) for r in rows]


def smallest_full_bucket(watcher: Watcher) -> int:
    """The fewest complaints in the wave's bucket that, as a whole bucket, enter a level."""
    detector = watcher.brands[0].detector
    before = WAVE - BUCKET
    for count in range(1, 100):
        trial = copy.deepcopy(detector)
        if trial.early([(before, 0, 0, 0), (WAVE, count, count, count)]):
            return count
    raise AssertionError("no count enters a level")


def test_a_burst_mid_bucket_pages_on_the_next_pass_once_at_the_level_it_closes_at(
    storage: Storage,
) -> None:
    watcher = quiet_days(storage)
    burst(storage, 0, 40, WAVE + timedelta(seconds=50))
    assert watcher.judge(WAVE + timedelta(seconds=70)) == 1  # long before the bucket closes
    early = pages(storage)
    assert early == [(WAVE.isoformat(), "crisis")]
    for seconds in range(130, 20 * 60, 60):  # passes until well after it closed and was judged
        assert watcher.judge(WAVE + timedelta(seconds=seconds)) == 0
    assert pages(storage) == early
    # the closed bucket, replayed from storage as the backtest does, is at the same level
    settings = watcher.brands[0].settings
    steps = replay(Detector(settings), storage, "Acme", T0, WAVE + BUCKET)
    assert steps[-1].at == WAVE and steps[-1].level == Level.crisis
    assert watcher.brands[0].detector.level == Level.crisis
    with storage.session() as session:
        assert len(session.scalars(select(Incident)).all()) == 1


def test_an_early_level_escalates_once_per_level(storage: Storage) -> None:
    watcher = quiet_days(storage)
    need = smallest_full_bucket(watcher)
    burst(storage, 0, need, WAVE + timedelta(seconds=20))
    assert watcher.judge(WAVE + timedelta(seconds=40)) == 1
    burst(storage, need, 40, WAVE + timedelta(seconds=100))
    assert watcher.judge(WAVE + timedelta(seconds=120)) == 1
    for seconds in range(180, 20 * 60, 60):
        watcher.judge(WAVE + timedelta(seconds=seconds))
    levels = [level for _, level in pages(storage)]
    assert levels[0] == "watch" and levels[-1] == "crisis"
    assert len(levels) == len(set(levels))


def test_a_partial_count_short_of_a_whole_buckets_need_does_not_page_early(
    storage: Storage,
) -> None:
    watcher = quiet_days(storage)
    need = smallest_full_bucket(watcher)
    assert need >= 5  # min_count: a small brand's first few complaints are no incident
    burst(storage, 0, need - 1, WAVE + timedelta(seconds=30))
    for seconds in range(60, 300, 60):
        assert watcher.judge(WAVE + timedelta(seconds=seconds)) == 0
    assert pages(storage) == []
    assert watcher.brands[0].detector.level == Level.none
    burst(storage, need, 1, WAVE + timedelta(seconds=250))
    assert watcher.judge(WAVE + timedelta(seconds=270)) == 1


def test_a_restart_mid_bucket_does_not_page_again(storage: Storage) -> None:
    config = parse_config(CONFIG, "test.toml")
    watcher = quiet_days(storage)
    burst(storage, 0, 40, WAVE + timedelta(seconds=50))
    assert watcher.judge(WAVE + timedelta(seconds=70)) == 1
    with storage.session() as session:
        watch = session.get(BrandWatch, "Acme")
        assert watch is not None and watch.incident_id is not None
        incident = watch.incident_id
    again = Watcher(config, storage)  # a new process, same database, same open bucket
    for seconds in range(100, 20 * 60, 60):
        assert again.judge(WAVE + timedelta(seconds=seconds)) == 0
    assert again.brands[0].detector.level == Level.crisis
    assert pages(storage) == [(WAVE.isoformat(), "crisis")]
    with storage.session() as session:
        watch = session.get(BrandWatch, "Acme")
        assert watch is not None and watch.incident_id == incident
        assert len(session.scalars(select(Incident)).all()) == 1


def test_the_backtest_over_stored_mentions_says_when_the_daemon_would_have_paged(
    storage: Storage,
) -> None:
    from monitor.backtest import backtest_stored

    watcher = quiet_days(storage)
    burst(storage, 0, 40, WAVE + timedelta(seconds=50))
    settings = watcher.brands[0].settings
    tally = backtest_stored(storage, "Acme", settings, T0, WAVE + timedelta(hours=1))
    assert [(at, level) for at, level, _ in tally.summary.page_times] == [(WAVE, Level.crisis)]
    assert tally.summary.sent == {WAVE: WAVE + timedelta(minutes=1)}  # the first pass after it
    assert tally.summary.lines(settings.bucket)[-1].endswith("(sent at 00:01:00)")
