"""The defaults of ``[detection]``: the one set of numbers the detector starts from.

``monitor.config.DetectionConfig`` takes its defaults from ``DEFAULTS``, and so does
``monitor.detection.DetectorSettings.default()``, so a config without ``[detection]`` and a
detector built without settings judge alike.  The README's "Crisis detection" quotes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal


@dataclass(frozen=True, slots=True)
class DetectionDefaults:
    """``[detection]``'s terms with their default values (their meaning: ``monitor.detection``)."""

    bucket: timedelta = timedelta(minutes=5)
    history: timedelta = timedelta(days=7)
    warmup: timedelta = timedelta(days=4)
    watch: float = 5.0
    warning: float = 6.5
    crisis: float = 8.0
    exit_ratio: float = 0.6
    min_count: int = 5
    min_ratio: float = 2.0
    exit_after: timedelta = timedelta(hours=2)
    cooldown: timedelta = timedelta(hours=6)
    page_from: Literal["watch", "warning", "crisis"] = "watch"


DEFAULTS = DetectionDefaults()
