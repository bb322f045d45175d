"""The durable outbox between the detector and the sinks.

The detector writes alerts here in the same transaction as the incident change that caused them
(``monitor.storage.enqueue``), one row per sink, keyed by an idempotency key, so a decision is
never half-made.  ``OutboxSender`` then delivers due rows in order and marks each sent only after
its sink accepted it; a failing sink keeps its rows pending with back-off (honouring
``retry_after``, else at most ``MAX_BACKOFF``) and holds the later rows of the same sink back, so
alerts arrive in order once it recovers.  A row its sink refuses for good
(``PermanentSinkError``) is dead-lettered instead: marked ``failed``, announced to the other
sinks (an ``undeliverable`` alert) and passed over, so it never blocks the alerts behind it.
``brandmon outbox`` lists such rows and retries or drops them.  A restart simply picks up what is
still pending: nothing is lost, and nothing is ever deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlmodel import Session, col

from alerts.base import Alert, Chart, PermanentSinkError, Sink, SinkError
from monitor.alert import UndeliverablePayload, payload_from_json
from monitor.backoff import backoff as exponential_backoff
from monitor.locks import WorkLocks, work_locks
from monitor.model import AlertOutbox, utcnow
from monitor.storage import Storage, enqueue, instance_id

log = logging.getLogger(__name__)

# Short, so that a sink back after a long outage is probed, and the crisis page that waits for
# it sent, within a minute; a failed probe costs one request.
MAX_BACKOFF = timedelta(seconds=60)
FIRST_BACKOFF = timedelta(seconds=5)

Status = Literal["pending", "sent", "failed", "dropped"]
STATUSES: tuple[Status, ...] = ("pending", "sent", "failed", "dropped")
UNDELIVERABLE = "undeliverable"


@dataclass(slots=True)
class DeliveryReport:
    """One pass: ``failed`` deliveries will be retried, ``dead`` ones were refused for good;
    ``errors`` has one ``"<sink>: <error>"`` for each of either."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(1.0, retry_after))
    return exponential_backoff(FIRST_BACKOFF, attempts, MAX_BACKOFF)


