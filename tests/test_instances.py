"""Several ``brandmon run`` instances on one PostgreSQL share the work: each source is polled
by one instance at a time, each brand is judged once and each alert is delivered once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import SQLModel
from werkzeug import Request, Response

from monitor.model import utcnow
from monitor.storage import Storage

CONFIG = """
[storage]
url = "{db}"

[network]
allow_networks = ["127.0.0.0/8", "::1/128"]

[[brands]]
name = "Acme"
keywords = ["acme"]

[detection]
bucket = "10s"
history = "1d"
warmup = "1d"

[[sources]]
name = "news"
type = "rss"
url = "{feed}"
interval = "10s"
"""

COMPLAINT = "Acme lost my parcel, terrible service, awful and disgusting"


def feed(items: list[tuple[str, str]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>https://example.com/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid>'
        f"<pubDate>{format_datetime(utcnow())}</pubDate></item>"
        for guid, title in items
    )
    channel = f"<channel><title>t</title>{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


def test_two_instances_poll_judge_and_alert_exactly_once(
    pg_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    storage = Storage(pg_url)
    SQLModel.metadata.drop_all(storage.engine)  # the session's database: start empty
    storage.create_schema()
    hits: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()

    def handler(request: Request) -> Response:
        with lock:
            hits.append(time.monotonic() - started)
            n = len(hits)
        items = [("calm", "Acme kettle review")]
        if n >= 3:  # from the third poll on, a wave of complaints
            items += [(f"wave{n}-{i}", COMPLAINT) for i in range(25)]
        return Response(feed(items), content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(handler)
    config = tmp_path / "brandmon.toml"
    config.write_text(CONFIG.format(db=pg_url, feed=httpserver.url_for("/feed")))
    script = Path(sys.executable).parent / "brandmon"
    processes = [
        subprocess.Popen(
            [script, "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        for _ in range(2)
    ]
    try:
        # run until the wave has been paged (its bucket closes, waits one grace bucket and is
        # judged), then a while longer so a second page from the other instance would show
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _sent_alerts(storage):
            time.sleep(1)
        time.sleep(15)
    finally:
        outputs = []
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            out, err = process.communicate(timeout=60)
            outputs.append((process.returncode, out, err))
    for code, _, err in outputs:
        assert code == 0, err
    # one poll per 10 s interval between both instances, not one each
    elapsed = time.monotonic() - started
    gaps = [b - a for a, b in zip(hits, hits[1:], strict=False)]
    assert len(hits) <= elapsed / 10 + 1, (elapsed, hits)
    assert all(gap >= 4 for gap in gaps), hits
    # the wave was judged once and paged once, by whichever instance held the brand
    pages = [line for _, out, _ in outputs for line in out.splitlines() if line.startswith("[")]
    assert len(pages) == 1, pages
    assert pages[0].startswith("[CRISIS] Acme") or pages[0].startswith("[WARNING] Acme")
    from sqlmodel import select

    from monitor.model import AlertOutbox, Incident

    with storage.session() as session:
        alerts = session.scalars(select(AlertOutbox)).all()
        incidents = session.scalars(select(Incident)).all()
    storage.close()
    assert [a.status for a in alerts] == ["sent"]
    assert len(incidents) == 1


def _sent_alerts(storage: Storage) -> int:
    from sqlmodel import func, select

    from monitor.model import AlertOutbox

    with storage.session() as session:
        return session.scalar(select(func.count()).where(AlertOutbox.status == "sent")) or 0


pytestmark = pytest.mark.skipif(
    not os.environ.get("BRANDMON_TEST_PG_URL"), reason="BRANDMON_TEST_PG_URL is not set"
)
