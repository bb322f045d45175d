"""The outbox under refusals: dead letters, the operator's notice, back-off, ``brandmon outbox``.

The sinks here are in-process and scripted (the outbox is what is under test); the storage is
the shared fixture, so everything runs on SQLite and, when configured, PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlmodel import select
from typer.testing import CliRunner

from alerts.base import Alert, PermanentSinkError, SinkError
from alerts.console import ConsoleSink
from alerts.email import subject
from alerts.outbox import MAX_BACKOFF, OutboxSender, backoff, retry
from monitor.alert import PagePayload, UndeliverablePayload
from monitor.cli import app
from monitor.config import parse_config
from monitor.model import AlertOutbox, utcnow
from monitor.scheduler import Daemon
from monitor.storage import Storage, enqueue

REFUSED = PermanentSinkError("Slack refused the message: msg_too_long")
TIMEOUT = SinkError("Slack did not answer in time")


class ScriptedSink:
    """A sink that meets each alert with its script's next outcome: an error to raise, or
    ``None`` to accept it (as it does every alert once the script has run out)."""

    def __init__(self, name: str, *script: SinkError | None) -> None:
        self.name = name
        self.script = list(script)
        self.received: list[Alert] = []

    def send(self, alert: Alert) -> None:
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.received.append(alert)

    @property
    def keys(self) -> list[str]:
        return [alert.key.rsplit(":", 1)[0] for alert in self.received]


def page_payload(number: int) -> PagePayload:
    return PagePayload(
        brand="Acme",
        incident_id=7,
        level="warning",
        at="2026-11-24T08:30:00+00:00",
        started_at="2026-11-24T08:30:00+00:00",
        peak_level="warning",
        peak_at="2026-11-24T08:30:00+00:00",
        score=8.0,
        negative=12,
        expected=2.0,
        window_minutes=15,
        thresholds={"watch": 5.0, "warning": 7.0, "crisis": 10.0},
        why=f"page {number}",
        previous_window=0,
    )


def queue(storage: Storage, count: int, sinks: tuple[str, ...] = ("slack",)) -> None:
    """Queue ``count`` pages ``p0``, ``p1``, … for ``sinks``, in order."""
    with storage.session() as session:
        for number in range(count):
            enqueue(
                session,
                key=f"p{number}",
                brand="Acme",
                kind="page",
                payload=page_payload(number),
                sinks=sinks,
            )
        session.commit()


def rows(storage: Storage, kind: str | None = None) -> list[AlertOutbox]:
    query = select(AlertOutbox).order_by(AlertOutbox.id)
    if kind is not None:
        query = query.where(AlertOutbox.kind == kind)
    with storage.session() as session:
        return list(session.scalars(query).all())


def test_a_refused_alert_is_set_aside_and_the_next_one_goes_out_in_the_same_pass(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    queue(storage, 3)
    slack = ScriptedSink("slack", REFUSED)

    with caplog.at_level(logging.WARNING, logger="alerts.outbox"):
        report = OutboxSender(storage, [slack]).deliver_due()

    assert (report.sent, report.dead, report.failed, report.held) == (2, 1, 0, 0)
    assert report.errors == [f"slack: {REFUSED}"]
    assert slack.keys == ["p1", "p2"]
    refused, *delivered = rows(storage)
    assert (refused.status, refused.attempts, refused.last_error) == ("failed", 1, str(REFUSED))
    assert [row.status for row in delivered] == ["sent", "sent"]
    warning = caplog.records[0].getMessage()
    assert "sink=slack" in warning and "key=p0:slack" in warning and "msg_too_long" in warning
    # a failed row is never tried again by itself
    assert OutboxSender(storage, [slack]).deliver_due().sent == 0
    assert slack.keys == ["p1", "p2"]


def test_a_transient_error_holds_the_later_alerts_in_order_until_the_sink_recovers(
    storage: Storage,
) -> None:
    queue(storage, 3)
    slack = ScriptedSink("slack", TIMEOUT)
    sender = OutboxSender(storage, [slack])

    report = sender.deliver_due()
    assert (report.sent, report.failed, report.dead, report.held) == (0, 1, 0, 2)
    assert [row.status for row in rows(storage)] == ["pending"] * 3
    assert sender.deliver_due().held == 3  # still backing off: nothing overtakes the first

    report = sender.deliver_due(utcnow() + MAX_BACKOFF)
    assert (report.sent, report.failed, report.held) == (3, 0, 0)
    assert slack.keys == ["p0", "p1", "p2"]


def test_the_other_sinks_hear_of_an_undeliverable_alert_exactly_once(storage: Storage) -> None:
    queue(storage, 1, sinks=("slack", "console"))
    slack, stream = ScriptedSink("slack", REFUSED), io.StringIO()
    sender = OutboxSender(storage, [slack, ConsoleSink(stream)])

    assert sender.deliver_due().sent == 2  # the page and the notice, both on the console
    for _ in range(2):
        assert sender.deliver_due().sent == 0

    refused = rows(storage, "page")[0]
    [notice] = rows(storage, "undeliverable")
    assert (notice.sink, notice.status, notice.brand) == ("console", "sent", "Acme")
    payload = json.loads(notice.payload)
    assert payload["alert_id"] == refused.id
    assert {k: payload[k] for k in ("sink", "alert_kind", "level", "incident_id", "error")} == {
        "sink": "slack",
        "alert_kind": "page",
        "level": "warning",
        "incident_id": 7,
        "error": str(REFUSED),
    }
    lines = stream.getvalue().splitlines()
    assert lines[-1] == (
        "[UNDELIVERABLE] Acme: the WARNING page of incident #7 could not be delivered to slack "
        f"({REFUSED}); it is kept as outbox alert {refused.id}: fix the cause, then "
        f"`brandmon outbox retry {refused.id}` sends it"
    )
    alert = Alert(
        notice.idempotency_key, notice.brand, notice.kind, UndeliverablePayload.from_json(payload)
    )
    assert subject(alert) == "[UNDELIVERABLE] Acme: an alert could not be delivered to slack"


def test_a_refused_notice_is_not_announced_in_turn(storage: Storage) -> None:
    """Two sinks that refuse everything must not send each other notices for ever."""
    queue(storage, 1, sinks=("slack", "webhook"))
    sender = OutboxSender(
        storage, [ScriptedSink("slack", *[REFUSED] * 9), ScriptedSink("webhook", *[REFUSED] * 9)]
    )
    for _ in range(4):
        sender.deliver_due()
    assert [(row.kind, row.sink, row.status) for row in rows(storage)] == [
        ("page", "slack", "failed"),
        ("page", "webhook", "failed"),
        ("undeliverable", "webhook", "failed"),
        ("undeliverable", "slack", "failed"),
    ]


def test_back_off_is_at_most_a_minute_unless_the_sink_asks_for_longer() -> None:
    assert all(backoff(attempts, None) <= timedelta(seconds=60) for attempts in range(1, 40))
    assert backoff(30, None) >= timedelta(seconds=48)  # the cap, less its jitter
    assert backoff(1, 300.0) == timedelta(seconds=300)


def test_after_a_long_outage_the_next_try_is_within_a_minute(storage: Storage) -> None:
    queue(storage, 1)
    with storage.session() as session:
        row = session.scalars(select(AlertOutbox)).one()
        row.attempts = 50
        session.commit()
    before = utcnow()
    OutboxSender(storage, [ScriptedSink("slack", TIMEOUT)]).deliver_due()
    [row] = rows(storage)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at.replace(tzinfo=before.tzinfo) - before <= MAX_BACKOFF


# -- brandmon outbox ----------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, storage: Storage) -> Path:
    """A config on the test's database."""
    url = storage.engine.url.render_as_string(hide_password=False)
    path = tmp_path / "brandmon.toml"
    path.write_text(f'[storage]\nurl = "{url}"\n\n[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n')
    return path


