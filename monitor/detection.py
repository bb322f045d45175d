"""Crisis detection: is a brand's negative talk turning into a crisis?

One ``Detector`` watches one signal of one brand (e.g. negative mentions per 5-minute bucket) and
is fed closed buckets in time order; it never looks ahead.  The daemon and ``brandmon backtest``
use this same class, so a backtest shows exactly what the daemon would have paged.

**Baseline.**  Mention volume has a daily and weekly rhythm, long runs of zeros and bursts, and
a small brand's normal is a large brand's silence.  So each brand is compared with its own past:
the expected value of a bucket is the median of the same time of day (± ``neighbours`` buckets)
over the last ``history`` days, rescaled by how the last few hours ran against that profile (so
a slow drift is followed).  The spread is the scaled MAD of the same samples, never below the
Poisson variance of the expected count.  Values learned into the history are capped at the
expected value plus a few spreads, so a long crisis does not become the new normal.

**Surprise.**  For windows of 1, 3 and 12 buckets (5, 15 and 60 minutes by default) the observed
sum is compared with the expected sum: an exact Poisson tail where counts are low and not
over-dispersed (a count model: 15 complaints where 2 are normal is very unlikely), a robust
z-score otherwise.  The score is the largest of these, as a z-value.  A window also needs a
minimum count and a minimum ratio over expected, so 0 → 2 mentions is never a crisis.

**Levels.**  ``watch`` → ``warning`` → ``crisis`` are entered when the score crosses their
thresholds.  A level is left (one step at a time) only after the score stayed below its exit
threshold for ``exit_after``; reaching nothing again resolves the incident.  An incident that
re-opens within ``cooldown`` of its resolution is the same incident.  A page goes out when an
incident opens at or above ``page_from`` and on each escalation above the incident's peak.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from statistics import NormalDist, median

from monitor.config import DetectionConfig

_NORMAL = NormalDist()
PRIOR_WEIGHT = 5  # pseudo-samples of the daily mean in each time-of-day estimate
DRIFT_BUCKETS = 36  # how many recent buckets say whether the level drifted from the profile


class Level(IntEnum):
    none = 0
    watch = 1
    warning = 2
    crisis = 3


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds of one detector; ``[detection]`` in the config sets them per brand."""

    bucket: timedelta = timedelta(minutes=5)
    history: timedelta = timedelta(days=7)
    neighbours: int = 2
    windows: tuple[int, ...] = (3, 12)
    warmup: timedelta = timedelta(days=4)
    enter: tuple[float, float, float] = (5.0, 7.0, 10.0)
    exit: tuple[float, float, float] = (3.0, 4.5, 6.0)
    min_count: int = 5
    min_ratio: float = 2.0
    exit_after: timedelta = timedelta(minutes=30)
    cooldown: timedelta = timedelta(hours=2)
    page_from: Level = Level.watch

    @classmethod
    def from_config(cls, config: DetectionConfig) -> DetectorSettings:
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


@dataclass(frozen=True, slots=True)
class Evidence:
    """The window that made a bucket surprising: ``observed`` mentions in the last ``buckets``
    buckets where ``expected`` were usual, scoring ``score``."""

    score: float = 0.0
    buckets: int = 0
    observed: float = 0.0
    expected: float = 0.0


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
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(slots=True)
class Incident:
    started: datetime
    peak_level: Level
    peak_at: datetime
    peak_score: float
    resolved: datetime | None = None
    levels: list[tuple[datetime, Level]] = field(default_factory=list)


