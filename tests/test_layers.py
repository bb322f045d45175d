"""Imports run one way: a module of ``monitor/``, ``connectors/`` or ``alerts/`` imports only
from its own layer or the layers below it (README, "Layout").

Layers, bottom to top:

0. core: the data model, the config, and pure helpers any layer may use (URLs, signing, the
   JSON-lines parser, the shared HTTP pieces, the generic HTTP server);
1. mentions: matching, scoring, triage, training and storage (the outbox's rows are written
   here, in the same transaction as the incident that caused them);
2. sources: the connectors (``connectors/``), which hand posts to the pipeline and never store;
3. detection: the pure detector and its backtest, the pipeline (match, score, triage, store),
   the watcher that turns stored buckets into incidents and alerts, the report that replays them;
4. alerts: the outbox's delivery and the sinks (``alerts/``);
5. app: the daemon, the push endpoint, health and metrics, service glue, the CLI, the demo.

Besides, some modules never import others (``APART``): ``alerts/`` and ``connectors/`` are the
two ends of the flow, and the detector is pure (it does not import the config module).  Every
import counts: at the top of a module, inside a function, or only for type checking.  A new
module of ``monitor/`` must be given a layer in ``LAYERS``; a new package, an entry too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "connectors", "alerts")

NAMES = ("core", "mentions", "sources", "detection", "alerts", "app")
CORE, MENTIONS, SOURCES, DETECTION, ALERTS, APP = range(len(NAMES))

LAYERS: dict[str, int] = {
    "monitor": CORE,  # the package itself: __version__
    "monitor.model": CORE,
    "monitor.alert": CORE,  # the typed alert: what the watcher writes and the sinks read
    "monitor.vocabulary": CORE,
    "monitor.config": CORE,
    "monitor.plugins": CORE,  # integrations named as strings, imported only when configured
    "monitor.detection_defaults": CORE,
    "monitor.backoff": CORE,
    "monitor.urls": CORE,
    "monitor.signing": CORE,
    "monitor.jsonl": CORE,
    "monitor.http": CORE,
    "monitor.serving": CORE,
    "monitor.workers": CORE,  # CPU-bound work in worker processes (feeds parsed)
    "monitor.synthetic": CORE,
    "monitor.charts": CORE,  # charts laid out once, drawn as SVG or PNG
    "monitor.matching": MENTIONS,
    "monitor.scoring": MENTIONS,
    "monitor.triage": MENTIONS,
    "monitor.training": MENTIONS,
    "monitor.assessment": MENTIONS,
    "monitor.scoring_workers": MENTIONS,  # the processes that score for `ingest`'s pipeline
    "monitor.storage": MENTIONS,
    "monitor.migrations": MENTIONS,  # the schema's history (Alembic), which storage upgrades
    "monitor.locks": MENTIONS,  # who does a piece of shared work: advisory locks or leases
    "connectors": SOURCES,
    "monitor.surprise": DETECTION,
    "monitor.detection": DETECTION,
    "monitor.snapshot": DETECTION,  # a detector saved and restored, for resuming a brand
    "monitor.backtest": DETECTION,
    "monitor.pipeline": DETECTION,
    "monitor.watcher": DETECTION,
    "monitor.report": DETECTION,
    "alerts": ALERTS,
    "monitor.push": APP,
    "monitor.console": APP,  # the web console, served by the daemon
    "monitor.health": APP,
    "monitor.metrics": APP,
    "monitor.service": APP,
    "monitor.scheduler": APP,
    "monitor.demo": APP,
    "monitor.cli": APP,
}
"""A module's layer is its own entry, else its nearest enclosing package's."""

APART: dict[tuple[str, str], str] = {
    ("alerts", "connectors"): "the two ends of the flow stay apart",
    ("monitor.detection", "monitor.config"): "the detector is pure: it reads a brand's "
    "[detection] through DetectionTerms",
}
"""(importer, imported): modules (or packages) that never import the other, whatever their
layers, and why."""


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer(module: str) -> int | None:
    """The layer of ``module``: its own entry, else its nearest enclosing package's."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = LAYERS.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def modules() -> dict[str, Path]:
    """Every module of the three packages, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported(tree: ast.Module, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of the three packages in ``tree``; ``from package
    import module`` counts as importing that module, and a relative import as ``.`` (the
    packages import absolutely)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((node.lineno, full if full in known else base))
    return [(line, module) for line, module in found if module.split(".")[0] in PACKAGES + ("",)]


def violations() -> list[str]:
    known = modules()
    found = []
    for name, path in known.items():
        own = layer(name)
        where = path.relative_to(ROOT)
        if own is None:
            found.append(f"{where}: {name} has no layer in tests/test_layers.py LAYERS")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, target in sorted(set(imported(tree, set(known)))):
            theirs = layer(target)
            apart = [why for (a, b), why in APART.items() if within(name, a) and within(target, b)]
            if target.startswith("."):
                found.append(f"{where}:{line}: imports {target}: import absolutely")
            elif theirs is None:
                found.append(f"{where}:{line}: imports {target}, which has no layer")
            elif theirs > own:
                found.append(
                    f"{where}:{line}: imports {target} ({NAMES[theirs]}) "
                    f"from the lower layer {NAMES[own]}"
                )
            elif apart:
                found.append(f"{where}:{line}: imports {target}: {apart[0]}")
    return found


def test_every_import_runs_down() -> None:
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_map_covers_each_package() -> None:
    names = modules()
    assert {"monitor.model", "monitor.cli", "connectors.base", "alerts.outbox"} <= set(names)
    assert layer("monitor.scoring.vader") == MENTIONS
    assert layer("connectors.rss") == SOURCES
    assert layer("alerts.slack") == ALERTS
