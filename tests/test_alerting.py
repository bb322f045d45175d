"""Detection in the daemon: stored mentions → incidents → outbox → console, across restarts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from alerts.base import Alert
from alerts.console import ConsoleSink, render
from alerts.outbox import OutboxSender
from monitor.alert import MentionBrief, MentionPayload
from monitor.config import parse_config
from monitor.model import AlertOutbox, BrandWatch, Incident, Mention, MentionRow, to_utc
from monitor.storage import Storage
from monitor.watcher import Watcher, distinct

T0 = datetime(2026, 11, 2, tzinfo=UTC)
STEP = timedelta(minutes=5)

CONFIG = """
[[brands]]
name = "Acme"
keywords = ["acme"]

[detection]
history = "2d"
warmup = "1d"
"""


def negative(i: int, at: datetime, reach: float = 1.0, author: str = "someone") -> MentionRow:
    return Mention(
        brand="Acme",
        source="x",
        source_type="x",
        external_id=f"m{i}",
        url=f"https://x.com/{author}/status/{i}",
        author=author,
        text=f"acme ruined my order {i}",
        published_at=at,
        fetched_at=at,
        sentiment_compound=-0.6,
        sentiment_label="negative",
        reach_score=reach,
    ).model_dump(exclude={"id"})


def seed_history(storage: Storage) -> datetime:
    """Two quiet days (none to three complaints an hour, never on the hour), then a wave;
    returns when the wave starts."""
    rows = [
        negative(10 * i + k, T0 + STEP * (3 * i + 1))
        for i in range(2 * 96)
        for k in range((i * 7) % 4 // 2)
    ]
    wave_start = T0 + timedelta(days=2)
    for b, count in enumerate((2, 3, 4, 6, 9, 14, 20, 28)):
        for k in range(count):
            reach = 60.0 if (b, k) == (4, 0) else 2.0
            author = "bignews" if reach > 50 else f"user{b}_{k}"
            rows.append(negative(1000 + 100 * b + k, wave_start + STEP * b, reach, author))
    storage.add_mentions(rows)
    return wave_start


def judge_until(watcher: Watcher, start: datetime, end: datetime) -> int:
    pages, now = 0, start
    while now <= end:
        pages += watcher.judge(now)
        now += STEP
    return pages


def test_a_wave_pages_once_per_level_and_resolves_exactly_once(storage: Storage) -> None:
    config = parse_config(CONFIG, "test.toml")
    wave_start = seed_history(storage)
    watcher = Watcher(config, storage)
    pages = judge_until(watcher, wave_start - timedelta(hours=1), wave_start + timedelta(hours=1))
    assert pages >= 1

    # a restart mid-incident: new watcher, same database — nothing is paged twice
    again = Watcher(config, storage)
    more = judge_until(again, wave_start + timedelta(hours=1), wave_start + timedelta(hours=12))
    assert more == 0

    with storage.session() as session:
        rows = session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)).all()
        incidents = session.scalars(select(Incident)).all()
        watch = session.get(BrandWatch, "Acme")
    kinds = [(r.kind, json.loads(r.payload)["level"]) for r in rows]
    assert kinds[0] == ("page", "watch") or kinds[0][0] == "page"
    assert kinds[-1][0] == "resolved"
    assert len([k for k in kinds if k[0] == "resolved"]) == 1
    levels = [level for kind, level in kinds if kind == "page"]
    assert levels == sorted(set(levels), key=["watch", "warning", "crisis"].index)
    assert len(incidents) == 1 and incidents[0].resolved_at is not None
    assert incidents[0].peak_level in ("warning", "crisis")
    # the resolution counts what the incident saw, from its start to its end
    resolved = json.loads(rows[-1].payload)
    start = to_utc(incidents[0].started_at)
    end = datetime.fromisoformat(resolved["at"]) + STEP
    during = [m for m in storage.mentions() if start <= to_utc(m.published_at) < end]
    assert resolved["total_negative"] == len(during) > 50  # most of the wave
    assert resolved["total_mentions"] == len(during)  # every mention here is negative
    assert watch is not None and watch.judged_until > wave_start + timedelta(hours=3)
    assert all(r.sink == "console" and r.status == "pending" for r in rows)


def test_the_outbox_delivers_in_order_and_only_once(storage: Storage) -> None:
    config = parse_config(CONFIG, "test.toml")
    wave_start = seed_history(storage)
    judge_until(Watcher(config, storage), wave_start, wave_start + timedelta(hours=12))
    stream = io.StringIO()
    sender = OutboxSender(storage, [ConsoleSink(stream)])
    report = sender.deliver_due()
    assert report.sent >= 2 and report.failed == 0
    heads = [line for line in stream.getvalue().splitlines() if line.startswith("[")]
    marks = [head.split("]")[0] for head in heads]
    assert marks[-1] == "[RESOLVED" and marks[:-1] and "[RESOLVED" not in marks[:-1]
    assert "8 negative mentions in 15 min; usually 1 at this time of day" in heads[0]
    assert sender.deliver_due().sent == 0
    with storage.session() as session:
        statuses = {r.status for r in session.scalars(select(AlertOutbox))}
    assert statuses == {"sent"}


def test_backtest_over_stored_mentions_reports_what_would_have_paged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from monitor.cli import app

    db = tmp_path / "brandmon.db"
    storage = Storage(f"sqlite:///{db}")
    storage.create_schema()
    wave_start = seed_history(storage)
    storage.close()
    config = tmp_path / "brandmon.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{db}"\n' + CONFIG)
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--config",
            str(config),
            "--from",
            T0.isoformat(),
            "--to",
            (wave_start + timedelta(hours=12)).isoformat(),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Acme:"
    assert lines[1].startswith("  720 buckets, 1 incident(s), 3 page(s), ")
    assert lines[1].endswith(" page(s) per 30 days")
    pages = [line.split(": ")[1] for line in lines if line.startswith("  page at")]
    assert pages == ["watch", "warning", "crisis"]
    assert "00:10:00+00:00: watch: 8 negative mentions in 15 min; usually 1" in result.stdout


def test_where_it_started_is_the_bursts_earliest_influential_complaint(storage: Storage) -> None:
    config = parse_config(CONFIG, "test.toml")
    wave_start = seed_history(storage)
    judge_until(Watcher(config, storage), wave_start, wave_start + timedelta(hours=1))
    with storage.session() as session:
        pages = [r for r in session.scalars(select(AlertOutbox)) if r.kind == "page"]
    origin = json.loads(pages[-1].payload)["first_mentions"]
    # the quiet days' everyday complaints (reach 1, just before the wave) are not the origin:
    # the wave's own first posts are, earliest first
    assert origin and all(m["author"] != "someone" for m in origin)
    assert [m["published_at"] for m in origin] == sorted(m["published_at"] for m in origin)
    assert origin[0]["published_at"] == wave_start.isoformat()


def test_a_loud_complaint_during_an_incident_is_announced_once(storage: Storage) -> None:
    config = parse_config(CONFIG, "test.toml")
    wave_start = seed_history(storage)
    watcher = Watcher(config, storage)
    judge_until(watcher, wave_start, wave_start + timedelta(minutes=40))
    late = wave_start + timedelta(minutes=50)
    storage.add_mentions(
        [
            negative(5000, late, reach=48.0, author="nationalnews"),
            negative(5001, late, reach=3.0, author="someone_else"),
        ]
    )
    judge_until(watcher, wave_start + timedelta(minutes=40), wave_start + timedelta(hours=2))
    judge_until(Watcher(config, storage), wave_start, wave_start + timedelta(hours=3))
    with storage.session() as session:
        loud = [r for r in session.scalars(select(AlertOutbox)) if r.kind == "mention"]
    # the wave's and the news site's big complaints, once each (also after a restart); the
    # small account's is not announced
    authors = [json.loads(r.payload)["mention"]["author"] for r in loud]
    assert sorted(authors) == ["bignews", "nationalnews"]
    row = loud[-1]
    payload = json.loads(row.payload)
    assert payload["incident_id"] is not None
    stream = io.StringIO()
    alert = Alert(row.idempotency_key, "Acme", "mention", MentionPayload.from_json(payload))
    ConsoleSink(stream).send(alert)
    assert "[LOUD] Acme: a high-reach complaint" in stream.getvalue()


def test_the_same_post_on_two_sources_is_one_top_mention_with_both_links() -> None:
    at = T0 + timedelta(days=2)
    copies = [
        negative(1, at, reach=40.0, author="news"),
        negative(2, at, reach=30.0, author="fan"),
        negative(3, at, reach=20.0, author="other"),
    ]
    copies[0]["text"] = "Acme kitchen video: RATS everywhere!! https://t.co/abc @acme"
    copies[0]["url"] = "https://x.com/news/status/1"
    copies[1]["text"] = "acme kitchen video: rats everywhere https://bsky.app/x @acme.bsky"
    copies[1]["url"] = "https://bsky.app/profile/fan/post/2"
    rows = [Mention.model_validate(row) for row in copies]

    [first, second] = distinct(rows, 5)

    assert first.author == "news" and first.also == ("https://bsky.app/profile/fan/post/2",)
    assert second.author == "other" and second.also == ()
    assert MentionBrief.from_json(first.to_json()) == first  # as the outbox stores it
    payload = MentionPayload("Acme", 7, "crisis", at.isoformat(), first)
    line = render(Alert("k", "Acme", "mention", payload))
    assert "also https://bsky.app/profile/fan/post/2" in line
