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


def reach_of(raw: RawMention) -> float:
    return reach_score(
        source_type=raw.source_type,
        followers=raw.author_followers,
        likes=raw.likes,
        reposts=raw.reposts,
        replies=raw.replies,
        views=raw.views,
    )


def assess(
    scorer: SentimentScorer, text: str, language: str | None, brands: list[str], reach: float
) -> Assessment:
    sentiment = scorer.score(text, language=language, brands=brands)
    return Assessment(sentiment, reach, triage(text, sentiment, reach))


class Pipeline:
    """Match, score, triage and store.  With ``workers`` > 1, scoring and triage run in that
    many processes while this one matches, stores and sends them more; call ``close`` when
    done."""

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
        # Rows are stored batch by batch as they are scored; each counts as a duplicate until
        # storage says it is new.
        new = self.storage.add_mentions(self._mentions(raws, self._known(raws), report))
        report.stored = len(new)
        report.duplicates -= len(new)
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
                "brand": brands[0],
            }
            report.duplicates += len(brands)
            others = [{**row, "brand": brand} for brand in brands[1:]]
            yield row
            yield from others

    def _assess(self, todo: list[tuple[RawMention, list[str]]]) -> Iterator[Assessment]:
        """Assessments of ``todo`` in order; with workers, all are sent at once and come back
        chunk by chunk, so the first rows are stored while later ones are being scored."""
        jobs = [(raw.text, raw.language, brands, reach_of(raw)) for raw, brands in todo]
        if self._pool is None:
            yield from (assess(self.scorer, *job) for job in jobs)
            return
        # Only what scoring needs crosses to the workers, and plain tuples come back.
        chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
        for future in [self._pool.submit(_assess_chunk, chunk) for chunk in chunks]:
            for (compound, label, confidence, language, rules), reach, verdict in future.result():
                sentiment = Sentiment(compound, label, confidence, language, rules)
                yield Assessment(sentiment, reach, Triage(*verdict))


_CHUNK = 100
"""Posts per task sent to a worker: small enough to keep every worker busy, large enough that
sending them costs little."""
_worker_scorer: ComplaintAwareScorer | None = None

_Job = tuple[str, str | None, list[str], float]
_Scored = tuple[tuple[float, str, str, str | None, tuple[str, ...]], float, tuple[str, str]]


def _start_worker(lexicons: dict[str, dict[str, list[str]]]) -> None:
    global _worker_scorer
    _worker_scorer = ComplaintAwareScorer(brand_lexicons=lexicons)


def _assess_chunk(chunk: list[_Job]) -> list[_Scored]:
    assert _worker_scorer is not None
    scored: list[_Scored] = []
    for job in chunk:
        found = assess(_worker_scorer, *job)
        s, verdict = found.sentiment, found.triage
        sentiment = (s.compound, s.label, s.confidence, s.language, s.rules)
        scored.append((sentiment, found.reach, (verdict.category, verdict.priority)))
    return scored
