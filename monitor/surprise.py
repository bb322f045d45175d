"""How surprising is the latest bucket of one signal, against that signal's own past?

``Surprise`` is fed one value per closed bucket (e.g. negative mentions per 5 minutes) and
returns a score in Gumbel units of *the usual day's largest surprise*: a score ``s`` is about as
rare as a day whose most unusual moment comes once in ``e**s`` days.  Real mention volume made
each piece necessary (measured on NAB's Twitter volume series, see ``bench/detection.py``):

- **Anscombe transform** (``2·sqrt(x + 3/8)``): counts' variance grows with their level; after
  the transform a quiet night and a busy afternoon have about the same noise, and a Poisson
  count's noise is about 1, which floors the scale of sparse series (a log would blow up zeros).
- **Time-of-day profile**: the expected value is the median of the same slot (± ``neighbours``)
  over the last ``history_days`` days, plus a **level offset**: the median of how the last
  ``OFFSET`` buckets (before the scored windows) ran against that profile.  A launch or a news
  cycle that moves the level becomes the new normal within hours, while a burst shorter than
  that cannot lift its own baseline.
- **Several windows, each with its own robust scale**: the mean residual over 1, 3, 12 and 36
  buckets; buckets are autocorrelated, so the 12-bucket mean does not have 1/12 of one bucket's
  variance.  Each window's scale is the MAD of its own past means over the history, recomputed
  hourly and never less than the Poisson floor ``1/sqrt(width)`` (so it cannot start near zero
  and make scores explode).  A window wider than one bucket drops its largest bucket, so one
  viral post or bot burst is only seen by the one-bucket window, and must be far larger than
  usual to count.
- **Relative threshold**: a window's robust z is placed on a Gumbel distribution fitted (by
  median and quartiles) to its daily maxima of the last ``MAXIMA_DAYS`` days.  Dispersion is
  heavy and differs from brand to brand (a brand whose bots spike every day has large daily
  maxima); measuring against the series' own maxima makes one threshold fit quiet and spiky
  brands alike.  A day's maximum is learned capped at ``MAXIMUM_CAP`` units of the fit, so a
  crisis day cannot teach that crises are normal, and the fit's scale is never below
  ``MIN_GUMBEL_SCALE`` nor ``LIGHTEST_TAIL`` × its location: daily maxima of Gaussian noise
  have about that spread, and a few days of maxima would otherwise claim a lighter tail.

Memory is bounded: a few deques of ``history_days`` days of floats per signal.
"""

from __future__ import annotations

import copy
import functools
import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from statistics import median, quantiles
from typing import Any, Self

WINDOWS = (1, 3, 12, 36)  # buckets: 5 minutes, 15 minutes, an hour, three hours
OFFSET = 72  # buckets whose median residual sets the level offset (6 hours of 5 minutes)
RESCALE = 12  # buckets between recomputations of the windows' scales
MAXIMA_DAYS = 14  # daily maxima the Gumbel fit is made of
MIN_GUMBEL_SCALE = 0.3  # z units: the spread of daily maxima of 288 Gaussian values
LIGHTEST_TAIL = 0.15  # the fit's scale at least this share of its location (Gaussian: ~0.12)
MAXIMUM_CAP = 5.0  # Gumbel units a day's maximum is learned at most (about once in 150 days)
GUMBEL_MEDIAN = -math.log(math.log(2))  # median of the standard Gumbel distribution
GUMBEL_IQR = math.log(math.log(4)) - math.log(math.log(4 / 3))  # and its interquartile range


def anscombe(count: float) -> float:
    return 2.0 * math.sqrt(max(count, 0.0) + 0.375)


def inverse_anscombe(value: float) -> float:
    """The count whose transform is ``value`` on average (the asymptotically unbiased inverse)."""
    return max(0.0, (value / 2.0) ** 2 - 0.125)


@dataclass(frozen=True, slots=True)
class Reading:
    """The surprise of the latest bucket: ``score`` and the window that gave it, with its raw
    ``observed`` sum and the ``expected`` sum for that time of day."""

    score: float = 0.0
    buckets: int = 0
    observed: float = 0.0
    expected: float = 0.0


_UNSURPRISED = Reading()


