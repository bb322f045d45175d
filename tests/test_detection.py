"""The crisis detector on realistic synthetic series, and the backtest that replays it."""

from __future__ import annotations

import copy
import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import DetectionConfig
from monitor.detection import Detector, DetectorSettings, Level
from monitor.synthetic import PER_DAY, Series, make_series

T0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=5)


def write_csv(folder: Path, series: Series) -> Path:
    source = folder / "volume.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for at, value in zip(series.times(), series.values, strict=True):
            writer.writerow([at.isoformat(), value])
    return source


def replay(values: list[float], settings: DetectorSettings | None = None) -> list:  # type: ignore[type-arg]
    detector = Detector(settings)
    return [detector.step(T0 + STEP * i, v) for i, v in enumerate(values)]


@pytest.mark.parametrize("rate", [0.5, 5, 50, 500])
def test_calm_seasonal_series_stay_within_a_page_a_month(rate: float) -> None:
    # The page budget a PR team accepts: about one false incident a month per brand (the
    # detector's rate on real volume).  Calm noise with weekends and drift, four weeks, two
    # brands per size: at most three incidents between them.
    incidents = 0
    for seed in (7, 8):
        series = make_series(seed=seed, days=28, rate=rate, bursts=0)
        detector = Detector()
        for at, value in zip(series.times(), series.values, strict=True):
            detector.step(at, value)
        incidents += detector.incident_count
    assert incidents <= 3


@pytest.mark.parametrize("seed,rate", [(1, 2), (2, 20), (3, 300)])
def test_bursts_are_caught_early_and_resolved(seed: int, rate: float) -> None:
    series = make_series(seed=seed, days=21, rate=rate, bursts=2)
    detector = Detector()
    steps = [detector.step(at, v) for at, v in zip(series.times(), series.values, strict=True)]
    for low, high in series.windows():
        pages = [i for i in range(low, high + 1) if steps[i].page]
        assert pages, f"burst at {low} not paged"
        assert pages[0] <= low + 0.4 * (high - low), "paged too late"
    assert detector.incident is None  # every incident was resolved
    # realistic noise may page once in three weeks outside a burst (the target is at most
    # three false-alarm episodes per brand in two months); more is a regression
    windows = series.windows()
    stray = [
        i for i, s in enumerate(steps) if s.page and not any(lo <= i <= hi for lo, hi in windows)
    ]
    assert detector.incident_count <= 3
    assert len(stray) <= 2


def test_a_small_brand_with_fifteen_complaints_in_an_hour_is_paged() -> None:
    quiet = [0.0] * (PER_DAY * 4)
    for i in range(0, len(quiet), 24):  # one complaint every two hours
        quiet[i] = 1.0
    wave = [2.0, 1.0, 2.0, 1.0, 3.0, 2.0, 1.0, 3.0]  # 15 in 40 minutes
    steps = replay(quiet + wave + [0.0] * 60)
    paged = [i - len(quiet) for i, s in enumerate(steps) if s.page]
    assert paged and 0 <= paged[0] < len(wave)


def test_a_copy_judges_on_as_the_original_and_leaves_it_as_it_was() -> None:
    past = list(make_series(seed=3, days=9, rate=5, bursts=0).values)
    original = Detector()
    for i, value in enumerate(past):
        original.step(T0 + STEP * i, value, total=value * 3, reach=value * 10)
    twin = copy.deepcopy(original)
    wave = [past[i - PER_DAY] * 4 + 6 for i in range(len(past), len(past) + 12)]
    rest = list(enumerate(wave + past[-PER_DAY:][12:60], start=len(past)))
    copied = [twin.step(T0 + STEP * i, v, total=v * 3, reach=v * 10) for i, v in rest]
    assert any(step.page for step in copied)  # the burst: the copy learnt the past
    again = [original.step(T0 + STEP * i, v, total=v * 3, reach=v * 10) for i, v in rest]
    assert [(s.score, s.level, s.page) for s in again] == [
        (s.score, s.level, s.page) for s in copied
    ]


def test_a_large_brand_busy_monday_is_not_a_crisis() -> None:
    # 300 an hour every weekday afternoon, for a week: routine, whatever its size
    series = make_series(seed=11, days=10, rate=25, bursts=0, drift=1.0)
    assert not any(s.page for s in replay(series.values))


