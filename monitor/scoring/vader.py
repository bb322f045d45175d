"""VADER, scoring exactly as ``vaderSentiment`` does, without its avoidable work.

``SentimentIntensityAnalyzer.polarity_scores`` spends most of its time on things that cannot
change the result: it walks every character looking for emoji (there are none in most texts),
lower-cases the whole text again for every word it checks for negation or idioms (so a long
post costs quadratic time), and runs the full valence machinery for words that are not in its
lexicon (they always score 0).  ``Vader`` skips exactly that work and nothing else; the test
suite checks that it returns the same scores as the library on every text we have.  Its "but"
rule gives the library's results in O(n log n) instead of the library's quadratic time, which
took 12 s on "but" and 10,000 emoji.
"""

from __future__ import annotations

import heapq
import string

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    scalar_inc_dec,
)

_NEGATE = frozenset(NEGATE)
_PUNCTUATION = string.punctuation


class Vader(SentimentIntensityAnalyzer):
    """``SentimentIntensityAnalyzer`` with the same scores, faster."""

    def __init__(self) -> None:
        super().__init__()
        # VADER replaces each character that is an emoji by the emoji's name before scoring
        self._emoji = frozenset(key for key in self.emojis if len(key) == 1)

    def polarity_scores(self, text: str) -> dict[str, float]:  # type: ignore[override]
        if not text.isascii() and not self._emoji.isdisjoint(text):
            text = self._name_emoji(text)
        text = text.strip()
        # SentiText's words: split on spaces, punctuation stripped unless that leaves two
        # characters or fewer (an emoticon such as ":)")
        words = [
            word if len(stripped := word.strip(_PUNCTUATION)) <= 2 else stripped
            for word in text.split()
        ]
        lowered = [word.lower() for word in words]
        lexicon = self.lexicon
        if lexicon.keys().isdisjoint(lowered):  # every word scores 0
            return {"neg": 0.0, "neu": 1.0 if words else 0.0, "pos": 0.0, "compound": 0.0}
        capitals = sum(map(str.isupper, words))
        cap_differs = 0 < len(words) - capitals < len(words)  # some words in capitals, not all
        sentiments: list[float] = [0] * len(words)  # a word not in the lexicon scores 0
        last = len(words) - 1
        for i, lower in enumerate(lowered):
            if lower not in lexicon or lower in BOOSTER_DICT:
                continue
            if not (i < last and lower == "kind" and lowered[i + 1] == "of"):
                sentiments[i] = self._valence(i, words, lowered, cap_differs)
        if "but" in lowered:
            _but_check(sentiments, lowered.index("but"))
        return self.score_valence(sentiments, text)

    def _name_emoji(self, text: str) -> str:
        """VADER's first step: each emoji replaced by its name, after a space unless one
        precedes it."""
        parts: list[str] = []
        after_space = True
        for char in text:
            if char in self._emoji:
                if not after_space:
                    parts.append(" ")
                parts.append(self.emojis[char])
                after_space = False
            else:
                parts.append(char)
                after_space = char == " "
        return "".join(parts)

    def _valence(self, i: int, words: list[str], lowered: list[str], cap_differs: bool) -> float:
        """VADER's ``sentiment_valence`` for lexicon word ``i``, on words lower-cased once."""
        lexicon = self.lexicon
        lower = lowered[i]
        valence = lexicon[lower]
        if lower == "no" and i != len(words) - 1 and lowered[i + 1] in lexicon:
            valence = 0.0  # "no" negates the next word instead
        if (
            (i > 0 and lowered[i - 1] == "no")
            or (i > 1 and lowered[i - 2] == "no")
            or (i > 2 and lowered[i - 3] == "no" and lowered[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[lower] * N_SCALAR
        if cap_differs and words[i].isupper():
            valence += C_INCR if valence > 0 else -C_INCR
        for start_i in range(3):
            if i > start_i and lowered[i - (start_i + 1)] not in lexicon:
                s = scalar_inc_dec(words[i - (start_i + 1)], valence, cap_differs)
                if start_i == 1 and s != 0:
                    s *= 0.95
                if start_i == 2 and s != 0:
                    s *= 0.9
                valence = _negation(valence + s, lowered, start_i, i)
                if start_i == 2:
                    valence = _special_idioms(valence, lowered, i)
        return self._least_check(valence, lowered, i)


def _but_check(sentiments: list[float], but: int) -> None:
    """VADER's ``_but_check``, in place: words before the first "but" count half, words after it
    half as much again.

    The library finds each word by its value (``list.index``), so a word whose value an earlier
    word holds at that moment changes the earlier word instead; and searching costs a pass over
    the list per word.  The same choices are made here with, for each value, a heap of the
    positions that may hold it (checked when taken: a position's value changes).
    """
    holding: dict[float, list[int]] = {}
    for position, value in enumerate(sentiments):
        holding.setdefault(value, []).append(position)  # ascending: already a heap
    for position in range(len(sentiments)):
        value = sentiments[position]
        heap = holding[value]
        while sentiments[heap[0]] != value:
            heapq.heappop(heap)
        first = heap[0]  # where the library's sentiments.index(value) lands
        if first != but:
            changed = value * (0.5 if first < but else 1.5)
            sentiments[first] = changed
            heapq.heappush(holding.setdefault(changed, []), first)


def _negated(lower: str) -> bool:
    return lower in _NEGATE or "n't" in lower


def _negation(valence: float, lowered: list[str], start_i: int, i: int) -> float:
    """VADER's ``_negation_check`` (negative indexes wrap, as there)."""
    if start_i == 0 and _negated(lowered[i - 1]):
        valence *= N_SCALAR
    if start_i == 1:
        if lowered[i - 2] == "never" and lowered[i - 1] in ("so", "this"):
            valence *= 1.25
        elif lowered[i - 2] == "without" and lowered[i - 1] == "doubt":
            pass
        elif _negated(lowered[i - 2]):
            valence *= N_SCALAR
    if start_i == 2:
        if (lowered[i - 3] == "never" and lowered[i - 2] in ("so", "this")) or lowered[i - 1] in (
            "so",
            "this",
        ):
            valence *= 1.25
        elif lowered[i - 3] == "without" and "doubt" in (lowered[i - 2], lowered[i - 1]):
            pass
        elif _negated(lowered[i - 3]):
            valence *= N_SCALAR
    return valence


def _special_idioms(valence: float, lowered: list[str], i: int) -> float:
    """VADER's ``_special_idioms_check`` (negative indexes wrap, as there)."""
    onezero = f"{lowered[i - 1]} {lowered[i]}"
    twoonezero = f"{lowered[i - 2]} {lowered[i - 1]} {lowered[i]}"
    twoone = f"{lowered[i - 2]} {lowered[i - 1]}"
    threetwoone = f"{lowered[i - 3]} {lowered[i - 2]} {lowered[i - 1]}"
    threetwo = f"{lowered[i - 3]} {lowered[i - 2]}"
    for sequence in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if sequence in SPECIAL_CASES:
            valence = SPECIAL_CASES[sequence]
            break
    if len(lowered) - 1 > i:
        zeroone = f"{lowered[i]} {lowered[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if len(lowered) - 1 > i + 1:
        zeroonetwo = f"{lowered[i]} {lowered[i + 1]} {lowered[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence += BOOSTER_DICT[n_gram]
    return valence
