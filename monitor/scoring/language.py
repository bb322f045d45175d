"""Which language a mention is written in.

lingua-language-detector (low-accuracy mode, restricted to the languages brandmon ships keyword
lists for) decides, but only where it has to: it costs more than VADER does.  Most mentions are
settled by cheaper evidence first — a language the source itself reported, a script only one
shipped language uses (Han, Hebrew, Cyrillic), common English words, or the words of one
language's keyword list.

It reads the first ``SCORED_CHARS`` characters, and lingua each run of non-space characters
cut to its first ``WORD_CHARS`` (see ``monitor.scoring.limits``): lingua's time grows with the
square of a word's length.
"""

from __future__ import annotations

import re
from functools import cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from monitor.scoring.lexicon import language_votes, normalise, trie_pattern
from monitor.scoring.limits import SCORED_CHARS, head, short_runs

SHIPPED = {
    Language.ENGLISH: "en",
    Language.MALAY: "ms",
    Language.INDONESIAN: "id",
    Language.POLISH: "pl",
    Language.SERBIAN: "sr",
    Language.CROATIAN: "hr",
    Language.BOSNIAN: "bs",
    Language.HEBREW: "he",
    Language.CHINESE: "zh",
    Language.SPANISH: "es",
    Language.GERMAN: "de",
    Language.FRENCH: "fr",
}
# one scan for the scripts only one shipped language uses: Han, Hebrew, Cyrillic
_SCRIPTS = re.compile(r"([\u4e00-\u9fff\u3400-\u4dbf])|([\u0590-\u05ff])|([\u0400-\u04ff])")
_SCRIPT_LANGUAGES = {1: "zh", 2: "he", 3: "sr"}
_NOISE = re.compile(r"https?://\S+|[@#][\w.]+")  # links, @handles and #tags
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")
# Common English words that none of the other shipped languages also uses as a word ("no",
# "a", "i", "to", "on", "so", "in", "die", "will", "was", "me" are words in Spanish, Polish,
# Serbian, Malay or German too).  Two of them make a plain-ASCII text English.
_ENGLISH_WORDS = (
    "the",
    "my",
    "you",
    "your",
    "you're",
    "is",
    "are",
    "were",
    "and",
    "for",
    "it",
    "it's",
    "this",
    "that",
    "with",
    "have",
    "has",
    "had",
    "not",
    "still",
    "again",
    "of",
    "our",
    "they",
    "their",
    "there",
    "what",
    "why",
    "how",
    "can",
    "can't",
    "cannot",
    "don't",
    "doesn't",
    "didn't",
    "won't",
    "just",
    "been",
    "did",
    "does",
    "would",
    "could",
    "should",
    "please",
    "thanks",
    "thank",
    "from",
    "but",
    "when",
    "got",
    "get",
    "getting",
    "i'm",
    "i've",
    "i'd",
    "i'll",
    "after",
    "about",
    "any",
    "all",
    "now",
    "today",
    "yesterday",
    "week",
    "days",
    "hours",
    "minutes",
    "order",
    "ordered",
    "never",
    "every",
    "time",
    "who",
    "where",
    "which",
    "them",
    "we're",
    "they're",
    "very",
    "really",
    "some",
    "more",
    "than",
    "then",
    "only",
    "also",
    "other",
    "new",
    "one",
    "two",
    "three",
    "like",
    "love",
    "great",
    "good",
    "bad",
    "worst",
    "best",
    "help",
    "service",
    "customer",
    "support",
    "call",
    "called",
    "told",
    "said",
    "since",
    "without",
    "because",
    "back",
    "first",
    "last",
    "today's",
    "tonight",
    "again",
    "over",
    "out",
    "up",
    "off",
    "delivery",
    "delivered",
    "arrived",
    "refund",
    "account",
    "app",
    "flight",
    "bag",
    "money",
    "staff",
    "store",
    "shop",
)
# Links, @handles and #tags are skipped (a match of the first alternatives, with no group): the
# words in them say nothing about the language of the text around them.
_ENGLISH = re.compile(_NOISE.pattern + r"|\b(" + trie_pattern(_ENGLISH_WORDS) + r")(?!\w)")


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*SHIPPED).with_low_accuracy_mode().build()


def detect_language(text: str, hint: str | None = None) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when it cannot be told.

    ``hint`` is the language the source reported (RSS, Mastodon, Bluesky, X and YouTube often
    do); it is trusted when given.  Otherwise, in order: the script; two common English words
    in plain-ASCII text; more words of one shipped language's keyword list than English words;
    one English word; and only then lingua.
    """
    if hint:
        return hint.split("-")[0].split("_")[0].lower()
    text = head(text, SCORED_CHARS)
    plain = text.isascii()  # no script to look for, no letter outside a-z
    if not plain and (script := _SCRIPTS.search(text)):
        return _SCRIPT_LANGUAGES[script.lastindex or 0]
    if plain and english_words(text, enough=2) == 2:  # most mentions end here
        return "en"
    noisy = "http" in text or "@" in text or "#" in text
    words = _NOISE.sub(" ", text) if noisy else text
    ascii_only = plain or not _NON_ASCII_LETTER.search(words)
    english = english_words(words)
    if ascii_only and english >= 2:
        return "en"
    votes = language_votes(normalise(words))
    if votes:
        language, count = max(votes.items(), key=lambda vote: vote[1])
        tied = sum(1 for n in votes.values() if n == count) > 1  # lingua tells them apart
        if count > english and not tied:
            return language
    if ascii_only and english:
        return "en"
    found = _detector().detect_language_of(short_runs(words))
    return SHIPPED.get(found) if found is not None else None


def english_words(text: str, enough: int | None = None) -> int:
    """How many distinct common English words ``text`` uses outside links, handles and tags,
    counting no further than ``enough`` (most English texts show two in their first words)."""
    seen: set[str] = set()
    for found in _ENGLISH.finditer(text.lower()):
        if word := found.group(1):
            seen.add(word)
            if len(seen) == enough:
                break
    return len(seen)
