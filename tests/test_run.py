"""``brandmon run --once`` end to end: real config, real connectors, loopback feeds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from monitor.cli import app
from monitor.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "rss"

CONFIG = """
[storage]
url = "sqlite:///{db}"

[network]
allow_networks = ["127.0.0.0/8", "::1/128"]

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "news"
type = "rss"
url = "{news}"

[[sources]]
name = "broken"
type = "rss"
url = "{broken}"
"""

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Search: acme</title><link>https://news.example.com</link>
<description>news</description>
<item><title>Acme recalls kettles after fires</title><link>https://news.example.com/a1</link>
<guid isPermaLink="false">a1</guid><pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate></item>
<item><title>Acme opens a new store</title><link>https://news.example.com/a2?utm_source=rss</link>
<guid isPermaLink="false">a2</guid><pubDate>Tue, 24 Nov 2026 09:00:00 GMT</pubDate></item>
<item><title>Weather today</title><link>https://news.example.com/w</link>
<guid isPermaLink="false">w</guid></item>
</channel></rss>"""


def test_run_once_stores_matches_and_a_second_run_stores_nothing(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/news").respond_with_data(
        FEED, content_type="application/rss+xml", headers={"ETag": '"v1"'}
    )
    httpserver.expect_request("/broken").respond_with_data("<html>oops</html>", status=200)
    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    config.write_text(
        CONFIG.format(db=db, news=httpserver.url_for("/news"), broken=httpserver.url_for("/broken"))
    )
    runner = CliRunner()

    first = runner.invoke(app, ["run", "--once", "--config", str(config)])
    # the broken source is reported and fails the exit code, but the good one is stored
    assert first.exit_code == 1
    assert "news: 3 found, 2 new" in first.stdout
    assert "broken: FAILED malformed:" in first.stdout

    second = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert "news: 3 found, 0 new" in second.stdout

    storage = Storage(f"sqlite:///{db}")
    stored = storage.mentions()
    news_state = storage.source_state("news")
    broken_state = storage.source_state("broken")
    storage.close()
    assert sorted(m.external_id for m in stored) == ["a1", "a2"]
    assert news_state is not None and news_state.etag == '"v1"'
    assert broken_state is not None and broken_state.consecutive_failures == 2
    # the second poll sent the saved validator
    news_requests = [req for req, _ in httpserver.log if req.path == "/news"]
    assert [req.headers.get("If-None-Match") for req in news_requests] == [None, '"v1"']


def test_run_refuses_a_config_without_sources(tmp_path: Path) -> None:
    config = tmp_path / "brandmon.toml"
    config.write_text('[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n')
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 2
    assert "no enabled [[sources]]" in result.stderr


def test_sources_cannot_reach_internal_addresses_unless_allowed(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/news").respond_with_data(FEED, content_type="application/rss+xml")
    # a public-looking feed that redirects into the internal network is refused too
    httpserver.expect_request("/hop").respond_with_data(
        "", status=302, headers={"Location": "http://127.0.0.2:9/admin"}
    )
    config = tmp_path / "brandmon.toml"
    text = CONFIG.format(
        db=tmp_path / "brandmon.db",
        news=httpserver.url_for("/news"),
        broken=httpserver.url_for("/hop"),
    )
    config.write_text(text.replace('"127.0.0.0/8", "::1/128"', '"127.0.0.1/32", "::1/128"'))
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])
    assert "news: 3 found, 2 new" in result.stdout
    assert "broken: FAILED blocked: http://127.0.0.2:9/admin resolves to 127.0.0.2" in result.stdout

    default = tmp_path / "default.toml"
    default.write_text(text.split("[network]")[0] + text.split('"::1/128"]\n')[1])
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(default)])
    assert result.exit_code == 1
    assert "news: FAILED blocked:" in result.stdout
    assert "a non-public address; allow it with [network] allow_networks" in result.stdout
    assert [req.path for req, _ in httpserver.log].count("/news") == 1  # never even asked


