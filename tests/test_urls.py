from __future__ import annotations

import random

import pytest

from monitor.urls import canonical_url, unwrap_redirect

ALERT_LINK = (
    "https://www.google.com/url?rct=j&sa=t"
    "&url=https://www.example.com/business/acme-factory%3Fid%3D42%26utm_source%3Dgoogle"
    "&ct=ga&cd=CAIyGjA1ZDk4&usg=AOvVaw0abcdefghijklmnop"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.Example.COM/News", "https://www.example.com/News"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a/", "https://example.com/a"),
        ("https://example.com/a//", "https://example.com/a"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("http://[::1]:8080/a/", "http://[::1]:8080/a"),
        ("  https://example.com/a \n", "https://example.com/a"),
    ],
)
def test_normalizes_scheme_host_port_fragment_and_slash(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_drops_tracking_parameters_and_sorts_the_rest() -> None:
    url = (
        "https://example.com/p?utm_source=tw&z=1&UTM_Medium=social&fbclid=abc&gclid=x"
        "&mc_cid=1&mc_eid=2&igshid=q&ref_src=twsrc&a=2&msclkid=m&id="
    )
    assert canonical_url(url) == "https://example.com/p?a=2&id=&z=1"


def test_only_tracking_parameters_leaves_no_query() -> None:
    assert canonical_url("https://example.com/p/?utm_source=x&fbclid=y") == "https://example.com/p"


def test_repeated_parameters_keep_their_order() -> None:
    assert canonical_url("https://example.com/?b=1&a=2&a=1") == "https://example.com/?a=2&a=1&b=1"


def test_variants_of_one_article_agree() -> None:
    variants = [
        "https://www.example.com/business/acme-factory?id=42",
        "HTTPS://www.example.com:443/business/acme-factory/?id=42&utm_campaign=x#top",
        ALERT_LINK,
    ]
    assert {canonical_url(v) for v in variants} == {
        "https://www.example.com/business/acme-factory?id=42"
    }


@pytest.mark.parametrize(
    ("link", "target"),
    [
        (ALERT_LINK, "https://www.example.com/business/acme-factory?id=42&utm_source=google"),
        ("https://www.google.com/url?q=https://x.org/a%3Fb%3D1&sa=D", "https://x.org/a?b=1"),
        ("https://google.co.uk/url?sa=t&url=http://x.org/", "http://x.org/"),
    ],
)
def test_unwraps_google_redirects(link: str, target: str) -> None:
    assert unwrap_redirect(link) == target


@pytest.mark.parametrize(
    "link",
    [
        "https://www.google.com/search?q=https://x.org/",  # not the redirect endpoint
        "https://google.evil.com/url?url=https://x.org/",  # not Google
        "https://www.google.com/url?q=javascript:alert(1)",  # not an http(s) target
        "https://example.com/url?url=https://x.org/",
    ],
)
def test_leaves_other_links_alone(link: str) -> None:
    assert unwrap_redirect(link) == link


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "   ",
        "ftp://example.com/f",
        "mailto:a@example.com",
        "example.com/a",
        "http://",
        "http://[::1",
        "http://example.com:port/",
    ],
)
def test_rejects_what_is_not_an_http_url(url: str | None) -> None:
    assert canonical_url(url) is None


def test_links_already_canonical_come_back_unchanged_as_the_full_rules_would_give() -> None:
    # A capitalised scheme takes every link through the full rules; the plain one may take
    # the shortcut for links already canonical.  Both must agree, on odd characters too.
    rng = random.Random(4)
    chars = "abcXYZ019-._~%:@;,=+!$&'()*[]\\\"<>^`{|}é\u00a0\u0085\u2028\x1f\x7f\x00/ ?#\t\n"
    hosts = ["x.com", "www.example.co.uk", "1.2.3.4", "example.com.", "EXAMPLE.com", "a..b"]
    unchanged = 0
    for _ in range(20_000):
        path = "".join(
            "/" + "".join(rng.choices(chars, k=rng.randrange(6))) for _ in range(rng.randrange(4))
        )
        url = f"https://{rng.choice(hosts)}{path}"
        canonical = canonical_url(url)
        assert canonical == canonical_url("HTTPS" + url.removeprefix("https")), url
        unchanged += canonical == url
    assert unchanged > 1000  # the shortcut was taken
