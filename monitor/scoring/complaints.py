"""Complaint-aware sentiment, in any language.

Bare VADER reads "on hold for 45 minutes", "still no refund" or "you lost my bag" as neutral:
none of their words is negative.  ``ComplaintAwareScorer`` keeps VADER as the base for English
and applies the complaint rule families of ``monitor/data/lexicon/en.toml`` on top: a text that
matches a family (and does not read as put right) scores at most the family's weight, so it is
labelled negative however polite its words.  Sarcasm markers ("thanks for nothing") count as a
family too, and override VADER's reading of "thanks".

VADER is English only, and blended there with the English model (``ENGLISH_MODEL_SHARE``).  Text
in another shipped language is scored by that language's model (``monitor.scoring.model``) with
its keyword list as a weak signal; a language without a model gets its keyword list alone, and
one without a list a neutral score, both marked ``confidence="low"``, never a confident
neutral.  A model's score is ``confidence="high"`` when it gives the label found at least
``CONFIDENT`` probability.

Only the first ``SCORED_CHARS`` characters of a text are scored (see ``monitor.scoring.limits``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.scoring.features import Grams
from monitor.scoring.language import detect_languages, english_words
from monitor.scoring.lexicon import (
    KEYWORD_WEIGHTS,
    EnglishRules,
    english_rules,
    keyword_lists,
    request_words,
    tag_words,
)
from monitor.scoring.limits import SCORED_CHARS, head, scored_form
from monitor.scoring.masking import Masker
from monitor.scoring.model import ModelShelf, enough_words
from monitor.scoring.sentiment import (
    NEGATIVE_BELOW,
    POSITIVE_ABOVE,
    Post,
    Sentiment,
    label_for,
)
from monitor.scoring.vader import Vader

EXTRA_FAMILY_STEP = 0.1
"""How much lower each further matching family pushes the score (floor -1)."""
KEYWORD_SCALE = 4.0
"""Keyword sums are mapped to (-1, 1) as VADER maps its sums: s / sqrt(s² + scale)."""
ENGLISH_MODEL_SHARE = 0.5
"""English: the model's share of the score (positive minus negative probability), VADER's the
rest.  A post a complaint family matched is negative whatever the model says: the model is not
asked, and the family's floor applies to VADER's score as before."""
KEYWORD_SHARE = 0.2
"""Other languages with a model: the keyword lists' share of the score, the model's the rest."""
COMPLAINT_WORDS = {"negative", "complaint", "crisis"}
"""Other languages: the keyword kinds that, as English's complaint families do, keep a post
negative whatever the model says, unless a positive word is there too: the public sets the
models learnt from are tweets, reviews and political comments, not complaints to a company.
On those sets this costs at most 0.02 of negative F1 (Hebrew, Chinese)."""
COMPLAINT_FLOOR = -0.5
CONFIDENT = 0.6
"""A model's probability of the label given from which its score is trusted
(``confidence="high"``)."""
MODEL_DOUBT = 0.3
"""English: how far the model's lean (positive minus negative probability) must go before it
counts: VADER says 0 about a plain neutral post, a model trained on three even classes rarely
does.  (Elsewhere the model decides alone, and a doubt only costs recall.)"""
RATING_SHARE = 0.5
"""Reviews: the stars' share of the score, the text's the rest."""
STARS = {1: -1.0, 2: -0.6, 3: 0.0, 4: 0.6, 5: 1.0}
"""What each number of stars says on the compound's scale."""
MODEL_LANGUAGES = {"hr": "sr", "bs": "sr", "id": "ms"}
"""Languages scored with a close one's model."""