def test_levels_rise_one_incident_and_leave_with_hysteresis() -> None:
    base = [10.0, 12.0, 9.0, 11.0, 10.0, 8.0] * (PER_DAY * 4 // 6)
    surge = [30.0, 45.0, 70.0, 120.0, 200.0, 260.0, 260.0, 240.0]
    tail = [10.0] * (PER_DAY // 2)
    steps = replay(base + surge + tail)
    after = steps[len(base) :]
    levels = [s.level for s in after]
    assert Level.crisis in levels
    pages = [s for s in after if s.page]
    # one incident: opened, then escalations only to higher levels; never paged twice per level
    assert [s.event for s in pages][0] == "opened"
    assert len({s.level for s in pages}) == len(pages)
    assert all(s.event != "opened" for s in pages[1:])
    # the level is not dropped the moment volume falls back: exit_after (2 h) of calm per level
    calm_start = len(surge)
    assert after[calm_start + 20].level == Level.crisis
    resolved = [i for i, s in enumerate(after) if s.event == "resolved"]
    assert len(resolved) == 1 and resolved[0] - calm_start >= 3 * 24


def test_a_second_wave_within_the_cooldown_is_the_same_incident() -> None:
    base = [5.0, 6.0, 4.0, 5.0] * (PER_DAY * 4 // 4)
    wave = [40.0] * 6
    calm = [5.0] * (PER_DAY // 2)  # resolved after 3 h of wide windows + 2 h per level
    detector = Detector()
    steps = [detector.step(T0 + STEP * i, v) for i, v in enumerate(base + wave + calm + wave)]
    assert detector.incident_count == 1
    assert "reopened" in [s.event for s in steps]


def test_the_config_and_the_detector_share_one_set_of_defaults() -> None:
    settings = DetectorSettings.default()
    assert DetectorSettings.from_config(DetectionConfig()) == settings
    assert settings.warmup == timedelta(days=4)
    assert settings.exit == pytest.approx((3.0, 3.9, 4.8))  # as the README's table says


def test_buckets_must_come_in_order_and_gaps_count_as_zero() -> None:
    detector = Detector()
    detector.step(T0, 1)
    with pytest.raises(ValueError, match="time order"):
        detector.step(T0, 1)
    detector.step(T0 + STEP * 10, 1)
    assert detector._seen == 11  # the nine missing buckets were learned as zeros


def test_backtest_cli_on_a_csv(tmp_path: Path) -> None:
    series = make_series(seed=5, days=10, rate=8, bursts=1)
    source = write_csv(tmp_path, series)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["backtest", "--volume-csv", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(series.values)
    assert set(rows[0]) == {"timestamp", "value", "level", "score", "alert"}
    alerts = [i for i, row in enumerate(rows) if row["alert"] == "1"]
    [(low, high)] = series.windows()
    assert alerts and all(low <= i <= high for i in alerts)
    # the CSV and the daemon's detector agree bucket by bucket
    steps = replay([float(v) for v in series.values])
    assert [int(s.page) for s in steps] == [int(r["alert"]) for r in rows]
    assert f"{len(rows)} buckets, 1 incident(s), {len(alerts)} page(s)" in result.stdout
    assert "negative mentions in" in result.stdout  # each page says why


def test_backtest_uses_the_negative_column_and_reports_bad_lines(tmp_path: Path) -> None:
    source = tmp_path / "volume.csv"
    source.write_text(
        "timestamp,value,negative,reach\n2026-01-05T00:00:00,10,1,5\n2026-01-05T00:05,12,2,80\n"
    )
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["backtest", "--volume-csv", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["value"] for r in csv.DictReader(out.open())] == ["1", "2"]
    source.write_text("timestamp,value,negative\n2026-01-05T00:00:00,10,1\n2026-01-05T00:05,x,2\n")
    result = CliRunner().invoke(app, ["backtest", "--volume-csv", str(source), "--out", str(out)])
    assert result.exit_code == 2
    assert "line 3" in result.stderr
    source.write_text("timestamp,value\nnot-a-time,3\n")
    result = CliRunner().invoke(app, ["backtest", "--volume-csv", str(source), "--out", str(out)])
    assert result.exit_code == 2
    assert "line 2" in result.stderr


def test_backtest_proposes_thresholds_for_a_page_budget(tmp_path: Path) -> None:
    series = make_series(seed=5, days=10, rate=8, bursts=1)
    source = write_csv(tmp_path, series)
    out = tmp_path / "out.csv"
    command = ["backtest", "--volume-csv", str(source), "--out", str(out)]
    quiet = CliRunner().invoke(app, [*command, "--pages-per-month", "0"])
    assert quiet.exit_code == 0, quiet.output
    proposal = [line for line in quiet.stdout.splitlines() if line.startswith("at most 0 page")]
    assert proposal and "(now 5, 6.5, 8)" in proposal[0]
    assert "would page" not in quiet.stdout  # a budget of zero pages nothing...
    assert "would no longer page" in quiet.stdout  # ...and says what that would have missed
    generous = CliRunner().invoke(app, [*command, "--pages-per-month", "1000"])
    assert "would page" in generous.stdout and "would no longer page" not in generous.stdout


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(30, "30 s"), (90, "90 s"), (600, "10 min"), (900, "15 min"), (7200, "2 h")],
)
def test_a_page_says_the_window_in_the_units_a_person_reads(seconds: int, said: str) -> None:
    from monitor.detection import _span

    assert _span(seconds) == said  # 10-second buckets once read "0 h"


def test_levels_read_normal_watch_warning_crisis() -> None:
    assert [level.said for level in Level] == ["normal", "watch", "warning", "crisis"]


def test_a_windows_scale_is_the_median_absolute_deviation_of_its_means() -> None:
    from monitor.surprise import _robust_scale

    rng = random.Random(5)
    for size in [1, 2, 3, 10, 11, 200, 2016]:
        values = sorted(
            rng.choice([rng.gauss(0, 1), float(rng.randint(-3, 3))]) for _ in range(size)
        )
        centre = values[size // 2]
        deviations = sorted(abs(v - centre) for v in values)
        assert _robust_scale(values, 0.0) == 1.4826 * deviations[size // 2]
    assert _robust_scale([], 0.3) == 0.3
    assert _robust_scale([1.0, 1.0, 1.0], 0.3) == 0.3  # no spread: the floor
