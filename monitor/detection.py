"""Crisis detection: is a brand's negative talk turning into a crisis?

One ``Detector`` watches one brand and is fed closed buckets in time order (negative mentions,
and when known all mentions and the negative mentions' reach); it never looks ahead.  The daemon
and ``brandmon backtest`` use this same class, so a backtest shows exactly what the daemon would
have paged.

**Score.**  ``monitor.surprise.Surprise`` turns each signal into a score against the brand's
own past, in Gumbel units of the usual day's largest surprise: a score ``s`` is about as rare as
a day whose most unusual moment comes once in ``e**s`` days.  Two signals are scored:

- *negative volume*, negative mentions per bucket;
- *negative reach*, the negative mentions weighted by their authors' reach (reach score / 10,
  so a 100-reach account weighs as ten ordinary ones): one 2-million-follower complaint can
  matter more than fifty bots.

The brand's score is the larger of the two.  When all mentions are counted too, a rise whose
**negative share** did not grow (negatives in the scoring window less than ``SHARE_RISE`` times
their usual share of all talk, and not the majority of it) is held at ``watch``: a launch that
doubles every mention with a flat share of complaints is busy, not a crisis.

**Size.**  A level also needs volume: a warning at least twice ``min_count`` negative
mentions in the scoring window, a crisis four times.  Rarity alone would make a small brand's
first five complaints a crisis; they are a watch.

**Levels** (``Escalation``).  ``watch`` → ``warning`` → ``crisis`` are entered when the score
crosses their thresholds.  A level is left (one step at a time) only after the score stayed
below its exit threshold for ``exit_after`` (hours, not minutes: a crisis has lulls); reaching
nothing again resolves the incident.  An incident that re-opens within ``cooldown`` of its
resolution is the same incident and pages again only above its earlier peak.  A page goes out
when an incident opens at or above ``page_from`` and on each escalation above its peak.

**Early.**  ``Detector.early`` judges the buckets that have not closed yet (the last one still
filling) each as if it were whole, on a copy that is thrown away: a partial count only grows,
so a level its counts already earn, through the same gates, is entered (and paged) now instead
of when the bucket closes.  Levels are only ever entered early, never left; the bucket is judged
again, whole, when it closes, and the learned history is that of closed buckets only.

Measured on NAB's real Twitter volume with these defaults (``bench/detection.py``): 18 of 19
labelled windows caught, 20 false-alarm episodes over six series of two weeks to two months.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Protocol

from monitor.detection_defaults import DEFAULTS
from monitor.surprise import MAXIMA_DAYS, CopiedWhole, Reading, Surprise, rarity

REACH_UNIT = 10.0  # reach points that weigh as one mention in the reach signal
SHARE_RISE = 1.5  # how much the negative share must grow for more than a watch
MAJORITY = 0.5  # a negative share this high is never "just a busy day"


class Level(IntEnum):
    none = 0
    watch = 1
    warning = 2
    crisis = 3

    @property
    def said(self) -> str:
        """The level as a person reads it: "normal", "watch", "warning" or "crisis"."""
        return "normal" if self is Level.none else self.name


class DetectionTerms(Protocol):
    """What settings are built from, in ``[detection]``'s terms: a brand's
    ``monitor.config.DetectionConfig`` or the defaults, ``monitor.detection_defaults.DEFAULTS``.
    """

    @property
    def bucket(self) -> timedelta: ...
    @property
    def history(self) -> timedelta: ...
    @property
    def warmup(self) -> timedelta: ...
    @property
    def watch(self) -> float: ...
    @property
    def warning(self) -> float: ...
    @property
    def crisis(self) -> float: ...
    @property
    def exit_ratio(self) -> float: ...
    @property
    def min_count(self) -> int: ...
    @property
    def min_ratio(self) -> float: ...
    @property
    def exit_after(self) -> timedelta: ...
    @property
    def cooldown(self) -> timedelta: ...
    @property
    def page_from(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds of one detector; ``[detection]`` in the config sets them per brand
    (``from_config``), and ``DetectorSettings.default()`` are its defaults."""

    bucket: timedelta
    history: timedelta
    warmup: timedelta
    enter: tuple[float, float, float]
    exit: tuple[float, float, float]
    min_count: int
    min_ratio: float
    exit_after: timedelta
    cooldown: timedelta
    page_from: Level

    @classmethod
    def default(cls) -> DetectorSettings:
        return cls.from_config(DEFAULTS)

    @classmethod
    def from_config(cls, config: DetectionTerms) -> DetectorSettings:
        enter = (config.watch, config.warning, config.crisis)
        return cls(
            bucket=config.bucket,
            history=config.history,
            warmup=config.warmup,
            enter=enter,
            exit=tuple(t * config.exit_ratio for t in enter),  # type: ignore[arg-type]
            min_count=config.min_count,
            min_ratio=config.min_ratio,
            exit_after=config.exit_after,
            cooldown=config.cooldown,
            page_from=Level[config.page_from],
        )

    @property
    def buckets_per_day(self) -> int:
        return max(1, round(timedelta(days=1) / self.bucket))

    @property
    def learning(self) -> timedelta:
        """History a new detector replays before judging (on start, and when another instance
        judged the brand): the time-of-day history plus the warm-up.  Its fit of the daily
        maxima then holds ``history + warmup - 1`` days of them instead of up to 14."""
        return self.history + self.warmup


