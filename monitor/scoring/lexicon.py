"""The complaint rules and keyword lists, loaded from ``monitor/data/lexicon/*.toml``.

Rules are data so that support leads can read and extend them: ``en.toml`` holds English rule
families (regular expressions with a weight) applied on top of VADER, and one file per other
language holds keyword lists (negative, complaint, crisis, positive).  Everything is compiled
once into a few large regular expressions, so scoring a text costs a handful of scans.
"""

from __future__ import annotations

import re
import string
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

import re2

CUSTOM_WEIGHT = -0.55
"""The weight of a family a brand adds in its config (known families keep their own)."""
KEYWORD_WEIGHTS = {"negative": -1.0, "complaint": -1.0, "crisis": -1.5, "positive": 1.0}
_APOSTROPHES = ("\u2019", "\u2018", "\u02bc", "\u05f3")
_PUNCTUATION = string.punctuation


def normalise(text: str) -> str:
    """The form rules are matched against: NFKC, case-folded, straight apostrophes."""
    if text.isascii():  # already NFKC, with nothing to straighten: most mentions
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    for apostrophe in _APOSTROPHES:  # str.translate would look up every character: 60x slower
        if apostrophe in text:
            text = text.replace(apostrophe, "'")
    return text


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    weight: float


_RE2_MEMORY = 8 << 20
"""Bytes each pattern set may use.  RE2 caches the DFA states it meets, up to this budget, then
starts its cache afresh: memory stays bounded however many texts are scored.  (A set's DFA never
gives up on a slow text, only when the budget cannot hold its first states.)"""


class PatternSet:
    """Which groups of regular expressions a text matches, found in one pass.

    RE2 matches all the patterns at once with a DFA, in time linear in the text, where
    Python's ``re`` would run one backtracking search per pattern: ten times faster on the
    English rules.  Patterns use RE2's syntax — Python's without look-arounds or
    back-references; ``\\b`` and ``\\w`` are ASCII.

    Patterns that span a window of any characters ("delivered.{0,40}not") are compiled apart
    from the others when there are more than a few: each place such a window may have reached
    is a state of the DFA, and in one DFA the windows' states and the other patterns' multiply
    until the DFA outgrows its memory budget and is built again and again (the English rules,
    with 19 windows: four times slower).
    """

    def __init__(self, groups: Mapping[str, Iterable[str]]) -> None:
        pairs = [(key, pattern) for key, patterns in groups.items() for pattern in patterns]
        windows = [pair for pair in pairs if _WINDOW.search(pair[1])]
        if len(windows) <= _FEW_WINDOWS:  # a second pass would cost more than they do
            windows = []
        plain = [pair for pair in pairs if pair not in windows]
        self._keys = [key for key, _ in plain + windows]
        """The key of each pattern, by its index in the sets taken one after the other."""
        self._sets = [
            (_compiled_set(some), offset)
            for some, offset in ((plain, 0), (windows, len(plain)))
            if some
        ]

    def matches(self, text: str) -> set[str]:
        """The keys of the groups with a pattern found in ``text``."""
        encoded = text.encode()  # once for both sets
        keys = self._keys
        return {
            keys[offset + i] for found, offset in self._sets for i in found.Match(encoded) or ()
        }


_WINDOW = re.compile(r"\.(?:[*+]|\{\d*,\d*\})|\[\^[^\]]*\](?:[*+]|\{\d*,\d*\})|\)\{\d*,\d*\}")
"""A repeat of any character, of a negated class, or a counted repeat of a group (``.{0,40}``,
``.*``, ``[^.!]{0,120}``, ``(?:\\S+ ){0,3}``): what makes a pattern span a window (see
``PatternSet``)."""
_FEW_WINDOWS = 3
"""Up to this many patterns with windows stay in the set of the others: their states multiply
little, and a second set is a second pass over the text."""


