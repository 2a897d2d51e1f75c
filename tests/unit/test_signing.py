"""Review links: HMAC over id and expiry; checked in constant time, signature before expiry."""

import base64
import time
from datetime import UTC, datetime

import pytest

from rendergate.errors import LinkInvalid, ReviewExpired, Unauthorized
from rendergate.signing import (
    bearer,
    check_bearer_token,
    sign_link,
    standard_webhook_headers,
    verify_link,
    verify_standard_webhook,
    verify_webhook_token,
    webhook_token,
)

KEY = b"k" * 32


def test_a_signed_link_verifies_until_it_expires() -> None:
    sig = sign_link(KEY, "abc", 2000)
    assert verify_link(KEY, "abc", "2000", sig, now=1999) == 2000
    with pytest.raises(ReviewExpired):
        verify_link(KEY, "abc", "2000", sig, now=2000)


@pytest.mark.parametrize(
    ("review_id", "exp", "sig_for"),
    [
        ("abd", "2000", ("abc", 2000)),  # another review's signature
        ("abc", "2999", ("abc", 2000)),  # a stretched expiry
    ],
)
def test_tampered_links_are_invalid(review_id: str, exp: str, sig_for: tuple[str, int]) -> None:
    with pytest.raises(LinkInvalid):
        verify_link(KEY, review_id, exp, sign_link(KEY, *sig_for), now=1000)


def test_a_link_signed_with_another_key_is_invalid_even_when_expired() -> None:
    with pytest.raises(LinkInvalid):
        verify_link(KEY, "abc", "10", sign_link(b"other", "abc", 10), now=1000)


@pytest.mark.parametrize(("exp", "sig"), [(None, "x"), ("1", None), ("soon", "x"), ("", "")])
def test_incomplete_links_are_invalid(exp: str | None, sig: str | None) -> None:
    with pytest.raises(LinkInvalid):
        verify_link(KEY, "abc", exp, sig, now=0)


def test_a_bearer_credential_is_read_in_any_case_of_the_scheme() -> None:
    assert bearer("Bearer secret") == bearer("bearer  secret ") == "secret"
    for header in (None, "", "secret", "Basic secret", "Bearer ", "Bearer"):
        assert bearer(header) is None


def test_a_shared_bearer_token_must_match() -> None:
    check_bearer_token("Bearer secret", "secret")
    for header in (None, "Basic secret", "Bearer secreT"):
        with pytest.raises(Unauthorized):
            check_bearer_token(header, "secret")


def test_a_webhook_token_belongs_to_one_run_and_one_key() -> None:
    token = webhook_token(KEY, "run-1")
    verify_webhook_token(KEY, "run-1", token)
    assert webhook_token(KEY, "run-1") == token
    for run_id, presented in (("run-2", token), ("run-1", webhook_token(b"other", "run-1")), ("run-1", token[:-1])):
        with pytest.raises(LinkInvalid):
            verify_webhook_token(KEY, run_id, presented)


def test_webhook_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from rendergate import signing

    compared = []
    original = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or original(a, b))
    verify_webhook_token(KEY, "run-1", webhook_token(KEY, "run-1"))
    assert len(compared) == 1


SECRET = "whsec_" + base64.b64encode(b"s" * 24).decode()


def test_standard_webhook_headers_verify_with_the_reference_library() -> None:
    from standardwebhooks.webhooks import Webhook

    now = int(time.time())
    headers = standard_webhook_headers(SECRET, "msg_1", now, '{"a": 1}')
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify('{"a": 1}', headers) == {"a": 1}


def test_a_signature_from_the_reference_library_verifies_and_names_its_id() -> None:
    from standardwebhooks.webhooks import Webhook

    now = datetime.now(UTC)
    headers = {
        "Webhook-Id": "msg_2",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": "v1,bm9wZQ== " + Webhook(SECRET).sign("msg_2", now, "body"),
    }
    assert verify_standard_webhook(SECRET, headers, b"body") == "msg_2"


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1,AAAA"},  # forged
        {"webhook-signature": "garbage"},  # malformed: no version
        {"webhook-signature": "v1,!!!"},  # malformed: not base64
        {"webhook-timestamp": "soon"},
        {"webhook-timestamp": str(int(time.time()) - 600)},  # stale
        {"webhook-id": ""},
    ],
)
def test_bad_standard_webhook_headers_are_unauthorized(change: dict[str, str]) -> None:
    headers = {**standard_webhook_headers(SECRET, "msg_3", int(time.time()), "body"), **change}
    with pytest.raises(Unauthorized):
        verify_standard_webhook(SECRET, headers, b"body")


def test_a_body_that_is_not_utf8_is_unauthorized_not_an_error() -> None:
    headers = standard_webhook_headers(SECRET, "msg_4", int(time.time()), "body")
    with pytest.raises(Unauthorized):
        verify_standard_webhook(SECRET, headers, b"\xff\xfe")
