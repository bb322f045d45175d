"""``brandmon report``: a self-contained HTML page whose charts render and whose numbers are
the database's."""

from __future__ import annotations

import io
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import numpy
import pytest
from PIL import Image
from sqlmodel import select

from monitor.charts.layout import Polyline, Text, text_width, time_ticks
from monitor.config import parse_config
from monitor.model import Incident, Mention, MentionRow, utcnow
from monitor.report import build_report, chart_png, render_html, time_chart
from monitor.storage import Storage

CONFIG = """
[storage]
url = "sqlite:///{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]

[detection]
warmup = "1d"
history = "1d"
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def mention(n: int, at: object, label: str, reach: float, category: str) -> MentionRow:
    return {
        "brand": "Acme",
        "source": "x",
        "source_type": "x",
        "external_id": str(n),
        "url": f"https://x.example/{n}",
        "canonical_url": f"https://x.example/{n}",
        "author": f"user{n}",
        "author_followers": None,
        "likes": None,
        "reposts": None,
        "replies": None,
        "views": None,
        "text": f"Acme <b>post</b> {n}",
        "language": "en",
        "published_at": at,
        "fetched_at": at,
        "sentiment_compound": -0.6 if label == "negative" else 0.3,
        "sentiment_label": label,
        "reach_score": reach,
        "category": category,
        "priority": "P1" if category == "crisis_risk" else "P3",
    }


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Storage]:
    """Two calm days with a burst of negative mentions three hours ago, and its incident."""
    config = tmp_path / "brandmon.toml"
    config.write_text(CONFIG.format(db=tmp_path / "brandmon.db"))
    storage = Storage(f"sqlite:///{tmp_path / 'brandmon.db'}")
    storage.create_schema()
    rng = random.Random(7)
    now = utcnow()
    rows = []
    for n in range(600):
        at = now - timedelta(minutes=rng.uniform(0, 48 * 60))
        label = rng.choice(["negative", "neutral", "positive", "positive"])
        rows.append(mention(n, at, label, rng.uniform(0, 30), "other"))
    burst = now - timedelta(hours=3)
    for n in range(600, 700):
        at = burst + timedelta(minutes=rng.uniform(0, 40))
        rows.append(mention(n, at, "negative", rng.uniform(20, 90), "crisis_risk"))
    storage.add_mentions(rows)
    with storage.session() as session:
        session.add(
            Incident(
                brand="Acme",
                started_at=burst,
                level="crisis",
                peak_level="crisis",
                peak_at=burst + timedelta(minutes=20),
                peak_score=14.2,
                resolved_at=burst + timedelta(hours=2),
            )
        )
        session.commit()
    return config, storage


def metrics(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([a-z-]+)">([^<]*)<', page))


def expected_numbers(storage: Storage, since: object) -> dict[str, str]:
    with storage.session() as session:
        rows = list(session.scalars(select(Mention).where(Mention.published_at >= since)))
    negative = [m for m in rows if m.sentiment_label == "negative"]
    return {
        "volume": f"{len(rows):,}",
        "negative": f"{len(negative):,}",
        "negative-share": f"{len(negative) / len(rows):.1%}",
        "negative-reach": f"{sum(m.reach_score for m in negative):,.1f}",
        "incidents": "1",
        "peak-level": "crisis",
    }


def test_the_report_numbers_are_the_databases(stored: tuple[Path, Storage]) -> None:
    config_path, storage = stored
    config = parse_config(config_path.read_text(), str(config_path))
    now = utcnow()
    report = build_report(config, storage, "Acme", now - timedelta(hours=24), now)
    page = render_html(report)
    shown = metrics(page)
    assert shown == expected_numbers(storage, report.start)
    # the burst's mentions lead the top list, escaped, with their links
    assert report.top[0].category == "crisis_risk"
    assert "Acme &lt;b&gt;post&lt;/b&gt;" in page and "<b>post</b>" not in page
    assert f'href="{report.top[0].url}"' in page
    # the detector, replaying the stored history, scored the burst above the crisis threshold
    assert max(report.scores) >= report.thresholds[2]
    assert 'data-triage="crisis_risk P1">100<' in page  # the burst's mentions


def test_the_report_is_one_self_contained_file(stored: tuple[Path, Storage]) -> None:
    config_path, storage = stored
    config = parse_config(config_path.read_text(), str(config_path))
    now = utcnow()
    page = render_html(build_report(config, storage, "Acme", now - timedelta(hours=24), now))
    assert "<script" not in page and "<link" not in page and "src=" not in page
    charts = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(charts) == 2
    activity, triage = (ElementTree.fromstring(chart) for chart in charts)  # well-formed
    assert [activity.get("id"), triage.get("id")] == ["chart-activity", "chart-triage"]
    # the charts' words are text a reader can select and search, not pixels
    words = {t.text for t in activity.iter("{http://www.w3.org/2000/svg}text")}
    assert {"negative", "expected negative (baseline)", "crisis", "times in UTC"} <= words
    bars = {t.text for t in triage.iter("{http://www.w3.org/2000/svg}text")}
    assert {"crisis_risk", "other", "100"} <= bars  # a bar's category and its count


def _plot_boxes(shapes: list[object]) -> list[tuple[float, float, float, float]]:
    """The panels' frames: the closed rectangles drawn around each plot."""
    return [
        (s.points[0][0], s.points[0][1], s.points[2][0], s.points[2][1])
        for s in shapes
        if isinstance(s, Polyline) and len(s.points) == 5 and s.points[0] == s.points[-1]
    ]


