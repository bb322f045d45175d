"""The ``brandmon`` command line, end to end on a real SQLite file."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.cells import cell_len
from typer.testing import CliRunner

from monitor.alert import show_times_in
from monitor.cli import app

runner = CliRunner()

CONFIG = """
[storage]
url = "sqlite:///{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]
handles = ["@acmehelp"]

[[brands]]
name = "Globex"
keywords = ["globex"]
"""

LINES = [
    {
        "id": "1",
        "source": "x",
        "text": "Acme lost my parcel, still no refund",
        "author": "ann",
        "followers": 120,
        "likes": 3,
        "url": "https://x.com/ann/status/1",
        "published_at": "2026-11-20T08:00:00Z",
    },
    {
        "id": "2",
        "source": "x",
        "text": "I love my new Acme kettle, brilliant!",
        "author": "bob",
        "followers": 900000,
        "likes": 4000,
        "published_at": "2026-11-20T09:00:00+01:00",
    },
    "this is not json",
    {"id": "3", "source": "reddit", "text": "Acme and Globex merger rumours", "likes": 40},
    {"id": "4", "source": "x", "text": "nothing to see here"},
    {"source": "x", "text": "no id and no url"},
    {"id": "5", "source": "x", "text": "acme", "followers": -3},
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "brandmon.toml"
    path.write_text(CONFIG.format(db=tmp_path / "brandmon.db"), encoding="utf-8")
    return path


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "mentions.jsonl"
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in LINES)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def invoke(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "250"})


def test_help_lists_every_command_through_the_installed_script() -> None:
    script = Path(sys.executable).parent / "brandmon"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "ingest", "mentions", "score", "check-config", "demo"):
        assert command in result.stdout


def test_check_config_summarises_a_good_file() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    result = invoke("check-config", "--config", str(example))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {example}")
    assert "brand Crestfield Chicken: 6 terms, 1 exclusions" in result.stdout
    assert "source crestfield-google-news: rss every 300s" in result.stdout
    assert "source northwind-alerts: rss every 900s (disabled)" in result.stdout


def test_check_config_reports_every_error_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[brands]]\nname = "A"\nkeyword = ["a"]\n[detection]\nbucket = "soon"\n')
    result = invoke("check-config", "--config", str(bad))
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert f"error: {bad}:3: brands[0].keyword: unknown key 'keyword'" in errors
    assert any(
        e.startswith(f"error: {bad}:5: detection.bucket: expected a duration") for e in errors
    )


def test_ingest_stores_good_lines_and_reports_bad_ones(config: Path, jsonl: Path) -> None:
    result = invoke("ingest", "--jsonl", str(jsonl), "--config", str(config))
    assert result.exit_code == 1, result.output  # lines were skipped: scripts can tell
    assert "skipped line 3: not JSON" in result.stderr
    assert "skipped line 6: needs an 'id' or a 'url'" in result.stderr
    assert "skipped line 7: followers: Input should be greater than or equal to 0" in result.stderr
    # lines 1, 2 and 4 stored, line 4 naming both brands; line 5 matches no brand
    assert "7 read: 3 stored, 0 already known, 1 matched no brand, 3 skipped" in result.stdout
    assert "new mentions per brand: Acme 3, Globex 1" in result.stdout

    again = invoke("ingest", "--jsonl", str(jsonl), "--config", str(config))
    assert "7 read: 0 stored, 3 already known, 1 matched no brand, 3 skipped" in again.stdout
    assert "per brand" not in again.stdout


def _summary(stdout: str) -> dict[str, int]:
    """The numbers of ingest's summary line, by what they count."""
    first = stdout.splitlines()[0]
    found = re.findall(
        r"(\d+) (read|stored|already known|matched no brand|skipped|not stored)", first
    )
    return {what: int(n) for n, what in found}


