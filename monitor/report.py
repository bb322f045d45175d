"""``brandmon report``: one self-contained HTML page on a brand's recent history.

Charts of volume, negative volume and negative reach against the brand's baseline, the detector's
score against the level thresholds, the incidents marked, the most influential negative mentions
and the triage breakdown.  The baseline and scores come from replaying the stored history through
the same ``Detector`` the daemon runs (as ``brandmon backtest --from`` does), so the picture shows
what the daemon saw.  Charts are inlined as SVG: the file opens anywhere, offline, and can be
mailed as it is; a PNG of the same chart goes to Slack and the console (``chart_png``).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from monitor.alert import display_zone, plain_time
from monitor.charts import layout
from monitor.charts.svg import to_svg
from monitor.config import Config
from monitor.detection import Detector, DetectorSettings, Level, Step
from monitor.model import Incident, Mention, to_utc, utcnow
from monitor.storage import Activity, Storage, bucket_floor
from monitor.watcher import judge

TOP_MENTIONS = 10
DEFAULT_WINDOW = timedelta(days=7)
LEVEL_COLOURS = {"watch": "#f2c14e", "warning": "#f08a24", "crisis": "#d7263d"}


@dataclass(slots=True)
class Report:
    brand: str
    start: datetime
    end: datetime
    bucket: timedelta
    thresholds: tuple[float, float, float]
    activity: list[Activity]
    expected: list[float]
    """The detector's expected negative count per bucket (its baseline)."""
    scores: list[float]
    incidents: list[Incident]
    top: list[Mention]
    triage: dict[tuple[str | None, str | None], int] = field(default_factory=dict)

    @property
    def volume(self) -> int:
        return sum(a.volume for a in self.activity)

    @property
    def negative(self) -> int:
        return sum(a.negative for a in self.activity)

    @property
    def negative_reach(self) -> float:
        return sum(a.negative_reach for a in self.activity)


def build_report(
    config: Config, storage: Storage, brand: str, start: datetime, end: datetime
) -> Report:
    """Gather what the report shows for ``brand`` over [start, end)."""
    brand_config = next((b for b in config.brands if b.name == brand), None)
    if brand_config is None:
        known = ", ".join(b.name for b in config.brands)
        raise ValueError(f"no brand {brand!r} in the config (brands: {known})")
    settings = DetectorSettings.from_config(config.thresholds_for(brand_config))
    bucket = settings.bucket
    start = bucket_floor(start, bucket)
    activity, steps = _replay(storage, brand, settings, start, end)
    return Report(
        brand=brand,
        start=start,
        end=end,
        bucket=bucket,
        thresholds=settings.enter,
        activity=activity,
        expected=[step.expected for step in steps],
        scores=[step.score for step in steps],
        incidents=storage.incidents(brand, start, end),
        top=storage.top_negative(brand, start, end, TOP_MENTIONS),
        triage=storage.triage_counts(brand, start, end),
    )


def data_range(storage: Storage, brand: str) -> tuple[datetime, datetime] | None:
    """The window [first, last] of ``brand``'s stored mentions (its end just after the last
    one, since report windows end before their end), or None when none is stored."""
    query = select(func.min(Mention.published_at), func.max(Mention.published_at)).where(
        Mention.brand == brand
    )
    with storage.session() as session:
        first, last = session.execute(query).one()
    if first is None:
        return None
    return to_utc(first), to_utc(last) + timedelta(seconds=1)


def _replay(
    storage: Storage, brand: str, settings: DetectorSettings, start: datetime, end: datetime
) -> tuple[list[Activity], list[Step]]:
    """``brand``'s buckets in [start, end) (``start`` on a bucket's start) and the detector's
    step on each, learned (without looking ahead) from the history before it, as the daemon
    learns it.  The history and the buckets shown are read in one query."""
    first = bucket_floor(start - settings.learning, settings.bucket)
    buckets = storage.activity(brand, first, end, settings.bucket)
    detector = Detector(settings)
    steps = [judge(detector, bucket) for bucket in buckets]
    shown = round((start - first) / settings.bucket)
    return buckets[shown:], steps[shown:]


