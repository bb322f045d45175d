"""``brandmon backtest``: run the daemon's detector over history and show what would have paged.

Streaming and never looking ahead: each bucket is judged with only the buckets before it, by the
same ``Detector`` the daemon runs, so support leads can tune thresholds on past data and trust
the result.

A volume CSV holds whole buckets, so ``--volume-csv`` judges closed buckets only.  The daemon
also pages on a bucket that is still filling, when its count so far already earns the level
(``Detector.early``); a partial count is never more than the whole one, so that changes when a
page goes out, not which.  Over stored mentions (``--from``) each page also says when the daemon
would have sent it: the first detection pass (every ``EARLY_TICK``) at which the mentions of its
bucket published so far earned its level.
"""

from __future__ import annotations

import copy
import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TextIO

from monitor.detection import Detector, DetectorSettings, Escalation, Level, Step
from monitor.model import to_utc
from monitor.storage import Activity, Storage
from monitor.watcher import as_whole, judge


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
    sent: dict[datetime, datetime] = field(default_factory=dict)
    """When the daemon, judging open buckets too, would have sent each page (by its bucket)."""

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
        for at, level, why in self.page_times:
            sent = self.sent.get(at)
            when = f" (sent at {sent.time().isoformat()})" if sent else ""
            out.append(f"page at {at.isoformat()}: {level.name}: {why}{when}")
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
    buckets = storage.activity(brand, start, end, settings.bucket)
    tally = Backtest(settings)
    # the detector as it was every CHECKPOINT buckets: when a bucket turns out to have paged,
    # the detector before it is the checkpoint before it, fed the buckets in between (pages
    # are rare: copying the detector before every bucket would cost more than the replay)
    checkpoints: list[Detector] = []
    for n, bucket in enumerate(buckets):
        if n % CHECKPOINT == 0:
            checkpoints.append(copy.deepcopy(tally.detector))
        tally.record(judge(tally.detector, bucket))
    paged = {at for at, _, _ in tally.summary.page_times}
    for n, bucket in enumerate(buckets):
        if bucket.start in paged:
            before = copy.deepcopy(checkpoints[n // CHECKPOINT])
            for between in buckets[n - n % CHECKPOINT : n]:
                judge(before, between)
            tally.summary.sent[bucket.start] = _first_pass(before, storage, brand, bucket.start)
    return tally


CHECKPOINT = 400
"""Buckets between the backtest's copies of its detector: a copy costs about 7 buckets' replay
(0.3 ms with a month learnt), and each page replays 200 buckets on average from the copy
before it; a month of 5-minute buckets has 8,640 and pages a few times at most."""


EARLY_TICK = timedelta(minutes=1)  # how often the daemon judges at most (its DETECT_EVERY)


def _first_pass(detector: Detector, storage: Storage, brand: str, start: datetime) -> datetime:
    """The first detection pass at which the bucket at ``start``, as published so far, earned
    a level above ``detector``'s (the detector before that bucket); at the latest the first
    pass after the bucket closed."""
    bucket = detector.settings.bucket
    tick = min(EARLY_TICK, bucket / 2)
    fine = storage.activity(brand, start, start + bucket, tick)
    for k in range(1, len(fine)):
        now = start + tick * k
        so_far = Activity(
            start,
            sum(a.volume for a in fine[:k]),
            sum(a.negative for a in fine[:k]),
            sum(a.negative_reach for a in fine[:k]),
        )
        if so_far.negative and copy.deepcopy(detector).early(as_whole([so_far], now, bucket)):
            return now
    return start + bucket


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