def test_the_chart_legends_hide_no_data(stored: tuple[Path, Storage]) -> None:
    config_path, storage = stored
    config = parse_config(config_path.read_text(), str(config_path))
    now = utcnow()
    drawing = time_chart(build_report(config, storage, "Acme", now - timedelta(hours=24), now))
    boxes = _plot_boxes(drawing.shapes)
    assert len(boxes) == 3  # mentions, negative reach, the detector's score
    named = {"all mentions", "negative", "expected negative (baseline)", "detector score"}
    legends = [s for s in drawing.shapes if isinstance(s, Text) and s.text in named | {"crisis"}]
    assert len(legends) == 5
    for text in legends:
        assert all(text.x > right for _, _, right, _ in boxes), text
        assert text.x + text_width(text.text) <= drawing.width, text  # and not cut off either


def test_the_slack_chart_is_a_png_that_shows_the_burst(stored: tuple[Path, Storage]) -> None:
    config_path, storage = stored
    config = parse_config(config_path.read_text(), str(config_path))
    now = utcnow()
    png = chart_png(build_report(config, storage, "Acme", now - timedelta(hours=24), now))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] >= 1000
    pixels = numpy.asarray(image.convert("RGB"), dtype=int)

    def columns_like(colour: tuple[int, int, int]) -> set[int]:
        return set(numpy.nonzero((abs(pixels - numpy.array(colour)) <= 12).all(axis=2))[1])

    # the negative line runs across the day, the score line shows, and the crisis is shaded
    negative, score = columns_like((0xD7, 0x26, 0x3D)), columns_like((0x1B, 0x49, 0x65))
    assert max(negative) - min(negative) > 700 and len(score) > 100
    assert columns_like((0xF7, 0xDE, 0xE2))  # the crisis colour at 15 % on white


@pytest.mark.parametrize(
    ("days", "every"), [(1, timedelta(hours=3)), (7, timedelta(days=1)), (30, timedelta(days=3))]
)
def test_time_ticks_are_round_local_times_that_leave_room_for_their_labels(
    days: int, every: timedelta
) -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    end = datetime(2026, 11, 30, 12, 7, tzinfo=UTC)
    ticks = time_ticks(end - timedelta(days=days), end, warsaw, max_count=11)
    assert 4 <= len(ticks) <= 11
    assert all(b - a == every for (a, _, _), (b, _, _) in zip(ticks, ticks[1:], strict=False))
    local = [moment.astimezone(warsaw) for moment, _, _ in ticks]
    assert all(t.minute == 0 and t.hour % 3 == 0 for t in local)
    if every >= timedelta(days=1):
        assert all(t.hour == 0 for t in local)  # local midnights
        assert ticks[0][1] == f"{local[0].day} {local[0]:%b}" and ticks[0][2] == "2026"
    else:
        assert [label for _, label, _ in ticks][:2] == ["15:00", "18:00"]  # 12:07 UTC is 13:07
        # the date is said under the first tick and under the first tick of a new day
        assert [day for _, _, day in ticks if day] == ["Sun 29 Nov", "Mon 30 Nov"]


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # summer time ends at 01:00 UTC on 25 October: 02:00 to 03:00 comes twice
        (datetime(2026, 10, 24, 22, tzinfo=UTC), 24, ["00:00", "03:00", "06:00", "09:00"]),
        # and starts at 01:00 UTC on 29 March: 02:00 to 03:00 never comes
        (datetime(2026, 3, 29, 0, tzinfo=UTC), 6, ["01:00", "03:00", "04:00", "05:00"]),
    ],
)
def test_time_ticks_stay_on_round_hours_across_a_clock_change(
    start: datetime, hours: int, expected: list[str]
) -> None:
    ticks = time_ticks(start, start + timedelta(hours=hours), ZoneInfo("Europe/Warsaw"), 11)
    labels = [label for _, label, _ in ticks]
    assert labels[:4] == expected and len(set(labels)) == len(labels)
    assert len({moment for moment, _, _ in ticks}) == len(ticks)  # one tick a moment