def day_chart(config: Config, storage: Storage, brand: str) -> bytes:
    """``brand``'s last 24 hours as a PNG: what a crisis page in Slack shows."""
    now = utcnow()
    return chart_png(build_report(config, storage, brand, now - timedelta(hours=24), now))


def chart_png(report: Report) -> bytes:
    """The report's time charts as a PNG."""
    from monitor.charts.png import to_png  # Pillow: only Slack and the console want a PNG

    return to_png(time_chart(report))


def time_chart(report: Report) -> layout.Drawing:
    """Mentions and negative mentions against the baseline, negative reach, and the
    detector's score against the level thresholds, on one time axis, incidents shaded."""
    per = f"{_minutes(report.bucket)} min"
    panels = [
        layout.Panel(
            f"mentions per {per}",
            [
                layout.Series(
                    [a.volume for a in report.activity], "#c9d3e0", "area", "all mentions"
                ),
                layout.Series([a.negative for a in report.activity], "#d7263d", "step", "negative"),
                layout.Series(report.expected, "#333333", "dashed", "expected negative (baseline)"),
            ],
            height=250,
        ),
        layout.Panel(
            f"negative reach per {per} (the sum of the negative mentions' 0-100 reach scores)",
            [
                layout.Series(
                    [a.negative_reach for a in report.activity], "#7b2d26", "area", opacity=0.8
                )
            ],
            height=140,
        ),
        layout.Panel(
            "detector score (rarity) against the level thresholds",
            [layout.Series(report.scores, "#1b4965", "line", "detector score")],
            [
                layout.Level(threshold, LEVEL_COLOURS[name], name)
                for name, threshold in zip(
                    ("watch", "warning", "crisis"), report.thresholds, strict=True
                )
            ],
            height=200,
        ),
    ]
    spans = [
        layout.Span(
            max(to_utc(incident.started_at) or report.start, report.start),
            to_utc(incident.resolved_at) or report.end,
            LEVEL_COLOURS.get(incident.peak_level, "#999999"),
        )
        for incident in report.incidents
    ]
    return layout.time_chart(
        f"{report.brand}: mentions, {plain_time(report.start)} to {plain_time(report.end)}",
        [a.start for a in report.activity],
        report.bucket,
        (report.start, report.end),
        panels,
        spans,
        display_zone(),  # the time axis reads in the zone every page shows times in
        plain_time(report.end).rsplit(" ", 1)[1],  # and names it as they do: "CET"
    )


def triage_chart(report: Report) -> layout.Drawing:
    return layout.bar_chart(
        "triage categories", list(_by_category(report).items()), "#1b4965", "mentions"
    )


def _by_category(report: Report) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (category, _), n in report.triage.items():
        counts[category or "not triaged"] += n
    return Counter(dict(counts.most_common()))


