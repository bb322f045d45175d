"""The one path every mention takes: match → score → triage → store.

Polled and pushed mentions (``brandmon run``, ``brandmon ingest``) go through the same
``Pipeline`` so a mention is treated the same wherever it came from, bad values included: text a
database cannot hold is replaced, a non-http(s) link dropped, a date far in the future clamped,
and a mention without a usable id or that the database refuses is logged, counted and skipped
without holding back the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.assessment import Assessment, Job, assess, scorer_for, triaged
from monitor.config import Config
from monitor.jsonl import LineError
from monitor.matching import BrandMatcher
from monitor.model import (
    MAX_ID_LENGTH,
    MAX_URL_LENGTH,
    Mention,
    MentionRow,
    RawMention,
    storable_text,
    to_utc,
    utcnow,
    web_url,
)
from monitor.scoring import Post, Sentiment, SentimentScorer, reach_score
from monitor.scoring_workers import Scored, ScoringWorkers
from monitor.storage import Storage
from monitor.urls import canonical_url

log = logging.getLogger(__name__)

FUTURE_TOLERANCE = timedelta(days=1)
"""A post dated further ahead than this (a wrong year, a mangled time zone) is dated when it
was fetched instead: it would otherwise sit at the top of every listing and outside every
detection window until its date came."""


@dataclass(slots=True)
class PipelineReport:
    """Counts for one batch: posts received, matched to no brand, brand mentions new/known;
    ``failed``: posts without a usable id and brand mentions the database refused (not stored,
    each logged); ``clamped``: posts dated more than a day ahead, dated at their fetch.

    A post naming two brands is two brand mentions: ``stored``, ``duplicates`` and ``failed``
    count those.  ``posts`` counts each received post once, by what became of it ("stored"
    when at least one of its mentions is new, "known", "unmatched", "failed"), so that its
    values add up to ``received``; ``by_brand`` counts the new mentions of each brand."""

    received: int = 0
    unmatched: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    clamped: int = 0
    posts: Counter[str] = dataclasses.field(default_factory=Counter)
    by_brand: Counter[str] = dataclasses.field(default_factory=Counter)

    def add(self, other: PipelineReport) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def count_posts(self, new: list[MentionRow], failed: list[MentionRow]) -> None:
        """Fill ``posts`` and ``by_brand`` once the batch's ``new`` and ``failed`` rows are
        known (``unmatched`` and the posts without an id are counted by then)."""
        stored = {(row["source"], row["external_id"]) for row in new}
        refused = {(row["source"], row["external_id"]) for row in failed} - stored
        blank = self.failed - len(failed)
        self.posts.update(stored=len(stored), failed=len(refused) + blank, unmatched=self.unmatched)
        self.posts["known"] += self.received - sum(self.posts.values())
        self.by_brand.update(row["brand"] for row in new)


def _bounded_id(external_id: str) -> str:
    """Ids longer than the column (some feeds use whole URLs) are replaced by a stable hash."""
    if len(external_id) <= MAX_ID_LENGTH:
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


def _bounded_url(url: str | None) -> str | None:
    """A canonical URL too long to index is not used for de-duplication (the id still is)."""
    return url if url is None or len(url) <= MAX_URL_LENGTH else None


_CUT_TO_FIT = ("author", "source_type", "language")
"""Free text cut to its column when longer (PostgreSQL refuses it, SQLite would keep it).  Ids
and links are not cut (a cut id could collide with another): ``_bounded_id`` hashes them."""
_TEXT_FIELDS: list[tuple[str, int | None]] = [
    ("source", None),
    ("external_id", None),
    ("text", None),
    ("url", None),
    *((name, Mention.__table__.columns[name].type.length) for name in _CUT_TO_FIT),
]
"""``RawMention`` text fields, with the length to cut them to (None: never cut)."""
_COUNT_FIELDS = ["author_followers", "likes", "reposts", "replies", "views"]
_MAX_COUNT = 2**31 - 1
"""The count columns are INTEGER: 32 bits on PostgreSQL (a video's views can exceed it)."""


def _storable(raw: RawMention) -> RawMention:
    """``raw`` with every value made storable on both databases, the same on both: see
    ``storable_text``; author, language and source type cut to their columns; counts capped.
    ``raw`` itself when nothing needed changing (nearly always)."""
    changes: dict[str, Any] = {}
    for name, length in _TEXT_FIELDS:
        value = getattr(raw, name)
        if value is None:
            continue
        fixed = storable_text(value)
        if length is not None and len(fixed) > length:
            fixed = fixed[:length]
        if fixed is not value:
            changes[name] = fixed
    for name in _COUNT_FIELDS:
        count = getattr(raw, name)
        if count is not None and count > _MAX_COUNT:
            changes[name] = _MAX_COUNT
    return dataclasses.replace(raw, **changes) if changes else raw


def _storable_url(url: str | None) -> str | None:
    """A canonical URL can hold a NUL that its link did not (a Google redirect's ``%00``)."""
    return None if url is None else storable_text(url)


def _published(raw: RawMention, fetched_at: datetime, report: PipelineReport) -> datetime:
    """When ``raw`` was published: its own date, unless that is missing (then ``fetched_at``)
    or more than ``FUTURE_TOLERANCE`` ahead (``fetched_at`` too, counted and logged)."""
    if raw.published_at is None:
        return fetched_at
    try:
        published = to_utc(raw.published_at)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past datetime.max in UTC
        published = None
    if published is not None and published <= fetched_at + FUTURE_TOLERANCE:
        return published
    report.clamped += 1
    log.warning(
        "published_at in the future, dated at its fetch instead source=%s id=%s published_at=%s",
        raw.source,
        raw.external_id,
        raw.published_at.isoformat(),
    )
    return fetched_at


def reach_of(raw: RawMention) -> float:
    return reach_score(
        source_type=raw.source_type,
        followers=raw.author_followers,
        likes=raw.likes,
        reposts=raw.reposts,
        replies=raw.replies,
        views=raw.views,
    )


class Pipeline:
    """Match, score, triage and store.  With ``workers``, scoring runs in that many processes
    while this one matches, triages, stores and sends them more; call ``close`` when done."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        scorer: SentimentScorer | None = None,
        *,
        workers: int | ScoringWorkers = 0,
    ) -> None:
        """``workers``: how many processes score, or those already started (``ingest`` starts
        them first, to get ready while it does)."""
        self.storage = storage
        self.matcher = BrandMatcher(config.brands)
        self.brands = [brand.name for brand in config.brands]
        if workers and scorer is not None:
            raise ValueError("worker processes build their own scorer: pass no scorer")
        if isinstance(workers, int):
            workers = ScoringWorkers(config, workers)
        self._workers = workers if workers.count else None
        # Scoring here needs a scorer, made now so the first batch does not wait for it; when
        # the workers score, none is made (it takes a tenth of a second, theirs make it moot).
        self.scorer = scorer or (scorer_for(config) if self._workers is None else None)

    def close(self) -> None:
        """Stop the scoring workers, those it was given too."""
        if self._workers is not None:
            self._workers.close()

    def process(
        self, raws: Iterable[RawMention], *, atomic: bool = False
    ) -> tuple[PipelineReport, list[MentionRow]]:
        """Match, score and store ``raws``; return the counts and the newly stored mentions.

        Posts already stored (same source and id) are counted as duplicates without being
        scored again: most of what a feed serves, it served before.  A mention the database
        refuses is skipped and counted in ``failed``, unless ``atomic``: then the mentions are
        stored in one transaction, all or none, and the error is raised.
        """
        return self._store(self._send(raws), atomic=atomic)

    def process_all(
        self, batches: Iterable[list[RawMention]]
    ) -> Iterator[tuple[PipelineReport, list[MentionRow]]]:
        """``process`` each of ``batches`` in turn.  With workers, batches are matched and sent
        to be scored ``AHEAD`` per worker before the oldest is stored: the workers score while
        this process stores, instead of each waiting for the other.  A batch sent is stored even
        when the next one cannot be read or sent, or the caller stops early."""
        if self._workers is None:
            for raws in batches:
                yield self.process(raws)
            return
        sent: deque[_Sent] = deque()
        try:
            for raws in batches:
                sent.append(self._send(raws))
                if len(sent) > AHEAD * self._workers.count:
                    yield self._store(sent.popleft())
        except (Exception, GeneratorExit):
            while sent:
                self._store(sent.popleft())
            raise
        while sent:
            yield self._store(sent.popleft())

    def _send(self, raws: Iterable[RawMention]) -> _Sent:
        """Match ``raws``, leave out those stored already, and send the rest to be scored.

        A post that an earlier batch still being stored holds too is scored again, and then
        counted as a duplicate when storage finds it there."""
        raws = list(raws)
        report = PipelineReport(received=len(raws))
        usable = [raw for raw in map(_storable, raws) if self._identified(raw, report)]
        known = self._known(usable)
        todo: list[tuple[RawMention, list[str]]] = []
        for raw in usable:
            brands = self.matcher.match(raw.text)
            if not brands:
                report.unmatched += 1
            elif (raw.source, _bounded_id(raw.external_id)) in known:
                report.duplicates += len(brands)
            else:
                todo.append((raw, brands))
        return _Sent(report, todo, self._assess(todo))

    def _store(
        self, sent: _Sent, *, atomic: bool = False
    ) -> tuple[PipelineReport, list[MentionRow]]:
        report, failed = sent.report, []
        # Rows are stored batch by batch as they are scored; each counts as a duplicate until
        # storage says it is new (or could not be stored).
        new = self.storage.add_mentions(self._rows(sent), atomic=atomic, failed=failed)
        report.stored = len(new)
        report.failed += len(failed)
        report.duplicates -= len(new) + len(failed)
        report.count_posts(new, failed)
        return report, new

    @staticmethod
    def _identified(raw: RawMention, report: PipelineReport) -> bool:
        """Whether ``raw`` has an id to be told apart by; if not, it is counted and logged."""
        if raw.external_id.strip():
            return True
        report.failed += 1
        log.warning("mention not stored source=%s: its id is blank", raw.source)
        return False

    def _known(self, raws: list[RawMention]) -> set[tuple[str, str]]:
        """The (source, id) of the posts in ``raws`` that are already stored."""
        by_source: dict[str, list[str]] = {}
        for raw in raws:
            by_source.setdefault(raw.source, []).append(_bounded_id(raw.external_id))
        return self.storage.known_ids(self.brands, by_source)

    @staticmethod
    def _rows(sent: _Sent) -> Iterator[MentionRow]:
        fetched_at = utcnow()
        report = sent.report
        for (raw, brands), found in zip(sent.todo, sent.assessed, strict=True):
            url = web_url(raw.url)
            row: MentionRow = {
                "source": raw.source,
                "source_type": raw.source_type,
                "external_id": _bounded_id(raw.external_id),
                "url": url,
                "canonical_url": _bounded_url(_storable_url(canonical_url(url))),
                "author": raw.author,
                "author_followers": raw.author_followers,
                "likes": raw.likes,
                "reposts": raw.reposts,
                "replies": raw.replies,
                "views": raw.views,
                "text": raw.text,
                "language": raw.language or found.sentiment.language,  # the source knows best
                "published_at": _published(raw, fetched_at, report),
                "fetched_at": fetched_at,
                "sentiment_compound": found.sentiment.compound,
                "sentiment_label": found.sentiment.label,
                "reach_score": found.reach,
                "category": found.triage.category,
                "priority": found.triage.priority,
                "brand": brands[0],
            }
            report.duplicates += len(brands)
            others = [{**row, "brand": brand} for brand in brands[1:]]
            yield row
            yield from others

    def _assess(self, todo: list[tuple[RawMention, list[str]]]) -> Iterator[Assessment]:
        """Assessments of ``todo`` in order.  Without workers they are made here and now, as
        one batch (the models read it at once); with workers, all are sent at once and come
        back chunk by chunk, so the first rows are stored while later ones are being scored."""
        jobs = [
            (Post(raw.text, raw.language, brands, raw.rating), reach_of(raw))
            for raw, brands in todo
        ]
        if self.scorer is not None:
            return iter(assess(self.scorer, jobs))
        assert self._workers is not None
        # Only the posts cross to the workers, and plain tuples come back.
        return _received(self._workers.score([post for post, _ in jobs]), jobs)


@dataclass(slots=True)
class _Sent:
    """A batch matched and sent to be scored, waiting to be stored."""

    report: PipelineReport
    todo: list[tuple[RawMention, list[str]]]
    """The posts to store, with the brands each mentions."""
    assessed: Iterator[Assessment]
    """Their assessments, in the same order, as they come."""


def _received(futures: list[Future[list[Scored]]], jobs: list[Job]) -> Iterator[Assessment]:
    """The assessments of ``jobs``, as the workers' scores for them come.  They are triaged
    here: scoring took the worker longer than matching and storing took this process, which
    waited for it (`brandmon ingest` of 100,000 posts with one worker: the worker's CPU time
    9.9-10.0 -> 7.6-8.4 s, this process's 8.7-9.3 -> 8.1-8.5 s)."""
    scored = (sentiment for future in futures for sentiment in future.result())
    for job, sentiment in zip(jobs, scored, strict=True):
        yield triaged(job, Sentiment(*sentiment))


def ingest_lines(
    pipeline: Pipeline,
    items: Iterable[RawMention | LineError],
    *,
    skipped: Callable[[LineError], None] = lambda line: None,
    done: Callable[[int], None] = lambda lines: None,
) -> tuple[PipelineReport, int]:
    """Feed ``items`` (a JSON-lines file read by ``read_jsonl``) through ``pipeline`` in batches
    of the storage's batch size; return the counts and how many lines were skipped.  Each
    unreadable line is passed to ``skipped``; ``done`` is told how many lines each step dealt
    with (for a progress bar)."""
    errors = 0

    def batches() -> Iterator[list[RawMention]]:
        nonlocal errors
        batch: list[RawMention] = []
        for item in items:
            if isinstance(item, LineError):
                skipped(item)
                errors += 1
                done(1)
                continue
            batch.append(item)
            if len(batch) >= pipeline.storage.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    report = PipelineReport()
    for stored, _ in pipeline.process_all(batches()):
        report.add(stored)
        done(stored.received)
    return report, errors


AHEAD = 2
"""Batches per worker sent to be scored before the oldest is stored: one being scored, one
waiting, so a worker never waits for this process to finish storing."""
