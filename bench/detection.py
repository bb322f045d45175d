"""Score the crisis detector on real mention volume, the way a pager is judged.

    .venv/bin/python bench/detection.py [--data ../shared/data/volume]

For every series in ``--data`` (NAB's real Twitter volume of five companies and one request-count
series, 5-minute buckets, labelled anomaly windows in ``windows.json``):

1. ``brandmon backtest --volume-csv`` with the default config, in one process per series (what a
   user runs), then ``../shared/tools/score_windows.py`` on the output: windows caught,
   false-alarm episodes (alerts less than an hour apart count once), first-alert latency.
2. Leave one series out: the level thresholds are chosen on four Twitter series (most windows
   caught, then fewest false-alarm episodes, over a small grid) and scored on the fifth.  This is
   the figure that says how the defaults should hold on brands nobody tuned them on.
3. Side by side, the previous detector's figures on the same files (recorded in this file: it
   no longer exists in the code) and the detector's speed.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.backtest import read_volume_csv, replay_pages, with_watch
from monitor.detection import Detector, DetectorSettings, Step

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "volume"
SCORER = ROOT.parent / "shared" / "tools" / "score_windows.py"
PREVIOUS = "18/19 windows, 232 false-alarm episodes, mean latency 0.33 (detector before #22)"
BRANDMON = str(Path(sys.executable).parent / "brandmon")
WATCH = (4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0)
EXIT_AFTER_HOURS = (1, 2, 3)


def backtest_all(data: Path, out: Path) -> float:
    """Run the CLI on every series, two at a time; return the wall time."""
    started = time.perf_counter()
    running = []
    for path in sorted(data.glob("*.csv")):
        command = [BRANDMON, "backtest", "--volume-csv", str(path)]
        command += ["--out", str(out / path.name)]
        running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        if len(running) == 2:
            running.pop(0).wait()
    for process in running:
        process.wait()
    return time.perf_counter() - started


def recorded_scores(path: Path) -> list[Step]:
    """The default detector's steps over one series (scores do not depend on the levels)."""
    detector = Detector()
    with path.open(newline="") as handle:
        return [detector.step(b.at, b.negative) for b in read_volume_csv(handle)]


def pages(steps: list[Step], settings: DetectorSettings) -> list[datetime]:
    """When the levels of ``settings`` would have paged, on recorded scores."""
    return [step.at for step in replay_pages(steps, settings)]


def judge(alerts: list[datetime], windows: list[tuple[datetime, datetime]]) -> tuple[int, int]:
    """Windows caught and false-alarm episodes, by score_windows.py's rules."""
    caught = sum(any(a <= t <= b for t in alerts) for a, b in windows)
    outside = sorted(t for t in alerts if not any(a <= t <= b for a, b in windows))
    episodes = sum(
        1 for i, t in enumerate(outside) if i == 0 or (t - outside[i - 1]).total_seconds() > 3600
    )
    return caught, episodes


def grid(base: DetectorSettings) -> list[DetectorSettings]:
    """Watch thresholds (warning and crisis keeping their distance) × hours of calm to leave."""
    return [
        replace(with_watch(base, watch), exit_after=timedelta(hours=hours))
        for watch in WATCH
        for hours in EXIT_AFTER_HOURS
    ]


def leave_one_out(data: Path) -> None:
    labelled = json.loads((data / "windows.json").read_text())
    twitter = sorted(p for p in data.glob("twitter_*.csv"))
    base = DetectorSettings.default()
    candidates = grid(base)
    results: dict[str, list[tuple[int, int]]] = {}
    for path in twitter:
        windows = [(_at(a), _at(b)) for a, b in labelled[path.name]]
        steps = recorded_scores(path)
        results[path.name] = [judge(pages(steps, c), windows) for c in candidates]
    caught = total = episodes = 0
    for held in results:
        rest = [name for name in results if name != held]

        def worse(i: int, rest: list[str] = rest) -> tuple[int, int]:
            return (-sum(results[n][i][0] for n in rest), sum(results[n][i][1] for n in rest))

        best = min(range(len(candidates)), key=worse)
        got, eps = results[held][best]
        windows = len(labelled[held])
        caught, total, episodes = caught + got, total + windows, episodes + eps
        chosen = candidates[best]
        print(
            f"  held out {held:28s} chosen watch {chosen.enter[0]:g}, exit after "
            f"{chosen.exit_after}: windows {got}/{windows}, false-alarm episodes {eps}"
        )
    print(f"  leave-one-series-out: windows {caught}/{total}, false-alarm episodes {episodes}")


def _rows(folder: Path) -> int:
    """Data rows of the CSV files in ``folder``."""
    return sum(sum(1 for _ in csv.reader(p.open())) - 1 for p in folder.glob("*.csv"))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    buckets = _rows(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = backtest_all(args.data, Path(tmp))
        print("default config, brandmon backtest --volume-csv on each series:")
        scored = subprocess.run(
            [sys.executable, str(SCORER), tmp], capture_output=True, text=True, check=True
        )
        print("  " + scored.stdout.strip().replace("\n", "\n  "))
        assert _rows(Path(tmp)) == buckets, "every input bucket has an output row"
    print(f"  previous detector on the same files: {PREVIOUS}")
    print(f"  {buckets:,} buckets in {seconds:.1f} s of wall time, whole processes (2 at a time)")
    print("leave one Twitter series out (thresholds chosen on the other four):")
    leave_one_out(args.data)


if __name__ == "__main__":
    main()