class ComplaintAwareScorer:
    """VADER plus complaint rules for English; keyword lists for other languages."""

    def __init__(
        self,
        *,
        negative_below: float = NEGATIVE_BELOW,
        positive_above: float = POSITIVE_ABOVE,
        brand_lexicons: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        brand_terms: Mapping[str, Sequence[str]] | None = None,
        models: ModelShelf | None = None,
    ) -> None:
        """``brand_lexicons`` maps a brand to its own phrases per rule family, e.g.
        ``{"Acme": {"outage": ["kettle app offline"], "sarcasm": ["cheers acme"]}}``;
        ``brand_terms`` maps a brand to the words that name it (keywords, aliases, handles,
        hashtags), masked with its name before scoring (see ``monitor.scoring.masking``);
        ``models`` are the sentiment models per language (by default the shipped ones)."""
        self.negative_below = negative_below
        self.positive_above = positive_above
        self._vader = Vader()
        self._rules = english_rules()
        terms = [term for brand, named in (brand_terms or {}).items() for term in (brand, *named)]
        self._masker = Masker(terms, tag_words())
        self._requests = request_words()
        # a brand's phrases are masked as the texts they are matched against are
        self._brand_rules: dict[str, EnglishRules] = {
            brand: self._rules.extended(
                {name: [self._masker.mask(p) for p in phrases] for name, phrases in extra.items()}
            )
            for brand, extra in (brand_lexicons or {}).items()
        }
        self._keywords = keyword_lists()
        self._models = models if models is not None else ModelShelf()

    def score(
        self, text: str, *, language: str | None = None, brands: Sequence[str] = ()
    ) -> Sentiment:
        """Score ``text``; ``language`` is the source's own report of it, if any."""
        return self.score_many([Post(text, language, brands)])[0]

    def score_many(self, posts: Sequence[Post]) -> list[Sentiment]:
        """Score ``posts``; the models score a batch at once, many times faster than one by one."""
        texts = [head(post.text, SCORED_CHARS) for post in posts]
        masked = [self._masker.mask(text) for text in texts]
        hints = [post.language for post in posts]
        hashed = Grams.of(masked)  # the language model and the sentiment models read them
        found = detect_languages(texts, hints, self._models, masked=masked, grams=hashed)
        readings = [self._read(*read) for read in zip(texts, masked, found, posts, strict=True)]
        by_language: dict[str, list[int]] = {}
        for i, reading in enumerate(readings):
            if reading.floor is None and reading.model_language and enough_words(reading.masked):
                by_language.setdefault(reading.model_language, []).append(i)
        for language, indices in by_language.items():
            model = self._models.get(language)
            if model is None:
                continue
            odds = model.probabilities(hashed.select(indices))
            for i, row in zip(indices, odds.tolist(), strict=True):
                readings[i].probabilities = dict(zip(model.classes, row, strict=True))
        return [
            self._sentiment(reading, post.rating)
            for reading, post in zip(readings, posts, strict=True)
        ]

    def _read(self, text: str, masked: str, lang: str | None, post: Post) -> _Reading:
        """What the rules and lists find in ``text`` (``masked``: as scoring reads it; in
        ``lang``), before any model reads it."""
        if not text.strip():
            return _Reading(masked="", language=post.language)
        normal = scored_form(masked)
        if lang in (None, "en"):
            return self._english(masked, normal, post.brands, known=lang == "en")
        keywords = self._keywords.get(lang)
        if keywords is None:  # no list; a model, or nothing: say we do not know
            return _Reading(masked, lang, model_language=model_language(lang))
        counts = keywords.scan(normal)
        if (  # a short English text taken for another language
            not counts and self._models.get(model_language(lang)) is None and english_words(text)
        ):
            return self._english(masked, normal, post.brands, known=True)
        if not counts and post.language:  # the source's language, but another list's words
            best, found = max(
                ((k, k.scan(normal)) for k in {id(k): k for k in self._keywords.values()}.values()),
                key=lambda pair: sum(pair[1].values()),
            )
            if found:
                keywords, counts = best, found
        total = sum(KEYWORD_WEIGHTS[kind] * n for kind, n in counts.items())
        return _Reading(
            masked,
            keywords.language,
            rules=tuple(sorted(counts)),
            keywords=total / math.sqrt(total * total + KEYWORD_SCALE),
            model_language=model_language(keywords.language),
        )

    def _english(self, text: str, normal: str, brands: Sequence[str], *, known: bool) -> _Reading:
        """VADER and the rules; ``known`` is False for text in no language we could tell
        (emoji, a language we do not ship), which is scored as English but not trusted."""
        families, resolved, neutral = self._rules.match(normal)
        for brand in brands:
            if brand in self._brand_rules:
                extra, _, _ = self._brand_rules[brand].match(normal)
                families += [f for f in extra if f not in families]
        names = tuple(f.name for f in families)
        floor = None
        if families and ("sarcasm" in names or not resolved):
            floor = max(
                -1.0, min(f.weight for f in families) - EXTRA_FAMILY_STEP * (len(families) - 1)
            )
        return _Reading(
            text,
            "en" if known else None,
            rules=names,
            vader=float(self._vader.polarity_scores(self._requests.drop(text))["compound"]),
            floor=floor,
            neutral=(neutral or resolved) and floor is None,
            model_language="en",
        )

    def _sentiment(self, reading: _Reading, rating: int | None) -> Sentiment:
        """Blend what was read of a post, and the stars it gave if it is a review, into its
        sentiment (see the module's docstring and ``rated``)."""
        if not reading.masked.strip() and rating is None:
            return Sentiment(compound=0.0, label="neutral", language=reading.language)
        compound, confident = self._blend(reading)
        rules = reading.rules
        if rating is not None:
            compound, rules = rated(compound, rating), (*rules, f"stars:{rating}")
            confident = confident or rating != 3
        return Sentiment(
            compound=round(compound, 4),
            label=self._label(compound),
            confidence="high" if confident else "low",
            language=reading.language,
            rules=rules,
        )

    def _blend(self, reading: _Reading) -> tuple[float, bool]:
        """The compound of what the rules, lists and model read in a post's text, and whether
        it is to be trusted."""
        if not reading.masked.strip():
            return 0.0, False
        p = reading.probabilities
        model = p["positive"] - p["negative"] if p else None
        if reading.vader is not None:  # English
            compound = reading.vader
            if model is not None:
                compound = ENGLISH_MODEL_SHARE * _lean(model) + (1 - ENGLISH_MODEL_SHARE) * compound
            if reading.floor is not None:
                compound = min(compound, reading.floor)
            elif reading.neutral:  # put right, or asking about an outside event: not a
                compound = max(compound, 0.0)  # complaint, whatever the words
            confident = reading.language == "en"
        elif model is not None:
            compound = (1 - KEYWORD_SHARE) * model + KEYWORD_SHARE * (reading.keywords or 0.0)
            if COMPLAINT_WORDS & set(reading.rules) and "positive" not in reading.rules:
                compound = min(compound, COMPLAINT_FLOOR)
            # trusted when the model is sure of the label given, not of another one (a
            # complaint word may have made negative what the model read as neutral)
            confident = p.get(self._label(compound), 0.0) >= CONFIDENT
        else:
            compound, confident = reading.keywords or 0.0, False
        return compound, confident

    def _label(self, compound: float) -> str:
        return label_for(compound, self.negative_below, self.positive_above)