@dataclass(slots=True)
class Step:
    """What the detector decided for one bucket."""

    at: datetime
    value: float
    expected: float
    score: float
    level: Level
    page: bool = False
    event: str | None = None  # opened, escalated, deescalated, resolved, reopened
    evidence: Reading = field(default_factory=Reading)
    signal: str = "negative"  # the signal that scored: negative (volume) or reach
    capped: bool = False  # held at watch: the negative share did not grow

    def why(self, bucket: timedelta) -> str:
        """The evidence in plain words, e.g. "38 negative mentions in 15 min; usually 3 …"."""
        e = self.evidence
        if not e.buckets:
            return "nothing unusual"
        span = _span(int(bucket.total_seconds()) * e.buckets)
        scale = REACH_UNIT if self.signal == "reach" else 1.0
        what = "negative mentions" if self.signal == "negative" else "reach of negative mentions"
        said = (
            f"{e.observed * scale:.0f} {what} in {span}; usually {e.expected * scale:.0f} "
            f"at this time of day ({rarity(e.score)})"
        )
        if self.capped:
            said += "; all mentions rose as much, so it stays a watch"
        return said


@dataclass(slots=True)
class Incident:
    started: datetime
    peak_level: Level
    peak_at: datetime
    peak_score: float
    resolved: datetime | None = None
    levels: list[tuple[datetime, Level]] = field(default_factory=list)


