"""The ``brandmon`` command line, end to end on a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
    # lines 1, 2, 3 (x2 brands) stored; line 5 matches no brand
    assert "4 read, 4 stored, 0 already known, 1 matched no brand, 3 skipped" in result.stdout

    again = invoke("ingest", "--jsonl", str(jsonl), "--config", str(config))
    assert "4 read, 0 stored, 4 already known, 1 matched no brand, 3 skipped" in again.stdout


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
    assert "Acme and Globex merger rumours" in globex.stdout
    assert "1 mention(s)" in globex.stdout


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
    assert (malay["lang"], malay["confidence"], malay["category"]) == ("ms", "low", "crisis_risk")


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
    listed = invoke("mentions", "--db", "brandmon-demo.db", "--brand", "Crestfield Chicken")
    assert "100 mention(s)" in listed.stdout


def test_bundled_sample_ingests_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRANDMON_CONFIG", raising=False)
    sample = Path(__file__).resolve().parent.parent / "monitor" / "data" / "sample_mentions.jsonl"
    first = invoke("ingest", "--jsonl", str(sample))
    assert first.stdout.startswith("21 read, 19 stored, 1 already known, 2 matched no brand")
    second = invoke("ingest", "--jsonl", str(sample))
    assert second.stdout.startswith("21 read, 0 stored")
    listed = invoke("mentions", "--brand", "Crestfield Chicken", "--format", "json")
    texts = [json.loads(line)["text"] for line in listed.stdout.splitlines()]
    assert any("克雷斯特菲尔德炸鸡" in t for t in texts)  # matched by its Chinese alias
    assert not any("Crestfield Road" in t for t in texts)  # excluded


def test_ingest_in_worker_processes_stores_the_same(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BRANDMON_CONFIG", raising=False)
    sample = Path(__file__).resolve().parent.parent / "monitor" / "data" / "sample_mentions.jsonl"
    listed = []
    for workers in ("1", "2"):
        (tmp_path / workers).mkdir()
        monkeypatch.chdir(tmp_path / workers)
        result = invoke("ingest", "--jsonl", str(sample), "--workers", workers)
        assert result.stdout.startswith("21 read, 19 stored"), result.output
        rows = invoke("mentions", "--format", "json").stdout.splitlines()
        listed.append(
            sorted((r["text"], r["sentiment_label"], r["priority"]) for r in map(json.loads, rows))
        )
    assert len(listed[0]) == 19 and listed[0] == listed[1]


def test_very_long_ids_and_urls_are_stored_and_still_deduplicated(
    config: Path, tmp_path: Path
) -> None:
    long = "https://example.com/" + "a" * 900
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": long, "text": "acme again", "url": long}) + "\n")
    first = invoke("ingest", "--jsonl", str(path), "--config", str(config))
    assert "1 read, 1 stored" in first.stdout
    again = invoke("ingest", "--jsonl", str(path), "--config", str(config))
    assert "1 read, 0 stored, 1 already known" in again.stdout


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
