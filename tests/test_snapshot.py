"""A brand's detector is saved after each judgement, so another instance (or a restart) takes the
brand up where it was left, without replaying its history — and never from a snapshot that does
not fit."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import delete

from monitor import snapshot
from monitor.config import parse_config
from monitor.detection import Detector, DetectorSettings
from monitor.model import BrandWatch, Mention
from monitor.storage import Storage
from monitor.watcher import Watcher

START = datetime(2026, 11, 1, tzinfo=UTC)


def buckets(settings: DetectorSettings, days: int) -> list[tuple[datetime, int]]:
    """Quiet days of complaints with a daily rhythm, and one burst on the eighth day."""
    draw = random.Random(3)
    per_day = settings.buckets_per_day
    return [
        (
            START + i * settings.bucket,
            max(0, round(draw.gauss(4 + 3 * (i % per_day) / per_day, 2)))
            + (60 if 7 * per_day + 100 < i < 7 * per_day + 110 else 0),
        )
        for i in range(days * per_day)
    ]


def feed(detector: Detector, series: list[tuple[datetime, int]]) -> list[object]:
    return [detector.step(at, n, total=3 * n + 5, reach=1.5 * n) for at, n in series]


def test_a_restored_detector_judges_on_exactly_as_the_one_saved() -> None:
    settings = DetectorSettings.default()
    series = buckets(settings, 10)
    cut = 7 * settings.buckets_per_day + 105  # inside the burst: an incident is open
    kept = Detector(settings)
    feed(kept, series[:cut])
    assert kept.incident is not None

    restored = snapshot.restore(snapshot.save(kept), settings)

    assert feed(restored, series[cut:]) == feed(kept, series[cut:])
    assert restored.incident_count == kept.incident_count == 1
    assert restored.last_incident is not None and restored.last_incident.resolved is not None


def test_a_snapshot_saved_before_rows_of_numbers_were_packed_still_restores() -> None:
    """Until 2026-11-30 each (negative, total) pair of a week of buckets was saved as its own
    tuple: an upgrade takes the brand up from such a snapshot all the same."""
    settings = DetectorSettings.default()
    series = buckets(settings, 9)
    cut = 8 * settings.buckets_per_day
    kept = Detector(settings)
    feed(kept, series[:cut])
    state = json.loads(zlib.decompress(snapshot.save(kept)))

    def unpacked(value: object) -> object:
        if isinstance(value, dict):
            if set(value) == {"tuples"}:
                return [{"tuple": row} for row in value["tuples"]]
            return {k: unpacked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unpacked(v) for v in value]
        return value

    older = json.dumps(unpacked(state))
    assert '"tuples"' in json.dumps(state) and '"tuples"' not in older
    restored = snapshot.restore(zlib.compress(older.encode()), settings)
    assert feed(restored, series[cut:]) == feed(kept, series[cut:])


def test_a_snapshot_learnt_under_other_settings_or_unreadable_is_refused() -> None:
    settings = DetectorSettings.default()
    detector = Detector(settings)
    feed(detector, buckets(settings, 2))
    data = snapshot.save(detector)
    with pytest.raises(snapshot.StaleSnapshot, match="settings changed"):
        snapshot.restore(data, replace(settings, min_count=settings.min_count + 1))
    for bad in (b"not zlib", zlib.compress(b"[1, 2]"), zlib.compress(b'{"settings": 1}')):
        with pytest.raises(snapshot.StaleSnapshot):
            snapshot.restore(bad, settings)


def test_a_snapshot_of_a_detector_that_kept_its_state_otherwise_is_refused() -> None:
    """A release that changes what the detector holds cannot read an older release's
    snapshots as its own: the brand's history is replayed instead."""
    settings = DetectorSettings.default()
    detector = Detector(settings)
    feed(detector, buckets(settings, 2))
    state = json.loads(zlib.decompress(snapshot.save(detector)))
    for older in ({k: v for k, v in state.items() if k != "format"}, {**state, "format": 1}):
        with pytest.raises(snapshot.StaleSnapshot, match="keeps its state otherwise"):
            snapshot.restore(zlib.compress(json.dumps(older).encode()), settings)


def test_another_instance_takes_a_brand_up_without_its_history(storage: Storage) -> None:
    config = parse_config(
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n[detection]\nhistory = "2d"\n'
        'warmup = "1d"\n',
        "brandmon.toml",
    )
    rows = [
        Mention(
            brand="Acme",
            source="x",
            source_type="x",
            external_id=str(i),
            text="acme lost my order",
            published_at=START + timedelta(minutes=5 * i + 1),
            fetched_at=START,
            sentiment_compound=-0.6,
            sentiment_label="negative",
            reach_score=1.0,
        ).model_dump(exclude={"id"})
        for i in range(0, 3 * 288, 2)
    ]
    storage.add_mentions(rows)
    first = Watcher(config, storage)
    first.judge(START + timedelta(days=3))  # learns the history
    first.judge(START + timedelta(days=3, minutes=10))  # judges two more buckets: saved
    learnt = first.brands[0].detector
    with storage.session() as session:
        assert session.get(BrandWatch, "Acme").detector is not None
        session.execute(delete(Mention))  # the history is gone: only the snapshot remains
        session.commit()

    second = Watcher(config, storage)
    second.judge(START + timedelta(days=3, minutes=10))

    resumed = second.brands[0].detector
    assert resumed.recent == learnt.recent
    assert resumed._negative.seen == learnt._negative.seen > 500