class OutboxSender:
    """Delivers pending outbox rows to their sinks."""

    def __init__(
        self,
        storage: Storage,
        sinks: Sequence[Sink],
        *,
        locks: WorkLocks | None = None,
        chart: Chart | None = None,
    ) -> None:
        self.storage = storage
        self.sinks = {sink.name: sink for sink in sinks}
        self.locks = locks or work_locks(storage, instance_id())
        self.chart = chart
        """Draws the chart a sink may want with an alert; without it, alerts go without."""

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Try every pending row whose turn has come, oldest first, per sink in order.

        Each sink is delivered to by one instance at a time (its lock), so instances sharing
        a database never send an alert twice nor out of order; the lock of an instance that
        died is free at once (``monitor.locks``), and the next pass of another delivers.
        ``now`` defaults to the start of each sink's turn, so a notice queued during an earlier
        sink's turn is due already.
        """
        report = DeliveryReport()
        for name in self.sinks:
            lock = f"sink:{name}"
            if not self.locks.take(lock):
                continue
            try:
                self._deliver(name, now or utcnow(), report)
            finally:
                self.locks.free(lock)
        return report

    def _deliver(self, sink_name: str, now: datetime, report: DeliveryReport) -> None:
        sink = self.sinks[sink_name]
        with self.storage.session() as session:
            pending = session.scalars(
                select(AlertOutbox)
                .where(AlertOutbox.status == "pending", AlertOutbox.sink == sink_name)
                .order_by(col(AlertOutbox.id))
            ).all()
        for position, row in enumerate(pending):
            waiting = len(pending) - position
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                # keep order: nothing overtakes a row that waits
                report.held += waiting
                return
            try:  # a payload that does not read fails like its sink would
                payload = payload_from_json(row.kind, json.loads(row.payload))
                alert = Alert(row.idempotency_key, row.brand, row.kind, payload)
                wants = getattr(sink, "wants_chart", None)
                if self.chart is not None and wants is not None and wants(alert):
                    alert = replace(alert, chart=self._chart(alert.brand))
                sink.send(alert)
            except PermanentSinkError as exc:
                self._dead(row, str(exc))
                report.dead += 1
                report.errors.append(f"{row.sink}: {exc}")
                continue
            except Exception as exc:  # any failure holds this sink's later alerts back
                if isinstance(exc, SinkError):
                    error, retry_after = str(exc), exc.retry_after
                else:  # a bug in the sink: retried like an outage, and logged in full
                    log.exception(
                        "sink %s failed unexpectedly key=%s", row.sink, row.idempotency_key
                    )
                    error, retry_after = f"{type(exc).__name__}: {exc}", None
                self._failed(row, error, retry_after)
                report.failed += 1
                report.held += waiting - 1
                report.errors.append(f"{row.sink}: {error}")
                return
            self._sent(row)
            report.sent += 1

    def _chart(self, brand: str) -> bytes | None:
        """The brand's chart, or None when it cannot be drawn: it is a courtesy, and the alert
        goes out without it."""
        assert self.chart is not None
        try:
            return self.chart(brand)
        except Exception as exc:  # noqa: BLE001 - any failure to draw only costs the picture
            log.warning("chart not drawn brand=%s: %s: %s", brand, type(exc).__name__, exc)
            return None

    def _sent(self, row: AlertOutbox) -> None:
        with self.storage.session() as session:
            stored = session.get(AlertOutbox, row.id)
            assert stored is not None
            stored.status = "sent"
            stored.sent_at = utcnow()
            stored.attempts += 1
            stored.last_error = None
            session.add(stored)
            session.commit()
        log.info("alert sent sink=%s key=%s", row.sink, row.idempotency_key)

    def _failed(self, row: AlertOutbox, error: str, retry_after: float | None) -> None:
        with self.storage.session() as session:
            stored = session.get(AlertOutbox, row.id)
            assert stored is not None
            stored.attempts += 1
            stored.last_error = error
            stored.next_attempt_at = utcnow() + backoff(stored.attempts, retry_after)
            session.add(stored)
            session.commit()
        log.warning(
            "alert delivery failed sink=%s key=%s attempts=%d error=%s",
            row.sink,
            row.idempotency_key,
            row.attempts + 1,
            error,
        )

    def _dead(self, row: AlertOutbox, error: str) -> None:
        """Mark ``row`` failed and, in the same transaction, tell the other sinks about it.

        A refused ``undeliverable`` notice is not announced in turn: two sinks that refuse
        everything would otherwise send each other notices for ever.
        """
        others = [name for name in self.sinks if name != row.sink]
        with self.storage.session() as session:
            stored = session.get(AlertOutbox, row.id)
            assert stored is not None
            stored.status = "failed"
            stored.attempts += 1
            stored.last_error = error
            session.add(stored)
            if others and row.kind != UNDELIVERABLE:
                enqueue(
                    session,
                    # once per refusal: a row retried by hand and refused again is news again
                    key=f"{UNDELIVERABLE}:{row.id}:{stored.attempts}",
                    brand=row.brand,
                    kind=UNDELIVERABLE,
                    payload=_notice(row, error),
                    sinks=others,
                )
            session.commit()
        log.warning(
            "alert undeliverable, kept as failed sink=%s key=%s id=%s error=%s",
            row.sink,
            row.idempotency_key,
            row.id,
            error,
        )


def _notice(row: AlertOutbox, error: str) -> UndeliverablePayload:
    """The payload of the ``undeliverable`` alert about ``row`` (whose stored JSON is read as
    is: any kind, even one that does not parse)."""
    original = json.loads(row.payload)
    return UndeliverablePayload(
        brand=row.brand,
        sink=row.sink,
        alert_id=row.id,
        alert_kind=row.kind,
        level=original.get("level"),
        incident_id=original.get("incident_id"),
        error=error,
        at=utcnow().isoformat(),
    )


# -- what ``brandmon outbox`` reads and changes ------------------------------------------------


class OutboxChangeError(ValueError):
    """Some of the ids given are unknown, or their rows cannot make that change; nothing was
    changed."""


def outbox_rows(storage: Storage, statuses: Sequence[Status]) -> list[AlertOutbox]:
    """The rows in one of ``statuses``, oldest first."""
    query = (
        select(AlertOutbox)
        .where(col(AlertOutbox.status).in_(statuses))
        .order_by(col(AlertOutbox.id))
    )
    with storage.session() as session:
        return list(session.scalars(query).all())


def count_failed(storage: Storage) -> int:
    """How many alerts were refused for good and wait for the operator."""
    query = select(func.count()).where(AlertOutbox.status == "failed")
    with storage.session() as session:
        return session.scalar(query) or 0


def retry(storage: Storage, ids: Sequence[int]) -> list[AlertOutbox]:
    """Make the failed (or dropped) rows ``ids`` pending and due now; they keep their place in
    their sink's order."""
    with storage.session() as session:
        rows = _rows(session, ids, ("failed", "dropped"), "retry")
        now = utcnow()
        for row in rows:
            row.status, row.next_attempt_at = "pending", now
        session.commit()
    return rows


def drop(storage: Storage, ids: Sequence[int]) -> list[AlertOutbox]:
    """Mark the failed or pending rows ``ids`` dropped: never sent, but kept."""
    with storage.session() as session:
        rows = _rows(session, ids, ("failed", "pending"), "drop")
        for row in rows:
            row.status = "dropped"
        session.commit()
    return rows


def _rows(
    session: Session, ids: Sequence[int], allowed: Sequence[Status], change: str
) -> list[AlertOutbox]:
    """The rows ``ids`` in ``session``, or ``OutboxChangeError`` if any is unknown or not in
    one of the ``allowed`` statuses."""
    rows = session.scalars(select(AlertOutbox).where(col(AlertOutbox.id).in_(ids))).all()
    unknown = sorted(set(ids) - {row.id for row in rows})
    if unknown:
        raise OutboxChangeError(f"no alert with id {', '.join(map(str, unknown))} in the outbox")
    wrong = [f"{row.id} is {row.status}" for row in rows if row.status not in allowed]
    if wrong:
        raise OutboxChangeError(
            f"cannot {change} alerts that are not {' or '.join(allowed)}: {', '.join(wrong)}"
        )
    return list(rows)
