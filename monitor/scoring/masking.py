"""What sentiment reads of a post: its words, not the names, handles and links around them.

A brand whose name or handle is an English word ("Target", "Orange", "Shell", "@Glad") would
otherwise lend every post about it that word's score, and "#PoorService" would be one unknown
word.  ``Masker`` replaces links, @handles and a brand's configured terms by ``MASK`` (a token
that neither VADER nor a rule reads) and splits hashtags into their words.  A tag is split only
when it is made entirely of known words ("#poorservice", "#PoorService": "#poor service"), with
camelCase and digits showing where a word ends: "#TheWalkingDead" is a name, not a verdict on
anything.  The first word keeps its ``#``, so rules can still tell a tag ("#fail") from a word.

Every step is one regular-expression pass in time linear in the text; only tags of at most
``TAG_CHARS`` characters are split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from monitor.scoring.lexicon import trie_pattern

MASK = "_"
"""What a link, a handle or a brand term becomes: a token VADER does not score, which forms no
emoticon with the punctuation next to it (as "@" would: "@:" is one)."""
TAG_CHARS = 40
"""Longer hashtags are left whole (splitting one costs the square of its length)."""
TAGS_REMEMBERED = 8192
"""How many hashtags' splits each masker remembers."""

_LINK = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# The look-behinds follow the "@" or "#" (and look back over it) so that a search skips straight
# to the next "@" or "#" instead of trying the pattern at every character.
_HANDLE = re.compile(r"@(?<![\w@]@)\w+")
_TAG = re.compile(r"#(?<![\w#]#)[^\W_]\w*")
_CAMEL = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[^\W\d])(?=\d)|(?<=\d)(?=[^\W\d])"
)


class Masker:
    """Masks links, @handles and brand terms, and splits hashtags into words."""

    def __init__(self, terms: Iterable[str] = (), tag_words: Iterable[str] = ()) -> None:
        """``terms`` are the words that name a brand (its name, keywords, aliases, handles and
        hashtags; a leading ``@``, ``#`` or ``$`` is ignored, case too); ``tag_words`` are the
        words a hashtag may be split into."""
        names = {t.strip().lstrip("@#$").lower() for t in terms} - {""}
        # a trie: one path per character however many terms, the longest term found first
        body = trie_pattern(names).replace(r"\ ", r"\s+")
        self._terms = (
            re.compile(rf"(?<![\w@#$])[@#$]?(?:{body})(?!\w)", re.IGNORECASE) if names else None
        )
        self._tag_words = frozenset(w.lower() for w in tag_words if w)
        # the same tags come back again and again (a campaign's, a brand's)
        self._split = lru_cache(maxsize=TAGS_REMEMBERED)(self._split_uncached)

    def mask(self, text: str) -> str:
        """``text`` with hashtags split, and links, brand terms and handles masked."""
        if "http" in text or "www." in text:
            text = _LINK.sub(MASK, text)
        if "#" in text:
            text = _TAG.sub(self._split_tag, text)
        if self._terms is not None:
            text = self._terms.sub(MASK, text)
        if "@" in text:
            text = _HANDLE.sub(MASK, text)
        return text

    def _split_tag(self, found: re.Match[str]) -> str:
        return self._split(found.group(0))

    def _split_uncached(self, tag: str) -> str:
        if len(tag) > TAG_CHARS:
            return tag
        words: list[str] = []
        for part in _CAMEL.sub(" ", tag[1:]).lower().split():
            known = (part,) if part.isdigit() else segment(part, self._tag_words)
            if not known:
                return tag
            words += known
        return "#" + " ".join(words)


def segment(word: str, vocabulary: frozenset[str]) -> tuple[str, ...] | None:
    """``word`` split into the fewest words of ``vocabulary``, or None if it cannot be."""
    # fewest[i]: the fewest vocabulary words that make up word[:i], if any do
    fewest: list[tuple[str, ...] | None] = [(), *[None] * len(word)]
    for end in range(1, len(word) + 1):
        for start in range(end):
            before, piece = fewest[start], word[start:end]
            if before is None or piece not in vocabulary:
                continue
            now = fewest[end]
            if now is None or len(before) + 1 < len(now):
                fewest[end] = (*before, piece)
    return fewest[-1]
