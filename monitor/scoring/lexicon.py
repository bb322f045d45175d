"""The complaint rules and keyword lists, loaded from ``monitor/data/lexicon/*.toml``.

Rules are data so that support leads can read and extend them: ``en.toml`` holds English rule
families (regular expressions with a weight) applied on top of VADER, and one file per other
language holds keyword lists (negative, complaint, crisis, positive).  Everything is compiled
once into a few large regular expressions, so scoring a text costs a handful of scans.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CUSTOM_WEIGHT = -0.55
"""The weight of a family a brand adds in its config (known families keep their own)."""
KEYWORD_WEIGHTS = {"negative": -1.0, "complaint": -1.0, "crisis": -1.5, "positive": 1.0}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u05f3": "'"})


def normalise(text: str) -> str:
    """The form rules are matched against: NFKC, case-folded, straight apostrophes."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    weight: float


class EnglishRules:
    """Complaint rule families: one compiled alternation, each family a named group."""

    def __init__(
        self,
        families: Mapping[str, tuple[float, Sequence[str]]],
        resolved: Sequence[str],
    ) -> None:
        self._sources = {name: (weight, tuple(p)) for name, (weight, p) in families.items()}
        self._resolved_sources = tuple(resolved)
        self.families = {name: Family(name, weight) for name, (weight, _) in families.items()}
        self._families = _alternation(
            {name: patterns for name, (_, patterns) in families.items() if patterns}
        )
        self._resolved = re.compile("|".join(f"(?:{p})" for p in resolved)) if resolved else None

    def match(self, text: str) -> tuple[list[Family], bool]:
        """The families whose rules ``text`` (normalised) matches, and whether it reads as put
        right (a resolved or negated complaint)."""
        names: set[str] = set()
        if self._families is not None:
            for found in self._families.finditer(text):
                names.add(found.lastgroup)  # type: ignore[arg-type]
        resolved = bool(self._resolved and self._resolved.search(text))
        return [self.families[n] for n in sorted(names)], resolved

    def extended(self, extra: Mapping[str, Sequence[str]]) -> EnglishRules:
        """These rules plus a brand's own phrases (``[brands.lexicon]``), matched literally as
        whole words; ``extra`` maps a family name (known or new) to phrases."""
        families = {name: (weight, list(p)) for name, (weight, p) in self._sources.items()}
        for name, phrases in extra.items():
            weight = self.families[name].weight if name in self.families else CUSTOM_WEIGHT
            families.setdefault(name, (weight, []))[1].extend(_phrase(p) for p in phrases)
        return EnglishRules(families, self._resolved_sources)


class KeywordList:
    """One language's keywords, matched as whole words or (for scripts without spaces)
    anywhere in the text."""

    def __init__(self, language: str, lists: Mapping[str, Sequence[str]], substring: bool) -> None:
        self.language = language
        escaped = {
            kind: [re.escape(normalise(w)) if substring else _phrase(w) for w in words]
            for kind, words in lists.items()
            if words
        }
        self._pattern = _alternation(escaped)

    def scan(self, text: str) -> dict[str, int]:
        """How many keywords of each kind (negative, complaint, crisis, positive) occur."""
        counts: dict[str, int] = {}
        if self._pattern is not None:
            for found in self._pattern.finditer(text):
                kind = found.lastgroup or ""
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def _phrase(words: str) -> str:
    """A literal phrase as a whole-word pattern (Unicode letters count as word characters)."""
    return r"(?<!\w)" + re.escape(normalise(words)).replace(r"\ ", r"\s+") + r"(?!\w)"


def _alternation(groups: Mapping[str, Iterable[str]]) -> re.Pattern[str] | None:
    """One pattern with a named group per key: a single scan tells which groups matched."""
    parts = [
        f"(?P<{name}>{'|'.join(f'(?:{p})' for p in patterns)})" for name, patterns in groups.items()
    ]
    return re.compile("|".join(parts)) if parts else None


def _read(name: str) -> dict[str, Any]:
    text = resources.files("monitor.data").joinpath("lexicon", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def english_rules() -> EnglishRules:
    data = _read("en.toml")
    families = {
        name: (float(family["weight"]), tuple(family["patterns"]))
        for name, family in data["families"].items()
    }
    return EnglishRules(families, data.get("resolved", {}).get("patterns", ()))


@cache
def keyword_lists() -> dict[str, KeywordList]:
    """Every shipped language's keywords by ISO 639-1 code, including the codes it also
    covers (Indonesian text is scored with the Malay list, Croatian and Bosnian with Serbian)."""
    lists: dict[str, KeywordList] = {}
    folder = resources.files("monitor.data").joinpath("lexicon")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml") or entry.name in ("en.toml", "triage.toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        words = {kind: data.get(kind, []) for kind in KEYWORD_WEIGHTS}
        keywords = KeywordList(data["language"], words, data.get("match") == "substring")
        for code in [data["language"], *data.get("also", [])]:
            lists[code] = keywords
    return lists
