"""What each page of the web console shows, read from storage (rendering is the templates').

Each function takes the request's query (or form) fields and returns the template's context.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.assessment import scorer_for
from monitor.config import Config
from monitor.model import Mention, to_utc, utcnow
from monitor.report import build_report, chart_png
from monitor.scoring import Post, Sentiment
from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.storage import Storage
from monitor.vocabulary import CATEGORIES, PRIORITIES, SENTIMENTS

PAGE_SIZE = 100
TOP_MENTIONS = 10
CHART_MARGIN = timedelta(hours=6)
"""How much of the time before an incident (and after its end) its chart shows."""


class NotFound(LookupError):
    """No incident or mention has the id asked for."""


@dataclass(frozen=True, slots=True)
class Scored:
    """A mention with why it was scored so: the rules that match it (read again now, as the
    rules are not stored), the language it was read as, and the confidence."""

    mention: Mention
    why: Sentiment


class Pages:
    """The console's pages over one storage and config."""

    def __init__(self, config: Config, storage: Storage) -> None:
        self.config = config
        self.storage = storage
        self._scorer: ComplaintAwareScorer | None = None
        self._scorer_lock = threading.Lock()

    @property
    def brands(self) -> list[str]:
        return [brand.name for brand in self.config.brands]

    def incidents(self) -> dict[str, Any]:
        incidents = self.storage.recent_incidents()
        return {
            "open": [i for i in incidents if i.resolved_at is None],
            "past": [i for i in incidents if i.resolved_at is not None],
        }

    def incident(self, incident_id: int) -> dict[str, Any]:
        found = self.storage.incident(incident_id)
        if found is None:
            raise NotFound(f"no incident has id {incident_id}")
        incident, ack = found
        started = to_utc(incident.started_at)
        ended = to_utc(incident.resolved_at)
        assert started is not None
        history = [
            (datetime.fromisoformat(at), level) for at, level in json.loads(incident.history)
        ]
        mentions = self.storage.mentions_by_id(json.loads(incident.mention_ids))
        first = min(mentions, key=lambda m: (m.published_at, m.id or 0), default=None)
        sources: dict[str, int] = {}
        for mention in mentions:
            sources[mention.source_type] = sources.get(mention.source_type, 0) + 1
        report = build_report(
            self.config,
            self.storage,
            incident.brand,
            started - CHART_MARGIN,
            min(utcnow(), (ended or utcnow()) + CHART_MARGIN),
        )
        return {
            "incident": incident,
            "ack": ack,
            "history": history,
            "first": first,
            "sources": sorted(sources.items(), key=lambda kv: -kv[1]),
            "top": mentions[:TOP_MENTIONS],
            "thresholds": report.thresholds,
            "chart": base64.b64encode(chart_png(report)).decode(),
        }

    def queue(self, fields: Mapping[str, str]) -> dict[str, Any]:
        filters = {name: fields.get(name, "").strip() for name in ("brand", "source", "language")}
        mentions = self.storage.find_mentions(**filters, queue=True, limit=PAGE_SIZE)
        groups: dict[str, dict[str, list[Mention]]] = {
            p: {c: [] for c in CATEGORIES} for p in PRIORITIES
        }
        for mention in mentions:
            by_category = groups[mention.priority or PRIORITIES[-1]]
            by_category.setdefault(mention.category or "other", []).append(mention)
        return {
            "filters": filters,
            "groups": [  # each priority's categories the most urgent first, as triage ranks them
                (p, [(c, found) for c, found in by_category.items() if found])
                for p, by_category in groups.items()
            ],
            "states": self.storage.mention_states([m.id for m in mentions if m.id is not None]),
            "count": len(mentions),
        }

    def mentions(self, fields: Mapping[str, str]) -> dict[str, Any]:
        names = ("q", "author", "brand", "source", "since", "until")
        filters = {name: fields.get(name, "").strip() for name in names}
        errors = []
        period = {}
        for name, key, shift in (("since", "start", 0), ("until", "end", 1)):
            if filters[name]:
                try:
                    day = datetime.strptime(filters[name], "%Y-%m-%d").replace(tzinfo=UTC)
                except ValueError:
                    errors.append(f"{name}: expected a date such as 2026-11-29")
                    continue
                period[key] = day + timedelta(days=shift)  # "until" includes its day
        mentions = self.storage.find_mentions(
            text=filters["q"],
            author=filters["author"],
            brand=filters["brand"],
            source=filters["source"],
            limit=PAGE_SIZE,
            **period,
        )
        return {"filters": filters, "errors": errors, "results": self._scored(mentions)}

    def label(self, mention_id: int) -> dict[str, Any]:
        mentions = self.storage.mentions_by_id([mention_id])
        if not mentions:
            raise NotFound(f"no mention has id {mention_id}")
        return {
            "result": self._scored(mentions)[0],
            "label": self.storage.mention_label(mention_id),
            "sentiments": SENTIMENTS,
            "categories": CATEGORIES,
        }

    def _scored(self, mentions: list[Mention]) -> list[Scored]:
        if not mentions:
            return []
        posts = [Post(m.text, m.language, [m.brand]) for m in mentions]
        with self._scorer_lock:  # one page at a time: the scorer is not made for threads
            if self._scorer is None:  # built on first use: loading the models takes a while
                self._scorer = scorer_for(self.config)
            found = self._scorer.score_many(posts)
        return [Scored(m, why) for m, why in zip(mentions, found, strict=True)]
