"""Complaint-aware sentiment, in any language.

Bare VADER reads "on hold for 45 minutes", "still no refund" or "you lost my bag" as neutral:
none of their words is negative.  ``ComplaintAwareScorer`` keeps VADER as the base for English
and applies the complaint rule families of ``monitor/data/lexicon/en.toml`` on top: a text that
matches a family (and does not read as put right) scores at most the family's weight, so it is
labelled negative however polite its words.  Sarcasm markers ("thanks for nothing") count as a
family too, and override VADER's reading of "thanks".

VADER is English only.  Text in another shipped language (Malay, Polish, Serbian, Hebrew,
Chinese, Spanish, German, French) is scored with that language's keyword list, and text in a
language without a list gets a neutral score; both are marked ``confidence="low"``, never a
confident neutral.  A multilingual model can replace this by implementing ``SentimentScorer``.

Only the first ``SCORED_CHARS`` characters of a text are scored (see ``monitor.scoring.limits``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from monitor.scoring.language import detect_language, english_words
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
from monitor.scoring.sentiment import NEGATIVE_BELOW, POSITIVE_ABOVE, Sentiment, label_for
from monitor.scoring.vader import Vader

EXTRA_FAMILY_STEP = 0.1
"""How much lower each further matching family pushes the score (floor -1)."""
KEYWORD_SCALE = 4.0
"""Keyword sums are mapped to (-1, 1) as VADER maps its sums: s / sqrt(s² + scale)."""


class ComplaintAwareScorer:
    """VADER plus complaint rules for English; keyword lists for other languages."""

    def __init__(
        self,
        *,
        negative_below: float = NEGATIVE_BELOW,
        positive_above: float = POSITIVE_ABOVE,
        brand_lexicons: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        brand_terms: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``brand_lexicons`` maps a brand to its own phrases per rule family, e.g.
        ``{"Acme": {"outage": ["kettle app offline"], "sarcasm": ["cheers acme"]}}``;
        ``brand_terms`` maps a brand to the words that name it (keywords, aliases, handles,
        hashtags), masked with its name before scoring (see ``monitor.scoring.masking``)."""
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

    def score(
        self, text: str, *, language: str | None = None, brands: Sequence[str] = ()
    ) -> Sentiment:
        """Score ``text``; ``language`` is the source's own report of it, if any."""
        text = head(text, SCORED_CHARS)
        if not text.strip():
            return Sentiment(compound=0.0, label="neutral", language=language)
        lang = detect_language(text, language)
        masked = self._masker.mask(text)
        normal = scored_form(masked)
        if lang in (None, "en"):
            return self._english(masked, normal, brands, known=lang == "en")
        keywords = self._keywords.get(lang)
        if keywords is None:  # a language we have no list for: say we do not know
            return Sentiment(0.0, "neutral", confidence="low", language=lang)
        counts = keywords.scan(normal)
        if not counts and english_words(text):  # a short English text taken for another
            return self._english(masked, normal, brands, known=True)
        if not counts and language:  # the source's language, but another list's words
            best, found = max(
                ((k, k.scan(normal)) for k in {id(k): k for k in self._keywords.values()}.values()),
                key=lambda pair: sum(pair[1].values()),
            )
            if found:
                keywords, counts = best, found
        total = sum(KEYWORD_WEIGHTS[kind] * n for kind, n in counts.items())
        compound = total / math.sqrt(total * total + KEYWORD_SCALE)
        return Sentiment(
            compound=round(compound, 4),
            label=self._label(compound),
            confidence="low",
            language=keywords.language,
            rules=tuple(sorted(counts)),
        )

    def _english(self, text: str, normal: str, brands: Sequence[str], *, known: bool) -> Sentiment:
        """VADER and the rules; ``known`` is False for text in no language we could tell
        (emoji, a language we do not ship), which is scored as English but not trusted."""
        compound = float(self._vader.polarity_scores(self._requests.drop(text))["compound"])
        families, resolved, neutral = self._rules.match(normal)
        for brand in brands:
            if brand in self._brand_rules:
                extra, _, _ = self._brand_rules[brand].match(normal)
                families += [f for f in extra if f not in families]
        names = tuple(f.name for f in families)
        if families and ("sarcasm" in names or not resolved):
            floor = min(f.weight for f in families) - EXTRA_FAMILY_STEP * (len(families) - 1)
            compound = min(compound, max(-1.0, floor))
        elif neutral:  # put right, or asking about an outside event: VADER's words are not
            compound = max(compound, 0.0)  # a complaint
        return Sentiment(
            compound=compound,
            label=self._label(compound),
            confidence="high" if known else "low",
            language="en" if known else None,
            rules=names,
        )

    def _label(self, compound: float) -> str:
        return label_for(compound, self.negative_below, self.positive_above)