def brandmon(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def dead_letter(storage: Storage) -> tuple[int, ScriptedSink]:
    """Queue two pages; the first is refused for good and the second delivered.  Returns the
    refused row's id and the sink, which accepts what comes next."""
    queue(storage, 2)
    slack = ScriptedSink("slack", REFUSED)
    OutboxSender(storage, [slack]).deliver_due()
    refused = rows(storage)[0].id
    assert refused is not None
    return refused, slack


def test_outbox_lists_the_failed_and_pending_alerts(storage: Storage, config: Path) -> None:
    refused, _ = dead_letter(storage)
    queue(storage, 1, sinks=("console",))

    result = brandmon("outbox", "--config", str(config))

    assert result.exit_code == 0, result.output
    header, failed, pending, total = result.stdout.splitlines()
    assert re.split(r"\s{2,}", header) == [
        *("id", "status", "sink", "brand", "kind", "level", "attempts"),
        *("created", "last error"),
    ]
    assert failed.split()[:7] == [str(refused), "failed", "slack", "Acme", "page", "warning", "1"]
    assert failed.endswith(str(REFUSED))
    assert pending.split()[1:3] == ["pending", "console"]
    assert total == "2 alert(s)"
    everything = brandmon("outbox", "--config", str(config), "--status", "all").stdout
    assert everything.splitlines()[-1] == "3 alert(s)"


def test_outbox_retry_sends_a_failed_alert_again(storage: Storage, config: Path) -> None:
    refused, slack = dead_letter(storage)

    # --config given to the group applies to its subcommand too
    result = brandmon("outbox", "--config", str(config), "retry", str(refused))

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{refused}: pending (slack, Acme, page)\n"
    assert rows(storage)[0].status == "pending"
    assert OutboxSender(storage, [slack]).deliver_due().sent == 1
    assert slack.keys == ["p1", "p0"]
    assert rows(storage)[0].status == "sent"


def test_outbox_drop_keeps_the_alert_but_never_sends_it(storage: Storage, config: Path) -> None:
    refused, slack = dead_letter(storage)

    result = brandmon("outbox", "drop", str(refused), "--config", str(config))

    assert result.exit_code == 0, result.output
    assert rows(storage)[0].status == "dropped"
    assert OutboxSender(storage, [slack]).deliver_due().sent == 0
    assert slack.keys == ["p1"]
    listed = brandmon("outbox", "--config", str(config)).stdout
    assert listed.splitlines() == [listed.splitlines()[0], "0 alert(s)"]


def test_outbox_refuses_unknown_ids_and_changes_nothing(storage: Storage, config: Path) -> None:
    refused, _ = dead_letter(storage)

    result = brandmon("outbox", "retry", str(refused), "999", "--config", str(config))

    assert result.exit_code == 2
    assert result.stderr == "error: no alert with id 999 in the outbox\n"
    assert rows(storage)[0].status == "failed"
    sent = rows(storage)[1].id
    result = brandmon("outbox", "retry", str(sent), "--config", str(config))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: cannot retry alerts that are not failed or dropped: {sent} is sent\n"
    )


