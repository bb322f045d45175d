"""``brandmon backtest``: run the daemon's detector over history and show what would have paged.

Streaming and never looking ahead: each bucket is judged with only the buckets before it, by the
same ``Detector`` the daemon runs, so support leads can tune thresholds on past data and trust
the result.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from monitor.detection import Detector, DetectorSettings, Level, Step
from monitor.model import to_utc


class BacktestInputError(ValueError):
    """The input CSV cannot be used; the message names the line."""


@dataclass(slots=True)
class Summary:
    buckets: int = 0
    pages: int = 0
    incidents: int = 0
    time_at: Counter[Level] = field(default_factory=Counter)
    page_times: list[tuple[datetime, Level]] = field(default_factory=list)

    def lines(self, bucket: timedelta) -> list[str]:
        out = [f"{self.buckets} buckets, {self.incidents} incident(s), {self.pages} page(s)"]
        for level in (Level.watch, Level.warning, Level.crisis):
            out.append(f"time at {level.name}: {self.time_at[level] * bucket}")
        out += [f"page at {at.isoformat()}: {level.name}" for at, level in self.page_times]
        return out


def read_volume_csv(handle: TextIO) -> Iterator[tuple[datetime, float]]:
    """Rows of ``timestamp,value[,negative]``; ``negative`` is the signal when present."""
    reader = csv.DictReader(handle)
    fields = reader.fieldnames or []
    if "timestamp" not in fields or "value" not in fields:
        raise BacktestInputError(f"line 1: header must have timestamp and value, got {fields}")
    column = "negative" if "negative" in fields else "value"
    for row in reader:
        try:
            at = to_utc(datetime.fromisoformat(row["timestamp"].strip()))
            value = float(row[column])
        except (ValueError, TypeError, AttributeError) as exc:
            raise BacktestInputError(f"line {reader.line_num}: {exc}") from None
        assert at is not None
        yield at, value


class Backtest:
    """A fresh detector plus the tally a support lead wants to see."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.detector = Detector(settings)
        self.summary = Summary()

    def feed(self, at: datetime, value: float) -> Step:
        step = self.detector.step(at, value)
        summary = self.summary
        summary.buckets += 1
        summary.time_at[step.level] += 1
        if step.page:
            summary.pages += 1
            summary.page_times.append((at, step.level))
        summary.incidents = self.detector.incident_count
        return step


def backtest_csv(source: TextIO, out: TextIO, settings: DetectorSettings) -> Summary:
    """Write ``timestamp,value,level,alert`` for every input row; return the summary."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "level", "alert"])
    backtest = Backtest(settings)
    for at, value in read_volume_csv(source):
        step = backtest.feed(at, value)
        shown = int(value) if value.is_integer() else value
        writer.writerow([at.isoformat(), shown, step.level.name, int(step.page)])
    return backtest.summary
