"""The callback signature a receiver checks, and which URLs a feed may be called back on."""

from __future__ import annotations

import pytest

from filegate.callbacks.allow_list import CallbackRefused, check_callback_url, host_allowed
from filegate.callbacks.signing import sign, verify

SECRET = b"shared-secret"
BODY = b'{"file_id":1,"status":"processed"}'


def test_a_signed_body_verifies_and_any_change_breaks_it() -> None:
    signature = sign(SECRET, 1_700_000_000, BODY)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(SECRET, timestamp="1700000000", body=BODY, signature=signature, now=1_700_000_010)
    assert not verify(SECRET, timestamp="1700000000", body=BODY + b" ", signature=signature, now=1_700_000_010)
    assert not verify(b"other", timestamp="1700000000", body=BODY, signature=signature, now=1_700_000_010)
    assert not verify(SECRET, timestamp="1700000001", body=BODY, signature=signature, now=1_700_000_010)
    assert not verify(SECRET, timestamp="soon", body=BODY, signature=signature, now=1_700_000_010)


def test_a_replayed_request_is_refused_by_its_age() -> None:
    signature = sign(SECRET, 1_700_000_000, BODY)
    assert not verify(SECRET, timestamp="1700000000", body=BODY, signature=signature, now=1_700_000_000 + 301)


@pytest.mark.parametrize(("host", "allowed", "expected"), [
    ("hooks.partner.com", ["hooks.partner.com"], True),
    ("HOOKS.partner.com.", ["hooks.partner.com"], True),
    ("a.hooks.partner.com", ["*.hooks.partner.com"], True),
    ("hooks.partner.com", ["*.hooks.partner.com"], False),  # the wildcard covers subdomains only
    ("evilhooks.partner.com", ["*.hooks.partner.com"], False),
    ("hooks.partner.com.evil.io", ["hooks.partner.com"], False),
])
def test_hosts_match_exactly_or_by_subdomain(host, allowed, expected) -> None:
    assert host_allowed(host, allowed) is expected


@pytest.mark.parametrize(("url", "allow_http", "says"), [
    ("http://hooks.partner.com/x", False, "must use https, not 'http'"),
    ("https://user:pw@hooks.partner.com/x", False, "must not carry credentials"),
    ("https://elsewhere.com/x", False, "host 'elsewhere.com' is not among feed f's callbacks.allowed_hosts"),
    ("javascript:alert(1)", True, "must use https or http"),
    ("https://hooks.partner.com/" + "x" * 1000, False, "longer than 1000 characters"),
])
def test_urls_the_feed_does_not_allow_are_refused_with_the_reason(url, allow_http, says) -> None:
    with pytest.raises(CallbackRefused, match=says):
        check_callback_url(url, feed="f", allowed_hosts=["hooks.partner.com"], allow_http=allow_http)


def test_a_feed_without_allowed_hosts_takes_no_callbacks() -> None:
    with pytest.raises(CallbackRefused, match="feed f takes no callback URLs"):
        check_callback_url("https://hooks.partner.com/x", feed="f", allowed_hosts=[], allow_http=False)
    assert check_callback_url("https://hooks.partner.com:8443/x?y=1", feed="f", allowed_hosts=["hooks.partner.com"],
                              allow_http=False) == "https://hooks.partner.com:8443/x?y=1"