# -- what the daemon reports --------------------------------------------------------------


def test_health_and_metrics_count_the_failed_alerts(storage: Storage) -> None:
    config = parse_config('[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n', "test.toml")
    daemon = Daemon(config, storage)
    queue(storage, 1)
    slack = ScriptedSink("slack", REFUSED)
    daemon.sender = OutboxSender(storage, [slack])

    def gauge() -> str:
        text = generate_latest(daemon.metrics.registry).decode()
        return next(line for line in text.splitlines() if 'status="failed"' in line)

    asyncio.run(daemon.detect_and_alert())
    ok, report = daemon.health()
    assert ok is True and report["alerts_failed"] == 1
    assert gauge() == 'brandmon_outbox_alerts{sink="slack",status="failed"} 1.0'

    retry(storage, [rows(storage)[0].id or 0])
    asyncio.run(daemon.detect_and_alert())
    assert daemon.health()[1]["alerts_failed"] == 0
    assert gauge() == 'brandmon_outbox_alerts{sink="slack",status="failed"} 0.0'


class PictureSink(ScriptedSink):
    """A sink that shows pictures: it wants the brand's chart with the second page only."""

    def wants_chart(self, alert: Alert) -> bool:
        return alert.read(PagePayload).why == "page 1"


def test_the_chart_a_sink_wants_is_drawn_before_it_and_a_chart_that_fails_costs_only_it(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    queue(storage, 2, sinks=("pictures", "plain"))
    pictures, plain = PictureSink("pictures"), ScriptedSink("plain")
    drawn: list[str] = []

    def chart(brand: str) -> bytes:
        drawn.append(brand)
        return b"png of " + brand.encode()

    OutboxSender(storage, [pictures, plain], chart=chart).deliver_due()
    assert [alert.chart for alert in pictures.received] == [None, b"png of Acme"]
    assert [alert.chart for alert in plain.received] == [None, None]
    assert drawn == ["Acme"]  # only for the alert that wanted it

    def broken(brand: str) -> bytes:
        raise RuntimeError("no display")

    with storage.session() as session:
        payload = page_payload(1)
        enqueue(session, key="k", brand="Acme", kind="page", payload=payload, sinks=["pictures"])
        session.commit()
    again = PictureSink("pictures")
    with caplog.at_level(logging.WARNING, logger="alerts.outbox"):
        report = OutboxSender(storage, [again], chart=broken).deliver_due()
    assert report.sent == 1 and [alert.chart for alert in again.received] == [None]
    assert "chart not drawn brand=Acme: RuntimeError: no display" in caplog.text
