"""Triage: which team should answer a mention, and how urgently.

Customer-service practice puts first what tolerates no delay — anything that can become a PR
crisis — then account and technical questions and complaints, then requests to buy or book,
then the rest; and a voice with a large audience before a small one.  ``triage`` applies that
order with the rules of ``monitor/data/lexicon/triage.toml`` to a scored mention and returns its
category and its priority, P1 (most urgent) to P4.  Like scoring, it reads the first
``SCORED_CHARS`` characters of the text (see ``monitor.scoring.limits``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from monitor.scoring.lexicon import PatternSet
from monitor.scoring.limits import scored_form
from monitor.scoring.sentiment import Sentiment


@dataclass(frozen=True, slots=True)
class Triage:
    category: str
    priority: str


class Triager:
    def __init__(self, rules: dict[str, Any]) -> None:
        self._crisis_families = set(rules["crisis"]["families"])
        self._technical_families = set(rules["account_or_technical"]["families"])
        languages: dict[str, dict[str, list[str]]] = rules["languages"]
        # Every language's safety phrases are looked for in every mention, with the phrases of
        # the mention's language in the same pass: one set per language, compiled when a
        # mention in that language first comes (most streams are in a few of them).
        safety = {_SAFETY: [p for t in languages.values() for p in t["safety"]]}
        english = {
            "crisis": rules["crisis"]["patterns"],
            "technical": rules["account_or_technical"]["patterns"],
            "purchase": rules["purchase_or_service"]["patterns"],
            "question": rules["question"]["patterns"],
        }
        self._english = PatternSet({**english, **safety})
        self._local_groups = {
            language: {**{group: t[group] for group in _LOCAL_GROUPS}, **safety}
            for language, t in languages.items()
        }
        self._safety = safety
        self._local: dict[str, PatternSet] = {}
        priority = rules["priority"]
        self._base: dict[str, int] = priority["base"]
        self._raise_at: list[float] = sorted(priority["raise_at"])
        self._strong_negative: float = priority["strong_negative"]
        self._highest_for_positive: int = priority["highest_for_positive"]

    def triage(self, text: str, sentiment: Sentiment, reach: float) -> Triage:
        category = self.category(text, sentiment)
        level = self._base[category]
        level -= sum(1 for threshold in self._raise_at if reach >= threshold)
        if (
            category in ("complaint", "account_or_technical_question")
            and sentiment.confidence == "high"  # keyword scores are too coarse to rank by
            and sentiment.compound <= self._strong_negative
        ):
            level -= 1
        if category in ("praise", "other"):
            level = max(level, self._highest_for_positive)
        return Triage(category, f"P{min(4, max(1, level))}")

    def category(self, text: str, sentiment: Sentiment) -> str:
        rules = set(sentiment.rules)
        negative = sentiment.label == "negative"
        found = self._phrases(scored_form(text), sentiment.language)
        if (
            rules & self._crisis_families
            or _SAFETY in found
            or (negative and ("crisis" in rules or "crisis" in found))
        ):
            return "crisis_risk"
        if rules & self._technical_families:
            return "account_or_technical_question"
        asks = negative or "question" in found
        if asks and "technical" in found:
            return "account_or_technical_question"
        # A question about buying that fires no complaint rule is a request, even when a model
        # reads it as negative (several do, English included: "how much is the ...?").
        if "question" in found and "purchase" in found and not rules:
            return "purchase_or_service_request"
        if negative:
            return "complaint"
        if asks and "purchase" in found:
            return "purchase_or_service_request"
        if sentiment.label == "positive":
            return "praise"
        return "other"

    def _phrases(self, read: str, language: str | None) -> set[str]:
        """The groups of phrases found in ``read`` among those of its ``language`` (English
        when the language is unknown, none for a language without phrases), and ``_SAFETY``
        if a safety phrase of any language is."""
        if language in (None, "en"):
            return self._english.matches(read)
        key = language if language in self._local_groups else _SAFETY  # safety phrases only
        phrases = self._local.get(key)
        if phrases is None:
            phrases = self._local[key] = PatternSet(self._local_groups.get(key, self._safety))
        return phrases.matches(read)


_LOCAL_GROUPS = ("technical", "purchase", "question")
_SAFETY = "safety"


@cache
def default_triager() -> Triager:
    text = resources.files("monitor.data").joinpath("lexicon", "triage.toml").read_text("utf-8")
    return Triager(tomllib.loads(text))


def triage(text: str, sentiment: Sentiment, reach: float) -> Triage:
    """The category and priority of a mention scored ``sentiment`` with ``reach`` (0–100)."""
    return default_triager().triage(text, sentiment, reach)
