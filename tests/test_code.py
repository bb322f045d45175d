"""The habits a maintainer expects, kept by the test suite so CI keeps them: ruff finds
nothing and the code is formatted; the core and the pure detector type-check strictly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_layers import CORE, LAYERS

ROOT = Path(__file__).resolve().parent.parent
DETECTOR = ("monitor.detection", "monitor.surprise", "monitor.backtest")
"""The pure detector, held to the same strictness as the core."""


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout


def test_code_is_formatted() -> None:
    result = run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout


def test_core_and_detector_type_check_strictly() -> None:
    modules = [name for name, layer in LAYERS.items() if layer == CORE] + list(DETECTOR)
    files = [
        str(path)
        for name in modules
        for path in (ROOT / (name.replace(".", "/") + ".py"), ROOT / name / "__init__.py")
        if path.is_file()
    ]
    result = run("mypy", "--strict", "--ignore-missing-imports", "--follow-imports=silent", *files)
    assert result.returncode == 0, result.stdout
