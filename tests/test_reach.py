from __future__ import annotations

import math

import pytest

from monitor.scoring import reach_score
from monitor.scoring.reach import SOURCE_WEIGHTS, EngagementWeights


def test_documented_example_followers_only() -> None:
    expected = 100 * (0.7 * math.log10(10_001) / 8) ** 2
    assert reach_score(source_type="x", followers=10_000, likes=0) == round(expected, 1)
    assert reach_score(source_type="x", followers=10_000, likes=0) == 12.3


def test_documented_example_followers_and_engagement() -> None:
    # weighted engagement on default weights: 50 likes + 10 reposts * 2 + 4 replies * 1.5 + 0
    weighted = 50 * 1.0 + 10 * 2.0 + 4 * 1.5
    a = math.log10(1 + 5_000) / 8
    e = math.log10(1 + weighted) / 6
    expected = round(100 * (0.7 * a + 0.3 * e) ** 2, 1)
    got = reach_score(source_type="bluesky", followers=5_000, likes=50, reposts=10, replies=4)
    assert got == expected


def test_unknown_followers_uses_engagement_only() -> None:
    expected = round(100 * (math.log10(1 + 500) / 6) ** 2, 1)
    assert reach_score(source_type="webhook", likes=500) == expected


def test_unknown_followers_is_not_treated_as_zero_followers() -> None:
    unknown = reach_score(source_type="x", likes=1_000)
    zero = reach_score(source_type="x", followers=0, likes=1_000)
    assert unknown > zero


def test_all_missing_is_zero() -> None:
    assert reach_score(source_type="rss") == 0.0


def test_no_followers_and_no_engagement_is_zero() -> None:
    assert reach_score(source_type="x", followers=0, likes=0, reposts=0, replies=0, views=0) == 0.0


def test_negative_inputs_count_as_zero() -> None:
    negative = reach_score(
        source_type="x", followers=-5, likes=-1, reposts=-100, replies=-3, views=-(10**9)
    )
    assert negative == 0.0
    assert reach_score(source_type="x", followers=1_000, likes=-50) == reach_score(
        source_type="x", followers=1_000, likes=0
    )


def test_monotonic_in_followers() -> None:
    scores = [
        reach_score(source_type="x", followers=f, likes=10)
        for f in [0, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]
    ]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)


@pytest.mark.parametrize("field", ["likes", "reposts", "replies", "views"])
@pytest.mark.parametrize("followers", [None, 1_000])
def test_monotonic_in_each_kind_of_engagement(field: str, followers: int | None) -> None:
    scores = [
        reach_score(source_type="x", followers=followers, **{field: n})
        for n in [0, 10, 1_000, 100_000, 10_000_000]
    ]
    assert scores == sorted(scores)
    assert scores[-1] > scores[0]


@pytest.mark.parametrize("source_type", [*SOURCE_WEIGHTS, "something-new"])
@pytest.mark.parametrize("followers", [None, 0, 10**12, 10**40])
def test_score_stays_within_0_and_100(source_type: str, followers: int | None) -> None:
    huge = 10**40
    top = reach_score(
        source_type=source_type,
        followers=followers,
        likes=huge,
        reposts=huge,
        replies=huge,
        views=huge,
    )
    assert 0.0 <= top <= 100.0
    if followers != 0:
        assert top == 100.0


def test_saturates_at_100m_followers_and_1m_engagement() -> None:
    assert reach_score(source_type="x", followers=100_000_000, likes=1_000_000) == 100.0


def test_ten_big_complaints_outweigh_a_hundred_small_ones() -> None:
    big = reach_score(source_type="x", followers=1_000_000, likes=0)
    small = reach_score(source_type="x", followers=20, likes=0)
    assert 10 * big > 100 * small


def test_youtube_views_are_worth_less_than_likes_and_than_views_elsewhere() -> None:
    views = reach_score(source_type="youtube", views=1_000_000)
    likes = reach_score(source_type="youtube", likes=1_000_000)
    assert views < likes
    assert views < reach_score(source_type="x", views=1_000_000)


def test_hackernews_points_count_more_than_reddit_upvotes() -> None:
    hn = reach_score(source_type="hackernews", likes=200)
    reddit = reach_score(source_type="reddit", likes=200)
    assert hn > reddit
    assert hn == round(100 * (math.log10(1 + 200 * SOURCE_WEIGHTS["hackernews"].likes) / 6) ** 2, 1)


def test_unknown_source_uses_default_weights() -> None:
    default = EngagementWeights()
    weighted = 10 * default.likes + 10 * default.reposts + 10 * default.replies
    weighted += 10_000 * default.views
    expected = round(100 * (math.log10(1 + weighted) / 6) ** 2, 1)
    got = reach_score(source_type="carrier-pigeon", likes=10, reposts=10, replies=10, views=10_000)
    assert got == expected


def test_result_has_one_decimal() -> None:
    score = reach_score(source_type="x", followers=12_345, likes=67)
    assert score == round(score, 1)
