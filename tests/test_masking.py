"""Masking: links, handles and brand terms lend a post no sentiment; hashtags are split."""

from __future__ import annotations

import time

import pytest

from monitor.scoring.complaints import ComplaintAwareScorer
from monitor.scoring.lexicon import tag_words
from monitor.scoring.masking import MASK, Masker, segment


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(["Best Buy", "@GladHelp", "#glad", "$GLD", "Glad"], tag_words())


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Glad's stores", f"{MASK}'s stores"),
        ("at Best  Buy today", f"at {MASK} today"),
        ("@GladHelp and @someone_else", f"{MASK} and {MASK}"),
        ("#Glad $gld GLAD", f"{MASK} {MASK} {MASK}"),
        ("see https://example.com/a?b=c now", f"see {MASK} now"),
        ("gladly, gladiator, bestbuyer", "gladly, gladiator, bestbuyer"),
        ("mail me at anna@example.com", "mail me at anna@example.com"),
    ],
)
def test_links_handles_and_brand_terms_are_masked_as_whole_words(
    masker: Masker, text: str, masked: str
) -> None:
    assert masker.mask(text) == masked


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("#PoorService again", "#poor service again"),
        ("#poorservice", "#poor service"),
        ("#fail", "#fail"),
        ("#EpicFail #neveragain", "#epic fail #never again"),
        ("#TheWalkingDead", "#TheWalkingDead"),  # a name: not all known words
        ("#weekendvibes #1", "#weekendvibes #1"),
        ("x#PoorService ##PoorService", "x#PoorService ##PoorService"),  # not tags
    ],
)
def test_hashtags_are_split_only_into_known_words(masker: Masker, text: str, split: str) -> None:
    assert masker.mask(text) == split


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Acme Corporation rocks", f"{MASK} rocks"),
        ("acme corp. is down", f"{MASK}. is down"),
        ("ACME, Acme Co and acmecorp", f"{MASK}, {MASK} and acmecorp"),
        ("Acme Corp-x", f"{MASK}-x"),
    ],
)
def test_the_longest_brand_term_is_masked_whole(text: str, masked: str) -> None:
    masker = Masker(["Acme", "Acme Co", "Acme Corp", "Acme Corporation"])
    assert masker.mask(text) == masked


def test_segment_prefers_the_fewest_words() -> None:
    vocabulary = frozenset({"no", "not", "nothing", "thing", "happy"})
    assert segment("nothing", vocabulary) == ("nothing",)
    assert segment("nothappy", vocabulary) == ("not", "happy")
    assert segment("nothingness", vocabulary) is None


def test_a_brand_named_with_a_positive_word_lends_no_score() -> None:
    plain = ComplaintAwareScorer()
    masked = ComplaintAwareScorer(brand_terms={"Glad": ["@GladHelp"]})
    text = "@GladHelp my order from Glad is here"
    assert plain.score(text).label == "positive"
    assert masked.score(text).label == "neutral"
    assert masked.score("Glad my order from @GladHelp is here").label == "neutral"


def test_a_brands_own_phrases_are_masked_as_texts_are() -> None:
    scorer = ComplaintAwareScorer(
        brand_lexicons={"Acme": {"menu": ["cheers acme!"]}}, brand_terms={"Acme": ["acme"]}
    )
    assert "menu" in scorer.score("Cheers Acme! cold fries", brands=["Acme"]).rules


def test_a_negative_hashtag_reaches_vader_and_the_rules() -> None:
    scorer = ComplaintAwareScorer()
    assert scorer.score("Got my parcel today #PoorService").label == "negative"
    assert scorer.score("Got my parcel today #notimpressed").label == "negative"


def test_masking_a_long_text_takes_linear_time(masker: Masker) -> None:
    text = ("#" + "a" * 5000 + " @x https://y.z/ Best Buy ") * 200
    started = time.perf_counter()
    masker.mask(text)
    assert time.perf_counter() - started < 1.0