class CopiedWhole:
    """Deep-copied a container at a time: a detector is copied at every judgement of a bucket
    still filling, and holds weeks of buckets in containers of numbers, which
    ``copy.deepcopy`` would copy one number at a time (ten times slower).  The attributes of a
    subclass must be numbers, containers of numbers or of tuples of numbers (copied whole:
    their items cannot change), or objects that ``copy.deepcopy`` copies."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        twin = copy.copy(self)
        memo[id(self)] = twin
        for name, value in vars(self).items():
            setattr(twin, name, _copied(value, memo))
        return twin


def _copied(value: Any, memo: dict[int, Any]) -> Any:
    if isinstance(value, deque):
        return deque(value, value.maxlen)
    if isinstance(value, list):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copied(item, memo) for key, item in value.items()}
    return copy.deepcopy(value, memo)


class Surprise(CopiedWhole):
    """Streaming surprise of one signal; ``update`` once per bucket, in order."""

    def __init__(
        self,
        per_day: int,
        history_days: int = 7,
        windows: tuple[int, ...] = WINDOWS,
        neighbours: int = 2,
        min_count: float = 0.0,
        min_ratio: float = 1.0,
    ) -> None:
        self.per_day = per_day
        self.min_count = min_count
        self.min_ratio = min_ratio
        self.windows = windows
        self.neighbours = neighbours
        keep = per_day * history_days
        self._y: deque[float] = deque(maxlen=keep + neighbours + 1)
        self._raw: deque[float] = deque(maxlen=max(windows))
        self._usual: deque[float] = deque(maxlen=max(windows))  # expected counts
        self._surprises: deque[float] = deque(maxlen=max(windows))  # y - expected
        # y - profile of the buckets in the scored windows, and of the OFFSET before them (whose
        # median is the level offset, read every bucket: kept in order)
        self._residuals: deque[float] = deque(maxlen=max(windows))
        self._older = SortedWindow(OFFSET)
        self._means = {w: SortedWindow(keep) for w in windows}
        self._scale = {w: 1.0 / math.sqrt(w) for w in windows}
        self._maxima: dict[int, deque[float]] = {w: deque(maxlen=MAXIMA_DAYS) for w in windows}
        self._gumbel: dict[int, tuple[float, float] | None] = {w: None for w in windows}
        self._today = {w: 0.0 for w in windows}
        self.seen = 0
        self.expected = 0.0
        """The count expected for the latest bucket at its time of day."""

    def _profile(self) -> float | None:
        """Median of the transformed history at this time of day on the past days."""
        pick = _same_time(len(self._y), self.per_day, self.neighbours)
        if pick is None:
            return None
        return _middle(sorted(pick(self._y)))

    def update(self, value: float) -> Reading:
        """Score ``value``, the newest bucket, then learn it."""
        profile = self._profile()
        if profile is None:
            profile = median(self._y) if self._y else anscombe(0.0)
        expected = profile + (self._older.median() if self._older.recent else 0.0)
        y = anscombe(value)
        self._raw.append(value)
        self.expected = inverse_anscombe(expected)
        self._usual.append(self.expected)
        if len(self._residuals) == self._residuals.maxlen:
            self._older.append(self._residuals[0])
        self._residuals.append(y - profile)
        self._surprises.append(y - expected)
        residuals = list(self._surprises)
        best = _UNSURPRISED
        for w in self.windows:
            if len(residuals) < w:
                break
            last = residuals[-w:]
            mean = (sum(last) - max(last)) / (w - 1) if w > 1 else last[0]
            self._means[w].append(mean)
            z = mean / self._scale[w]
            if z > self._today[w]:
                self._today[w] = z
            fit = self._gumbel[w]
            if fit is None:
                continue
            score = (z - fit[0]) / fit[1]
            if score <= best.score:
                continue
            observed = sum(list(self._raw)[-w:])
            usual = sum(list(self._usual)[-w:])
            if observed >= self.min_count and observed >= self.min_ratio * max(usual, 0.5):
                best = Reading(score, w, observed, usual)
        self._y.append(y)
        self.seen += 1
        if self.seen % self.per_day == 0:
            for w in self.windows:
                fit = self._gumbel[w]
                cap = fit[0] + MAXIMUM_CAP * fit[1] if fit else math.inf
                self._maxima[w].append(min(self._today[w], cap))
                self._today[w] = 0.0
                self._gumbel[w] = _gumbel_fit(self._maxima[w])
        if self.seen % RESCALE == 0:
            for w in self.windows:
                self._scale[w] = _robust_scale(self._means[w].ordered, 1.0 / math.sqrt(w))
        return best


def rarity(score: float) -> str:
    """A score in words: how often a day brings a surprise this large."""
    days = math.exp(min(score, 30.0))
    if days < 2:
        return "happens most days"
    if days < 60:
        return f"about once in {days:.0f} days"
    if days < 730:
        return f"about once in {days / 30.4:.0f} months"
    return "rarer than once in two years"


class SortedWindow(CopiedWhole):
    """The last ``size`` values, also kept in order: a window's median is read every hour over
    a week of buckets, and keeping the order costs less than sorting each time."""

    def __init__(self, size: int) -> None:
        self.recent: deque[float] = deque(maxlen=size)
        self.ordered: list[float] = []

    def append(self, value: float) -> None:
        if len(self.recent) == self.recent.maxlen:
            del self.ordered[bisect_left(self.ordered, self.recent[0])]
        self.recent.append(value)
        insort(self.ordered, value)

    def median(self) -> float:
        """The median of the values, without sorting them again."""
        return _middle(self.ordered)


def _middle(ordered: Sequence[float]) -> float:
    """The median of values in ascending order (``statistics.median``'s, without its sort)."""
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


@functools.lru_cache(maxsize=64)
def _same_time(
    n: int, per_day: int, neighbours: int
) -> Callable[[Sequence[float]], tuple[float, ...]] | None:
    """What picks, from a history of ``n`` buckets of ``per_day`` a day, the buckets at the
    next bucket's time of day (± ``neighbours``) on the past days; None when there are none.
    The same for every bucket once the history is full: made once, and it picks them in C
    (indexing a week's deque from Python, item by item, cost more than the rest of a bucket's
    profile)."""
    positions = [
        i
        for centre in range(n - per_day, -1, -per_day)
        for i in range(max(0, centre - neighbours), min(n, centre + neighbours + 1))
    ]
    if not positions:
        return None
    if len(positions) == 1:  # itemgetter of one position gives the item, not a tuple
        return lambda history: (history[positions[0]],)
    return itemgetter(*positions)


def _robust_scale(ordered: list[float], floor: float) -> float:
    """1.4826 × the median absolute deviation from the median (the normal sigma), or ``floor``.

    ``ordered`` are the values in ascending order, so the deviations below and above the
    centre are two ascending runs, and their median is found by a binary search over how many
    come from each instead of sorting them: this runs for every window every hour over a week
    of buckets."""
    if not ordered:
        return floor
    middle = len(ordered) // 2
    centre = ordered[middle]
    wanted = middle + 1  # the centre itself is the first deviation, 0
    # below[i] = centre - ordered[middle - 1 - i], above[j] = ordered[middle + j] - centre
    low, high = max(0, wanted - (len(ordered) - middle)), min(wanted, middle)
    while low < high:  # how many of the ``wanted`` smallest deviations lie below the centre
        below = (low + high) // 2
        if centre - ordered[middle - 1 - below] < ordered[middle + wanted - below - 1] - centre:
            low = below + 1
        else:
            high = below
    deviation = max(
        centre - ordered[middle - low] if low else -math.inf,
        ordered[middle + wanted - low - 1] - centre if wanted > low else -math.inf,
    )
    return max(1.4826 * deviation, floor)


def _gumbel_fit(maxima: deque[float]) -> tuple[float, float]:
    """Location and scale of a Gumbel distribution matching the maxima's median and quartiles.

    Quantiles, not moments: one crisis day among the maxima must not widen the fit."""
    low, mid, high = (
        quantiles(maxima, n=4, method="inclusive") if len(maxima) > 1 else [maxima[0]] * 3
    )
    scale = max((high - low) / GUMBEL_IQR, MIN_GUMBEL_SCALE, LIGHTEST_TAIL * mid)
    return mid - GUMBEL_MEDIAN * scale, scale
