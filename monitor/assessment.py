"""Scoring and triaging posts as the daemon does: the scorer a config calls for, and one batch
of posts through it.

Apart from the pipeline, which also matches and stores, so that `brandmon score` and `train`
need neither the database layer nor its imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitor.config import BrandConfig, Config
from monitor.scoring import Post, Sentiment, SentimentScorer
from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.scoring.model import ModelShelf, SentimentModel
from monitor.triage import Triage, triage

Job = tuple[Post, float]
"""A post to assess, and its reach."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """What scoring found out about one post."""

    sentiment: Sentiment
    reach: float
    triage: Triage


def assess(scorer: SentimentScorer, jobs: Sequence[Job]) -> list[Assessment]:
    """Score and triage each ``(post, reach)`` of ``jobs``, as one batch."""
    sentiments = scorer.score_many([post for post, _ in jobs])
    return [triaged(job, sentiment) for job, sentiment in zip(jobs, sentiments, strict=True)]


def triaged(job: Job, sentiment: Sentiment) -> Assessment:
    """The assessment of ``job``'s post, scored ``sentiment``: triaged by it and its reach."""
    post, reach = job
    return Assessment(sentiment, reach, triage(post.text, sentiment, reach))


def brand_terms(brands: Iterable[BrandConfig]) -> dict[str, list[str]]:
    """Each brand's words that name it (keywords, aliases, handles, hashtags), which scoring
    masks so that a brand called "Target" or "@Glad" lends no post its word's sentiment."""
    return {b.name: [*b.keywords, *b.aliases, *b.handles, *b.hashtags] for b in brands}


def scorer_for(
    config: Config, models: Mapping[str, SentimentModel] | None = None
) -> ComplaintAwareScorer:
    """The scorer the daemon uses for ``config``: its brands' own lexicons and terms, the team's
    models (``[sentiment] models``) before the shipped ones; ``models`` replaces some of them,
    by language (as ``brandmon train`` tries candidates)."""
    return ComplaintAwareScorer(
        brand_lexicons={b.name: b.lexicon for b in config.brands if b.lexicon},
        brand_terms=brand_terms(config.brands),
        models=ModelShelf.for_team(config.sentiment.models, loaded=models),
    )
