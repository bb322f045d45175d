"""Charts laid out once, in pixels, as a ``Drawing`` the SVG and PNG renderers only draw.

Text is measured by estimate (``text_width``: 0.6 em a character, a little wider than the
sans-serif fonts the renderers use), so that labels and legends get room without a font.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

Point = tuple[float, float]
Anchor = Literal["start", "middle", "end"]

FONT = 11.0
"""The size of tick labels and legends, in pixels; titles are larger."""
INK = "#222222"
NOTE = "#555555"
GRID = "#e3e3e3"
AXIS = "#888888"
LEVEL_DASH = (2.0, 3.0)


@dataclass(frozen=True, slots=True)
class Polygon:
    points: tuple[Point, ...]
    colour: str
    opacity: float = 1.0


@dataclass(frozen=True, slots=True)
class Polyline:
    points: tuple[Point, ...]
    colour: str
    width: float = 1.0
    dash: tuple[float, float] | None = None
    """Lengths of a dash and of the gap after it, or None for a solid line."""


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    """The baseline."""
    text: str
    size: float = FONT
    colour: str = INK
    anchor: Anchor = "start"
    bold: bool = False


Shape = Polygon | Polyline | Text


@dataclass(slots=True)
class Drawing:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Series:
    """Values, one per bucket, drawn as a filled step area, a step line or a line through the
    buckets' starts (``dashed`` too); named in the panel's legend when ``label`` is set."""

    values: Sequence[float]
    colour: str
    style: Literal["area", "step", "line", "dashed"]
    label: str | None = None
    opacity: float = 1.0


@dataclass(frozen=True, slots=True)
class Level:
    """A horizontal dotted line across a panel, such as a threshold, named in its legend."""

    value: float
    colour: str
    label: str


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    series: Sequence[Series]
    levels: Sequence[Level] = ()
    height: int = 200


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time shaded across every panel (an incident)."""

    start: datetime
    end: datetime
    colour: str
    opacity: float = 0.15


def text_width(text: str, size: float = FONT) -> float:
    return 0.6 * size * len(text)


@dataclass(frozen=True, slots=True)
class _Frame:
    """One panel's plot area and the values and times at its edges."""

    left: float
    right: float
    top: float
    bottom: float
    begin: datetime
    end: datetime
    low: float
    high: float

    def x(self, moment: datetime) -> float:
        share = (moment - self.begin) / max(self.end - self.begin, timedelta(seconds=1))
        return self.left + (self.right - self.left) * min(max(share, 0.0), 1.0)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.bottom - (self.bottom - self.top) * share


