"""The words mentions are labelled with: sentiments, triage categories and priorities.

Kept apart from ``monitor.model`` (the tables) so that the config and the command line can use
them without loading the database layer.
"""

from __future__ import annotations

from typing import Literal, get_args

SENTIMENTS = ("negative", "neutral", "positive")
"""The sentiment labels a scorer gives and a person may correct a mention to."""

Category = Literal[
    "crisis_risk",
    "account_or_technical_question",
    "complaint",
    "purchase_or_service_request",
    "praise",
    "other",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
"""The triage categories (``monitor.triage``), the most urgent first."""
Priority = Literal["P1", "P2", "P3", "P4"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
"""The triage priorities, P1 the most urgent."""
