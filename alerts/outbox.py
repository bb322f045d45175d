"""The durable outbox between the detector and the sinks.

The detector writes alerts here in the same transaction as the incident change that caused them
(``enqueue``), one row per sink, keyed by an idempotency key, so a decision is never half-made.
``OutboxSender`` then delivers due rows in order and marks each sent only after its sink
accepted it; a failing sink keeps its rows pending with back-off (honouring ``retry_after``)
and holds the later rows of the same sink back, so alerts arrive in order once it recovers.
A restart simply picks up what is still pending: nothing is lost.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from alerts.base import Alert, Sink, SinkError
from monitor.model import AlertOutbox, utcnow
from monitor.storage import Storage, instance_id

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=15)
SEND_LEASE = timedelta(minutes=5)


def enqueue(
    session: Session,
    *,
    key: str,
    brand: str,
    kind: str,
    payload: Mapping[str, Any],
    sinks: Sequence[str],
) -> None:
    """Add one outbox row per sink to ``session``'s transaction (a known key is a no-op)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    body = json.dumps(payload, ensure_ascii=False, default=str)
    now = utcnow()
    rows = [
        {
            "idempotency_key": f"{key}:{sink}",
            "brand": brand,
            "sink": sink,
            "kind": kind,
            "payload": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for sink in sinks
    ]
    session.execute(insert(AlertOutbox).on_conflict_do_nothing(), rows)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(1.0, retry_after))
    seconds = min(MAX_BACKOFF.total_seconds(), 5 * 2 ** min(attempts - 1, 12))
    return timedelta(seconds=seconds * random.uniform(0.8, 1.0))


class OutboxSender:
    """Delivers pending outbox rows to their sinks."""

    def __init__(
        self, storage: Storage, sinks: Sequence[Sink], *, owner: str | None = None
    ) -> None:
        self.storage = storage
        self.sinks = {sink.name: sink for sink in sinks}
        self.owner = owner or instance_id()

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Try every pending row whose turn has come, oldest first, per sink in order.

        Each sink is delivered to by one instance at a time (its lease), so instances sharing
        a database never send an alert twice nor out of order.
        """
        now = now or utcnow()
        report = DeliveryReport()
        for name in self.sinks:
            lease = f"sink:{name}"
            if not self.storage.acquire(lease, self.owner, SEND_LEASE):
                continue
            try:
                self._deliver(name, now, report)
            finally:
                self.storage.release(lease, self.owner)
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
            alert = Alert(row.idempotency_key, row.brand, row.kind, json.loads(row.payload))
            try:
                sink.send(alert)
            except SinkError as exc:
                self._failed(row, str(exc), exc.retry_after)
                report.failed += 1
                report.held += waiting - 1
                report.errors.append(f"{row.sink}: {exc}")
                return
            self._sent(row)
            report.sent += 1

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
