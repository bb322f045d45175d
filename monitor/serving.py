"""The daemon's HTTP endpoints — push, health and metrics, Slack's button clicks — on uvicorn.

Each endpoint is a small ASGI app served by its own uvicorn server, whose event loop runs in a
background thread: the endpoint answers even while the daemon's loop is busy with CPU work, and
stops with the daemon.  Blocking work (storing a push, checking the database) runs in the
server's thread pool, so one slow store does not hold up other requests.

Why uvicorn: the stdlib's ``ThreadingHTTPServer`` listened with a backlog of 5 (a burst of 200
pushes got 99 connection resets), spent a thread per connection with no limit, and timed out
each read separately, so a client sending a byte a second held its thread for ever.  uvicorn is
the most used production ASGI server, and has, as options, what that lacked: a listen backlog
(``BACKLOG``), a connection limit answered with 503 (``limit_concurrency``), keep-alive with an
idle timeout, and a graceful shutdown.  It runs on h11 here (pure Python, already installed
with httpx), chosen explicitly so the behaviour does not depend on whether httptools happens to
be installed.

uvicorn has no deadline on *receiving* a request: its only timer is the keep-alive one, which
each received byte restarts.  ``_deadline_protocol`` adds one to its h11 protocol: a request —
request line, headers and body — must arrive whole within ``deadline`` seconds of its first
byte (or of the connection's opening); otherwise the client gets 408 and the connection is
closed.  The time the endpoint takes to answer does not count.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

BACKLOG = 2048
"""Connections the kernel queues before they are accepted (capped by ``net.core.somaxconn``)."""
REQUEST_DEADLINE = 15.0
"""Seconds in which a whole request must arrive."""
MAX_CONNECTIONS = 64
"""Open connections served at once; a request on one more is answered 503."""
WORKERS = 8
"""Threads answering requests (``Endpoint.respond``) at once; more requests wait their turn."""
KEEP_ALIVE = 5
"""Seconds an idle keep-alive connection is kept open."""
STOP_GRACE = 5
"""Seconds ``stop`` lets requests in progress finish."""

_TIMEOUT_BODY = b"the request did not arrive in time\n"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """Without the query string."""
    headers: Mapping[str, str]
    """Lower-case names; the first of repeated headers."""
    client: str
    """The peer's address."""
    body: bytes = b""
    query: str = ""
    """The query string, undecoded (without the ``?``)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Endpoint(Protocol):
    """What one server answers."""

    def check(self, request: Request) -> Response | None:
        """A refusal decided from the method, path and headers alone, before the body is read
        (the connection is then closed: the unread body must not be taken for the next
        request).  It runs on the server's event loop, so it must not block."""

    def respond(self, request: Request) -> Response:
        """The answer to a whole request; it runs in the server's thread pool."""


class BackgroundServer:
    """Serves ``endpoint`` on ``host:port`` from a thread of its own.

    The port is bound here (an address in use raises ``OSError`` now, not later in the thread);
    port 0 picks a free one, which ``address`` tells.  Request bodies are read up to
    ``max_body`` bytes; beyond that the client gets 413.
    """

    def __init__(
        self,
        host: str,
        port: int,
        endpoint: Endpoint,
        name: str,
        *,
        max_body: int = 0,
        deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=BACKLOG)
        host, port = self._socket.getsockname()[:2]
        self._address = str(host), int(port)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=name)
        config = uvicorn.Config(
            _App(endpoint, max_body, self._pool),
            http=_deadline_protocol(deadline),
            loop="asyncio",
            ws="none",
            lifespan="off",
            interface="asgi3",
            backlog=BACKLOG,
            # uvicorn answers 503 once the open connections, this one included, reach the limit
            limit_concurrency=max_connections + 1,
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=STOP_GRACE,
            proxy_headers=False,
            server_header=False,
            access_log=False,
            log_config=None,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=name, daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def start(self) -> None:
        """Start serving, and return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self._thread.name}: the HTTP server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop accepting, let requests in progress finish (``STOP_GRACE``), and stop."""
        self._server.should_exit = True
        self._thread.join(timeout=STOP_GRACE + 5)
        self._socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _App:
    """The ASGI app: ``check``, read the body, then ``respond`` in the thread pool."""

    def __init__(self, endpoint: Endpoint, max_body: int, pool: ThreadPoolExecutor) -> None:
        self._endpoint = endpoint
        self._max_body = max_body
        self._pool = pool

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        request = Request(
            scope["method"],
            scope["path"],
            headers,
            (scope.get("client") or ("",))[0],
            query=scope.get("query_string", b"").decode("latin-1"),
        )
        refusal = self._endpoint.check(request)
        if refusal is not None:
            return await _send(send, refusal, close=True)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left, or missed the deadline: nobody to answer
            body += message.get("body", b"")
            if len(body) > self._max_body:
                too_large = Response(413, b"request body too large\n", "text/plain")
                return await _send(send, too_large, close=True)
            if not message.get("more_body", False):
                break
        loop = asyncio.get_running_loop()
        request = replace(request, body=bytes(body))
        response = await loop.run_in_executor(self._pool, self._endpoint.respond, request)
        await _send(send, response, close=False)


async def _send(send: Send, response: Response, *, close: bool) -> None:
    headers = [(b"content-length", str(len(response.body)).encode())]
    if response.content_type:
        headers.append((b"content-type", response.content_type.encode()))
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": int(response.status), "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def _deadline_protocol(deadline: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with a whole-request deadline (see the module docstring)."""

    class DeadlineProtocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._timer = self.loop.call_later(deadline, self._expired)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def _follow(self) -> None:
            """Run the timer while a request is arriving: some of it is here, not all."""
            state = self.conn.their_state
            if state is h11.SEND_BODY or (state is h11.IDLE and self.conn.trailing_data[0]):
                if self._timer is None:
                    self._timer = self.loop.call_later(deadline, self._expired)
            else:
                self._cancel()

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            log.info("closed a connection from %s: no whole request in %g s", self.client, deadline)
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # no answer begun yet
                self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()

    return DeadlineProtocol
