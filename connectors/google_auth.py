"""A Google service account's OAuth2 access token, for the Google APIs that want one.

The service account's JSON key file (as Google Cloud hands it out) is named by an environment
variable; it is read when a token is needed, so a rotated key is picked up without a restart.
The token is got by the JWT-bearer grant (RFC 7523, Google's "OAuth 2.0 for server to server
applications"): an RS256-signed JWT (``iss`` the account's ``client_email``, the ``scope``,
``aud`` the file's ``token_uri``, valid an hour) is posted to the file's ``token_uri``, which
answers ``{"access_token", "expires_in", "token_type"}``.  The token is kept until five minutes
before it expires.  Neither the private key nor a token is ever logged or put in an error: a
refused exchange is reported by Google's ``error`` and ``error_description`` alone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.base import SourceError, secret
from connectors.payload import Json, count, string
from monitor.http import parse_retry_after, redact_url

LIFETIME = 3600
"""Seconds a signed assertion is valid: Google accepts at most an hour."""
REFRESH_MARGIN = 300.0
"""A token this close to its expiry (seconds) is replaced before it is used."""
MAX_FILE_BYTES = 64_000
MAX_ANSWER_BYTES = 64_000
DEADLINE = 30.0
REASON_CHARS = 200
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What a token request needs from a service account's key file."""

    client_email: str
    token_uri: str
    key_id: str | None
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def load(cls, variable: str) -> ServiceAccount:
        """The service account whose key file the environment variable ``variable`` names; an
        ``auth`` error says what is wrong without quoting the file."""
        path = secret(variable)
        where = f"the service account key file named by {variable}"
        try:
            with open(path, "rb") as file:
                content = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SourceError("auth", f"cannot read {where}: {exc.strerror}") from None
        try:
            data = json.loads(content) if len(content) <= MAX_FILE_BYTES else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise SourceError("auth", f"{where} is not a service account's JSON key file")
        email, uri, pem = (
            string(data, key) for key in ("client_email", "token_uri", "private_key")
        )
        if not (email and uri and pem):
            raise SourceError(
                "auth", f"{where} lacks client_email, token_uri or private_key: is it a key file?"
            )
        if not uri.startswith(("https://", "http://")):
            raise SourceError("auth", f"the token_uri in {where} is not an http(s) URL")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SourceError("auth", f"the private_key in {where} is not a readable RSA key")
        return cls(email, uri, string(data, "private_key_id"), key)

    def assertion(self, scope: str, now: int) -> str:
        """The signed JWT that asks ``token_uri`` for a token of ``scope``."""
        header = {"alg": "RS256", "typ": "JWT"} | ({"kid": self.key_id} if self.key_id else {})
        claims = {
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + LIFETIME,
        }
        signed = f"{_segment(header)}.{_segment(claims)}"
        signature = self.private_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64(signature)}"


class AccessToken:
    """The access token of the service account named by ``variable``, for ``scope``, got when
    first needed and kept until shortly before it expires."""

    def __init__(self, variable: str, scope: str) -> None:
        self.variable = variable
        self.scope = scope
        self._token: str | None = None
        self._expires = 0.0  # time.monotonic()

    async def get(self, client: httpx.AsyncClient) -> str:
        if self._token is None or time.monotonic() >= self._expires - REFRESH_MARGIN:
            account = ServiceAccount.load(self.variable)
            started = time.monotonic()
            answer = await _post_form(
                client,
                account.token_uri,
                {"grant_type": GRANT, "assertion": account.assertion(self.scope, int(time.time()))},
            )
            token = string(answer, "access_token")
            if not token:
                raise SourceError(
                    "malformed", f"{redact_url(account.token_uri)} did not return an access_token"
                )
            self._token = token
            self._expires = started + (count(answer.get("expires_in")) or LIFETIME)
        return self._token

    def forget(self) -> None:
        """Drop the token (the API refused it): the next ``get`` asks for a new one."""
        self._token = None


async def _post_form(client: httpx.AsyncClient, url: str, form: dict[str, str]) -> Json:
    """POST ``form`` to a token endpoint and return its JSON answer, or raise ``SourceError``:
    ``auth`` when it refuses the grant (400, 401, 403), with Google's reason."""
    where = redact_url(url)
    try:
        async with asyncio.timeout(DEADLINE), client.stream("POST", url, data=form) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise SourceError(
                        "too_large", f"{where} sent more than {MAX_ANSWER_BYTES} bytes"
                    )
            status, headers = response.status_code, response.headers
    except TimeoutError:
        raise SourceError("timeout", f"{where} took longer than {DEADLINE:g}s") from None
    except httpx.TimeoutException as exc:
        raise SourceError("timeout", f"{where} timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise SourceError("connect", f"cannot reach {where}: {type(exc).__name__}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    answer = answer if isinstance(answer, dict) else {}
    if status < 300:
        return answer
    reason = ": ".join(filter(None, (string(answer, "error"), string(answer, "error_description"))))
    message = f"HTTP {status} from {where}" + (f" ({reason[:REASON_CHARS]})" if reason else "")
    if status in (400, 401, 403):
        raise SourceError("auth", f"{message}: the service account's token was refused")
    kinds = {3: "redirect", 4: "http_4xx", 5: "http_5xx"}
    kind = "http_429" if status == 429 else kinds.get(status // 100, "http_5xx")
    raise SourceError(kind, message, retry_after=parse_retry_after(headers.get("Retry-After")))


def _segment(part: Mapping[str, object]) -> str:
    return _b64(json.dumps(part, separators=(",", ":")).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