def _compiled_set(pairs: Sequence[tuple[str, str]]) -> re2.Set:
    """An RE2 set of the patterns of ``pairs`` (key, pattern), in their order."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MEMORY
    found = re2.Set.SearchSet(options)
    for key, pattern in pairs:
        try:
            found.Add(pattern)
        except re2.error:
            raise ValueError(f"{key}: {pattern!r} is not a pattern RE2 accepts") from None
    found.Compile()
    return found


class EnglishRules:
    """Complaint rule families, the patterns that read a complaint as put right, and those that
    read a text as no complaint at all."""

    _RESOLVED = ""  # the keys of the resolved and neutral patterns (family names are words)
    _NEUTRAL = " "

    def __init__(
        self,
        families: Mapping[str, FamilySource],
        resolved: Sequence[str],
        neutral: Sequence[str] = (),
    ) -> None:
        self._sources = dict(families)
        self._resolved_sources = tuple(resolved)
        self._neutral_sources = tuple(neutral)
        self.families = {name: Family(name, f.weight) for name, f in families.items()}
        self._patterns = PatternSet(
            {
                **{name: f.patterns for name, f in families.items()},
                self._RESOLVED: resolved,
                self._NEUTRAL: neutral,
            }
        )

    def match(self, text: str) -> tuple[list[Family], bool, bool]:
        """The families whose rules ``text`` (normalised) matches, whether it reads as put
        right (a resolved or negated complaint), and whether it reads as no complaint at all (a
        complaint put right by someone, a question about an outside event)."""
        names = self._patterns.matches(text)
        resolved, neutral = self._RESOLVED in names, self._NEUTRAL in names
        names -= {self._RESOLVED, self._NEUTRAL}
        return [self.families[n] for n in sorted(names)], resolved or neutral, neutral

    def extended(self, extra: Mapping[str, Sequence[str]]) -> EnglishRules:
        """These rules plus a brand's own phrases (``[brands.lexicon]``), matched literally as
        whole words; ``extra`` maps a family name (known or new) to phrases."""
        families = dict(self._sources)
        for name, phrases in extra.items():
            known = families.get(name, FamilySource(CUSTOM_WEIGHT, ()))
            families[name] = FamilySource(
                known.weight, known.patterns + tuple(_rule_phrase(p) for p in phrases if p.strip())
            )
        return EnglishRules(families, self._resolved_sources, self._neutral_sources)


@dataclass(frozen=True, slots=True)
class FamilySource:
    """One rule family as written in the lexicon file."""

    weight: float
    patterns: tuple[str, ...]


class KeywordList:
    """One language's keywords, matched as whole words or (for scripts without spaces)
    anywhere in the text."""

    def __init__(self, language: str, lists: Mapping[str, Sequence[str]], substring: bool) -> None:
        self.language = language
        self._lists = lists
        self._substring = substring

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        """One pattern with a named group per kind, each a trie of the kind's words (see
        ``trie_pattern``): the engine follows one path per character instead of trying every
        word at every word start.  Compiled when first scanned with: most processes read only
        some of the languages."""
        kinds = "|".join(
            f"(?P<{kind}>{_keywords(words)})" for kind, words in self._lists.items() if words
        )
        if not kinds:
            return None
        return re.compile(kinds if self._substring else rf"(?<!\w)(?:{kinds})(?!\w)")

    def scan(self, text: str) -> dict[str, int]:
        """How many keywords of each kind (negative, complaint, crisis, positive) occur."""
        counts: dict[str, int] = {}
        if self._pattern is not None:
            for found in self._pattern.finditer(text):
                kind = found.lastgroup or ""
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, written as a trie ("ab(?:c|d)") so the
    engine follows one path per character instead of trying every word in turn."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def walk(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(char) + walk(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and not ends else f"(?:{'|'.join(branches)})"
        return f"{body}?" if ends else body

    return walk(trie)


def _keywords(words: Iterable[str]) -> str:
    """A trie of ``words`` normalised, in which a space matches any run of white space."""
    return trie_pattern(normalise(word) for word in words).replace(r"\ ", r"\s+")


def _rule_phrase(words: str) -> str:
    """A literal phrase as a whole-word RE2 pattern; letters and digits of any script are word
    characters, as in Python."""
    body = r"\s+".join(re.escape(word) for word in normalise(words).split())
    return rf"(?:^|[^\pL\pN_]){body}(?:[^\pL\pN_]|$)"


@cache
def _read(name: str) -> dict[str, Any]:
    """The parsed lexicon file ``name`` (read once: ``en.toml`` serves three readers)."""
    text = resources.files("monitor.data").joinpath("lexicon", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def english_rules() -> EnglishRules:
    data = _read("en.toml")
    families = {
        name: FamilySource(float(family["weight"]), tuple(family["patterns"]))
        for name, family in data["families"].items()
    }
    return EnglishRules(
        families,
        data.get("resolved", {}).get("patterns", ()),
        data.get("neutral", {}).get("patterns", ()),
    )


class RequestWords:
    """Words VADER reads as approval that, in a post to a brand, are the grammar of a request
    ("please help", "would like", "thanks in advance"): left out of what VADER reads."""

    def __init__(self, phrases: Iterable[str], approval_after: Mapping[str, Iterable[str]]) -> None:
        """``phrases`` are dropped wherever they occur; a word of ``approval_after`` is kept
        only after one of its words ("i like it"), where it is approval after all."""
        self._phrases: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:
            words = tuple(phrase.lower().split())
            self._phrases.setdefault(words[0], []).append(words)
        self._approval_after = {
            word: frozenset(w.lower() for w in before) for word, before in approval_after.items()
        }
        # most posts have none of the first words: one RE2 pass says so (it finds them
        # wherever Python's \w would, and a few more places: the words are compared below)
        words = "|".join(map(re.escape, self._phrases))
        self._first_words = PatternSet({"": [rf"(?i)(?:^|[^\pL\pN_])(?:{words})(?:[^\pL\pN_]|$)"]})

    def drop(self, text: str) -> str:
        """``text`` without its request words (matched case-insensitively), their punctuation
        kept for VADER's emphasis rules."""
        if not self._first_words.matches(text):
            return text
        tokens = text.split()
        words = [token.strip(_PUNCTUATION).lower() for token in tokens]
        if self._phrases.keys().isdisjoint(words):
            return text
        dropped = False
        for i, word in enumerate(words):
            for phrase in self._phrases.get(word, ()):
                if tuple(words[i : i + len(phrase)]) != phrase:
                    continue
                before = self._approval_after.get(word)
                if before is not None and i > 0 and words[i - 1] in before:
                    continue
                for j in range(i, i + len(phrase)):
                    tokens[j] = "".join(c for c in tokens[j] if not c.isalnum())
                dropped = True
                break
        return " ".join(token for token in tokens if token) if dropped else text