def test_ingest_summary_adds_up_with_a_post_naming_two_brands(config: Path, tmp_path: Path) -> None:
    posts = [
        {"id": "a", "source": "x", "text": "Acme and Globex both lost my parcel"},
        {"id": "b", "source": "x", "text": "Globex kettle works"},
        {"id": "c", "source": "x", "text": "Acme and Globex merger"},
        {"id": "d", "source": "x", "text": "nothing about anyone"},
    ]
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(p) + "\n" for p in posts[:2]), encoding="utf-8")
    invoke("ingest", "--jsonl", str(first), "--config", str(config))
    lines = tmp_path / "lines.jsonl"
    lines.write_text("".join(json.dumps(p) + "\n" for p in posts) + "{broken\n", encoding="utf-8")
    result = invoke("ingest", "--jsonl", str(lines), "--config", str(config))
    counts = _summary(result.stdout)
    # a and b are known, c (two brands) is stored once, d matches no brand, the last is skipped
    assert counts == {
        "read": 5,
        "stored": 1,
        "already known": 2,
        "matched no brand": 1,
        "skipped": 1,
    }
    assert counts["read"] == sum(n for what, n in counts.items() if what != "read")
    assert "new mentions per brand: Acme 1, Globex 1" in result.stdout


def test_mentions_lists_what_was_stored(config: Path, jsonl: Path) -> None:
    invoke("ingest", "--jsonl", str(jsonl), "--config", str(config))
    result = invoke("mentions", "--config", str(config), "--format", "json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # newest first: the undated line 3 counts as fetched now; 1 and 2 were both at 08:00 UTC
    assert [(r["brand"], r["external_id"]) for r in rows] == [
        ("Globex", "3"),
        ("Acme", "3"),
        ("Acme", "2"),
        ("Acme", "1"),
    ]
    praise, complaint = rows[2], rows[3]
    assert complaint["published_at"].startswith("2026-11-20T08:00:00")
    assert praise["published_at"].startswith("2026-11-20T08:00:00")  # 09:00+01:00 in UTC
    assert complaint["sentiment_label"] == "negative"
    assert praise["sentiment_label"] == "positive"
    assert praise["reach_score"] > complaint["reach_score"]

    globex = invoke("mentions", "--config", str(config), "--brand", "Globex")
    header, *lines = globex.stdout.splitlines()  # piped: tab-separated, a header first
    assert header.split("\t")[:3] == ["mention_id", "published_at", "brand"]
    assert [line.split("\t")[2] for line in lines] == ["Globex"]
    assert lines[0].split("\t")[-1] == "Acme and Globex merger rumours"


def test_piped_mentions_are_one_per_line_whatever_the_text_holds(
    config: Path, tmp_path: Path
) -> None:
    post = {"id": "t", "source": "x", "text": "Acme\tbroke\nmy kettle\r\nagain"}
    lines = tmp_path / "tab.jsonl"
    lines.write_text(json.dumps(post) + "\n", encoding="utf-8")
    invoke("ingest", "--jsonl", str(lines), "--config", str(config))
    result = invoke("mentions", "--config", str(config))
    header, row = result.stdout.splitlines()
    assert len(row.split("\t")) == len(header.split("\t")) == 12
    assert row.split("\t")[-1] == "Acme broke my kettle again"


def test_an_unknown_brand_is_an_error_naming_the_brands(config: Path) -> None:
    result = invoke("mentions", "--config", str(config), "--brand", "Acmee")
    assert result.exit_code == 2
    assert "no brand 'Acmee'" in result.stderr and "Acme, Globex" in result.stderr
    assert result.stdout == ""


def _on_a_terminal(args: list[str], columns: int) -> str:
    """What the installed ``brandmon`` prints on a terminal ``columns`` wide, without colours."""
    script = Path(sys.executable).parent / "brandmon"
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    with subprocess.Popen(
        [script, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env
    ):
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    os.close(controller)
    shown = b"".join(chunks).decode()
    return re.sub(r"\x1b\[[0-9;]*m", "", shown).replace("\r\n", "\n")


def test_mentions_on_an_80_column_terminal_fit_and_wrap(config: Path, tmp_path: Path) -> None:
    long = (
        "Acme "
        + "lost my parcel and nobody answers the phone, " * 6
        + "https://x.example/"
        + "a" * 90
    )
    posts = [
        {"id": "long", "source": "x", "author": "ann", "text": long},
        {"id": "wide", "source": "weibo", "author": "li", "text": "Acme 的客服太差了，" * 8},
    ]
    lines = tmp_path / "long.jsonl"
    lines.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    invoke("ingest", "--jsonl", str(lines), "--config", str(config))
    shown = _on_a_terminal(["mentions", "--config", str(config)], 80)
    assert "\t" not in shown  # a terminal gets the table, not tab-separated values
    widths = [cell_len(line) for line in shown.splitlines()]
    assert max(widths) <= 80, shown
    assert "2 mention(s)" in shown
    words = " ".join(shown.split())
    assert "ann" in words and "lost my parcel and nobody answers the phone" in words
    assert shown.count("客服") == 8  # wrapped, none cut


def test_mentions_rejects_a_bad_since(config: Path) -> None:
    result = invoke("mentions", "--config", str(config), "--since", "yesterday-ish")
    assert result.exit_code == 2
    assert "neither an ISO time nor an age" in result.stderr


def test_score_writes_one_json_object_per_line() -> None:
    lines = "On hold for 45 minutes, still no refund\nI love it\nJijik, ada tikus di dapur\n"
    result = invoke("score", stdin=lines)
    assert result.exit_code == 0
    complaint, praise, malay = (json.loads(line) for line in result.stdout.splitlines())
    assert complaint["label"] == "negative" and complaint["compound"] < 0
    assert complaint["category"] == "complaint" and complaint["priority"] in ("P1", "P2")
    assert {"waiting", "refund"} <= set(complaint["rules"])
    assert (praise["label"], praise["category"], praise["priority"]) == ("positive", "praise", "P4")
    assert (malay["lang"], malay["label"], malay["category"]) == ("ms", "negative", "crisis_risk")
    assert malay["confidence"] == "low"  # the model read it as neutral: its crisis words did not


def test_a_brands_own_phrases_count_as_complaints(tmp_path: Path) -> None:
    config = tmp_path / "brandmon.toml"
    config.write_text(
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n'
        '[brands.lexicon]\nmenu = ["zinger is gone"]\n'
    )
    text = "Acme the zinger is gone from the menu\n"
    plain = json.loads(invoke("score", stdin=text).stdout)
    extended = json.loads(invoke("score", "--config", str(config), stdin=text).stdout)
    assert plain["label"] != "negative"
    assert extended["label"] == "negative" and extended["rules"] == ["menu"]
    assert extended["category"] == "complaint"


def test_demo_replays_a_crisis_that_rises_and_resolves(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRANDMON_CONFIG", raising=False)
    runs = []
    for _ in range(2):  # the demo starts afresh every time
        result = invoke("demo")
        assert result.exit_code == 0, result.output
        runs.append([line.split("]")[0] for line in result.stdout.splitlines() if line[:1] == "["])
        assert "Northwind Mobile: crisis" not in result.stdout
    assert runs[0] == runs[1]
    # the levels in order; high-reach complaints during the incident are announced too
    assert [mark for mark in runs[0] if mark != "[LOUD"] == [
        "[WATCH",
        "[WARNING",
        "[CRISIS",
        "[RESOLVED",
    ]
    assert (tmp_path / "brandmon-demo.db").exists()
    assert not (tmp_path / "brandmon.db").exists()  # the demo never touches real data
    listed = invoke(
        "mentions", "--db", "brandmon-demo.db", "--brand", "Crestfield Chicken", "--format", "table"
    )
    assert "100 mention(s)" in listed.stdout


def test_bundled_sample_ingests_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRANDMON_CONFIG", raising=False)
    sample = Path(__file__).resolve().parent.parent / "monitor" / "data" / "sample_mentions.jsonl"
    first = invoke("ingest", "--jsonl", str(sample))
    assert first.stdout.startswith("21 read: 18 stored, 1 already known, 2 matched no brand")
    second = invoke("ingest", "--jsonl", str(sample))
    assert second.stdout.startswith("21 read: 0 stored")
    listed = invoke("mentions", "--brand", "Crestfield Chicken", "--format", "json")
    texts = [json.loads(line)["text"] for line in listed.stdout.splitlines()]
    assert any("克雷斯特菲尔德炸鸡" in t for t in texts)  # matched by its Chinese alias
    assert not any("Crestfield Road" in t for t in texts)  # excluded


def test_ingest_in_worker_processes_stores_the_same(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BRANDMON_CONFIG", raising=False)
    sample = Path(__file__).resolve().parent.parent / "monitor" / "data" / "sample_mentions.jsonl"
    listed = []
    for workers in ("0", "2"):
        (tmp_path / workers).mkdir()
        monkeypatch.chdir(tmp_path / workers)
        result = invoke("ingest", "--jsonl", str(sample), "--workers", workers)
        assert result.stdout.startswith("21 read: 18 stored"), result.output
        rows = invoke("mentions", "--format", "json").stdout.splitlines()
        listed.append(
            sorted((r["text"], r["sentiment_label"], r["priority"]) for r in map(json.loads, rows))
        )
    assert len(listed[0]) == 19 and listed[0] == listed[1]


def test_ingest_in_workers_stores_batch_after_batch_as_in_one_process(tmp_path: Path) -> None:
    """With workers, a batch is scored while the one before it is stored: a post repeated in
    the next batch (or the same one) is still stored once, and the counts add up the same."""
    posts = [
        {"id": str(i), "source": "x", "text": f"Acme order {i} never arrived, no refund"}
        for i in range(11)
    ]
    repeated = [*posts[:6], posts[3], *posts[6:], posts[5], posts[10]]
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in repeated), encoding="utf-8")
    results = []
    for workers in ("0", "2"):
        config = tmp_path / f"{workers}.toml"
        db = tmp_path / f"{workers}.db"
        config.write_text(
            CONFIG.format(db=db).replace("[storage]\n", "[storage]\nbatch_size = 4\n"),
            encoding="utf-8",
        )
        ingested = invoke(
            "ingest", "--jsonl", str(path), "--config", str(config), "--workers", workers
        )
        listed = invoke("mentions", "--config", str(config), "--format", "json", "--limit", "50")
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        results.append((ingested.stdout.splitlines()[0], sorted(r["text"] for r in rows)))
    assert results[0] == results[1]
    summary, texts = results[0]
    assert summary.startswith("14 read: 11 stored, 3 already known"), summary
    assert texts == sorted(p["text"] for p in posts)


def test_very_long_ids_and_urls_are_stored_and_still_deduplicated(
    config: Path, tmp_path: Path
) -> None:
    long = "https://example.com/" + "a" * 900
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": long, "text": "acme again", "url": long}) + "\n")
    first = invoke("ingest", "--jsonl", str(path), "--config", str(config))
    assert "1 read: 1 stored" in first.stdout
    again = invoke("ingest", "--jsonl", str(path), "--config", str(config))
    assert "1 read: 0 stored, 1 already known" in again.stdout


def test_check_config_warns_about_unset_secrets_without_failing(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "brandmon.toml"
    path.write_text(
        '[[brands]]\nname = "A"\nkeywords = ["a"]\n'
        '[alerts]\nsinks = ["slack"]\n[alerts.slack]\nchannel = "#pr"\ntoken_env = "MY_SLACK"\n'
    )
    monkeypatch.delenv("MY_SLACK", raising=False)
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 0
    assert "warning: alerts.slack.token_env: environment variable MY_SLACK is not set" in (
        result.stderr
    )
    monkeypatch.setenv("MY_SLACK", "xoxb-secret-value")
    result = invoke("check-config", "--config", str(path))
    assert "MY_SLACK" not in result.stderr
    assert "xoxb-secret-value" not in result.output


PUSH_CONFIG = """
[[brands]]
name = "A"
keywords = ["a"]

[[sources]]
name = "zapier"
type = "webhook"
secret_env = "MY_PUSH_SECRET"
enabled = {enabled}
"""


def test_check_config_fails_when_an_enabled_sources_secret_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "brandmon.toml"
    path.write_text(PUSH_CONFIG.format(enabled="true"))
    monkeypatch.delenv("MY_PUSH_SECRET", raising=False)
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: source zapier: environment variable MY_PUSH_SECRET (secret_env) is not set"
    ]
    assert not result.stdout.startswith("ok")
    monkeypatch.setenv("MY_PUSH_SECRET", "push-secret-value")
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert "push-secret-value" not in result.output


def test_a_disabled_sources_secret_is_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "brandmon.toml"
    path.write_text(PUSH_CONFIG.format(enabled="false"))
    monkeypatch.delenv("MY_PUSH_SECRET", raising=False)
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert "MY_PUSH_SECRET" not in result.output


def test_run_refuses_to_start_when_a_sources_secret_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "brandmon.toml"
    db = tmp_path / "brandmon.db"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{db}"\n'
        + PUSH_CONFIG.format(enabled="true")
        + '[[sources]]\nname = "x"\ntype = "x"\nquery = "a"\nbearer_token_env = "MY_X"\n'
    )
    monkeypatch.delenv("MY_PUSH_SECRET", raising=False)
    monkeypatch.setenv("MY_X", "x-token-value")
    for args in (["run"], ["run", "--once"]):
        result = invoke(*args, "--config", str(path))
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "error: source zapier: environment variable MY_PUSH_SECRET (secret_env) is not set"
        ]
    assert not db.exists()  # refused before anything started