def test_an_unknown_brand_is_a_clear_error(stored: tuple[Path, Storage]) -> None:
    config_path, _ = stored
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(
        app, ["report", "--brand", "Nope", "--config", str(config_path), "--out", "r.html"]
    )
    assert result.exit_code == 2
    assert "no brand 'Nope'" in result.output and "Acme" in result.output


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_report_renders_in_a_browser(stored: tuple[Path, Storage], tmp_path: Path) -> None:
    config_path, storage = stored
    out = tmp_path / "report.html"
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(
        app,
        ["report", "--brand", "Acme", "--since", "24h", "--config", str(config_path)]
        + ["--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*browser, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=60
    ).stdout
    since = utcnow() - timedelta(hours=24)
    shown = metrics(dom)
    expected = expected_numbers(storage, since)
    # a mention may have aged out of the window between writing and checking: allow that
    assert shown["incidents"] == "1" and shown["peak-level"] == "crisis"
    assert abs(int(shown["volume"].replace(",", "")) - int(expected["volume"])) <= 1
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*browser, "--window-size=1200,2000", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    image = numpy.asarray(Image.open(shot).convert("RGB"), dtype=int)

    def pixels_like(colour: tuple[int, int, int]) -> int:
        return int((abs(image - numpy.array(colour)) <= 12).all(axis=2).sum())

    # the charts were decoded and drawn: the negative line and the negative-reach fill show
    assert pixels_like((0xD7, 0x26, 0x3D)) > 200
    assert pixels_like((0x1B, 0x49, 0x65)) > 200  # the score line and the triage bars


def test_negative_reach_is_explained_in_words(stored: tuple[Path, Storage]) -> None:
    config_path, storage = stored
    config = parse_config(config_path.read_text(), str(config_path))
    now = utcnow()
    page = render_html(build_report(config, storage, "Acme", now - timedelta(hours=24), now))
    explained = re.search(r'<p id="about-reach">([^<]+)</p>', page)
    assert explained is not None
    words = explained.group(1)
    assert "adds up the reach scores of the negative mentions" in words
    assert "0 to 100" in words and "not a count of people" in words


def _old_data(tmp_path: Path, days: int) -> tuple[Path, Storage]:
    config = tmp_path / "brandmon.toml"
    config.write_text(CONFIG.format(db=tmp_path / "old.db"))
    storage = Storage(f"sqlite:///{tmp_path / 'old.db'}")
    storage.create_schema()
    then = utcnow() - timedelta(days=days)
    storage.add_mentions(
        [mention(n, then + timedelta(hours=n), "negative", 5.0, "complaint") for n in range(12)]
    )
    return config, storage


def test_an_empty_default_week_reports_on_the_stored_range_and_says_so(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    config, _ = _old_data(tmp_path, days=30)
    out = tmp_path / "report.html"
    args = ["report", "--brand", "Acme", "--config", str(config), "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "no mention of Acme from" in said and "the last 7 days" in said
    assert "the report covers the stored mentions instead" in said
    assert metrics(out.read_text())["volume"] == "12"

    # asked for a window, the report keeps to it, empty or not
    asked = CliRunner().invoke(app, [*args, "--since", "7d"], env={"COLUMNS": "200"})
    assert "instead" not in asked.stdout
    assert metrics(out.read_text())["volume"] == "0"


def test_the_report_shows_times_in_the_display_zone(
    stored: tuple[Path, Storage], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from monitor.alert import show_times_in
    from monitor.cli import app

    config_path, storage = stored
    config_path.write_text(config_path.read_text() + '\n[display]\ntimezone = "Europe/Warsaw"\n')
    out = tmp_path / "report.html"
    args = ["report", "--brand", "Acme", "--since", "24h", "--config", str(config_path)]
    try:
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
    finally:
        show_times_in("UTC")
    assert result.exit_code == 0, result.output
    page = out.read_text()
    with storage.session() as session:
        started = session.scalars(select(Incident)).one().started_at
    warsaw = started.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Warsaw"))
    assert f"<td>{warsaw:%Y-%m-%d %H:%M} CET</td>" in page  # the incident's start
    assert " UTC<" not in page