@cache
def request_words() -> RequestWords:
    data = _read("en.toml").get("request", {})
    return RequestWords(data.get("phrases", ()), data.get("approval_after", {}))


@cache
def tag_words() -> frozenset[str]:
    """The words an all-lowercase hashtag may be split into (see ``monitor.scoring.masking``)."""
    return frozenset(_read("en.toml").get("hashtags", {}).get("words", ()))


@cache
def _keyword_files() -> tuple[dict[str, Any], ...]:
    folder = resources.files("monitor.data").joinpath("lexicon")
    return tuple(
        tomllib.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml") and entry.name not in ("en.toml", "triage.toml")
    )


@cache
def keyword_lists() -> dict[str, KeywordList]:
    """Every shipped language's keywords by ISO 639-1 code, including the codes it also
    covers (Indonesian text is scored with the Malay list, Croatian and Bosnian with Serbian)."""
    lists: dict[str, KeywordList] = {}
    for data in _keyword_files():
        words = {kind: data.get(kind, []) for kind in KEYWORD_WEIGHTS}
        keywords = KeywordList(data["language"], words, data.get("match") == "substring")
        for code in [data["language"], *data.get("also", [])]:
            lists[code] = keywords
    return lists


@cache
def _vocabulary() -> tuple[re.Pattern[str], dict[str, set[str]]]:
    """Every word of the space-separated languages' lists (their common words too), and the
    languages that use it."""
    languages: dict[str, set[str]] = {}
    for data in _keyword_files():
        if data.get("match") == "substring":
            continue
        for kind in (*KEYWORD_WEIGHTS, "common"):
            for word in data.get(kind, []):
                languages.setdefault(normalise(word), set()).add(data["language"])
    pattern = re.compile(r"\b" + trie_pattern(languages) + r"(?!\w)")
    return pattern, languages


def language_votes(text: str) -> dict[str, int]:
    """How many words of each shipped language's keyword list ``text`` (normalised) uses."""
    pattern, languages = _vocabulary()
    votes: dict[str, int] = {}
    for word in pattern.findall(text):
        for language in languages[word]:
            votes[language] = votes.get(language, 0) + 1
    return votes