def time_chart(
    title: str,
    starts: Sequence[datetime],
    bucket: timedelta,
    window: tuple[datetime, datetime],
    panels: Sequence[Panel],
    spans: Sequence[Span],
    zone: tzinfo,
    zone_name: str,
    width: int = 1100,
) -> Drawing:
    """Panels stacked on one time axis over ``window``: each series has a value per bucket
    starting at ``starts``; the x axis is labelled in ``zone`` (called ``zone_name``), each
    panel's legend is right of it, where it hides no data."""
    begin, end = window
    legend_width = max(
        (text_width(name) for panel in panels for name in _legend_names(panel)), default=0
    )
    all_y_ticks = [_y_ticks(panel) for panel in panels]
    labels = [_number(value, ticks) for ticks in all_y_ticks for value in ticks]
    left = 14.0 + max(text_width(label) for label in ["0", *labels])
    right = width - 50.0 - legend_width
    top = 46.0
    shapes: list[Shape] = [Text(left, 24, title, size=15, bold=True)]
    ticks = time_ticks(begin, end, zone, max_count=max(2, int((right - left) // 70)))
    x_of = _Frame(left, right, 0, 0, begin, end, 0, 1).x
    columns = [(x_of(t), x_of(t + bucket)) for t in starts]
    for panel, y_ticks in zip(panels, all_y_ticks, strict=True):
        shapes.append(Text(left, top + 14, panel.title, size=12))
        frame = _Frame(
            left, right, top + 24, top + 24 + panel.height, begin, end, y_ticks[0], y_ticks[-1]
        )
        for span in spans:
            x0, x1 = frame.x(span.start), frame.x(span.end)
            if x1 > x0:
                box = _box(x0, frame.top, x1, frame.bottom)
                shapes.append(Polygon(box, span.colour, span.opacity))
        for value in y_ticks:
            y = frame.y(value)
            shapes.append(Polyline(((left, y), (right, y)), GRID))
            shapes.append(Text(left - 6, y + 4, _number(value, y_ticks), anchor="end"))
        for moment, _, _ in ticks:
            x = x_of(moment)
            shapes.append(Polyline(((x, frame.top), (x, frame.bottom)), GRID))
        for series in panel.series:
            shapes += _series(series, columns, frame)
        for level in panel.levels:
            y = frame.y(level.value)
            shapes.append(Polyline(((left, y), (right, y)), level.colour, 1.5, LEVEL_DASH))
        shapes.append(Polyline(_box(left, frame.top, right, frame.bottom, closed=True), AXIS))
        shapes += _legend(panel, right + 14, frame.top)
        top = frame.bottom + 8
    for moment, label, day in ticks:
        x = x_of(moment)
        shapes.append(Polyline(((x, top - 8), (x, top - 3)), AXIS))
        shapes.append(Text(x, top + 9, label, anchor="middle"))
        if day:
            shapes.append(Text(x, top + 23, day, anchor="middle", colour=NOTE))
    shapes.append(Text(right, top + 37, f"times in {zone_name}", colour=NOTE, anchor="end"))
    return Drawing(width, math.ceil(top + 46), shapes)


def _y_ticks(panel: Panel) -> list[float]:
    """The panel's y axis: from 0 (or below) to at or above its highest value and level."""
    values = [v for s in panel.series for v in s.values] + [lv.value for lv in panel.levels]
    return nice_ticks(min([0.0, *values]), max([0.0, *values]))


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], colour: str, unit: str, width: int = 700
) -> Drawing:
    """Horizontal bars, one a row in the given order, each with its value at its end."""
    left = 16 + max((text_width(name) for name, _ in bars), default=0)
    right = width - 20 - text_width(f"{max((v for _, v in bars), default=0):,.0f}")
    row, top = 26.0, 46.0
    bottom = top + row * max(1, len(bars))
    ticks = nice_ticks(0.0, max((v for _, v in bars), default=0.0), count=5)
    scale = (right - left) / ticks[-1]
    shapes: list[Shape] = [Text(left, 24, title, size=15, bold=True)]
    for value in ticks:
        x = left + value * scale
        shapes.append(Polyline(((x, top), (x, bottom)), GRID))
        shapes.append(Text(x, bottom + 16, _number(value, ticks), anchor="middle"))
    for n, (name, value) in enumerate(bars):
        y = top + row * n
        shapes.append(Polygon(_box(left, y + 4, left + value * scale, y + row - 4), colour))
        shapes.append(Text(left - 8, y + row / 2 + 4, name, anchor="end"))
        shapes.append(Text(left + value * scale + 6, y + row / 2 + 4, f"{value:,.0f}"))
    shapes.append(Polyline(((left, top), (left, bottom)), AXIS))
    shapes.append(Text((left + right) / 2, bottom + 34, unit, anchor="middle"))
    return Drawing(width, math.ceil(bottom + 46), shapes)


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round values from at or below ``low`` to at or above ``high``, about ``count`` steps
    of 1, 2 or 5 times a power of ten apart."""
    if high <= low:
        high = low + 1.0
    rough = (high - low) / count
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [n * step for n in range(first, last + 1)]


def _number(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"


TIME_STEPS = [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720)] + [
    timedelta(days=d) for d in (1, 2, 3, 7, 14, 28)
]
"""Tick spacings, the finest that leaves room for the labels is used."""


def time_ticks(
    start: datetime, end: datetime, zone: tzinfo, max_count: int
) -> list[tuple[datetime, str, str | None]]:
    """Ticks on round local times in [start, end]: (moment, label, the date line under it,
    given where the date or year changes).  Sub-day spacings are counted from local midnight,
    so a tick reads 06:00 on either side of a clock change; day spacings fall on local
    midnights (weeks on Mondays)."""
    span = end - start
    step = next((s for s in TIME_STEPS if span / s <= max_count), None)
    if step is None:
        step = timedelta(days=28 * math.ceil(span / timedelta(days=28) / max_count))
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if step < timedelta(days=1):
        per_day = round(timedelta(days=1) / step)
        moments = [_local(day, step * k, zone) for day in days for k in range(per_day)]
    else:
        moments = [_local(day, timedelta(0), zone) for day in days if _on_step(day, step.days)]
    moments = sorted({m for m in moments if start <= m <= end})
    ticks: list[tuple[datetime, str, str | None]] = []
    for n, moment in enumerate(moments):
        local = moment.astimezone(zone)
        before = moments[n - 1].astimezone(zone) if n else None
        if step < timedelta(days=1):
            new = before is None or before.date() != local.date()
            ticks.append(
                (moment, f"{local:%H:%M}", f"{local:%a} {local.day} {local:%b}" if new else None)
            )
        else:
            new = before is None or before.year != local.year
            ticks.append((moment, f"{local.day} {local:%b}", f"{local:%Y}" if new else None))
    return ticks


def _local(day: date, offset: timedelta, zone: tzinfo) -> datetime:
    """Local ``day`` at wall-clock ``offset`` after midnight in ``zone``, as a UTC time (so
    that a wall-clock time skipped by a clock change is the same tick as the one after it)."""
    minutes = int(offset.total_seconds() // 60)
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _on_step(day: date, every: int) -> bool:
    """Whether a tick every ``every`` days falls on ``day``: weeks start on Mondays."""
    if every % 7:
        return day.toordinal() % every == 0
    weeks, weekday = divmod(day.toordinal() - 1, 7)  # day 1 was a Monday
    return weekday == 0 and weeks % (every // 7) == 0


def _series(series: Series, columns: Sequence[tuple[float, float]], frame: _Frame) -> list[Shape]:
    """``series`` drawn over its buckets' ``columns`` (where each starts and ends, in x)."""
    if not columns:
        return []
    values = series.values
    if series.style in ("line", "dashed"):
        points = [(x, frame.y(v)) for (x, _), v in zip(columns, values, strict=True)]
    else:
        points = []
        for (x0, x1), v in zip(columns, values, strict=True):
            y = frame.y(v)
            points += [(x0, y), (x1, y)]
    points = thin(points)
    if series.style == "area":
        base = frame.y(max(frame.low, 0.0))
        outline = ((points[0][0], base), *points, (points[-1][0], base))
        return [Polygon(outline, series.colour, series.opacity)]
    return [Polyline(tuple(points), series.colour, 1.5, _dash(series))]


def thin(points: Sequence[Point]) -> list[Point]:
    """The same line with at most four points a pixel column (where it enters and leaves the
    column, its lowest and highest), so that a month of buckets draws as fast and looks the
    same as the buckets a pixel can show; points on a horizontal run between two others go."""
    kept: list[Point] = []
    start, count = 0, len(points)
    while start < count:
        column, end = round(points[start][0]), start + 1
        while end < count and round(points[end][0]) == column:
            end += 1
        if end - start <= 4:
            kept += points[start:end]
        else:
            ys = [y for _, y in points[start:end]]
            low, high = ys.index(min(ys)), ys.index(max(ys))
            kept += [points[start + k] for k in sorted({0, low, high, end - start - 1})]
        start = end
    flat: list[Point] = []
    for point in kept:
        if len(flat) >= 2 and flat[-1][1] == flat[-2][1] == point[1]:
            flat[-1] = point
        else:
            flat.append(point)
    return flat


def _box(x0: float, y0: float, x1: float, y1: float, *, closed: bool = False) -> tuple[Point, ...]:
    corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    return (*corners, (x0, y0)) if closed else corners


def _dash(series: Series) -> tuple[float, float] | None:
    return (5.0, 3.0) if series.style == "dashed" else None


def _legend_names(panel: Panel) -> list[str]:
    return [s.label for s in panel.series if s.label] + [lv.label for lv in panel.levels]


def _legend(panel: Panel, x: float, top: float) -> list[Shape]:
    """The panel's named series and levels, a swatch and a name a row."""
    shapes: list[Shape] = []
    rows: list[tuple[str, str, str, tuple[float, float] | None]] = [
        (s.label, s.colour, s.style, _dash(s)) for s in panel.series if s.label
    ] + [(lv.label, lv.colour, "level", LEVEL_DASH) for lv in panel.levels]
    for n, (label, colour, style, dash) in enumerate(rows):
        y = top + 10 + 18 * n
        if style == "area":
            shapes.append(Polygon(_box(x, y - 5, x + 22, y + 5), colour))
        else:
            shapes.append(Polyline(((x, y), (x + 22, y)), colour, 1.5, dash))
        shapes.append(Text(x + 30, y + 4, label))
    return shapes
