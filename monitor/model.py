"""The data model: what a source hands us, and the tables we keep.

``RawMention`` is what every connector (and ``brandmon ingest``) produces: a post as the source
gave it, before matching and scoring.  ``Mention`` is one stored mention of one brand.  A post
that names two brands is stored once for each, because detection, triage and alerts are per brand.

All datetimes are timezone-aware UTC, in Python and in both databases (sqlmodel stores them as
UTC and hands them back aware, even from SQLite).  ``to_utc`` converts at the boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

MAX_ID_LENGTH = 500
MAX_URL_LENGTH = 700


def to_utc(moment: datetime | None) -> datetime | None:
    """Return ``moment`` in UTC; naive input is taken to be UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with U+FFFD for what a database cannot hold: NUL (PostgreSQL refuses it in text)
    and lone surrogates (from broken UTF-16 or ``\\ud800`` escapes in JSON: neither driver, nor
    pydantic, nor RE2's matching can encode them as UTF-8).  ``text`` itself if it has none."""
    if "\x00" not in text:
        if text.isascii():
            return text
        try:
            text.encode()  # faster than searching for surrogates, and usually all there is to do
            return text
        except UnicodeEncodeError:
            pass
    return _UNSTORABLE.sub("\ufffd", text)


_WEB_URL = re.compile(r"https?://[^\s/?#]", re.IGNORECASE)


def web_url(url: str | None) -> str | None:
    """``url`` (without surrounding blanks) if it is an http(s) link, else None.

    A mention's link is shown in Slack alerts and the HTML report: a ``javascript:`` or
    ``data:`` URL there would run or show whatever the post's author put in it.
    """
    if url is None:
        return None
    url = url.strip()
    return url if _WEB_URL.match(url) else None


@dataclass(slots=True)
class RawMention:
    """A post as a source delivered it.  Counts a source does not give stay ``None``."""

    source: str
    external_id: str
    text: str
    url: str | None = None
    author: str | None = None
    author_followers: int | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    views: int | None = None
    language: str | None = None
    published_at: datetime | None = None
    source_type: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict)
    rating: int | None = None
    """The stars (1 to 5) of a review (app stores, review sites): scoring weighs them."""


@dataclass(slots=True)
class Cursor:
    """What a connector needs to resume: an API cursor and/or HTTP validators (kept by storage
    in ``SourceState``)."""

    cursor: str | None = None
    etag: str | None = None
    last_modified: str | None = None


MentionRow = dict[str, Any]
"""A ``Mention`` as a plain dict of its columns: how the pipeline hands rows to storage."""


