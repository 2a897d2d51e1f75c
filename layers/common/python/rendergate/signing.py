"""HMAC signatures for review links, webhook URLs and list cursors, Standard Webhooks signatures, and
constant-time bearer token checks. Each use signs its own prefix ("review:", "runpod-webhook:", "{purpose}:"),
so no signature serves two."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from rendergate.errors import LinkInvalid, ReviewExpired, Unauthorized


def sign_link(key: bytes, review_id: str, expires_at: int) -> str:
    """The signature of a review link: HMAC-SHA256 over the review id and the expiry."""
    digest = hmac.new(key, f"review:{review_id}:{expires_at}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify_link(key: bytes, review_id: str, expires_at: str | None, signature: str | None, now: int) -> int:
    """Check a link's signature, then its expiry; return the expiry. Raises LinkInvalid or ReviewExpired."""
    if not expires_at or not signature or not expires_at.isdigit():
        raise LinkInvalid("this review link is incomplete")
    expected = sign_link(key, review_id, int(expires_at))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise LinkInvalid("this review link is not valid")
    if int(expires_at) <= now:
        raise ReviewExpired("this review link has expired")
    return int(expires_at)


def webhook_token(key: bytes, run_id: str) -> str:
    """The token in a run's webhook URL: HMAC-SHA256 over the run id (RunPod does not sign webhooks)."""
    digest = hmac.new(key, f"runpod-webhook:{run_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify_webhook_token(key: bytes, run_id: str, token: str) -> None:
    """Raise LinkInvalid unless `token` is the run's webhook token, compared in constant time."""
    if not hmac.compare_digest(webhook_token(key, run_id).encode(), token.encode()):
        raise LinkInvalid("this webhook URL is not valid")


def seal(key: bytes, purpose: str, payload: bytes) -> str:
    """`payload` with an HMAC-SHA256 over the purpose and the payload, both base64url: `{payload}.{mac}`."""
    digest = hmac.new(key, purpose.encode() + b":" + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(digest)}"


def unseal(key: bytes, purpose: str, sealed: str) -> bytes | None:
    """The payload `seal` wrapped for this purpose; None when the token was altered, forged or is malformed."""
    encoded_payload, _, encoded_digest = sealed.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded_payload + "=" * (-len(encoded_payload) % 4))
    except ValueError:
        return None
    expected = seal(key, purpose, payload).partition(".")[2]
    return payload if hmac.compare_digest(expected.encode(), encoded_digest.encode()) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def check_bearer_token(authorization: str | None, token: str) -> None:
    """Accept `Authorization: Bearer <token>` for a shared token (MinIO's `auth_token`), compared in constant
    time over digests, so neither the content nor the length of the token leaks."""
    presented = bearer(authorization)
    if presented is None:
        raise Unauthorized("send the token as 'Authorization: Bearer <token>'")
    if not token:
        raise Unauthorized("no token is configured for this webhook")
    given, expected = hashlib.sha256(presented.encode()).digest(), hashlib.sha256(token.encode()).digest()
    if not hmac.compare_digest(given, expected):
        raise Unauthorized("the token is not valid")


def bearer(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header (the scheme in any case); None otherwise."""
    scheme, _, presented = (authorization or "").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" and presented.strip() else None


def standard_webhook_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The Standard Webhooks headers that sign `body` (`webhook-id`, `webhook-timestamp`, and
    `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`); `secret` is `whsec_` + base64."""
    from standardwebhooks.webhooks import Webhook

    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def verify_standard_webhook(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check a Standard Webhooks signature over the raw body, within five minutes of its timestamp; return
    the `webhook-id`. Anything else (missing or malformed headers, a stale or forged signature, a body that
    is not UTF-8) is Unauthorized."""
    from standardwebhooks.webhooks import Webhook

    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        Webhook(secret).verify(body, lowered, json_parse=False)
    except Exception as error:  # the library raises ValueError, binascii.Error or UnicodeDecodeError on junk
        raise Unauthorized("the webhook signature is missing, malformed, stale or not valid") from error
    return lowered["webhook-id"]
