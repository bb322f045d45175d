"""What the review connectors (``app_store``, ``google_play``, ``trustpilot``) read alike.

A review has stars and often a title besides its text.  The stars go to ``RawMention.rating``,
where scoring weighs them (``monitor.scoring.complaints.rated``); the title and the text are one
mention text, so a brand named only in the title is matched.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BeforeValidator

from connectors.payload import count

STARS = range(1, 6)


def stars(value: Any) -> int | None:
    """A review's stars, 1 to 5, from an integer or a string of digits; None for anything else
    (0 is how some APIs say "no rating")."""
    number = count(value)
    return number if number in STARS else None


def review_text(*parts: str | None) -> str:
    """The non-blank ``parts`` (title, text), stripped, one per line."""
    return "\n".join(part.strip() for part in parts if part and part.strip())


def identifier(pattern: str, what: str) -> BeforeValidator:
    """The check of a string setting that must match ``pattern`` whole, for
    ``Annotated[str, identifier(…)]``; a config error says the value is not ``what`` (e.g.
    "an Android package name such as com.example.app")."""
    compiled = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return BeforeValidator(check)
