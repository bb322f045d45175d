"""A brand's detector, saved and restored, so that any instance resumes judging the brand where
another left it instead of replaying a week or more of stored buckets.

The snapshot is JSON (zlib-compressed), not a pickle: it is read back from the database, and
only the detector's own classes can come out of it.  It records the settings it was learnt
under and the layout of the state it holds (``FORMAT``); a detector restored under other
settings (a changed ``[detection]``), or saved by a release that kept its state otherwise, is
refused, and the caller replays history instead.
"""

from __future__ import annotations

import base64
import json
import zlib
from array import array
from collections import deque
from dataclasses import fields, is_dataclass
from datetime import datetime
from itertools import chain
from typing import Any

from monitor.detection import Detector, DetectorSettings, Escalation, Incident, Level
from monitor.surprise import SortedWindow, Surprise

_CLASSES: dict[str, type] = {
    cls.__name__: cls for cls in (Detector, Escalation, Incident, Surprise)
}
"""The objects a snapshot may hold besides plain values (and ``SortedWindow``, saved as its
values)."""
FORMAT = 2
"""The layout of a detector's state: one more whenever a release changes what its classes hold
(2: ``Surprise`` keeps its older residuals in order)."""
_SETTINGS = {"settings": None}
"""Stands for the detector's settings, which are not saved but handed to ``restore``."""


class StaleSnapshot(ValueError):
    """The snapshot was learnt under other settings, or is not one of ours."""


def save(detector: Detector) -> bytes:
    """``detector``'s state, compact."""
    state = {
        "format": FORMAT,
        "settings": repr(detector.settings),
        "detector": _Encoder()(detector),
    }
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 6)


def restore(data: bytes, settings: DetectorSettings) -> Detector:
    """The detector ``data`` holds, under ``settings``; ``StaleSnapshot`` when it was learnt
    under other settings or cannot be read."""
    try:
        state = json.loads(zlib.decompress(data))
        saved_as, learnt_under = state.get("format"), state["settings"]
        detector = _Decoder(settings)(state["detector"])
    except (ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
        raise StaleSnapshot(f"unreadable detector snapshot: {exc}") from exc
    if saved_as != FORMAT:
        raise StaleSnapshot("saved by a release whose detector keeps its state otherwise")
    if learnt_under != repr(settings):
        raise StaleSnapshot("the detection settings changed since this snapshot")
    if not isinstance(detector, Detector):
        raise StaleSnapshot("not a detector snapshot")
    return detector


def _attributes(value: object) -> dict[str, Any]:
    if is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return dict(vars(value))


class _Encoder:
    """Plain JSON values for a detector's state; an object held in two places (the open
    incident is also the last one) is written once and referred to after, so it stays one."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, Level):
            return {"level": int(value)}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, datetime):
            return {"at": value.isoformat()}
        if isinstance(value, SortedWindow):  # its order is rebuilt, not saved
            return {"window": self(value.recent)}
        if isinstance(value, deque):
            return {"deque": self(list(value)), "maxlen": value.maxlen}
        if isinstance(value, tuple):
            return {"tuple": [self(v) for v in value]}
        if isinstance(value, list):
            kinds = set(map(type, value))
            if kinds == {float}:  # most of it: packed, exact
                return {"floats": base64.b64encode(array("d", value).tobytes()).decode()}
            if kinds == {tuple} and set(map(type, chain.from_iterable(value))) <= {int, float}:
                return {"tuples": list(map(list, value))}  # a week of (negative, total)
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {"dict": [[self(k), self(v)] for k, v in value.items()]}
        name = type(value).__name__
        if _CLASSES.get(name) is not type(value):
            raise TypeError(f"a detector does not hold {name}")
        if id(value) in self.seen:
            return {"ref": self.seen[id(value)]}
        self.seen[id(value)] = len(self.seen)
        state = _attributes(value)
        return {
            "object": name,
            "state": {k: _SETTINGS if k == "settings" else self(v) for k, v in state.items()},
        }


class _Decoder:
    """A detector's state from what ``_Encoder`` wrote, under ``settings``."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.made: list[object] = []

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if value == _SETTINGS:
            return self.settings
        if "level" in value:
            return Level(value["level"])
        if "at" in value:
            return datetime.fromisoformat(value["at"])
        if "floats" in value:
            return array("d", base64.b64decode(value["floats"])).tolist()
        if "window" in value:
            recent = self(value["window"])
            window = SortedWindow(recent.maxlen)
            for item in recent:
                window.append(item)
            return window
        if "deque" in value:
            return deque(self(value["deque"]), maxlen=value["maxlen"])
        if "tuple" in value:
            return tuple(self(v) for v in value["tuple"])
        if "tuples" in value:
            return [tuple(v) for v in value["tuples"]]
        if "dict" in value:
            return {self(k): self(v) for k, v in value["dict"]}
        if "ref" in value:
            return self.made[value["ref"]]
        instance = object.__new__(_CLASSES[value["object"]])
        self.made.append(instance)
        for name, item in value["state"].items():
            object.__setattr__(instance, name, self(item))
        return instance