class Detector:
    """Streaming detector for one signal.  Feed buckets in order with ``step``."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        per_day = self.settings.buckets_per_day
        days = max(1, round(self.settings.history / timedelta(days=1)))
        self._keep = per_day * days
        self._history: list[float] = []  # a list, not a deque: profile lookups index into it
        self._recent: deque[float] = deque(maxlen=2 * max(self.settings.windows))
        self._drift: deque[tuple[float, float]] = deque(maxlen=DRIFT_BUCKETS)
        self._seen = 0
        self._last_at: datetime | None = None
        self.level = Level.none
        self._calm_since: datetime | None = None
        self.incident: Incident | None = None
        self.last_incident: Incident | None = None
        """The most recent incident, open or resolved (a new wave within ``cooldown`` reopens it).
        Older ones are the storage's business: the detector keeps nothing that grows."""
        self.incident_count = 0

    @property
    def recent(self) -> list[float]:
        """The raw values of the last buckets, oldest first (as many as the widest window)."""
        return list(self._recent)

    # -- baseline -------------------------------------------------------------------------

    def _profile_samples(self) -> list[float]:
        """History values at this time of day (± neighbours) on each past day."""
        per_day = self.settings.buckets_per_day
        history = self._history
        n = len(history)
        samples: list[float] = []
        for back in range(per_day, min(n, self._keep) + 1, per_day):
            centre = n - back  # same slot as the bucket now being judged, ``back`` buckets ago
            low = max(0, centre - self.settings.neighbours)
            high = min(n, centre + self.settings.neighbours + 1)
            samples.extend(history[i] for i in range(low, high))
        return samples

    def _baseline(self) -> tuple[float, float, float]:
        """Expected value and variance of the next bucket, and the profile value before drift."""
        samples = self._profile_samples()
        if len(samples) < 2 * self.settings.neighbours + 1:
            samples = self._history[-self.settings.buckets_per_day :]
        if not samples:
            return 0.0, 1.0, 0.0
        ordered = sorted(samples)
        # The slot's mean (past outliers were capped when learned), shrunk towards the mean of
        # the last day: a few days of a quiet slot are too few to say "never anything here".
        day = self._history[-self.settings.buckets_per_day :]
        prior = sum(day) / len(day)
        profile = (sum(ordered) + PRIOR_WEIGHT * prior) / (len(ordered) + PRIOR_WEIGHT)
        # The upper spread: mention counts are skewed to the right, and that side pages.
        upper = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        spread = max(0.0, upper - median(ordered)) / 1.2816
        drift = 1.0
        if len(self._drift) == self._drift.maxlen:
            seen = sum(v for v, _ in self._drift)
            usual = sum(e for _, e in self._drift)
            drift = min(2.0, max(0.5, (seen + 1) / (usual + 1)))
        # Never expect less than one a day: a brand's first complaints are news, not certainty.
        expected = max(profile * drift, 1 / self.settings.buckets_per_day)
        variance = max((spread * drift) ** 2, expected)
        return expected, variance, profile

    # -- scoring --------------------------------------------------------------------------

    def _score(self, expected: float, variance: float) -> Evidence:
        """The most surprising window ending now (an empty ``Evidence`` when none is)."""
        best = Evidence()
        recent = self._recent
        for width in self.settings.windows:
            if len(recent) < width:
                break
            observed = sum(list(recent)[-width:])
            mean = expected * width
            if observed < self.settings.min_count or observed < self.settings.min_ratio * max(
                mean, 0.5
            ):
                continue
            var = variance * width
            # Exact count tails where counts are small, the normal approximation beyond.
            exact = mean < 200
            z = _count_z(observed, mean, var) if exact else (observed - mean) / math.sqrt(var)
            if z > best.score:
                best = Evidence(z, width, observed, mean)
        return best

    # -- levels ---------------------------------------------------------------------------

    def step(self, at: datetime, value: float) -> Step:
        """Judge the bucket starting at ``at`` with ``value`` (closed buckets, in order)."""
        s = self.settings
        if self._last_at is not None and at <= self._last_at:
            raise ValueError(f"buckets must arrive in time order: {at} after {self._last_at}")
        if self._last_at is not None:
            # Buckets nobody reported had no mentions at all: they count as zeros.
            missing = round((at - self._last_at) / s.bucket) - 1
            for _ in range(min(missing, self._keep)):
                self._learn(0.0, 0.0, self._baseline()[2])
        self._last_at = at
        expected, variance, profile = self._baseline()
        self._recent.append(value)
        warm = self._seen >= s.warmup / s.bucket
        evidence = self._score(expected, variance) if warm else Evidence()
        step = Step(
            at=at,
            value=value,
            expected=expected,
            score=evidence.score,
            level=self.level,
            evidence=evidence,
        )
        self._update_level(step)
        capped = min(value, expected + 3 * math.sqrt(variance) + 1) if warm else value
        self._learn(None, capped, profile)
        return step

    def _learn(self, raw: float | None, value: float, profile: float) -> None:
        """Remember a bucket: raw in the recent windows, capped in the baseline history."""
        if raw is not None:
            self._recent.append(raw)
        self._history.append(value)
        if len(self._history) > 2 * self._keep:
            del self._history[: -self._keep]
        self._drift.append((value, profile))
        self._seen += 1

    def _update_level(self, step: Step) -> None:
        s = self.settings
        entered = Level.none
        for level in (Level.crisis, Level.warning, Level.watch):
            if step.score >= s.enter[level - 1]:
                entered = level
                break
        if entered > self.level:
            self._raise_to(entered, step)
        elif self.level > Level.none:
            if step.score < s.exit[self.level - 1]:
                self._calm_since = self._calm_since or step.at
                if step.at - self._calm_since >= s.exit_after:
                    self._lower(step)
            else:
                self._calm_since = None
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


def _count_z(observed: float, mean: float, variance: float) -> float:
    """The z-value of P(X >= observed) for a count X with this mean and variance.

    Poisson when the variance is no larger than the mean, else negative binomial (a Poisson
    whose rate varies), whose heavier tail keeps bursty-but-normal brands from paging.
    """
    k = math.floor(observed)
    if k <= 0:
        return 0.0
    mean = max(mean, 1e-3)
    if variance <= mean * 1.05:
        log_pmf = k * math.log(mean) - mean - math.lgamma(k + 1)

        def ratio(i: int) -> float:
            return mean / (i + 1)
    else:
        r = mean * mean / (variance - mean)
        p = r / (r + mean)
        log_pmf = (
            math.lgamma(k + r)
            - math.lgamma(r)
            - math.lgamma(k + 1)
            + r * math.log(p)
            + k * math.log1p(-p)
        )

        def ratio(i: int) -> float:
            return (i + r) / (i + 1) * (1 - p)

    tail, term, i = 0.0, 1.0, k
    while tail == 0.0 or term > 1e-12 * tail:
        tail += term
        term *= ratio(i)
        i += 1
        if i - k > 100_000:
            break
    log_tail = log_pmf + math.log(tail)
    if log_tail >= math.log(0.5):
        return 0.0
    return -_NORMAL.inv_cdf(math.exp(max(log_tail, -690.0)))
