"""``brandmon backtest``: run the daemon's detector over history and show what would have paged.

Streaming and never looking ahead: each bucket is judged with only the buckets before it, by the
same ``Detector`` the daemon runs, so support leads can tune thresholds on past data and trust
the result.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TextIO

from monitor.detection import Detector, DetectorSettings, Escalation, Level, Step
from monitor.model import to_utc
from monitor.storage import Storage
from monitor.watcher import replay


class BacktestInputError(ValueError):
    """The input CSV cannot be used; the message names the line."""


@dataclass(slots=True)
class Summary:
    buckets: int = 0
    pages: int = 0
    incidents: int = 0
    first: datetime | None = None
    last: datetime | None = None
    time_at: Counter[Level] = field(default_factory=Counter)
    page_times: list[tuple[datetime, Level, str]] = field(default_factory=list)

    def pages_per_month(self, bucket: timedelta) -> float:
        """Pages per 30 days over the span replayed."""
        if self.first is None or self.last is None:
            return 0.0
        span = self.last - self.first + bucket
        return self.pages * timedelta(days=30) / span

    def lines(self, bucket: timedelta) -> list[str]:
        out = [
            f"{self.buckets} buckets, {self.incidents} incident(s), {self.pages} page(s), "
            f"{self.pages_per_month(bucket):.1f} page(s) per 30 days"
        ]
        for level in (Level.watch, Level.warning, Level.crisis):
            out.append(f"time at {level.name}: {self.time_at[level] * bucket}")
        out += [
            f"page at {at.isoformat()}: {level.name}: {why}" for at, level, why in self.page_times
        ]
        return out


@dataclass(frozen=True, slots=True)
class Bucket:
    """One row of a volume CSV: the signal (``negative``), and when known all mentions and
    the negative mentions' summed reach."""

    at: datetime
    negative: float
    total: float | None = None
    reach: float | None = None


def read_volume_csv(handle: TextIO) -> Iterator[Bucket]:
    """Rows of ``timestamp,value[,negative][,total][,reach]``.

    ``negative`` is the signal when present (``value`` then counts all mentions unless a
    ``total`` column does); otherwise ``value`` is.
    """
    reader = csv.DictReader(handle)
    fields = reader.fieldnames or []
    if "timestamp" not in fields or "value" not in fields:
        raise BacktestInputError(f"line 1: header must have timestamp and value, got {fields}")
    signal = "negative" if "negative" in fields else "value"
    total = "total" if "total" in fields else "value" if signal == "negative" else None
    reach = "reach" if "reach" in fields else None
    for row in reader:
        try:
            at = to_utc(datetime.fromisoformat(row["timestamp"].strip()))
            assert at is not None
            yield Bucket(
                at,
                _number(row[signal]),
                _number(row[total]) if total else None,
                _number(row[reach]) if reach else None,
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise BacktestInputError(f"line {reader.line_num}: {exc}") from None


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a count: {text!r}")
    return value


class Backtest:
    """A fresh detector plus the tally a support lead wants to see."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.detector = Detector(settings)
        self.summary = Summary()
        self.steps: list[Step] = []

    def feed(self, bucket: Bucket) -> Step:
        step = self.detector.step(
            bucket.at, bucket.negative, total=bucket.total, reach=bucket.reach
        )
        self.record(step)
        return step

    def record(self, step: Step) -> None:
        """Tally ``step``, which this backtest's detector took."""
        summary = self.summary
        summary.buckets += 1
        summary.first = summary.first or step.at
        summary.last = step.at
        summary.time_at[step.level] += 1
        if step.page:
            summary.pages += 1
            summary.page_times.append(
                (step.at, step.level, step.why(self.detector.settings.bucket))
            )
        summary.incidents = self.detector.incident_count
        self.steps.append(step)


def backtest_stored(
    storage: Storage, brand: str, settings: DetectorSettings, start: datetime, end: datetime
) -> Backtest:
    """``brand``'s stored mentions in [start, end) replayed through a fresh detector, bucket by
    bucket as the daemon judges them (``brandmon backtest --from``)."""
    tally = Backtest(settings)
    for step in replay(tally.detector, storage, brand, start, end):
        tally.record(step)
    return tally


def replay_pages(steps: list[Step], settings: DetectorSettings) -> list[Step]:
    """The pages the levels of ``settings`` would have sent on recorded scores (the scores do
    not depend on the levels, so thresholds can be tried without re-scoring)."""
    escalation = Escalation(settings)
    pages = []
    for step in steps:
        again = Step(step.at, step.value, step.expected, step.score, escalation.level)
        again.evidence, again.signal = step.evidence, step.signal
        escalation.update(again)
        if again.page:
            pages.append(again)
    return pages


def with_watch(settings: DetectorSettings, watch: float) -> DetectorSettings:
    """``settings`` with the watch threshold moved, warning and crisis keeping their distance."""
    shift = watch - settings.enter[0]
    enter = tuple(t + shift for t in settings.enter)
    ratio = settings.exit[0] / settings.enter[0]
    return replace(settings, enter=enter, exit=tuple(t * ratio for t in enter))  # type: ignore[arg-type]


@dataclass(slots=True)
class Proposal:
    settings: DetectorSettings
    pages: list[Step]
    dropped: list[Step]
    """Pages of the current thresholds that the proposed ones would not have sent."""


def propose(steps: list[Step], settings: DetectorSettings, pages_per_month: float) -> Proposal:
    """The lowest watch threshold (by 0.25) that would have paged at most ``pages_per_month``
    times per 30 days on these recorded steps."""
    span = steps[-1].at - steps[0].at + settings.bucket if steps else timedelta(days=30)
    current = replay_pages(steps, settings)
    watch = 1.0
    while True:
        candidate = with_watch(settings, watch)
        pages = replay_pages(steps, candidate)
        if len(pages) * timedelta(days=30) / span <= pages_per_month or not pages:
            kept = {p.at for p in pages}
            return Proposal(candidate, pages, [p for p in current if p.at not in kept])
        watch += 0.25


def backtest_csv(source: TextIO, out: TextIO, settings: DetectorSettings) -> Backtest:
    """Write ``timestamp,value,level,score,alert`` for every input row; return the replay."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "level", "score", "alert"])
    backtest = Backtest(settings)
    for bucket in read_volume_csv(source):
        step = backtest.feed(bucket)
        value = bucket.negative
        shown = int(value) if value.is_integer() else value
        writer.writerow(
            [bucket.at.isoformat(), shown, step.level.name, f"{step.score:.2f}", int(step.page)]
        )
    return backtest