class Escalation:
    """Levels and incidents from a stream of scores: enter, hold, leave, re-open, page."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.level = Level.none
        self._calm_since: datetime | None = None
        self.incident: Incident | None = None
        self.last_incident: Incident | None = None
        """The most recent incident, open or resolved (a new wave within ``cooldown`` reopens it).
        Older ones are the storage's business: nothing here grows."""
        self.incident_count = 0
        self._early: datetime | None = None
        """The bucket whose partial count entered the current level, until it is judged whole."""

    def earned(self, score: float, ceiling: Level = Level.crisis) -> Level:
        """The level ``score`` enters, never above ``ceiling``."""
        for level in (Level.crisis, Level.warning, Level.watch):
            if score >= self.settings.enter[level - 1]:
                return min(level, ceiling)
        return Level.none

    def update(self, step: Step, ceiling: Level = Level.crisis) -> None:
        """Set ``step.level``, ``event`` and ``page`` from ``step.score``; never above
        ``ceiling`` when entering a level."""
        s = self.settings
        entered = self.earned(step.score, ceiling)
        # a closed bucket before the one that entered the level early cannot start its calm
        early = self._early is not None and step.at < self._early
        if self._early is not None and not early:
            self._early = None
        if entered > self.level:
            self._raise_to(entered, step)
        elif self.level > Level.none:
            if step.score < s.exit[self.level - 1] and not early:
                self._calm_since = self._calm_since or step.at
                if step.at - self._calm_since >= s.exit_after:
                    self._lower(step)
            else:
                self._calm_since = None
        self._note(step)

    def enter_early(self, step: Step, level: Level) -> None:
        """Enter ``level`` on a bucket that has not closed yet, when it is above the current
        one (setting ``step``'s event and page); nothing else changes until the bucket is
        judged whole."""
        if level > self.level:
            self._raise_to(level, step)
            self._early = step.at
        self._note(step)

    def _note(self, step: Step) -> None:
        step.level = self.level
        if self.incident and step.score > self.incident.peak_score:
            self.incident.peak_score = step.score
            self.incident.peak_at = step.at

    def _raise_to(self, level: Level, step: Step) -> None:
        s = self.settings
        self._calm_since = None
        previous = self.last_incident
        if self.incident is None:
            if previous and previous.resolved and step.at - previous.resolved < s.cooldown:
                self.incident = previous
                previous.resolved = None
                step.event = "reopened"
            else:
                self.incident = Incident(step.at, Level.none, step.at, step.score)
                self.last_incident = self.incident
                self.incident_count += 1
                step.event = "opened"
        else:
            step.event = "escalated"
        incident = self.incident
        if level > incident.peak_level and level >= s.page_from:
            step.page = True
        incident.peak_level = max(incident.peak_level, level)
        incident.levels.append((step.at, level))
        self.level = level

    def _lower(self, step: Step) -> None:
        self.level = Level(self.level - 1)
        self._calm_since = step.at if self.level else None
        assert self.incident is not None
        self.incident.levels.append((step.at, self.level))
        if self.level == Level.none:
            self.incident.resolved = step.at
            self.incident = None
            step.event = "resolved"
        else:
            step.event = "deescalated"