@dataclass(slots=True)
class _Reading:
    """What the rules, lists and model found in one post, before they are blended."""

    masked: str
    language: str | None
    rules: tuple[str, ...] = ()
    vader: float | None = None
    """English only: VADER's compound of the masked text without its request words."""
    floor: float | None = None
    """English only: the most the complaint families that matched allow the score to be."""
    neutral: bool = False
    """English only: put right, or asking about an outside event: never negative."""
    keywords: float | None = None
    """Other languages: the keyword list's score."""
    model_language: str | None = None
    probabilities: dict[str, float] | None = None


def rated(compound: float, stars: int) -> float:
    """A review's score: its text's ``compound`` and its ``stars`` (1 to 5, ``STARS``) weigh
    half each, and 1 or 2 stars are negative whatever the words (at most ``COMPLAINT_FLOOR``).
    So 4 or 5 stars over a complaint read as mixed (about neutral), not as a complaint."""
    stars = min(5, max(1, stars))
    compound = RATING_SHARE * STARS[stars] + (1 - RATING_SHARE) * compound
    return min(compound, COMPLAINT_FLOOR) if stars <= 2 else compound


def model_language(language: str) -> str:
    """The language whose model scores text in ``language`` (``MODEL_LANGUAGES``)."""
    return MODEL_LANGUAGES.get(language, language)


def _lean(lean: float) -> float:
    """``lean`` moved towards 0 by ``MODEL_DOUBT``."""
    return math.copysign(max(0.0, abs(lean) - MODEL_DOUBT), lean)