class Mention(SQLModel, table=True):
    """One mention of one brand, matched and scored."""

    __table_args__ = (
        # Source and id first: "which of these ids are stored?" is asked for every batch.
        UniqueConstraint("source", "external_id", "brand", name="uq_mention_source_id"),
        UniqueConstraint("brand", "canonical_url", name="uq_mention_url"),
        # Label and reach too: a brand's counts per bucket are read from the index alone.
        Index(
            "ix_mention_brand_published", "brand", "published_at", "sentiment_label", "reach_score"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    brand: str = Field(max_length=200)
    source: str = Field(max_length=200)
    source_type: str = Field(max_length=50)
    external_id: str = Field(max_length=MAX_ID_LENGTH)
    url: str | None = Field(default=None, sa_column=Column(Text))
    canonical_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    author: str | None = Field(default=None, max_length=300)
    author_followers: int | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    views: int | None = None
    text: str = Field(sa_column=Column(Text, nullable=False))
    language: str | None = Field(default=None, max_length=20)
    published_at: datetime = Field(index=True)
    fetched_at: datetime
    sentiment_compound: float
    sentiment_label: str = Field(max_length=20)
    reach_score: float
    category: str | None = Field(default=None, max_length=50)
    priority: str | None = Field(default=None, max_length=4)


class MentionLabel(SQLModel, table=True):
    """The team's own judgement of one mention (``brandmon label``, or the Slack alert's menu):
    what ``brandmon train`` learns from.  One per mention; labelling it again replaces it."""

    mention_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("mention.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    sentiment: str = Field(max_length=20)
    """One of ``SENTIMENTS``."""
    category: str | None = Field(default=None, max_length=50)
    """A triage category (``CATEGORIES``), or None when not corrected."""
    labelled_by: str | None = Field(default=None, max_length=100)
    labelled_at: datetime = Field(default_factory=utcnow)


class MentionState(SQLModel, table=True):
    """Where a mention stands in the team's queue (the web console): who took it on, and
    whether it was dealt with.  One per mention, written only once someone acts on it."""

    mention_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("mention.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    assigned_to: str | None = Field(default=None, max_length=100)
    done_by: str | None = Field(default=None, max_length=100)
    done_at: datetime | None = None
    """When it was marked done; None while it is still to do."""


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A labelled mention's text, as training reads it."""

    text: str
    language: str | None
    sentiment: str
    category: str | None
    mention_id: int


class SourceState(SQLModel, table=True):
    """What a source needs to resume after a restart, and how healthy it is."""

    source: str = Field(primary_key=True, max_length=200)
    cursor: str | None = Field(default=None, sa_column=Column(Text))
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    last_poll: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    consecutive_failures: int = 0
    next_poll: datetime | None = None


class AlertOutbox(SQLModel, table=True):
    """An alert waiting for (or done with) delivery to one sink.

    Rows are written in the same transaction as the incident change that caused them and are
    marked sent only after the sink accepted them; ``idempotency_key`` makes a re-send after a
    crash recognisable.
    """

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    brand: str = Field(max_length=200, index=True)
    sink: str = Field(max_length=100)
    kind: str = Field(max_length=50)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class Incident(SQLModel, table=True):
    """One crisis incident of one brand, from its first level to its resolution."""

    id: int | None = Field(default=None, primary_key=True)
    brand: str = Field(max_length=200, index=True)
    started_at: datetime
    level: str = Field(max_length=20)
    peak_level: str = Field(max_length=20)
    peak_at: datetime
    peak_score: float
    resolved_at: datetime | None = None
    history: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    """JSON list of ``[time, level]`` changes."""
    mention_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    """JSON list of the ids of the mentions that drove it (highest reach first)."""


class BrandWatch(SQLModel, table=True):
    """How far detection has judged a brand's buckets, so a restart never pages twice."""

    brand: str = Field(primary_key=True, max_length=200)
    judged_until: datetime
    incident_id: int | None = None
    detector: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    """The brand's detector as it stood at ``judged_until`` (``monitor.snapshot``), so any
    instance resumes it without replaying history."""


class SlackThread(SQLModel, table=True):
    """The Slack message that heads an incident's thread, so escalations reply to it."""

    incident_id: int = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=100)
    ts: str = Field(max_length=50)


class IncidentAck(SQLModel, table=True):
    """What the PR team said about an incident from Slack: who took it on, and whether its
    pings are muted (pages still go to the thread, without mentioning anyone)."""

    incident_id: int = Field(primary_key=True)
    acknowledged_by: str | None = Field(default=None, max_length=100)
    acknowledged_at: datetime | None = None
    muted_until: datetime | None = None


class SlackPost(SQLModel, table=True):
    """A Slack message brandmon has posted, or started to post, for an alert key in a channel.

    Written before the post and completed with Slack's ``ts`` after it: a row without ``ts``
    means the last attempt ended without an answer, and only then is the channel's history
    searched for the message (Slack limits ``conversations.history`` for some apps to about one
    call a minute)."""

    key: str = Field(primary_key=True, max_length=250)
    channel: str = Field(primary_key=True, max_length=100)
    ts: str | None = Field(default=None, max_length=50)


class Lease(SQLModel, table=True):
    """Who may judge a brand or deliver to a sink, until when, on SQLite: it keeps a ``brandmon
    run --once`` from doing either alongside a running daemon.  On PostgreSQL the instances
    divide the work with advisory locks instead (``monitor.locks``)."""

    name: str = Field(primary_key=True, max_length=300)
    owner: str | None = Field(default=None, max_length=200)
    until: datetime | None = None