def _minutes(bucket: timedelta) -> int:
    return int(bucket.total_seconds() // 60)


def render_html(report: Report) -> str:
    """The whole report as one HTML document with the charts inlined."""
    e = html.escape
    activity_chart = to_svg(
        time_chart(report),
        element_id="chart-activity",
        label="mentions, negative mentions against the baseline, negative reach and the "
        "detector score against the level thresholds, with incidents shaded",
    )
    triage_svg = to_svg(
        triage_chart(report), element_id="chart-triage", label="mentions per triage category"
    )
    share = report.negative / report.volume if report.volume else 0.0
    peak = max((Level[i.peak_level] for i in report.incidents), default=Level.none)
    summary = [
        ("mentions", "volume", f"{report.volume:,}"),
        ("negative mentions", "negative", f"{report.negative:,}"),
        ("negative share", "negative-share", f"{share:.1%}"),
        ("negative reach", "negative-reach", f"{report.negative_reach:,.1f}"),
        ("incidents", "incidents", f"{len(report.incidents)}"),
        ("highest level", "peak-level", peak.said),
    ]
    rows = "".join(
        f'<tr><th>{label}</th><td data-metric="{key}">{value}</td></tr>'
        for label, key, value in summary
    )
    incidents = (
        "".join(
            f"<tr><td>#{i.id}</td><td>{_time(i.started_at)}</td><td>{_time(i.resolved_at)}</td>"
            f'<td class="{e(i.peak_level)}">{e(i.peak_level)}</td><td>{_time(i.peak_at)}</td>'
            f"<td>{i.peak_score:.1f}</td></tr>"
            for i in report.incidents
        )
        or '<tr><td colspan="6">none</td></tr>'
    )
    top = (
        "".join(
            f"<tr><td>{m.reach_score:.1f}</td><td>{e(m.author or 'unknown')}</td>"
            f"<td>{e(m.source)}</td><td>{e(m.category or '')}</td><td>{e(m.priority or '')}</td>"
            f"<td>{_time(m.published_at)}</td><td>{_linked(m)}</td></tr>"
            for m in report.top
        )
        or '<tr><td colspan="7">none</td></tr>'
    )
    triage = (
        "".join(
            f"<tr><td>{e(category or 'not triaged')}</td><td>{e(priority or '')}</td>"
            f'<td data-triage="{e(category or "")} {e(priority or "")}">{n}</td></tr>'
            for (category, priority), n in sorted(
                report.triage.items(), key=lambda kv: (-kv[1], str(kv[0]))
            )
        )
        or '<tr><td colspan="3">none</td></tr>'
    )
    title = f"brandmon report: {report.brand}"
    period = f"{_time(report.start)} to {_time(report.end)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left;
  vertical-align: top; }}
svg {{ max-width: 100%; height: auto; }}
.watch {{ background: #fdf1d3; }} .warning {{ background: #fce0c4; }}
.crisis {{ background: #f6c9cf; }}
</style></head><body>
<h1>{e(title)}</h1>
<p>{period}, buckets of {_minutes(report.bucket)} minutes; thresholds watch
{report.thresholds[0]:g}, warning {report.thresholds[1]:g}, crisis {report.thresholds[2]:g}.</p>
<table class="summary">{rows}</table>
<p id="about-reach">{_REACH_EXPLAINED}</p>
<h2>Volume, negative reach and the detector</h2>
{activity_chart}
<h2>Incidents</h2>
<table><tr><th>incident</th><th>started</th><th>resolved</th><th>peak level</th>
<th>peak at</th><th>peak score</th></tr>{incidents}</table>
<h2>Most influential negative mentions</h2>
<table><tr><th>reach</th><th>author</th><th>source</th><th>category</th><th>priority</th>
<th>published</th><th>text</th></tr>{top}</table>
<h2>Triage</h2>
{triage_svg}
<table><tr><th>category</th><th>priority</th><th>mentions</th></tr>{triage}</table>
</body></html>
"""


_REACH_EXPLAINED = (
    "Negative reach adds up the reach scores of the negative mentions.  A mention's reach "
    "score, 0 to 100, rates how many people it is likely to reach, from its author's followers "
    "and its likes, reposts, replies and views, on a logarithmic scale: 0 is a post by an "
    "account without followers that nobody engaged with, 100 a post by an account with 100 "
    "million followers that got a million likes.  It is an index, not a count of people: ten "
    "complaints by accounts with a million followers each add up to about 276, a hundred by "
    "accounts with 20 followers to about 130, and people who saw several posts count several "
    "times."
)


def _time(moment: datetime | None) -> str:
    return "—" if moment is None else plain_time(moment)


def _linked(mention: Mention) -> str:
    text = mention.text if len(mention.text) <= 280 else mention.text[:279] + "…"
    if mention.url and mention.url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(mention.url)}">{html.escape(text)}</a>'
    return html.escape(text)
