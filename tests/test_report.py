"""``brandmon report``: a self-contained HTML page whose charts render and whose numbers are
the database's."""

from __future__ import annotations

import base64
import random
import re
import shutil
import subprocess
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image
from sqlmodel import select

from monitor.config import parse_config
from monitor.model import Incident, Mention, MentionRow, utcnow
from monitor.report import _time_figure, build_report, render_html
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
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 2
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_the_chart_legends_hide_no_data(stored: tuple[Path, Storage]) -> None:
    config_path, storage = stored
    config = parse_config(config_path.read_text(), str(config_path))
    now = utcnow()
    figure = _time_figure(build_report(config, storage, "Acme", now - timedelta(hours=24), now))
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    legends = [(axes, axes.get_legend()) for axes in figure.axes if axes.get_legend()]
    assert len(legends) == 2  # mentions, and the detector's score against the thresholds
    for axes, legend in legends:
        plot = axes.get_window_extent(renderer)
        box = legend.get_window_extent(renderer)
        assert not plot.overlaps(box), (plot, box)
        assert box.x1 <= figure.bbox.x1  # and it is not cut off either


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
