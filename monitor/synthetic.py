"""Realistic synthetic mention-volume series, for detector tests, benchmarks and demos.

Real volume has a daily rhythm (quiet nights), a weekly one (quieter weekends), over-dispersed
noise (counts vary more than Poisson: news cycles, retweet cascades), long stretches of zeros
for small brands, slow drifts as a brand grows, and bursts that rise within minutes to hours and
decay over hours.  ``make_series`` produces all of these from a seed, with the burst windows
labelled, so a detector can be scored on detections, false alarms and delay.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

BUCKET = timedelta(minutes=5)
PER_DAY = 288


@dataclass(frozen=True, slots=True)
class Burst:
    start: int  # bucket index where the burst starts
    rise: int  # buckets from start to peak
    decay: int  # buckets from peak back to (almost) normal
    peak: float  # multiplier of the normal rate at the peak (plus extra for small brands)


@dataclass(slots=True)
class Series:
    start: datetime
    values: list[int]
    bursts: list[Burst] = field(default_factory=list)

    def times(self) -> list[datetime]:
        return [self.start + BUCKET * i for i in range(len(self.values))]

    def windows(self) -> list[tuple[int, int]]:
        """Labelled anomaly windows (bucket index ranges), from burst start to decay end."""
        return [(b.start, b.start + b.rise + b.decay) for b in self.bursts]


def make_series(
    seed: int,
    *,
    days: int = 60,
    rate: float = 20.0,
    bursts: int = 3,
    dispersion: float = 0.15,
    drift: float = 1.5,
    outage_days: int = 0,
) -> Series:
    """A series of ``days`` of 5-minute counts around ``rate`` per bucket at the daily peak.

    ``dispersion`` is the negative-binomial shape (variance = m + dispersion·m²), ``drift`` the
    factor the level grows by over the whole series, ``outage_days`` a run of zero buckets
    (e.g. a source that was down).  Bursts are placed at random after the first week (after
    day ``days - 4`` for shorter series), at least three days apart where possible.
    """
    rng = random.Random(seed)
    n = days * PER_DAY
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    placed: list[Burst] = []
    first = min(8, days - 4) * PER_DAY  # after the detector has learned a few days
    for _ in range(bursts):
        for _attempt in range(100):
            at = rng.randrange(first, n - 2 * PER_DAY)
            if all(abs(at - b.start) > 3 * PER_DAY for b in placed):
                break
        rise = rng.randint(3, 24)
        decay = rng.randint(24, 144)
        peak = rng.uniform(3.0, 15.0)
        placed.append(Burst(at, rise, decay, peak))
    placed.sort(key=lambda b: b.start)
    outage = rng.randrange(8 * PER_DAY, n - outage_days * PER_DAY) if outage_days else -1
    values: list[int] = []
    for i in range(n):
        day, slot = divmod(i, PER_DAY)
        hour = slot / 12
        daily = 0.35 + 0.65 * math.exp(-(((hour - 15) / 5.0) ** 2))  # quiet nights, busy afternoon
        weekly = 0.7 if (day % 7) >= 5 else 1.0
        level = 1 + (drift - 1) * i / n
        mean = rate * daily * weekly * level
        for b in placed:
            mean += _burst_extra(i, b, rate * level)
        if outage <= i < outage + outage_days * PER_DAY:
            values.append(0)
            continue
        values.append(_negative_binomial(rng, mean, dispersion))
    return Series(start, values, placed)


def _burst_extra(i: int, burst: Burst, rate: float) -> float:
    offset = i - burst.start
    if offset < 0 or offset > burst.rise + burst.decay * 3:
        return 0.0
    height = burst.peak * rate + 4 * burst.peak  # small brands still get a visible wave
    if offset <= burst.rise:
        return height * offset / burst.rise
    return height * math.exp(-3 * (offset - burst.rise) / burst.decay)


def _negative_binomial(rng: random.Random, mean: float, shape: float) -> int:
    """A gamma-Poisson draw: Poisson with a gamma-distributed mean."""
    if mean <= 0:
        return 0
    if shape > 0:
        mean = rng.gammavariate(1 / shape, mean * shape)
    return _poisson(rng, mean)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
