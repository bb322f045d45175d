"""The sinks named in ``[alerts] sinks``, built from their config sections.

``monitor.plugins.SINKS`` names the module of each sink; every such module has a
``build(config, storage)`` that makes its sink from its own config section (``None`` when that
section is missing), and names that section's class as ``SECTION``.  Sink modules are imported
only when configured, so a console-only install loads no Slack or SMTP code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from alerts.base import Sink
from monitor.config import Config
from monitor.plugins import sink_module
from monitor.storage import Storage

Builder = Callable[[Config, Storage], Sink | None]


def builder(name: str) -> Builder:
    """The ``build`` of sink ``name``'s module, imported now."""
    return cast(Builder, sink_module(name).build)


def build_sinks(config: Config, storage: Storage) -> list[Sink]:
    """The configured sinks, in the order ``[alerts] sinks`` names them."""
    sinks: list[Sink] = []
    for name in config.alerts.sinks:
        sink = builder(name)(config, storage)
        if sink is not None:
            sinks.append(sink)
    return sinks
