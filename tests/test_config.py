from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config
from monitor.plugins import CONNECTORS

REPO = Path(__file__).resolve().parent.parent

GOOD = """
[storage]
url = "sqlite:///./x.db"

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "acme-news"
type = "rss"
url = "https://news.example.com/rss?q=acme"
interval = "90s"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "brandmon.toml")
    return [str(p) for p in caught.value.problems]


def test_example_config_and_embedded_defaults_are_valid() -> None:
    example = load_config(REPO / "config.example.toml")
    assert example.sources, "the example shows at least one source"
    embedded = load_config(None)
    assert embedded.storage.url == "sqlite:///./brandmon.db"
    assert embedded.alerts.sinks == ["console"]


def test_durations_and_defaults() -> None:
    config = parse_config(GOOD, "brandmon.toml")
    assert config.sources[0].interval == timedelta(seconds=90)
    assert config.detection.bucket == timedelta(minutes=5)
    assert config.storage.batch_size == 500


def test_misspelt_key_is_an_error_with_file_line_and_path() -> None:
    text = GOOD.replace('interval = "90s"', 'interval = "90s"\nintervall = "5m"')
    assert problems(text) == ["brandmon.toml:14: sources[0].intervall: unknown key 'intervall'"]


def test_every_error_is_reported_not_just_the_first() -> None:
    text = """
[storage]
url = "mysql://root@db/x"

[[brands]]
name = "Acme"

[[sources]]
name = "feed"
type = "rss"
url = "ftp://example.com/feed"
interval = "1s"
"""
    found = problems(text)
    assert len(found) == 4
    assert found[0].startswith("brandmon.toml:3: storage.url: unsupported database 'mysql'")
    assert found[1].startswith("brandmon.toml:5: brands[0]: brand 'Acme' has no keywords")
    assert (
        "brandmon.toml:11: sources[0].url: 'ftp://example.com/feed' is not an http(s) URL" in found
    )
    assert "brandmon.toml:12: sources[0].interval: poll interval must be at least 10s" in found


def test_unknown_source_type_names_the_known_ones() -> None:
    text = GOOD.replace('type = "rss"', 'type = "myspace"')
    [problem] = problems(text)
    assert problem.startswith("brandmon.toml:11: sources[0]: unknown source type 'myspace'")
    assert "rss" in problem


def test_syntax_error_gives_the_line() -> None:
    [problem] = problems(GOOD.replace('name = "Acme"', 'name = "Acme'))
    assert problem.startswith("brandmon.toml:6: invalid TOML")


def test_secret_in_the_file_is_refused_and_not_echoed() -> None:
    text = GOOD + '\n[alerts]\nsinks = ["slack"]\n[alerts.slack]\nchannel = "#pr"\n'
    text += 'token = "xoxb-123-secret"\n'
    [problem] = problems(text)
    assert "alerts.slack.token: unknown key 'token'; secrets are never read" in problem
    assert "xoxb" not in problem


def test_secret_setting_must_name_an_environment_variable() -> None:
    text = GOOD + '\n[alerts.slack]\nchannel = "#pr"\ntoken_env = "xoxb-123"\n'
    [problem] = problems(text)
    assert "alerts.slack.token_env" in problem and "not an environment variable name" in problem


def test_slack_sink_needs_its_section() -> None:
    [problem] = problems(GOOD + '\n[alerts]\nsinks = ["slack"]\n')
    assert 'alerts: sink "slack" is listed but there is no [alerts.slack] section' in problem


def test_duplicate_names_and_empty_brand_list() -> None:
    twice = GOOD + '\n[[brands]]\nname = "Acme"\nkeywords = ["acme inc"]\n'
    assert any("brand name 'Acme' is used twice" in p for p in problems(twice))
    no_brands = '[storage]\nurl = "sqlite:///x.db"\n'
    assert any("brands: missing required key 'brands'" in p for p in problems(no_brands))


def test_route_category_and_priority_are_checked() -> None:
    text = GOOD + '\n[[routes]]\ncategory = "complaints"\nchannel = "#support"\n'
    text += 'min_priority = "P9"\n'
    found = problems(text)
    assert any(p.startswith("brandmon.toml:16: routes[0].category") for p in found)
    assert any(p.startswith("brandmon.toml:18: routes[0].min_priority") for p in found)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.toml")
    assert "missing.toml: cannot read: No such file or directory" in str(caught.value)


def test_a_brand_of_bare_sigils_is_refused() -> None:
    text = '[[brands]]\nname = "Ghost"\nhandles = ["@"]\nhashtags = ["#", " "]\n'
    [problem] = problems(text)
    assert problem.startswith("brandmon.toml:1: brands[0]: brand 'Ghost' has no keywords")


def test_retention_must_leave_detection_its_history() -> None:
    def with_retention(value: str) -> str:
        return GOOD.replace(
            'url = "sqlite:///./x.db"', f'url = "sqlite:///./x.db"\nretention = "{value}"'
        )

    [problem] = problems(with_retention("3d"))
    assert problem.startswith("brandmon.toml:4: storage.retention: retention must be at least 14d")
    assert parse_config(with_retention("180d"), "b.toml").storage.retention == timedelta(days=180)


def test_slack_buttons_need_the_signing_secret() -> None:
    text = GOOD + '\n[alerts.slack]\nchannel = "#pr"\ninteractivity = "127.0.0.1:8790"\n'
    [problem] = problems(text)
    assert "alerts.slack" in problem and "signing_secret_env" in problem


def test_reading_a_config_imports_only_the_integrations_it_uses(tmp_path: Path) -> None:
    config = tmp_path / "brandmon.toml"
    config.write_text(GOOD, encoding="utf-8")  # one rss source; the console sink by default
    probe = (
        "import json, sys, pathlib; from monitor.config import load_config; "
        "load_config(pathlib.Path(sys.argv[1])); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(config)], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert "connectors.rss" in loaded
    assert not {f"connectors.{name}" for name in CONNECTORS if name != "rss"} & loaded
    assert not {name for name in loaded if name == "alerts" or name.startswith("alerts.")}


def test_every_source_the_example_shows_commented_out_is_valid() -> None:
    """Uncommenting an example source gives a valid config (the example does not rot)."""
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    blocks = re.findall(r"^# \[\[sources\]\]\n(?:# [^\n]*\n)+", example, flags=re.MULTILINE)
    assert len(blocks) >= 5
    brand = '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n'
    for block in blocks:
        source = "\n".join(line.removeprefix("# ") for line in block.splitlines())
        [parsed] = parse_config(brand + source, "config.example.toml").sources
        assert parsed.type in CONNECTORS
