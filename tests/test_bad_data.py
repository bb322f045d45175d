"""Bad data: one bad item never sinks the good ones, and nothing bad is accepted silently.

Storage is involved in most cases, so they run on SQLite and, with ``BRANDMON_TEST_PG_URL``,
on PostgreSQL (the ``db_url`` and ``storage`` fixtures of ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from connectors.base import PollResult
from monitor.cli import app
from monitor.config import Config, parse_config
from monitor.jsonl import MAX_DEPTH, MentionError, parse_mention, read_jsonl, too_deep
from monitor.metrics import Metrics
from monitor.model import Cursor, Mention, MentionRow, RawMention, utcnow
from monitor.pipeline import Pipeline
from monitor.scheduler import Daemon, SourcePoller
from monitor.storage import Storage

CONFIG = """
[storage]
url = "{db}"
batch_size = 3

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "news"
type = "rss"
url = "https://news.example.com/feed"

[[sources]]
name = "zapier"
type = "webhook"
secret_env = "TEST_BAD_DATA_SECRET"
"""


def config_for(db_url: str) -> Config:
    return parse_config(CONFIG.format(db=db_url), "test.toml")


def raw(external_id: str, text: str = "Acme lost my parcel", **fields: object) -> RawMention:
    return RawMention(source="news", external_id=external_id, text=text, **fields)  # type: ignore[arg-type]


def refuse(storage: Storage, external_id: str) -> None:
    """Make the database itself refuse rows with ``external_id`` (a constraint violation)."""
    with storage.engine.begin() as connection:
        if storage.engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                f"ALTER TABLE mention ADD CONSTRAINT refuse_{external_id}"
                f" CHECK (external_id <> '{external_id}')"
            )
        else:
            connection.exec_driver_sql(
                f"CREATE TRIGGER refuse_{external_id} BEFORE INSERT ON mention"
                f" WHEN NEW.external_id = '{external_id}'"
                " BEGIN SELECT RAISE(ABORT, 'refused by a test constraint'); END"
            )


def stored_ids(storage: Storage) -> list[str]:
    return sorted(m.external_id for m in storage.mentions())


def ingest(db_url: str, tmp_path: Path, content: bytes, *options: str) -> Result:
    config = tmp_path / "brandmon.toml"
    config.write_text(CONFIG.format(db=db_url))
    path = tmp_path / "mentions.jsonl"
    path.write_bytes(content)
    command = ["ingest", "--jsonl", str(path), "--config", str(config), *options]
    return CliRunner().invoke(app, command)


def jsonl(*items: dict[str, object] | str) -> bytes:
    lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
    return ("\n".join(lines) + "\n").encode()


# 1. nesting depth


def test_ingest_skips_a_line_nested_100000_deep_and_stores_every_good_line(
    db_url: str, tmp_path: Path
) -> None:
    deep = '{"id": "deep", "text": "acme", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    good = [{"id": str(i), "text": f"acme post {i}"} for i in range(5)]
    result = ingest(db_url, tmp_path, jsonl(*good[:2], deep, *good[2:]))
    assert result.exit_code == 1, result.output
    assert (
        f"skipped line 3: not JSON we accept (nested deeper than {MAX_DEPTH} levels)"
        in result.stderr
    )
    assert "6 read: 5 stored" in result.stdout
    storage = Storage(db_url)
    assert stored_ids(storage) == ["0", "1", "2", "3", "4"]
    storage.close()


def test_hostile_first_lines_do_not_stop_the_workers_that_warm_up_on_them(
    db_url: str, tmp_path: Path
) -> None:
    """The workers score the first lines, read loosely, before they start (``ingest``); what
    the real reading skips must not break them."""
    deep = '{"id": "deep", "text": "acme", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bad = [deep, "not json", '["acme"]', '{"id": "n", "text": ["acme"]}', '{"text": "acme"}']
    good = [{"id": str(i), "text": f"acme post {i}"} for i in range(3)]
    content = jsonl(*bad, *good) + b'{"id": "u", "text": "acme \xff\xfe lost my order"}\n'
    result = ingest(db_url, tmp_path, content, "--workers", "1")
    assert result.exit_code == 1, result.output
    assert [line.split(":")[0] for line in result.stderr.splitlines() if "skipped" in line] == [
        f"skipped line {n}" for n in range(1, 6)
    ]
    assert "9 read: 4 stored" in result.stdout
    storage = Storage(db_url)
    assert stored_ids(storage) == ["0", "1", "2", "u"]
    storage.close()


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert not too_deep(json.dumps({"id": "1", "text": "[{" * 500 + 'a \\" quote'}))
    lines = [json.dumps({"id": "1", "text": "acme " + "[" * 100}), "[" * 70 + "]" * 70]
    first, second = read_jsonl(lines)
    assert isinstance(first, RawMention) and first.text.endswith("[" * 100)
    assert str(second) == f"line 2: not JSON we accept (nested deeper than {MAX_DEPTH} levels)"


def test_a_number_too_long_for_python_is_a_bad_line_not_a_crash() -> None:
    (error,) = read_jsonl(['{"id": "1", "text": "acme", "likes": ' + "9" * 5000 + "}"])
    assert str(error).startswith("line 1: not JSON we accept (Exceeds the limit")


# 2. what a store cannot hold


def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(storage: Storage) -> None:
    pipeline = Pipeline(config_for("sqlite://"), storage)
    bad = raw(
        "id\x00\ud800",
        "Acme\x00 lost my parcel \ud83d",
        author="ann\x00",
        url="https://example.com/\x00a",
        source_type="x\udc00",
    )
    report, new = pipeline.process([bad, raw("2")])
    assert (report.stored, report.failed) == (2, 0)
    (mention,) = [m for m in storage.mentions() if m.external_id != "2"]
    assert mention.external_id == "id\ufffd\ufffd"
    assert mention.text == "Acme\ufffd lost my parcel \ufffd"
    assert (mention.author, mention.source_type) == ("ann\ufffd", "x\ufffd")
    assert mention.url == "https://example.com/\ufffda"
    again, _ = pipeline.process([bad])
    assert (again.stored, again.duplicates) == (0, 1)


def test_ingest_stores_text_with_nul_and_lone_surrogates(db_url: str, tmp_path: Path) -> None:
    lines = [
        '{"id": "1", "text": "acme \\u0000 nul"}',
        '{"id": "2", "text": "acme \\ud800 lone", "author": "x\\u0000"}',
        '{"id": "3", "text": "acme fine"}',
    ]
    result = ingest(db_url, tmp_path, jsonl(*lines))
    assert result.exit_code == 0, result.output
    assert "3 read: 3 stored" in result.stdout
    storage = Storage(db_url)
    texts = {m.external_id: m.text for m in storage.mentions()}
    assert texts == {"1": "acme \ufffd nul", "2": "acme \ufffd lone", "3": "acme fine"}
    storage.close()


def test_values_too_large_for_a_column_are_fitted(storage: Storage) -> None:
    pipeline = Pipeline(config_for("sqlite://"), storage)
    big = raw("1", author="a" * 400, language="x" * 30, views=8_000_000_000, likes=2**70)
    report, _ = pipeline.process([big])
    assert (report.stored, report.failed) == (1, 0)
    (mention,) = storage.mentions()
    assert len(mention.author or "") == 300
    assert (mention.views, mention.likes) == (2**31 - 1, 2**31 - 1)


def mention_row(external_id: str, **fields: object) -> MentionRow:
    row = Mention(
        brand="Acme",
        source="news",
        source_type="rss",
        external_id=external_id,
        text=f"acme {external_id}",
        published_at=datetime(2026, 11, 20, tzinfo=UTC),
        fetched_at=datetime(2026, 11, 20, tzinfo=UTC),
        sentiment_compound=0.0,
        sentiment_label="neutral",
        reach_score=1.0,
    ).model_dump(exclude={"id"})
    return {**row, **fields}


def test_a_row_the_database_refuses_does_not_lose_the_others(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [mention_row(str(i)) for i in range(7)]
    rows[4]["text"] = None  # NOT NULL: refused by both databases
    failed: list[MentionRow] = []
    with caplog.at_level(logging.ERROR, logger="monitor.storage"):
        new = storage.add_mentions(rows, failed=failed)
    assert sorted(m["external_id"] for m in new) == ["0", "1", "2", "3", "5", "6"]
    assert [m["external_id"] for m in failed] == ["4"]
    assert stored_ids(storage) == ["0", "1", "2", "3", "5", "6"]
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("mention not stored source=news id=4 brand=Acme: ")
    assert "\n" not in message and "INSERT" not in message and record.exc_info is None


def test_the_pipeline_counts_a_refused_mention_and_stores_the_rest(storage: Storage) -> None:
    refuse(storage, "bad")
    pipeline = Pipeline(config_for("sqlite://"), storage)
    report, new = pipeline.process([raw("1"), raw("bad"), raw("2"), raw("3"), raw("4")])
    assert (report.received, report.stored, report.failed, report.duplicates) == (5, 4, 1, 0)
    assert sorted(m["external_id"] for m in new) == ["1", "2", "3", "4"]


class FakeFeed:
    """A connector serving the same bad item at every poll, and a new cursor each time."""

    name = "news"
    type = "rss"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        self.polls += 1
        items = [raw("bad"), raw(f"good-{self.polls}"), raw("   ")]
        return PollResult(mentions=items, cursor=Cursor(cursor=f"page-{self.polls}"))


def test_a_polled_source_skips_a_bad_item_and_its_cursor_moves_on(storage: Storage) -> None:
    refuse(storage, "bad")
    config = config_for("sqlite://")
    pipeline = Pipeline(config, storage)
    feed = FakeFeed()
    poller = SourcePoller(config.sources[0], feed, pipeline, storage, Metrics(), "test")

    async def poll_twice() -> list[bool]:
        async with httpx.AsyncClient() as client:
            return [(await poller.poll(client, force=True)).ok for _ in range(2)]

    assert asyncio.run(poll_twice()) == [True, True]
    assert stored_ids(storage) == ["good-1", "good-2"]
    state = storage.source_state("news")
    assert state is not None and state.cursor == "page-2"
    assert state.consecutive_failures == 0


# 3. a push is stored whole or not at all


def pushed(count: int) -> list[RawMention]:
    return [raw(f"p{i}") for i in range(count)]


def test_a_push_larger_than_a_batch_that_fails_midway_stores_nothing(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert storage.batch_size == 3
    monkeypatch.setenv("TEST_BAD_DATA_SECRET", "unused")
    daemon = Daemon(config_for("sqlite://"), storage)
    ingest_push = daemon._ingest_pushed("zapier")
    refuse(storage, "p4")  # in the second batch of three
    with pytest.raises(IntegrityError):
        ingest_push(pushed(7))
    assert stored_ids(storage) == []
    # polled and ingested batches keep storing what they can
    report, _ = daemon.pipeline.process(pushed(7))
    assert (report.stored, report.failed) == (6, 1)


def test_a_push_larger_than_a_batch_is_stored_whole(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_BAD_DATA_SECRET", "unused")
    daemon = Daemon(config_for("sqlite://"), storage)
    report = daemon._ingest_pushed("zapier")(pushed(7))
    assert (report.received, report.stored) == (7, 7)
    assert stored_ids(storage) == [f"p{i}" for i in range(7)]
    assert storage.source_state("zapier") is not None


# 4. bad values


def test_a_date_more_than_a_day_ahead_is_clamped_and_counted(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Pipeline(config_for("sqlite://"), storage)
    soon = utcnow() + timedelta(hours=20)
    far = datetime(5138, 1, 1, tzinfo=UTC)
    beyond = datetime.fromisoformat("9999-12-31T23:00:00-05:00")  # past datetime.max in UTC
    before = utcnow()
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        report, _ = pipeline.process(
            [
                raw("soon", published_at=soon),
                raw("far", published_at=far),
                raw("max", published_at=beyond),
            ]
        )
    assert (report.stored, report.clamped) == (3, 2)
    dates = {m.external_id: m.published_at for m in storage.mentions()}
    assert dates["soon"] == soon
    assert before <= dates["far"] <= utcnow() and dates["max"] == dates["far"]
    assert "published_at in the future" in caplog.text and "id=far" in caplog.text


def test_ingest_reports_clamped_dates(db_url: str, tmp_path: Path) -> None:
    line = {"id": "1", "text": "acme", "published_at": "5138-06-01T00:00:00Z"}
    result = ingest(db_url, tmp_path, jsonl(line))
    assert result.exit_code == 0, result.output
    assert "1 dated in the future (dated when read instead)" in result.stdout
    storage = Storage(db_url)
    (mention,) = storage.mentions()
    assert mention.published_at.year == utcnow().year
    storage.close()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        " JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
        "//example.com/no-scheme",
        "https://",
    ],
)
def test_a_link_that_is_not_http_is_dropped_and_the_mention_kept(url: str) -> None:
    mention = parse_mention({"id": "1", "text": "acme", "url": url})
    assert (mention.external_id, mention.url) == ("1", None)
    with pytest.raises(MentionError, match="needs an 'id' or a 'url'"):
        parse_mention({"text": "acme", "url": url})  # the link was all that identified it


def test_an_http_link_is_kept() -> None:
    mention = parse_mention({"text": "acme", "url": " HTTPS://Example.com/a "})
    assert mention.url == mention.external_id == "HTTPS://Example.com/a"


def test_a_polled_mention_loses_a_javascript_link(storage: Storage) -> None:
    pipeline = Pipeline(config_for("sqlite://"), storage)
    pipeline.process([raw("1", url="javascript:alert(1)"), raw("2", url="https://e.com/2")])
    assert {m.external_id: m.url for m in storage.mentions()} == {
        "1": None,
        "2": "https://e.com/2",
    }


def test_an_id_of_spaces_is_refused_like_a_missing_id() -> None:
    with pytest.raises(MentionError, match="needs an 'id' or a 'url'"):
        parse_mention({"id": "   ", "text": "acme"})
    assert parse_mention({"id": " \t", "text": "acme", "url": "https://e.com/1"}).external_id == (
        "https://e.com/1"
    )
    (error,) = read_jsonl([json.dumps({"id": "  ", "text": "acme"})])
    assert str(error).startswith("line 1: needs an 'id' or a 'url'")


def test_a_polled_mention_with_a_blank_id_is_refused_and_counted(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Pipeline(config_for("sqlite://"), storage)
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        report, _ = pipeline.process([raw("  "), raw("1")])
    assert (report.received, report.stored, report.failed) == (2, 1, 1)
    assert stored_ids(storage) == ["1"]
    assert "mention not stored source=news: its id is blank" in caplog.text


# 5. invalid UTF-8


def test_ingest_counts_and_names_lines_with_invalid_utf8(db_url: str, tmp_path: Path) -> None:
    content = jsonl({"id": "1", "text": "acme ok"}) + b'{"id": "2", "text": "acme caf\xe9"}\n'
    result = ingest(db_url, tmp_path, content)
    assert result.exit_code == 0, result.output
    assert "line 2: not valid UTF-8" in result.stderr
    assert "2 stored" in result.stdout and "1 with invalid UTF-8 (read as U+FFFD)" in result.stdout
    storage = Storage(db_url)
    assert {m.external_id: m.text for m in storage.mentions()}["2"] == "acme caf\ufffd"
    storage.close()


# 6. exit codes


def test_ingest_exits_0_when_everything_was_taken(db_url: str, tmp_path: Path) -> None:
    result = ingest(db_url, tmp_path, jsonl({"id": "1", "text": "acme"}, {"id": "2", "text": "x"}))
    assert result.exit_code == 0, result.output
    assert "2 read: 1 stored, 0 already known, 1 matched no brand, 0 skipped" in result.stdout


def test_ingest_exits_1_when_the_database_refused_a_mention(db_url: str, tmp_path: Path) -> None:
    storage = Storage(db_url)
    storage.create_schema()
    refuse(storage, "bad")
    storage.close()
    lines = jsonl({"id": "1", "text": "acme"}, {"id": "bad", "text": "acme"})
    result = ingest(db_url, tmp_path, lines)
    assert result.exit_code == 1, result.output
    assert "1 stored" in result.stdout and "1 not stored (see the errors above)" in result.stdout


def test_the_language_a_source_gives_is_the_one_stored(storage: Storage) -> None:
    # a French post written with English brand words: the guess might say English, the
    # source (Bluesky langs, X lang, Mastodon language) says French and is right
    pipeline = Pipeline(config_for("sqlite://"), storage)
    text = "Acme support ticket closed without an answer"
    pipeline.process([raw("fr", text, language="fr"), raw("guess", "Acme lost my parcel")])
    languages = {m.external_id: m.language for m in storage.mentions()}
    assert languages == {"fr": "fr", "guess": "en"}


def test_a_reload_that_would_lose_a_sources_secret_keeps_the_running_config(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEST_BAD_DATA_SECRET", "unused")
    path = tmp_path / "brandmon.toml"
    path.write_text(CONFIG.format(db="sqlite://"))
    daemon = Daemon(config_for("sqlite://"), storage, config_path=path)
    path.write_text(CONFIG.format(db="sqlite://").replace("TEST_BAD_DATA_SECRET", "NOT_SET_HERE"))
    assert daemon.reload() is False
    assert [p.source.name for p in daemon.pollers] == ["news"]
    assert daemon.config.sources[1].secret_env == "TEST_BAD_DATA_SECRET"  # type: ignore[union-attr]
