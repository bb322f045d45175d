"""GooglePlayConnector against loopback stand-ins for Google's token endpoint and the Play
Developer API's ``reviews.list``, with a service account key made for the test."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import PollResult, SourceError
from connectors.google_play import GooglePlayConnector, GooglePlaySource
from monitor.config import ConfigError, parse_config
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "google_play"
JSON = "application/json; charset=UTF-8"
PACKAGE = "com.acme.rockets"
REVIEWS = f"/androidpublisher/v3/applications/{PACKAGE}/reviews"
TOKEN_PATH = "/token"
ACCESS_TOKEN = "ya29.c.test-Access-Token-9f8e7d"
EMAIL = "brandmon@acme-reviews.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/androidpublisher"
NADIA = (
    "gp:AOqpTOFmAVORqfWGcaqfF39ftwFjGkjecjvCXnC_hsmEVJ9cLPaxNjXsBxD7lZmgU2fsNvrqq2JT3ZcTZQXiKo5s"
)
PAGE_2_TOKEN = (
    "CpYBCmgKZgpkCgsIgMbGswYQgNSbQBJRZ3A6QU9xcFRPSHE0UHFXMnlON3ZCM2NYOHpMMXBPNWlLOW1KNmhH"
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """A throwaway RSA key standing for the service account's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def credentials(
    httpserver: HTTPServer, key: rsa.RSAPrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A service account key file shaped as Google Cloud hands it out, its token_uri on
    loopback, named by GOOGLE_PLAY_CREDENTIALS."""
    path = tmp_path / "acme-reviews-3b2c1d0e9f8a.json"
    account = {
        "type": "service_account",
        "project_id": "acme-reviews",
        "private_key_id": "3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c",
        "private_key": pem(key),
        "client_email": EMAIL,
        "client_id": "108234567890123456789",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": httpserver.url_for(TOKEN_PATH),
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": (
            "https://www.googleapis.com/robot/v1/metadata/x509/"
            "brandmon%40acme-reviews.iam.gserviceaccount.com"
        ),
        "universe_domain": "googleapis.com",
    }
    path.write_text(json.dumps(account, indent=2))
    monkeypatch.setenv("GOOGLE_PLAY_CREDENTIALS", str(path))
    return path


def decode(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class TokenEndpoint:
    """Google's token endpoint: checks the JWT-bearer grant's signature with the account's
    public key and hands out ``ACCESS_TOKEN``; keeps the claims of every grant."""

    def __init__(self, key: rsa.RSAPrivateKey, expires_in: int = 3599) -> None:
        self.public = key.public_key()
        self.expires_in = expires_in
        self.claims: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        assert request.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header, claims, signature = request.form["assertion"].split(".")
        try:
            self.public.verify(
                base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return Response(fixture("invalid_grant.json"), status=400, content_type=JSON)
        assert decode(header)["alg"] == "RS256"
        self.claims.append(decode(claims))
        answer = {"access_token": ACCESS_TOKEN, "expires_in": self.expires_in}
        return Response(json.dumps(answer | {"token_type": "Bearer"}), content_type=JSON)


@pytest.fixture
def tokens(httpserver: HTTPServer, key: rsa.RSAPrivateKey, credentials: Path) -> TokenEndpoint:
    endpoint = TokenEndpoint(key)
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_handler(endpoint)
    return endpoint


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def connector(server: HTTPServer, **options: object) -> GooglePlayConnector:
    config = GooglePlaySource.model_validate(
        {
            "name": "acme-play",
            "type": "google_play",
            "package_name": PACKAGE,
            "base_url": server.url_for("/"),
        }
        | options
    )
    return GooglePlayConnector(config)


def poll(source: GooglePlayConnector, cursor: Cursor | None = None) -> PollResult:
    return poll_once(source, cursor)


def poll_error(source: GooglePlayConnector, key: rsa.RSAPrivateKey | None = None) -> SourceError:
    return refused(lambda: poll(source), ACCESS_TOKEN, *(["PRIVATE KEY"] if key else []))


def paged(request: Request) -> Response:
    """Page 1, then page 2 for its nextPageToken."""
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    token = request.args.get("token")
    page = "page1.json" if token is None else "page2.json"
    if token is not None:
        assert token.startswith(PAGE_2_TOKEN)
    return Response(fixture(page), content_type=JSON)


def serve(server: HTTPServer) -> None:
    server.expect_request(REVIEWS).respond_with_handler(paged)


def api_calls(server: HTTPServer) -> list[dict[str, str]]:
    return [dict(request.args) for request, _ in server.log if request.path == REVIEWS]


def token_calls(server: HTTPServer) -> int:
    return sum(request.path == TOKEN_PATH for request, _ in server.log)


def mark(seconds: int, review_id: str) -> Cursor:
    return Cursor(cursor=json.dumps({"newest": float(seconds), "ids": [review_id]}))


def test_reviews_are_normalised(httpserver: HTTPServer, tokens: TokenEndpoint) -> None:
    serve(httpserver)
    result = poll(connector(httpserver))

    assert api_calls(httpserver) == [{"maxResults": "100"}]  # a first poll reads one page
    [claims] = tokens.claims
    assert claims["iss"] == EMAIL
    assert claims["scope"] == SCOPE
    assert claims["aud"] == httpserver.url_for(TOKEN_PATH)
    assert claims["exp"] - claims["iat"] == 3600

    nadia, french, malay = result.mentions
    assert nadia.external_id == NADIA
    assert nadia.source_type == "google_play"
    assert nadia.text == (
        "Crashes on payment\nAcme Rockets crashes every time I pay with my card. Please fix!"
    )
    assert nadia.author == "Nadia Rahman"
    assert (nadia.rating, nadia.likes, nadia.language) == (1, 12, "en")
    assert nadia.author_followers is None
    assert nadia.published_at == datetime(2024, 6, 3, 10, 40, 0, 512000, tzinfo=UTC)
    assert nadia.url == (
        f"https://play.google.com/store/apps/details?id={PACKAGE}&reviewId={NADIA}"
    )
    assert nadia.extra == {
        "app_version": "5.12.0",
        "device": "a52q",
        "android": "34",
        "developer_reply": "Hi Nadia, sorry about this. A fix is rolling out in 5.12.1 today.",
        "developer_reply_at": "2024-06-03T11:40:00+00:00",
    }
    # No title: Play's text starts with the tab.  No authorName: no author.
    assert (french.text, french.author, french.rating) == ("Super app, livraison rapide", None, 5)
    assert (malay.language, malay.extra["app_version"]) == ("ms", "5.11.2")
    assert json.loads(result.cursor.cursor or "") == {"newest": 1717411200.512, "ids": [NADIA]}
    assert result.truncated is None


def test_a_poll_pages_back_to_the_last_review_and_a_re_poll_finds_nothing_new(
    httpserver: HTTPServer, tokens: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    serve(httpserver)
    source = connector(httpserver)
    oldest = json.loads(fixture("page2.json"))["reviews"][-1]["reviewId"]
    result = poll(source, mark(1717396800, oldest))

    ids = [m.external_id for m in result.mentions]
    assert len(ids) == len(set(ids)) == 4
    assert oldest not in ids
    assert [call.get("token", "")[:10] for call in api_calls(httpserver)] == ["", PAGE_2_TOKEN[:10]]
    assert (result.truncated, result.rest) == (None, None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    again = poll(source, result.cursor)
    assert again == PollResult(cursor=result.cursor)
    assert len(api_calls(httpserver)) == 3  # one page this time
    assert token_calls(httpserver) == 1  # the token was kept


def test_a_token_about_to_expire_is_replaced(
    httpserver: HTTPServer, key: rsa.RSAPrivateKey, credentials: Path
) -> None:
    endpoint = TokenEndpoint(key, expires_in=120)  # inside the five minutes' margin
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_handler(endpoint)
    httpserver.expect_request(REVIEWS).respond_with_data(fixture("empty.json"), content_type=JSON)
    source = connector(httpserver)
    poll(source)
    poll(source)
    assert token_calls(httpserver) == 2


def test_max_pages_cuts_a_poll_short_and_says_so(
    httpserver: HTTPServer, tokens: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(fixture("page1.json"), content_type=JSON)
    result = poll(connector(httpserver, max_pages=2), mark(1717300000, "gp:older"))

    assert len(api_calls(httpserver)) == 2
    assert len(result.mentions) == 3  # the same page twice: each review once
    assert result.truncated == 100
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=acme-play" in warning.getMessage()
    assert "max_pages" in warning.getMessage()


def test_a_refused_token_is_dropped_and_the_error_says_what_to_check(
    httpserver: HTTPServer, tokens: TokenEndpoint, key: rsa.RSAPrivateKey
) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(
        fixture("unauthenticated.json"), status=401, content_type=JSON
    )
    source = connector(httpserver)
    error = poll_error(source, key)
    assert error.kind == "http_4xx"
    assert REVIEWS in str(error)
    assert "has access to com.acme.rockets in Play Console" in str(error)
    poll_error(source, key)
    assert token_calls(httpserver) == 2  # asked anew after the refusal


def test_permission_denied(httpserver: HTTPServer, tokens: TokenEndpoint) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(
        fixture("permission_denied.json"), status=403, content_type=JSON
    )
    assert poll_error(connector(httpserver)).kind == "http_4xx"


def test_quota_exceeded_is_a_rate_limit(httpserver: HTTPServer, tokens: TokenEndpoint) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(
        fixture("quota_exceeded.json"),
        status=429,
        content_type=JSON,
        headers={"Retry-After": "900"},
    )
    error = poll_error(connector(httpserver))
    assert (error.kind, error.retry_after) == ("http_429", 900)


def test_a_grant_google_refuses_is_an_auth_error_with_its_reason(
    httpserver: HTTPServer, credentials: Path, key: rsa.RSAPrivateKey
) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_data(
        fixture("invalid_grant.json"), status=400, content_type=JSON
    )
    error = poll_error(connector(httpserver), key)
    assert error.kind == "auth"
    assert "HTTP 400" in str(error)
    assert "(invalid_grant: Invalid JWT Signature.)" in str(error)
    assert api_calls(httpserver) == []


def test_a_signature_from_another_key_is_refused(
    httpserver: HTTPServer, credentials: Path, key: rsa.RSAPrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_handler(TokenEndpoint(other))
    error = poll_error(connector(httpserver), key)
    assert (error.kind, api_calls(httpserver)) == ("auth", [])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read the service account key file named by GOOGLE_PLAY_CREDENTIALS"),
        ("not json", "is not a service account's JSON key file"),
        ('{"type": "authorized_user"}', "lacks client_email, token_uri or private_key"),
        (
            '{"client_email": "a@b.iam.gserviceaccount.com", "token_uri": "https://x/token", '
            '"private_key": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"}',
            "the private_key in the service account key file named by GOOGLE_PLAY_CREDENTIALS "
            "is not a readable RSA key",
        ),
    ],
    ids=["missing", "not-json", "not-a-service-account", "bad-key"],
)
def test_an_unusable_key_file_is_an_auth_error(
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | None,
    says: str,
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("GOOGLE_PLAY_CREDENTIALS", str(path))
    error = poll_error(connector(httpserver))
    assert error.kind == "auth"
    assert says in str(error)
    assert str(tmp_path) not in str(error)
    assert httpserver.log == []


def test_an_unset_variable_asks_nothing(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_PLAY_CREDENTIALS", raising=False)
    error = poll_error(connector(httpserver))
    assert (error.kind, str(error)) == (
        "auth",
        "environment variable GOOGLE_PLAY_CREDENTIALS is not set",
    )
    assert httpserver.log == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html><title>Error 404 (Not Found)!!1</title></html>",
        b"[]",
        b'{"reviews": {"reviewId": "gp:1"}}',
        b'{"reviews": ["gp:1"]}',
    ],
    ids=["html", "list", "reviews-object", "reviews-of-strings"],
)
def test_wrong_shape_is_malformed(
    httpserver: HTTPServer, tokens: TokenEndpoint, body: bytes
) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(body, content_type=JSON)
    error = poll_error(connector(httpserver))
    assert error.kind == "malformed"
    assert REVIEWS in str(error)


def test_config_errors_name_the_line() -> None:
    text = """
[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "acme-play"
type = "google_play"
package_name = "Acme Rockets"
credentials_env = "/etc/brandmon/play.json"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "brandmon.toml")
    found = [str(problem) for problem in caught.value.problems]
    assert len(found) == 2
    assert found[0] == (
        "brandmon.toml:9: sources[0].package_name: 'Acme Rockets' is not an Android package "
        "name such as com.example.app"
    )
    assert found[1].startswith("brandmon.toml:10: sources[0].credentials_env:")
    assert "not an environment variable name" in found[1]
