"""Which language a mention is written in.

lingua-language-detector (high-accuracy mode, restricted to the languages brandmon ships keyword
lists for) decides, but only where it has to: it costs several times what VADER does.  Most
mentions are settled by cheaper evidence first — a language the source itself reported, a script
only one shipped language uses (Han, Hebrew, Cyrillic), or plain-ASCII text containing common
English function words.
"""

from __future__ import annotations

import re
from functools import cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

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
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_HEBREW = re.compile(r"[\u0590-\u05ff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_NOISE = re.compile(r"https?://\S+|[@#][\w.]+")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")
_ENGLISH = re.compile(
    # function words that other shipped languages do not also use ("no", "a", "i", "to", "on",
    # "so" and "in" are words in Spanish, Polish, Serbian or German too)
    r"\b(?:the|my|you|your|is|are|was|were|and|for|it|this|that|with|have|has|not|still|"
    r"again|of|our|they|what|why|how|can|can't|don't|just|been|did|does|would|please|thanks|"
    r"from|but|when|got|get|i'm|i've|it's|there|their|been|after|about|any|all)\b",
    re.IGNORECASE,
)


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*SHIPPED).build()


def detect_language(text: str, hint: str | None = None) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when it cannot be told.

    ``hint`` is the language the source reported (RSS, Mastodon, Bluesky, X and YouTube often
    do); it is trusted when given.
    """
    if hint:
        return hint.split("-")[0].split("_")[0].lower()
    if _HAN.search(text):
        return "zh"
    if _HEBREW.search(text):
        return "he"
    if _CYRILLIC.search(text):
        return "sr"
    words = _NOISE.sub(" ", text)
    if not _NON_ASCII_LETTER.search(words) and english_words(words) >= 2:
        return "en"
    found = _detector().detect_language_of(words)
    return SHIPPED.get(found) if found is not None else None


def english_words(text: str) -> int:
    """How many distinct English function words ``text`` uses."""
    return len(set(_ENGLISH.findall(text.lower())))
