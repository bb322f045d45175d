"""Scoring a mention: its sentiment and its reach."""

from __future__ import annotations

from monitor.scoring.reach import reach_score
from monitor.scoring.sentiment import Post, Sentiment, SentimentScorer, VaderScorer

__all__ = ["Post", "Sentiment", "SentimentScorer", "VaderScorer", "reach_score"]
