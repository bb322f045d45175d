"""The sinks named in ``[alerts] sinks``, built from their config sections.

``SINKS`` maps each sink name to the module that implements it; every such module has a
``build(config, storage)`` that makes its sink from its own config section (``None`` when that
section is missing).  Adding a sink is a new module and one entry here.  Sink modules are
imported only when configured, so a console-only install loads no Slack or SMTP code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from alerts.base import Sink
from monitor.config import Config
from monitor.storage import Storage

Builder = Callable[[Config, Storage], Sink | None]

SINKS: dict[str, str] = {
    "console": "alerts.console",
    "slack": "alerts.slack",
    "webhook": "alerts.webhook",
    "email": "alerts.email",
}
"""Sink name (as in ``[alerts] sinks``) -> the module whose ``build`` makes it."""


def builder(name: str) -> Builder:
    """The ``build`` of sink ``name``'s module, imported now."""
    return cast(Builder, importlib.import_module(SINKS[name]).build)


def build_sinks(config: Config, storage: Storage) -> list[Sink]:
    """The configured sinks, in the order ``[alerts] sinks`` names them."""
    sinks: list[Sink] = []
    for name in config.alerts.sinks:
        sink = builder(name)(config, storage)
        if sink is not None:
            sinks.append(sink)
    return sinks
