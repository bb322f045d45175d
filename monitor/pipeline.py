"""The one path every mention takes: match → score → triage → store.

Polled and pushed mentions (``brandmon run``, ``brandmon ingest``) go through the same
``Pipeline`` so a mention is treated the same wherever it came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from monitor.config import Config
from monitor.matching import BrandMatcher
from monitor.model import MAX_ID_LENGTH, MAX_URL_LENGTH, MentionRow, RawMention, to_utc, utcnow
from monitor.scoring import Sentiment, SentimentScorer, reach_score
from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.storage import Storage
from monitor.triage import Triage, triage
from monitor.urls import canonical_url


@dataclass(slots=True)
class PipelineReport:
    """Counts for one batch: posts received, matched to no brand, brand mentions new/known."""

    received: int = 0
    unmatched: int = 0
    stored: int = 0
    duplicates: int = 0

    def add(self, other: PipelineReport) -> None:
        self.received += other.received
        self.unmatched += other.unmatched
        self.stored += other.stored
        self.duplicates += other.duplicates


def _bounded_id(external_id: str) -> str:
    """Ids longer than the column (some feeds use whole URLs) are replaced by a stable hash."""
    if len(external_id) <= MAX_ID_LENGTH:
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


def _bounded_url(url: str | None) -> str | None:
    """A canonical URL too long to index is not used for de-duplication (the id still is)."""
    return url if url is None or len(url) <= MAX_URL_LENGTH else None


@dataclass(frozen=True, slots=True)
class Assessment:
    """What scoring found out about one post."""

    sentiment: Sentiment
    reach: float
    triage: Triage


def assess(scorer: SentimentScorer, raw: RawMention, brands: list[str]) -> Assessment:
    sentiment = scorer.score(raw.text, language=raw.language, brands=brands)
    reach = reach_score(
        source_type=raw.source_type,
        followers=raw.author_followers,
        likes=raw.likes,
        reposts=raw.reposts,
        replies=raw.replies,
        views=raw.views,
    )
    return Assessment(sentiment, reach, triage(raw.text, sentiment, reach))


class Pipeline:
    """Match, score, triage and store.  With ``workers`` > 1, scoring — the costly part —
    runs in that many processes; call ``close`` when done."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        scorer: SentimentScorer | None = None,
        *,
        workers: int = 1,
    ) -> None:
        self.storage = storage
        self.matcher = BrandMatcher(config.brands)
        self.brands = [brand.name for brand in config.brands]
        lexicons = {b.name: b.lexicon for b in config.brands if b.lexicon}
        if workers > 1 and scorer is not None:
            raise ValueError("worker processes build their own scorer: pass no scorer")
        self.scorer = scorer or ComplaintAwareScorer(brand_lexicons=lexicons)
        self._pool = (
            ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(lexicons,))
            if workers > 1
            else None
        )
        self._workers = workers

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def process(self, raws: Iterable[RawMention]) -> tuple[PipelineReport, list[MentionRow]]:
        """Match, score and store ``raws``; return the counts and the newly stored mentions.

        Posts already stored (same source and id) are counted as duplicates without being
        scored again: most of what a feed serves, it served before.
        """
        report = PipelineReport()
        raws = list(raws)
        candidates = list(self._mentions(raws, self._known(raws), report))
        new = self.storage.add_mentions(candidates)
        report.stored = len(new)
        report.duplicates += len(candidates) - len(new)
        return report, new

    def _known(self, raws: list[RawMention]) -> set[tuple[str, str]]:
        """The (source, id) of the posts in ``raws`` that are already stored."""
        by_source: dict[str, list[str]] = {}
        for raw in raws:
            by_source.setdefault(raw.source, []).append(_bounded_id(raw.external_id))
        return {
            (source, external_id)
            for source, ids in by_source.items()
            for external_id in self.storage.known_ids(self.brands, source, ids)
        }

    def _mentions(
        self, raws: Iterable[RawMention], known: set[tuple[str, str]], report: PipelineReport
    ) -> Iterator[MentionRow]:
        fetched_at = utcnow()
        todo: list[tuple[RawMention, list[str]]] = []
        for raw in raws:
            report.received += 1
            brands = self.matcher.match(raw.text)
            if not brands:
                report.unmatched += 1
            elif (raw.source, _bounded_id(raw.external_id)) in known:
                report.duplicates += len(brands)
            else:
                todo.append((raw, brands))
        for (raw, brands), found in zip(todo, self._assess(todo), strict=True):
            row: MentionRow = {
                "source": raw.source,
                "source_type": raw.source_type,
                "external_id": _bounded_id(raw.external_id),
                "url": raw.url,
                "canonical_url": _bounded_url(canonical_url(raw.url)),
                "author": raw.author,
                "author_followers": raw.author_followers,
                "likes": raw.likes,
                "reposts": raw.reposts,
                "replies": raw.replies,
                "views": raw.views,
                "text": raw.text,
                "language": found.sentiment.language or raw.language,
                "published_at": to_utc(raw.published_at) or fetched_at,
                "fetched_at": fetched_at,
                "sentiment_compound": found.sentiment.compound,
                "sentiment_label": found.sentiment.label,
                "reach_score": found.reach,
                "category": found.triage.category,
                "priority": found.triage.priority,
            }
            for brand in brands:
                yield {**row, "brand": brand}

    def _assess(self, todo: list[tuple[RawMention, list[str]]]) -> list[Assessment]:
        if self._pool is None or len(todo) < 2 * self._workers:
            return [assess(self.scorer, raw, brands) for raw, brands in todo]
        size = -(-len(todo) // self._workers)
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        return [found for chunk in self._pool.map(_assess_chunk, chunks) for found in chunk]


_worker_scorer: ComplaintAwareScorer | None = None


def _start_worker(lexicons: dict[str, dict[str, list[str]]]) -> None:
    global _worker_scorer
    _worker_scorer = ComplaintAwareScorer(brand_lexicons=lexicons)


def _assess_chunk(chunk: list[tuple[RawMention, list[str]]]) -> list[Assessment]:
    assert _worker_scorer is not None
    return [assess(_worker_scorer, raw, brands) for raw, brands in chunk]
