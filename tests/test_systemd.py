"""The shipped systemd unit is valid and has what ops rely on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "brandmon.service"


def settings() -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_is_a_hardened_notify_service() -> None:
    service = settings()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"]) > 0
    assert service["EnvironmentFile"] == "/etc/brandmon/brandmon.env"
    assert service["StateDirectory"] == "brandmon"
    assert service["DynamicUser"] == "yes"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert key in service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "brandmon"
    unit = tmp_path / "brandmon.service"
    unit.write_text(UNIT.read_text().replace("/opt/brandmon/.venv/bin/brandmon", str(script)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in result.stderr.splitlines() if "brandmon.service" in line]
    assert result.returncode == 0 and problems == [], result.stderr
