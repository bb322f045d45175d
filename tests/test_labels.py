"""The team's own sentiment labels: ``brandmon label``, storage on both backends, and the
"Wrong sentiment?" menu of a Slack page (its clicks signed like the head's buttons)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import select
from test_slack import BUTTONS, PR, SECRET, FakeSlack, answers_at, changed, make_sink, page
from test_storage import T0, mention
from typer.testing import CliRunner

from alerts.slack_actions import PATH as ACTIONS_PATH
from alerts.slack_actions import ActionServer, signature
from monitor.alert import PagePayload
from monitor.cli import app
from monitor.model import LabelledText, MentionLabel
from monitor.storage import Storage, UnknownMention

runner = CliRunner()

CONFIG = """
[storage]
url = "{url}"

[[brands]]
name = "Acme"
keywords = ["acme"]
"""

POSTS = [
    {
        "id": "1",
        "source": "x",
        "text": "Acme lost my parcel and nobody answers, third week of waiting",
        "published_at": "2026-11-20T08:00:00Z",
    },
    {
        "id": "2",
        "source": "x",
        "text": "El pedido de Acme llegó roto y nadie contesta los correos desde hace semanas",
        "published_at": "2026-11-20T09:00:00Z",
    },
]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    """A config on an empty database (SQLite, and PostgreSQL when configured) holding POSTS."""
    path = tmp_path / "brandmon.toml"
    path.write_text(CONFIG.format(url=db_url), encoding="utf-8")
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    ingested = invoke("ingest", "--jsonl", str(posts), "--config", str(path))
    assert ingested.exit_code == 0, ingested.output
    return path


def listed(config: Path) -> dict[str, dict[str, Any]]:
    """The stored mentions as `brandmon mentions --format json` lists them, by post id."""
    result = invoke("mentions", "--config", str(config), "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["external_id"]: row for row in rows}


def labels(url: str) -> list[MentionLabel]:
    storage = Storage(url)
    try:
        with storage.session() as session:
            return list(session.scalars(select(MentionLabel)))
    finally:
        storage.close()


def texts(url: str, language: str | None = None) -> list[LabelledText]:
    storage = Storage(url)
    try:
        return storage.labelled_mentions(language)
    finally:
        storage.close()


def test_a_lead_labels_a_listed_mention_and_labelling_it_again_replaces_the_label(
    config: Path, db_url: str
) -> None:
    rows = listed(config)
    english, spanish = rows["1"], rows["2"]
    table = invoke("mentions", "--config", str(config), "--format", "table").stdout
    assert re.search(rf"^#{english['mention_id']} +2026-11-20 08:00 UTC", table, re.M)  # the id

    result = invoke(
        "label", str(english["mention_id"]), "positive", "--by", "ann", "--config", str(config)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"mention {english['mention_id']}: labelled positive by ann\n"
    relabel = ["label", str(english["mention_id"]), "negative", "--category", "complaint"]
    again = invoke(*relabel, "--config", str(config))
    assert again.exit_code == 0, again.output
    assert "labelled negative, category complaint" in again.stdout
    invoke("label", str(spanish["mention_id"]), "negative", "--config", str(config))

    [first, _] = sorted(labels(db_url), key=lambda row: row.mention_id)
    assert (first.sentiment, first.category, first.labelled_by) == ("negative", "complaint", None)
    assert texts(db_url) == [
        LabelledText(POSTS[0]["text"], "en", "negative", "complaint", english["mention_id"]),
        LabelledText(
            POSTS[1]["text"], spanish["language"], "negative", None, spanish["mention_id"]
        ),
    ]
    assert spanish["language"] != "en"
    assert [t.mention_id for t in texts(db_url, "en")] == [english["mention_id"]]
    assert [t.mention_id for t in texts(db_url, spanish["language"])] == [spanish["mention_id"]]


def test_an_unknown_id_fails_with_1_and_an_unknown_label_or_category_with_2(
    config: Path, db_url: str
) -> None:
    known = str(listed(config)["1"]["mention_id"])
    unknown = invoke("label", "987654", "negative", "--config", str(config))
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: no stored mention has id 987654\n"

    angry = invoke("label", known, "angry", "--config", str(config))
    assert angry.exit_code == 2
    assert "unknown sentiment 'angry': expected one of negative, neutral, positive" in angry.stderr
    category = invoke("label", known, "negative", "--category", "billing", "--config", str(config))
    assert category.exit_code == 2
    assert "unknown category 'billing'" in category.stderr and "complaint" in category.stderr
    assert labels(db_url) == []


def test_labelled_mentions_outlive_retention(storage: Storage) -> None:
    """The team's labels, gathered over months, are what ``train`` learns from: pruning old
    mentions keeps those labelled, with their labels."""
    storage.add_mentions([mention(str(i), minutes=i) for i in range(4)])
    oldest, labelled, old, newest = sorted(m.id for m in storage.mentions() if m.id is not None)
    storage.label_mention(labelled, "negative", "complaint", by="U0MIA")
    storage.label_mention(newest, "neutral", "other", by="U0MIA")
    with pytest.raises(UnknownMention, match="no stored mention has id 0$"):
        storage.label_mention(0, "neutral")

    assert storage.prune(T0 + timedelta(minutes=3), batch=1) == 2
    assert sorted(m.id for m in storage.mentions() if m.id is not None) == [labelled, newest]
    assert [(t.mention_id, t.text, t.category) for t in storage.labelled_mentions()] == [
        (labelled, "acme post 1", "complaint"),
        (newest, "acme post 3", "other"),
    ]


# -- from Slack -------------------------------------------------------------------------------


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver)


def menus(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b["accessory"] for b in blocks if b.get("accessory", {}).get("type") == "overflow"]


def choose(menu: dict[str, Any], sentiment: str, user: str, response_url: str) -> bytes:
    """The form body Slack POSTs when ``user`` picks ``sentiment`` in ``menu``."""
    [option] = [o for o in menu["options"] if o["value"].endswith(f":{sentiment}")]
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "lead"},
        "channel": {"id": PR},
        "message": {"ts": "1700000000.000002", "blocks": []},
        "response_url": response_url,
        "actions": [
            {
                "type": "overflow",
                "action_id": menu["action_id"],
                "block_id": "x1Y",
                "selected_option": option,
                "action_ts": "1700000100.000001",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    now = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": now,
        "X-Slack-Signature": signature(secret, now, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_a_pages_top_mentions_are_labelled_from_their_menu_by_signed_clicks_only(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_sink(slack, tmp_path, monkeypatch, slack_extra=BUTTONS) as sink:
        stored = sink.storage.add_mentions([mention("a"), mention("b", minutes=1)])
        alert = page("warning", "opened", "2026-11-24T08:40:00+00:00")
        shown = alert.read(PagePayload).top_mentions
        ids = tuple(replace(m, id=row["id"]) for m, row in zip(shown, stored, strict=True))
        alert = changed(alert, top_mentions=ids)
        sink.send(alert)
        evidence = slack.thread(PR)[1]["blocks"]
        found = menus(evidence)
        assert len(found) == 2 and "Wrong sentiment?" in json.dumps(evidence)
        for menu in found:  # within Block Kit's limits for an overflow menu
            assert 2 <= len(menu["options"]) <= 5 and len(menu["action_id"]) <= 255
            assert all(len(o["value"]) <= 150 for o in menu["options"])
            assert all(len(o["text"]["text"]) <= 75 for o in menu["options"])
        answers = answers_at(slack, "/hooks/2")
        server = ActionServer("127.0.0.1", 0, SECRET, sink.storage)
        server.start()
        url = "http://{}:{}{}".format(*server.address, ACTIONS_PATH)
        hook = slack.server.url_for("/hooks/2")
        try:
            forged = choose(found[0], "positive", "U0EVE", hook)
            refused = httpx.post(url, content=forged, headers=signed(forged, "not-the-secret"))
            assert refused.status_code == 401
            assert sink.storage.labelled_mentions() == [] and answers == []

            for user, sentiment in (("U0MIA", "positive"), ("U0LEAD", "neutral")):
                body = choose(found[0], sentiment, user, hook)
                assert httpx.post(url, content=body, headers=signed(body)).status_code == 200
        finally:
            server.stop()
        with sink.storage.session() as session:
            [label] = session.scalars(select(MentionLabel)).all()
        assert (label.mention_id, label.sentiment, label.labelled_by) == (
            stored[0]["id"],
            "neutral",
            "U0LEAD",
        )
        # each chooser, and only they, is told it was stored
        assert [a["response_type"] for a in answers] == ["ephemeral", "ephemeral"]
        assert f"Mention {stored[0]['id']} labelled neutral" in answers[-1]["text"]


def test_without_slack_interactivity_a_page_has_no_menus(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_sink(slack, tmp_path, monkeypatch) as sink:
        sink.send(page("warning", "opened", "2026-11-24T08:40:00+00:00"))
    evidence = slack.thread(PR)[1]["blocks"]
    assert menus(evidence) == [] and "Wrong sentiment?" not in json.dumps(evidence)