def test_test_alert_reaches_every_sink(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = invoke("test-alert")
    assert result.exit_code == 0
    assert "[TEST] brandmon test alert for Crestfield Chicken" in result.stdout
    assert "console: ok" in result.stdout


def test_ingest_weighs_a_reviews_stars(config: Path, tmp_path: Path) -> None:
    reviews = tmp_path / "reviews.jsonl"
    lines = [
        {"id": "r1", "source": "reviews", "text": "Acme looks great, nice colours", "rating": 1},
        {"id": "r2", "source": "reviews", "text": "Acme", "rating": 9},
    ]
    reviews.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    result = invoke("ingest", "--jsonl", str(reviews), "--config", str(config))
    assert "skipped line 2: rating: Input should be less than or equal to 5" in result.stderr
    listed = invoke("mentions", "--config", str(config), "--format", "json").stdout
    [stored] = [json.loads(line) for line in listed.splitlines()]
    assert stored["sentiment_label"] == "negative"


def _commands() -> list[tuple[list[str], Any]]:
    """Every command and subcommand of ``brandmon`` (typer's own click commands), with the
    words that invoke it."""
    found: list[tuple[list[str], Any]] = []

    def walk(command: Any, words: list[str]) -> None:
        found.append((words, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*words, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize(
    "words", [words for words, _ in _commands()], ids=lambda words: " ".join(words) or "brandmon"
)
def test_help_reads_as_plain_words(words: list[str]) -> None:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert "`" not in shown  # reStructuredText or Markdown quoting
    assert not re.search(r"\[/?(?:bold|italic|dim|red|green|yellow|blue|cyan|link)\b", shown)
    if "Commands:" in shown:
        assert "..." not in shown.split("Commands:")[1]  # no summary cut short
    assert max(map(len, shown.splitlines())) <= 80


@pytest.mark.parametrize(
    "words", [words for words, _ in _commands()], ids=lambda words: " ".join(words) or "brandmon"
)
def test_every_option_and_argument_is_explained(words: list[str]) -> None:
    command = dict((tuple(w), c) for w, c in _commands())[tuple(words)]
    unexplained = [p.name for p in command.params if not getattr(p, "help", None)]
    assert unexplained == []


def test_command_summaries_are_whole_sentences() -> None:
    # the list of commands shows a summary cut with "..." when the first sentence is long
    for words, command in _commands()[1:]:
        summary = command.get_short_help_str(limit=45)
        assert summary.endswith((".", "?")) and not summary.endswith("..."), words


def test_mentions_read_in_the_display_zone(config: Path, jsonl: Path) -> None:
    config.write_text(config.read_text() + '\n[display]\ntimezone = "Asia/Kuala_Lumpur"\n')
    invoke("ingest", "--jsonl", str(jsonl), "--config", str(config))
    try:
        table = invoke("mentions", "--config", str(config), "--format", "table", "--limit", "9")
        tsv = invoke("mentions", "--config", str(config), "--format", "tsv")
    finally:
        show_times_in("UTC")
    # line 1 was posted at 08:00 UTC: 16:00 in Kuala Lumpur; scripts still get UTC
    assert "2026-11-20 16:00 UTC+08:00" in table.stdout
    assert "2026-11-20T08:00:00+00:00" in tsv.stdout


@pytest.mark.parametrize("command", [["mentions"], ["run", "--once"], ["db", "current"]])
def test_a_database_that_cannot_be_opened_is_one_line_without_its_password(
    tmp_path: Path, command: list[str]
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nothing listens on
    port = closed.getsockname()[1]
    closed.close()
    config = tmp_path / "brandmon.toml"
    config.write_text(
        f'[storage]\nurl = "postgresql+psycopg://brand:s3cret@127.0.0.1:{port}/x"\n'
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n'
        '[[sources]]\nname = "feed"\ntype = "rss"\nurl = "https://news.example/feed"\n',
        encoding="utf-8",
    )
    result = invoke(*command, "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: cannot open the database postgresql+psycopg://brand:***@127.0.0.1:{port}/x: "
    )
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output
