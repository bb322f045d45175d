"""Deciding which configured brands a piece of text mentions.

Terms and text are compared after NFKC + casefold.  Keywords and aliases match as whole words,
except terms containing characters of scripts written without spaces (Chinese, Japanese, Korean,
Thai, ...), which match as substrings.  Handles and hashtags match as ``@name`` / ``#name``
tokens.  Any exclusion term in the text vetoes its brand.

Only the first ``MATCHED_CHARS`` characters of a text are read (see ``monitor.scoring.limits``).
Long runs of non-space characters are not cut: matching takes time linear in them, and a brand
may be named inside a link or a run of Chinese.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from monitor.scoring.lexicon import PatternSet
from monitor.scoring.limits import MATCHED_CHARS, head

if TYPE_CHECKING:
    from monitor.config import BrandConfig

# Scripts written without spaces between words.
_SPACELESS_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer Symbols
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul Compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana Phonetic Extensions
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xA9E0, 0xA9FF),  # Myanmar Extended-B
    (0xAA60, 0xAA7F),  # Myanmar Extended-A
    (0xAC00, 0xD7FF),  # Hangul Syllables, Hangul Jamo Extended-B
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x323AF),  # CJK Extensions B and later
)


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    """The inside of a regex character class covering the inclusive code point ``ranges``,
    written with the characters themselves: ``re`` parses a class of ``\\U`` escapes twice as
    slowly, and a brand's pattern holds ``_WORDLIKE`` once per term."""
    return "".join(f"{re.escape(chr(first))}-{re.escape(chr(last))}" for first, last in ranges)


_SPACELESS = _class_body(_SPACELESS_RANGES)
_has_spaceless = re.compile(f"[{_SPACELESS}]").search


def _combining_marks() -> str:
    """Class body of the combining marks of spaced scripts."""
    # Planes 0-1 hold every combining mark except variation selectors; scanning only them keeps
    # import fast.  Consecutive code points share ``cp - index``, which groups them into runs.
    marks = (
        cp
        for cp in range(0x20000)
        if unicodedata.category(chr(cp)).startswith("M") and not _has_spaceless(chr(cp))
    )
    runs = (list(run) for _, run in itertools.groupby(enumerate(marks), lambda p: p[1] - p[0]))
    return _class_body((run[0][1], run[-1][1]) for run in runs)


# A character that continues a word.  Python's ``\w`` misses combining marks, which belong to
# the word they sit on (else "भारत" would match inside "भारती").  Letters of spaceless scripts
# do not continue a word: they sit right against Latin brand names ("我喜欢acme产品").
_WORDLIKE = f"(?:[^\\W{_SPACELESS}]|[{_combining_marks()}])"
_END = f"(?!{_WORDLIKE})"
# Handles and hashtags end at the first word character, whatever its script.
_TOKEN_END = r"(?!\w)"

# The one-letter words Hebrew writes glued to the next word: and, the, in, as, to, from, that.
_HEBREW_PREFIX = "[והבכלמש]"


def normalize(text: str) -> str:
    """Fold ``text`` for comparison: NFKC (full-width, ligatures) then casefold (ß -> ss)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _fold(terms: Iterable[str], sigil: str = "") -> set[str]:
    """The non-blank ``terms``, normalized; with ``sigil``, as ``sigil + name`` tokens."""
    folded = (normalize(term).strip().lstrip(sigil).strip() for term in terms)
    return {sigil + term for term in folded if term}


def _substring_regex(term: str) -> str:
    return r"\s+".join(map(re.escape, term.split()))


def _word_regex(term: str) -> str:
    """Regex for ``term`` as whole words, but for the check of its end (see ``_compile``).

    The start boundary is checked looking back from the end of the first word, not before it:
    then every alternative begins with a literal, and ``re`` skips straight to candidates.
    """
    first, *rest = term.split()
    n = len(first)
    start = f"(?<!{_WORDLIKE}.{{{n}}})"
    if "\u05d0" <= first[0] <= "\u05ea":  # Hebrew: or after one or two glued prefix letters
        start = (
            f"(?:{start}|(?<={_HEBREW_PREFIX}.{{{n}}})(?<!{_WORDLIKE}.{{{n + 1}}})"
            f"|(?<={_HEBREW_PREFIX}{{2}}.{{{n}}})(?<!{_WORDLIKE}.{{{n + 2}}}))"
        )
    return re.escape(first) + start + "".join(r"\s+" + re.escape(word) for word in rest)


def _compile(terms: Iterable[str], tokens: Iterable[str] = ()) -> re.Pattern[str] | None:
    """One regex for folded ``terms`` and ``@``/``#`` ``tokens``, longest first, or ``None``.

    The end of a whole word is checked once after all the words that need that check, not
    after each: when it fails, ``re`` goes back and tries the next word all the same, and
    ``_WORDLIKE`` takes milliseconds to compile each time it is written out.
    """
    terms = set(terms)
    spaceless = {term for term in terms if _has_spaceless(term)}
    groups = [
        ([_substring_regex(term) for term in _longest_first(spaceless)], ""),
        ([_word_regex(term) for term in _longest_first(terms - spaceless)], _END),
        ([_word_regex(token) for token in _longest_first(tokens)], _TOKEN_END),
    ]
    parts = [f"(?:{'|'.join(regexes)}){end}" for regexes, end in groups if regexes]
    return re.compile("|".join(parts)) if parts else None


def _longest_first(words: Iterable[str]) -> list[str]:
    return sorted(words, key=lambda word: (-len(word), word))


class BrandMatcher:
    """Finds the configured brands a text mentions.  Build once; ``match`` every mention."""

    def __init__(self, brands: Sequence[BrandConfig]) -> None:
        self._brands: list[tuple[str, re.Pattern[str], re.Pattern[str] | None]] = []
        first_words: dict[str, list[str]] = {}
        for brand in brands:
            terms = _fold(itertools.chain(brand.keywords, brand.aliases))
            tokens = _fold(brand.handles, "@") | _fold(brand.hashtags, "#")
            wanted = _compile(terms, tokens)
            if wanted is not None:
                first_words[str(len(self._brands))] = sorted(
                    {re.escape(term.split()[0]) for term in terms | tokens}
                )
                self._brands.append((brand.name, wanted, _compile(_fold(brand.exclude))))
        # A brand can only match where the first word of one of its terms occurs.  One RE2 pass
        # finds those brands, and only they are searched with their exact patterns (which need
        # look-arounds RE2 lacks): one scan of the text instead of one per configured brand.
        self._candidates = PatternSet(first_words)

    def match(self, text: str) -> list[str]:
        """Names of the brands ``text`` mentions, in config order (may be several, may be empty)."""
        folded = normalize(head(text, MATCHED_CHARS))
        found = []
        for index in sorted(map(int, self._candidates.matches(folded))):
            name, wanted, unwanted = self._brands[index]
            if wanted.search(folded) and not (unwanted is not None and unwanted.search(folded)):
                found.append(name)
        return found
