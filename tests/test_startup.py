"""`brandmon --help` and `brandmon score` start at once: each command imports only what it uses.

Timings belong to ``bench/startup.py``; these tests check which heavy modules a fresh process
has imported after a command, which is what makes it slow to start.
"""

from __future__ import annotations

import json
import subprocess
import sys

RUN = """
import json, sys
from monitor.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
DATABASE = {"sqlalchemy", "alembic", "monitor.storage", "monitor.model"}
DAEMON = {"asyncio", "httpx", "apscheduler"}


def imported(*args: str, stdin: str = "") -> tuple[str, set[str]]:
    """What ``brandmon ARGS`` printed in a new process, and the top-level packages and the
    ``monitor`` modules that process imported."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], input=stdin, capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stderr.splitlines()[-1])
    return done.stdout, {m if m.startswith("monitor.") else m.split(".")[0] for m in modules}


def test_help_imports_neither_the_config_nor_the_scorer_nor_rich() -> None:
    printed, modules = imported("--help")
    assert "score" in printed
    assert not {"pydantic", "numpy", "lingua", "re2", "rich", *DATABASE, *DAEMON} & modules


def test_scoring_an_english_line_imports_no_database_layer_daemon_or_lingua() -> None:
    printed, modules = imported("score", stdin="great service, thanks\n")
    assert json.loads(printed)["label"] == "positive"
    assert not {"lingua", *DATABASE, *DAEMON} & modules
