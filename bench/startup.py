"""How long ``brandmon --help`` and ``brandmon score`` take as whole processes.

    .venv/bin/python bench/startup.py [--repeat 7] [--against DIR] [--as-is]

Runs each command as a new process, in turns (one of each per round, ``--repeat`` rounds), and
prints the median wall time of each next to two floors timed in the same rounds: ``python -c
pass`` and a process that only builds VADER's analyser (what scoring a line with bare VADER
cannot go below), with the median of each round's ratio to them: a slow spell of a shared
machine then slows both sides of a ratio.  The median CPU time of each is printed too, which
other work on the machine changes less.  Target: ``--help`` and ``score`` within 0.3 s.

The scored lines are one that common English words settle, one the language-identification
model places, and two words only lingua's slow mode can place (it loads eleven languages'
models the first time it runs).

``--against DIR`` (repeatable) also times another checkout's ``monitor`` (e.g. ``git worktree
add DIR``), imported from ``DIR`` by the same interpreter, in the same rounds: before and after
a change.

Processes run with their bytecode cached in a temporary directory (one warm-up round fills
it), as an installed brandmon's is; ``--as-is`` keeps the caller's environment instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BRANDMON = Path(sys.executable).parent / "brandmon"
VADER = (
    "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer; "
    "SentimentIntensityAnalyzer()"
)
LINES = {
    "English": "great service, thanks",
    "Malay": "Sedap gila nasi lemak ayam goreng dia",
    "two words": "Macam bodoh",
}
"""The lines ``score`` is timed on (see the module's docstring)."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argv: tuple[str, ...]
    stdin: str | None = None
    env: Mapping[str, str] | None = None
    """Variables set on top of the bench's environment."""


def brandmon_commands(label: str, env: Mapping[str, str] | None = None) -> list[Command]:
    """``--help`` and ``score`` of each of ``LINES``, named after ``label``."""
    commands = [Command(f"{label} --help", (str(BRANDMON), "--help"), env=env)]
    for name, line in LINES.items():
        argv = (str(BRANDMON), "score")
        commands.append(Command(f"{label} score {name}", argv, line + "\n", env))
    return commands


@dataclass(frozen=True, slots=True)
class Timing:
    wall: float
    """Seconds from start to exit."""
    cpu: float
    """Seconds of CPU (user and system), which other work on the machine changes less."""


def timed(command: Command, env: Mapping[str, str]) -> Timing:
    """How long ``command`` took to run; it must succeed."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(
        command.argv,
        input=command.stdin,
        text=True,
        env={**env, **(command.env or {})},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return Timing(time.perf_counter() - started, _children_cpu() - cpu_before)


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def rounds(commands: Sequence[Command], env: Mapping[str, str], repeat: int) -> list[list[Timing]]:
    """``repeat`` rounds of one run of each command, after one round not counted."""
    for command in commands:
        timed(command, env)
    return [[timed(command, env) for command in commands] for _ in range(repeat)]


def report(commands: Sequence[Command], times: list[list[Timing]]) -> None:
    """Each command's median wall time, its median ratio to the two floors (the first two
    commands) in the same round, and its median CPU time."""
    print(f"{'':32} {'wall':>7} {'x pass':>7} {'x VADER':>8} {'cpu':>7}   (wall range)")
    for i, command in enumerate(commands):
        wall = [row[i].wall for row in times]
        over_pass = statistics.median(row[i].wall / row[0].wall for row in times)
        over_vader = statistics.median(row[i].wall / row[1].wall for row in times)
        cpu = statistics.median(row[i].cpu for row in times)
        print(
            f"{command.name:32} {statistics.median(wall):6.3f}s {over_pass:7.2f} "
            f"{over_vader:8.2f} {cpu:6.3f}s   ({min(wall):.2f}-{max(wall):.2f} s)"
        )


def environment(as_is: bool, cache: str) -> dict[str, str]:
    env = dict(os.environ)
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    return env


def main(repeat: int, against: Sequence[Path], as_is: bool) -> None:
    python = sys.executable
    commands = [
        Command("python -c pass", (python, "-c", "pass")),
        Command("bare VADER", (python, "-c", VADER)),
        *brandmon_commands("brandmon"),
    ]
    for tree in against:
        commands += brandmon_commands(tree.name, {"PYTHONPATH": str(tree.resolve())})
    with tempfile.TemporaryDirectory() as cache:
        times = rounds(commands, environment(as_is, cache), repeat)
    print(f"median of {repeat} rounds, each command once a round")
    report(commands, times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds of every command")
    parser.add_argument(
        "--against", type=Path, action="append", default=[], help="also time DIR's monitor"
    )
    parser.add_argument(
        "--as-is", action="store_true", help="keep the environment's bytecode settings"
    )
    arguments = parser.parse_args()
    main(arguments.repeat, arguments.against, arguments.as_is)
