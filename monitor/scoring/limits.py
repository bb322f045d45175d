"""How much of a post each stage reads, so that no post can stall the daemon.

Anyone can write a mention's text, and one post of a single 900,000-character "word" once held
the daemon for minutes: lingua's time grows with the square of a word's length.  So every stage
that walks the text reads a bounded head of it, and lingua also reads long runs of non-space
characters cut short; within those bounds every stage takes time linear in what it reads.  The
limits sit far above real posts (the longest of the 66,000 labelled posts we measure on has
4,733 characters), so they change no result on them.
"""

from __future__ import annotations

import re

from monitor.scoring.lexicon import normalise

SCORED_CHARS = 10_000
"""Language detection, sentiment (VADER, complaint rules, keyword lists) and triage read the
first 10,000 characters: twice the longest real post we have seen, and a post says what it is
about at its start.  That much takes at most about 0.2 s to score, whatever it holds."""

MATCHED_CHARS = 40_000
"""Brand matching reads the first 40,000 characters, the longest post any source allows (a
Reddit post; X's long posts stop at 25,000): a post that names the brand anywhere is found, and
matching is cheap (one RE2 pass, then literal-first regexes)."""

WORD_CHARS = 100
"""Lingua, language detection's last resort, reads the first 100 characters of each run of
non-space characters.  Its time grows with the square of a run's length (300,000 characters:
27 s), and no word is that long (dictionary words have at most 45 letters, German compounds
about 80); longer runs are links, handles, tags or text in a script without spaces, whose first
100 characters show its language as well as the rest would."""

_LONG_RUN = re.compile(rf"(?<!\S)(\S{{{WORD_CHARS}}})\S+")
_LAST_WORD = re.compile(rf"\s\S{{1,{WORD_CHARS}}}\Z")


def head(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, less a word the cut splits (its first part
    could read as another word: "acme" out of "acmeville").  A run longer than ``WORD_CHARS``
    is cut where the limit falls."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if text[limit].isspace():
        return cut
    split = _LAST_WORD.search(cut, limit - WORD_CHARS - 1)
    return cut[: split.start()] if split else cut


def short_runs(text: str) -> str:
    """``text`` with every run of non-space characters longer than ``WORD_CHARS`` cut to its
    first ``WORD_CHARS`` characters."""
    return _LONG_RUN.sub(r"\1", text)


def scored_form(text: str) -> str:
    """What complaint rules, keyword lists and triage read: the first ``SCORED_CHARS``
    characters of ``text`` normalised (see ``normalise``), and no more than ``SCORED_CHARS`` of
    those, since NFKC can make one character eighteen (U+FDFA)."""
    return head(normalise(head(text, SCORED_CHARS)), SCORED_CHARS)