class Detector(CopiedWhole):
    """Streaming detector for one brand.  Feed buckets in order with ``step``."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = s = settings or DetectorSettings.default()
        self.escalation = Escalation(s)
        per_day = s.buckets_per_day
        days = max(1, round(s.history / timedelta(days=1)))
        self._negative = Surprise(per_day, days, min_count=s.min_count, min_ratio=s.min_ratio)
        self._reach = Surprise(per_day, days, min_count=s.min_count, min_ratio=s.min_ratio)
        widest = max(self._negative.windows)
        self._recent: deque[tuple[float, float | None]] = deque(maxlen=2 * widest)
        self._shares: deque[tuple[float, float]] = deque(maxlen=per_day * days)
        self._share_sums = [0.0, 0.0]
        self._seen = 0
        self._last_at: datetime | None = None

    # the escalation's state, as the watcher and report read it
    @property
    def level(self) -> Level:
        return self.escalation.level

    @property
    def incident(self) -> Incident | None:
        return self.escalation.incident

    @property
    def last_incident(self) -> Incident | None:
        return self.escalation.last_incident

    @property
    def incident_count(self) -> int:
        return self.escalation.incident_count

    @property
    def recent(self) -> list[float]:
        """The negative counts of the last buckets, oldest first (twice the widest window)."""
        return [negative for negative, _ in self._recent]

    def step(
        self,
        at: datetime,
        value: float,
        *,
        total: float | None = None,
        reach: float | None = None,
    ) -> Step:
        """Judge the bucket starting at ``at``: ``value`` negative mentions, of ``total`` in
        all, whose authors' reach scores add up to ``reach`` (closed buckets, in order)."""
        step, ceiling = self._assess(at, value, total, reach)
        self.escalation.update(step, ceiling)
        return step

    def early(
        self, pending: Iterable[tuple[datetime, float, float | None, float | None]]
    ) -> list[Step]:
        """Judge buckets that have not closed yet, oldest first, each as if it were whole:
        ``(at, negative, total, reach)`` as counted so far.  Their scores come from a copy of
        this detector (which learns only closed buckets); a level they earn above the current
        one is entered now.  Returns the steps that entered one (``page`` says whether to page).
        """
        trial = copy.deepcopy(self)
        entered = []
        for at, value, total, reach in pending:
            step, ceiling = trial._assess(at, value, total, reach)
            level = self.escalation.earned(step.score, ceiling)
            self.escalation.enter_early(step, level)
            if step.event:
                entered.append(step)
        return entered

    def resume_early(self, at: datetime, level: Level, score: float) -> None:
        """Re-enter ``level``, which an earlier run entered early at ``at`` (and paged)."""
        self.escalation.enter_early(Step(at, 0.0, 0.0, score, self.level), level)

    def _assess(
        self, at: datetime, value: float, total: float | None, reach: float | None
    ) -> tuple[Step, Level]:
        """Score and learn the bucket at ``at``; its step, and the highest level it may enter."""
        s = self.settings
        if self._last_at is not None and at <= self._last_at:
            raise ValueError(f"buckets must arrive in time order: {at} after {self._last_at}")
        if self._last_at is not None:
            # Buckets nobody reported had no mentions at all: they count as zeros.
            missing = round((at - self._last_at) / s.bucket) - 1
            for _ in range(min(missing, s.buckets_per_day * MAXIMA_DAYS)):
                self._observe(0.0, None if total is None else 0.0, None if reach is None else 0.0)
        self._last_at = at
        signal, evidence = self._observe(value, total, reach)
        warm = self._seen > s.warmup / s.bucket
        if not warm:
            evidence = Reading()
        ceiling = Level.crisis if self._share_grew(evidence.buckets) else Level.watch
        size = Level.watch
        while size < Level.crisis and evidence.observed >= s.min_count * 2**size:
            size = Level(size + 1)
        step = Step(
            at=at,
            value=value,
            expected=self._negative.expected,
            score=evidence.score,
            level=self.level,
            evidence=evidence,
            signal=signal,
            capped=ceiling < Level.crisis and evidence.score >= s.enter[Level.warning - 1],
        )
        return step, min(ceiling, size)

    def _observe(
        self, value: float, total: float | None, reach: float | None
    ) -> tuple[str, Reading]:
        """Score and learn one bucket of each signal it carries; the signal that scored most."""
        best = ("negative", self._negative.update(value))
        if reach is not None:
            reading = self._reach.update(reach / REACH_UNIT)
            if reading.score > best[1].score:
                best = ("reach", reading)
        self._recent.append((value, total))
        if total is not None:
            if len(self._shares) == self._shares.maxlen:
                old_negative, old_total = self._shares[0]
                self._share_sums[0] -= old_negative
                self._share_sums[1] -= old_total
            self._shares.append((value, total))
            self._share_sums[0] += value
            self._share_sums[1] += total
        self._seen += 1
        return best

    def _share_grew(self, width: int) -> bool:
        """Did the negative share of the last ``width`` buckets grow over its usual level?
        True when all mentions are not counted (nothing to compare with)."""
        window = list(self._recent)[-width:] if width else []
        totals = [t for _, t in window if t is not None]
        usual_negative, usual_total = self._share_sums
        if not window or len(totals) < len(window) or usual_total <= 0 or sum(totals) <= 0:
            return True
        share = sum(v for v, _ in window) / sum(totals)
        return share >= min(SHARE_RISE * usual_negative / usual_total, MAJORITY)


def _span(seconds: int) -> str:
    """``seconds`` as a page says it: "2 h", "15 min" or "30 s"."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
