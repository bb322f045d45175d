"""Reach: a 0-100 influence score for a mention, from its author's audience and its engagement.

The score answers "how many people is this mention likely to reach?" on a scale where a post by
an account with no followers and no engagement is 0 and a post by an account with 100 million
followers that got a million likes is 100.

How it is computed::

    audience    a = min(1, log10(1 + followers) / 8)            # 100 M followers -> 1
    engagement  w = likes·wl + reposts·wr + replies·wc + views·wv
                e = min(1, log10(1 + w) / 6)                     # w = 1 M -> 1
    x = 0.7·a + 0.3·e     if the source gives follower counts
    x = e                 if it does not (Reddit, Hacker News)
    reach = round(100 · x², 1)

The weights ``wl, wr, wc, wv`` depend on the source type (``SOURCE_WEIGHTS``) and say how many
likes one repost, reply or view is worth there.  A count the source does not give (``None``)
counts as 0, as do negative counts; with nothing known the score is 0.

Why the square: on a log scale alone, a hundred posts by 20-follower accounts would add up to
more reach than ten posts by 1 M-follower accounts, which is not how a PR crisis spreads.
Squaring makes the score convex in log-followers, so big accounts dominate a sum of scores:
ten 1 M-follower complaints (27.6 each) outweigh a hundred 20-follower ones (1.3 each).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

AUDIENCE_WEIGHT = 0.7
FOLLOWERS_FOR_FULL_AUDIENCE_LOG10 = 8  # 100 M followers
ENGAGEMENT_FOR_FULL_SCORE_LOG10 = 6  # 1 M weighted engagement


@dataclass(frozen=True, slots=True)
class EngagementWeights:
    """How many likes one interaction of each kind is worth on a source."""

    likes: float = 1.0
    reposts: float = 2.0
    replies: float = 1.5
    views: float = 0.01


DEFAULT_WEIGHTS = EngagementWeights()

SOURCE_WEIGHTS: Mapping[str, EngagementWeights] = MappingProxyType(
    {
        # Likes/favourites, reposts/boosts and replies are what the defaults were set for.
        "x": DEFAULT_WEIGHTS,
        "mastodon": DEFAULT_WEIGHTS,
        "bluesky": DEFAULT_WEIGHTS,
        # A Reddit post's score (net upvotes) arrives as likes; comments are replies and are
        # what keeps a thread on the front page, so they count as much as a crosspost.
        "reddit": EngagementWeights(replies=2.0),
        # Hacker News points arrive as likes.  They are scarce -- about a hundred put a story on
        # the front page in front of a large audience -- so a point is worth several likes.
        "hackernews": EngagementWeights(likes=3.0, replies=2.0),
        # YouTube view counts run far above every other count and include autoplay and
        # embeds, so views are cheap; writing a comment takes more than a like.
        "youtube": EngagementWeights(replies=2.0, views=0.001),
        # Reviews have no followers: everyone who opens the app or company page sees them.  A
        # "helpful" vote (Play's thumbsUpCount, Trustpilot's numberOfLikes, as likes) is a reader
        # who read it and agreed, worth several likes; the App Store feed gives no counts.
        "app_store": DEFAULT_WEIGHTS,
        "google_play": EngagementWeights(likes=3.0),
        "trustpilot": EngagementWeights(likes=3.0),
        # Discourse likes, Weibo likes (attitudes), reposts and comments: the defaults.  Telegram
        # gives no counts: its messages' reach is what the chat's members see.
        "discourse": DEFAULT_WEIGHTS,
        "telegram": DEFAULT_WEIGHTS,
        "weibo": DEFAULT_WEIGHTS,
        # Feeds, webhooks and JSONL imports carry whatever counts the sender had: defaults.
        "rss": DEFAULT_WEIGHTS,
        "webhook": DEFAULT_WEIGHTS,
        "jsonl": DEFAULT_WEIGHTS,
    }
)


def _count(value: int | None) -> int:
    """A count as the formula uses it: unknown and negative counts are 0."""
    return max(0, value) if value is not None else 0


def _log_fraction(value: float, log10_for_full: int) -> float:
    return min(1.0, math.log10(1 + value) / log10_for_full)


def reach_score(
    *,
    source_type: str,
    followers: int | None = None,
    likes: int | None = None,
    reposts: int | None = None,
    replies: int | None = None,
    views: int | None = None,
) -> float:
    """The reach score (0-100, one decimal) of a mention; see the module docstring.

    ``followers=None`` means the source does not report followers: the score then rests on
    engagement alone rather than treating the author as having no audience.
    """
    weights = SOURCE_WEIGHTS.get(source_type, DEFAULT_WEIGHTS)
    weighted = (
        _count(likes) * weights.likes
        + _count(reposts) * weights.reposts
        + _count(replies) * weights.replies
        + _count(views) * weights.views
    )
    engagement = _log_fraction(weighted, ENGAGEMENT_FOR_FULL_SCORE_LOG10)
    if followers is None:
        x = engagement
    else:
        audience = _log_fraction(_count(followers), FOLLOWERS_FOR_FULL_AUDIENCE_LOG10)
        x = AUDIENCE_WEIGHT * audience + (1 - AUDIENCE_WEIGHT) * engagement
    return round(100 * x * x, 1)
