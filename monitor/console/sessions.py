"""Who is logged in to the web console: sessions kept in memory, each with its CSRF token.

A browser gets a session before it logs in (so the login form carries a CSRF token too) and a
new one when it does (so an id planted before login is worth nothing after).  Ids and tokens are
random and compared in constant time; a session ends after ``LIFETIME`` or at logout, and all
end when the daemon restarts.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

LIFETIME = 12 * 3600
"""Seconds a session lasts: a working day."""
MAX_SESSIONS = 10_000
"""Sessions kept at most; beyond, the oldest are forgotten (a flood of login pages costs no
more memory than this)."""
COOKIE = "brandmon_console"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str
    user: str | None
    """The name given at login; None before."""
    expires: float


class Sessions:
    """The console's sessions (thread-safe: requests are answered in a thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def new(self, user: str | None = None) -> Session:
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, time.time() + LIFETIME
        )
        with self._lock:
            while len(self._by_id) >= MAX_SESSIONS:
                del self._by_id[next(iter(self._by_id))]  # dicts keep insertion order
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None."""
        if not session_id:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
            if session is not None and session.expires < time.time():
                del self._by_id[session_id]
                session = None
        return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._by_id.pop(session_id, None)


def same(given: str, expected: str) -> bool:
    """Whether a secret given by a client is the expected one, in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def cookie_value(header: str) -> str | None:
    """The session id in a ``Cookie`` header, if any."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def set_cookie(session: Session) -> str:
    """The ``Set-Cookie`` header value for ``session``: not readable by scripts, never sent
    with a request another site started."""
    return f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={LIFETIME}"
