"""Processes that score posts for a pipeline (``brandmon ingest``) while it stores.

They start when ``ScoringWorkers`` is made (``new_pool``), not when the first posts are sent:
a worker takes about a second to import the scoring modules, build its scorer and load lingua's
models, and ``ingest`` needs as long to get ready itself (the JSON-line parser, the schema, the
pipeline), so it makes them as soon as it has read its configuration and both get ready at
once, on two cores.  This module imports nothing heavy for that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from monitor.config import Config
from monitor.workers import new_pool

if TYPE_CHECKING:
    from monitor.scoring import Post
    from monitor.scoring.complaints import ComplaintAwareScorer

CHUNK = 500
"""Posts per task sent to a worker: small enough to keep every worker busy, large enough that
sending them costs little."""

Scored = tuple[float, str, str, str | None, tuple[str, ...]]
"""A sentiment as it crosses back from a worker: its fields."""


class ScoringWorkers:
    """``count`` worker processes, each with the scorer ``config`` asks for; none (``count``
    is 0) where processes cannot be started, which is logged (see ``new_pool``).

    Each worker first scores ``warm_up`` (the first posts to come, say) and forgets it: what
    those posts need that is loaded when first needed (lingua's models for their languages,
    about 0.2 s each) is then loaded while the caller gets ready, not when it sends them."""

    def __init__(self, config: Config, count: int, *, warm_up: Sequence[str] = ()) -> None:
        self._pool = (
            new_pool(count, _start, config, warm_up, method=None, doing="posts are scored")
            if count > 0
            else None
        )
        self.count = count if self._pool is not None else 0

    def score(self, posts: list[Post]) -> list[Future[list[Scored]]]:
        """The sentiments of ``posts``, ``CHUNK`` at a time, as each worker is done."""
        assert self._pool is not None, "no worker processes: score in this process"
        chunks = (posts[i : i + CHUNK] for i in range(0, len(posts), CHUNK))
        return [self._pool.submit(_score, chunk) for chunk in chunks]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


_scorer: ComplaintAwareScorer | None = None


def _start(config: Config, warm_up: Sequence[str]) -> None:
    from monitor.assessment import scorer_for
    from monitor.scoring import Post

    global _scorer
    _scorer = scorer_for(config)
    _scorer.score_many([Post(text) for text in warm_up])


def _score(chunk: list[Post]) -> list[Scored]:
    assert _scorer is not None
    return [
        (s.compound, s.label, s.confidence, s.language, s.rules) for s in _scorer.score_many(chunk)
    ]
