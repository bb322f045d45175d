"""The web console's HTTP side: login, CSRF, routing, and the headers every answer carries.

Served by ``monitor.serving`` (uvicorn in a background thread, as the push endpoint is), so it
has the same limits: a whole request within 15 s, a bounded number of connections, bodies over
``MAX_BODY`` refused before they are read.  Every page but the login page and the style sheet
needs a logged-in session; every POST needs the session's CSRF token in its form, and the
session cookie is ``SameSite=Strict`` besides.  The token and the cookies are never logged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from monitor.alert import plain_time
from monitor.config import ConsoleConfig
from monitor.console.pages import NotFound, Pages
from monitor.console.sessions import Session, Sessions, cookie_value, same, set_cookie
from monitor.detection import Level
from monitor.model import MentionLabel, to_utc, web_url
from monitor.serving import BackgroundServer, Request, Response
from monitor.storage import UnknownMention

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_NAME = 100
"""Characters of the name given at login (it is stored as who assigned or labelled)."""
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # links to customers' posts must not tell their sites where the console is
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
_ID_PATH = re.compile(r"^/(incidents|label|queue)/(\d{1,18})(?:/(done|assign))?$")


class ConsoleServer(BackgroundServer):
    """Serves the console of ``storage`` on ``[console] bind:port``; ``ValueError`` when the
    token's environment variable is unset (nobody could log in)."""

    def __init__(self, console: ConsoleConfig, pages: Pages) -> None:
        token = os.environ.get(console.token_env, "")
        if not token:
            raise ValueError(
                f"environment variable {console.token_env} (the console's login token) is not set"
            )
        super().__init__(
            console.bind, console.port, Console(pages, token), "brandmon-console", max_body=MAX_BODY
        )

    def start(self) -> None:
        super().start()
        log.info("web console url=http://%s:%d/", *self.address)


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("monitor.console"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = lambda moment: (
        "—" if moment is None else plain_time(to_utc(moment).isoformat())  # type: ignore[union-attr]
    )
    environment.filters["level"] = lambda name: Level[name].said
    environment.filters["web_url"] = web_url
    # the fields that are set, as a query string: links that keep a page's filters
    environment.filters["query"] = lambda fields: urlencode({k: v for k, v in fields.items() if v})
    return environment


class Console:
    """``monitor.serving.Endpoint`` for the console's pages."""

    def __init__(self, pages: Pages, token: str) -> None:
        self._pages = pages
        self._token = token
        self._sessions = Sessions()
        self._templates = _environment()
        self._css = resources.files("monitor.console").joinpath("static", "console.css")

    def check(self, request: Request) -> Response | None:
        if request.method not in ("GET", "POST"):
            return Response(405, b"GET or POST\n", "text/plain", {"Allow": "GET, POST"})
        return None

    def respond(self, request: Request) -> Response:
        if request.path == "/static/console.css" and request.method == "GET":
            return Response(200, self._css.read_bytes(), "text/css; charset=utf-8", HEADERS)
        session = self._sessions.get(cookie_value(request.headers.get("cookie", "")))
        fields = _fields(request)
        if request.method == "POST" and (
            session is None or not same(fields.get("csrf", ""), session.csrf)
        ):
            log.warning("console refused a form without its CSRF token client=%s", request.client)
            return self._page("refused.html", HTTPStatus.FORBIDDEN, session)
        if request.path == "/login":
            return self._login(request, session, fields)
        if session is None or session.user is None:
            return _redirect("/login")
        if request.path == "/logout" and request.method == "POST":
            self._sessions.end(session.id)
            return _redirect("/login")
        try:
            return self._route(request, session, fields)
        except NotFound as exc:
            return self._page("not_found.html", HTTPStatus.NOT_FOUND, session, message=str(exc))
        except Exception:  # the page failed (the database is away…): say so, keep serving
            log.exception("console page failed path=%s", request.path)
            body = b"this page failed; the daemon's log says why\n"
            return Response(HTTPStatus.INTERNAL_SERVER_ERROR, body, "text/plain", HEADERS)

    def _route(self, request: Request, session: Session, fields: Mapping[str, str]) -> Response:
        pages, post = self._pages, request.method == "POST"
        if request.path == "/" and not post:
            return _redirect("/incidents")
        if request.path in ("/incidents", "/queue", "/mentions") and not post:
            read: Callable[..., dict[str, Any]] = getattr(pages, request.path[1:])
            context = read() if request.path == "/incidents" else read(fields)
            return self._page(f"{request.path[1:]}.html", HTTPStatus.OK, session, **context)
        found = _ID_PATH.match(request.path)
        if found is None:
            raise NotFound(f"no page {request.path}")
        kind, number, action = found[1], int(found[2]), found[3]
        if kind == "incidents" and not post and action is None:
            return self._page("incident.html", HTTPStatus.OK, session, **pages.incident(number))
        if kind == "label" and action is None:
            return self._label(number, session, fields, post=post)
        if kind == "queue" and action and post:
            try:
                if action == "done":
                    pages.storage.set_mention_state(number, done_by=session.user)
                else:
                    pages.storage.set_mention_state(number, assigned_to=session.user)
            except UnknownMention as exc:
                raise NotFound(str(exc)) from None
            return _redirect(_back(fields.get("back", "")))
        raise NotFound(f"no page {request.method} {request.path}")

    def _label(
        self, mention_id: int, session: Session, fields: Mapping[str, str], *, post: bool
    ) -> Response:
        context = self._pages.label(mention_id)
        if not post:
            return self._page("label.html", HTTPStatus.OK, session, saved=False, **context)
        try:
            context["label"] = self._store_label(mention_id, session, fields)
        except ValueError as exc:
            return self._page(
                "label.html",
                HTTPStatus.UNPROCESSABLE_ENTITY,
                session,
                saved=False,
                error=str(exc),
                **context,
            )
        log.info("console label mention=%d by=%s", mention_id, session.user)
        return self._page("label.html", HTTPStatus.OK, session, saved=True, **context)

    def _store_label(
        self, mention_id: int, session: Session, fields: Mapping[str, str]
    ) -> MentionLabel:
        return self._pages.storage.label_mention(
            mention_id,
            fields.get("sentiment", ""),
            fields.get("category") or None,
            by=session.user,
        )

    def _login(
        self, request: Request, session: Session | None, fields: Mapping[str, str]
    ) -> Response:
        if session is None:  # a session before login, for the login form's CSRF token
            session = self._sessions.new()
        if request.method == "GET":
            return self._page("login.html", HTTPStatus.OK, session, new_cookie=True, error="")
        name = " ".join(fields.get("name", "").split())
        if not name or len(name) > MAX_NAME:
            error = f"give your name (at most {MAX_NAME} characters): it is stored with what you do"
            return self._page("login.html", HTTPStatus.UNPROCESSABLE_ENTITY, session, error=error)
        if not same(fields.get("token", ""), self._token):
            log.warning("console login refused: wrong token client=%s", request.client)
            error = "wrong token"
            return self._page("login.html", HTTPStatus.UNAUTHORIZED, session, error=error)
        self._sessions.end(session.id)  # a new id once logged in
        logged_in = self._sessions.new(name)
        log.info("console login user=%s client=%s", name, request.client)
        return _redirect("/incidents", {"Set-Cookie": set_cookie(logged_in)})

    def _page(
        self,
        template: str,
        status: HTTPStatus,
        session: Session | None,
        *,
        new_cookie: bool = False,
        **context: Any,
    ) -> Response:
        body = self._templates.get_template(template).render(
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            brands=self._pages.brands,
            **context,
        )
        headers = dict(HEADERS)
        if new_cookie and session is not None:
            headers["Set-Cookie"] = set_cookie(session)
        return Response(status, body.encode(), "text/html; charset=utf-8", headers)


def _fields(request: Request) -> dict[str, str]:
    """A form's fields (POST), or the query's (GET); the first of repeated ones."""
    data = request.body.decode("utf-8", "replace") if request.method == "POST" else request.query
    return dict(reversed(parse_qsl(data, keep_blank_values=True)))


def _back(path: str) -> str:
    """Where a queue button returns to: a path of this site, else the queue."""
    if path.startswith(("/queue", "/mentions")) and "\\" not in path and "//" not in path:
        return path
    return "/queue"


def _redirect(location: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        HTTPStatus.SEE_OTHER,
        b"",
        "text/plain",
        {**HEADERS, "Location": location, **(headers or {})},
    )
