"""Score the crisis detector on synthetic series: detections, false alarms, delay, speed.

    .venv/bin/python bench/detection.py [--series 10] [--days 60]

Like the held-out target (ten brands, ~two months of 5-minute buckets, labelled burst windows):
a window counts as detected when a page falls inside it, and early when that page falls in the
first 40 % of it; pages outside every window are false alarms, merged into one episode when
less than an hour apart.
"""

from __future__ import annotations

import argparse
import time

from monitor.detection import Detector
from monitor.synthetic import make_series

RATES = (0.5, 2, 5, 10, 20, 50, 100, 200, 400, 1000)


def evaluate(series_count: int, days: int) -> None:
    detected = early = windows = episodes = buckets = 0
    started = time.perf_counter()
    for seed in range(series_count):
        rate = RATES[seed % len(RATES)]
        series = make_series(seed, days=days, rate=rate, outage_days=seed % 3 == 0)
        detector = Detector()
        pages = [
            i
            for i, (at, value) in enumerate(zip(series.times(), series.values, strict=True))
            if detector.step(at, value).page
        ]
        buckets += len(series.values)
        spans = series.windows()
        windows += len(spans)
        found = 0
        for low, high in spans:
            inside = [p for p in pages if low <= p <= high]
            if inside:
                found += 1
                early += inside[0] <= low + 0.4 * (high - low)
        detected += found
        outside = [p for p in pages if not any(low <= p <= high for low, high in spans)]
        series_episodes = sum(
            1 for i, p in enumerate(outside) if i == 0 or p - outside[i - 1] >= 12
        )
        episodes += series_episodes
        print(
            f"series {seed}: rate {rate:>6}  windows {found}/{len(spans)}  "
            f"false-alarm episodes {series_episodes}"
        )
    seconds = time.perf_counter() - started
    print(
        f"detected {detected}/{windows} (early: {early}), false-alarm episodes {episodes}, "
        f"{buckets / seconds:,.0f} buckets/s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    evaluate(args.series, args.days)