def test_a_locked_database_is_waited_out_and_nothing_is_dropped(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    import sqlite3
    import threading

    httpserver.expect_request("/news").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/broken").respond_with_data(FEED, content_type="application/rss+xml")
    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    config.write_text(
        CONFIG.format(db=db, news=httpserver.url_for("/news"), broken=httpserver.url_for("/broken"))
    )
    Storage(f"sqlite:///{db}").create_schema()
    blocker = sqlite3.connect(db, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    release = threading.Timer(2.0, blocker.rollback)
    release.start()
    try:
        result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])
    finally:
        release.join()
        blocker.close()
    assert result.exit_code == 0, result.output
    storage = Storage(f"sqlite:///{db}")
    assert sorted(m.external_id for m in storage.mentions()) == ["a1", "a2"]
    storage.close()


SOCIAL = """
[storage]
url = "sqlite:///{db}"

[network]
allow_networks = ["127.0.0.0/8", "::1/128"]

[[brands]]
name = "Crestfield"
keywords = ["crestfield"]

[[brands]]
name = "Quillbox"
keywords = ["quillbox"]

[[brands]]
name = "Gridline"
keywords = ["gridline"]

[[brands]]
name = "SkyWays"
keywords = ["skyways"]

[[sources]]
name = "reddit"
type = "reddit"
query = "crestfield"
interval = "5m"
base_url = "{base}"

[[sources]]
name = "hn"
type = "hackernews"
query = "quillbox"
base_url = "{base}/hn"

[[sources]]
name = "mastodon"
type = "mastodon"
instance = "{base}"
hashtags = ["Gridline"]

[[sources]]
name = "bluesky"
type = "bluesky"
query = "skyways"
base_url = "{base}"
"""


def test_run_once_with_every_keyless_social_source(httpserver: HTTPServer, tmp_path: Path) -> None:
    fixtures = FIXTURES.parent
    for path, fixture in [
        ("/search.json", "reddit/search.json"),
        ("/hn/search_by_date", "hackernews/search.json"),
        ("/api/v1/timelines/tag/Gridline", "mastodon/tag.json"),
        ("/xrpc/app.bsky.feed.searchPosts", "bluesky/search.json"),
    ]:
        httpserver.expect_request(path).respond_with_data(
            (fixtures / fixture).read_bytes(), content_type="application/json"
        )
    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    config.write_text(SOCIAL.format(db=db, base=httpserver.url_for("").rstrip("/")))
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert first.exit_code == 0, first.stdout
    for line in ("reddit: 3 found, 3 new", "hn: 3 found, 3 new", "mastodon: 2 found, 2 new"):
        assert line in first.stdout
    assert "bluesky: 2 found, 2 new" in first.stdout
    second = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert second.exit_code == 0
    counts = [line for line in second.stdout.splitlines() if " found, " in line]
    assert len(counts) == 4 and all(line.endswith(", 0 new") for line in counts)
    storage = Storage(f"sqlite:///{db}")
    by_brand = {b: len(storage.mentions(brand=b)) for b in ("Crestfield", "Quillbox", "Gridline")}
    triaged = [m for m in storage.mentions(brand="Crestfield") if m.category and m.priority]
    storage.close()
    assert by_brand == {"Crestfield": 3, "Quillbox": 3, "Gridline": 2}
    assert len(triaged) == 3  # every stored mention was triaged


def test_a_spent_rate_limit_window_rests_the_source_until_its_reset(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    import json

    from monitor.scheduler import _backing_off

    listing = {"kind": "Listing", "data": {"after": None, "children": [], "dist": 0}}
    httpserver.expect_request("/search.json").respond_with_data(
        json.dumps(listing),
        content_type="application/json",
        headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "600"},
    )
    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    only_reddit = SOCIAL.split('[[sources]]\nname = "hn"')[0]
    config.write_text(only_reddit.format(db=db, base=httpserver.url_for("").rstrip("/")))
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 0, result.output
    storage = Storage(f"sqlite:///{db}")
    state = storage.source_state("reddit")
    storage.close()
    assert state is not None and state.next_poll is not None and state.last_poll is not None
    rest = (state.next_poll - state.last_poll).total_seconds()
    assert 590 <= rest <= 610  # until Reddit's reset, not the 5-minute interval
    assert _backing_off(state, timedelta(minutes=5))  # the scheduled polls skip it meanwhile
