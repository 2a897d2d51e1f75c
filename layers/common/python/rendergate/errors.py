"""Named errors. Stages raise these; the state machine matches their names in Retry/Catch and the
HTTP layer maps them to status codes in one table (rendergate.api)."""

from __future__ import annotations

import re
from collections.abc import Iterable

NAMES_SHOWN = 5
NAME_CHARS = 40

# A URL's or path's query string (presigned URLs carry their signature and session token there), the
# user:password of a URL, and the token that ends a RunPod webhook URL's path.
_QUERY = re.compile(r"((?:\b[a-zA-Z][a-zA-Z0-9+.-]*://|(?<![\w.])/)[^\s?#'\"<>]*)\?(?!\[redacted\])[^\s'\"<>)\]]*")
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
_WEBHOOK_TOKEN = re.compile(r"(/webhooks/runpod/[^/\s'\"<>]+/)[^/\s?'\"<>)\]]+")
REDACTED = "[redacted]"


def scrubbed(text: str) -> str:
    """`text` without the secrets a URL in it can carry, for error texts that end up on a run."""
    text = _QUERY.sub(rf"\1?{REDACTED}", text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return _WEBHOOK_TOKEN.sub(rf"\1{REDACTED}", text)


class RendergateError(Exception):
    """Base of every error the pipeline raises on purpose."""

    def details(self) -> dict[str, object]:
        """Fields a JSON answer carries beside `error` and `message` (none by default)."""
        return {}


class BadRequest(RendergateError):
    """The request is malformed or asks for something not allowed."""


class Unauthorized(RendergateError):
    """The caller did not present a valid API key."""


class Forbidden(RendergateError):
    """The caller's key is valid but lacks the scope (or the ownership) the request needs."""

    def __init__(self, message: str, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope

    def details(self) -> dict[str, object]:
        return {"scope": self.scope} if self.scope else {}


class InsufficientCredits(RendergateError):
    """The owner's balance does not cover the price of the work; nothing was accepted."""

    def __init__(self, message: str, balance: int, cost: int) -> None:
        super().__init__(message)
        self.balance = balance
        self.cost = cost

    def details(self) -> dict[str, object]:
        return {"balance": self.balance, "cost": self.cost}


class NotFound(RendergateError):
    """The thing asked for does not exist."""


class Conflict(RendergateError):
    """The request conflicts with the current state."""


class PayloadTooLarge(BadRequest):
    """The declared upload is larger than allowed."""


class BodyTooLarge(BadRequest):
    """The request body itself is larger than the API reads."""


class UnsupportedMediaType(BadRequest):
    """The declared content type is not one we accept."""


class LinkInvalid(RendergateError):
    """A signed link was tampered with or is not ours."""


class ReviewExpired(RendergateError):
    """The review link or the review task is past its expiry."""


class ReviewClosed(RendergateError):
    """The review's run is no longer waiting for a decision (cancelled, failed or expired)."""


class ReviewAlreadyDecided(Conflict):
    """A decision was already recorded for this review."""


class ImageRejected(RendergateError):
    """No asset of the run is an acceptable image; the message names the reason."""


class UploadRejected(RendergateError):
    """The stored upload is not what was declared when it was presigned (larger, or another Content-Type)."""


class ChangedAfterReview(RendergateError):
    """An approved object no longer holds the bytes the reviewer saw; nothing of it is published."""

    code = "changed_after_review"


class TransientError(RendergateError):
    """A dependency failed in a way worth retrying (the state machine retries this name)."""


class TooManyRequests(RendergateError):
    """A limit refuses the request for now; retry after `retry_after` seconds (the answer's Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))

    def details(self) -> dict[str, object]:
        return {"retry_after": self.retry_after}


class QueueFull(TooManyRequests):
    """The render queue is deeper than low-priority work may join."""


class RateLimited(TooManyRequests):
    """The key sent more requests this minute than its owner's `requests_per_minute` allows."""


class TooManyRuns(TooManyRequests):
    """The owner has as many runs in flight (queued or rendering) as `concurrent_runs` allows."""


class SpendingCapReached(TooManyRequests):
    """The owner's debits today would pass its `daily_spend` cap; the cap opens again at midnight UTC."""


class RegistryError(RendergateError):
    """The workflow registry is not seeded, or a workflow does not match the sha256 its manifest records."""


class RenderFailed(RendergateError):
    """The backend refused or failed the render; the message keeps the backend's own error text."""


class RenderTimedOut(RendergateError):
    """The backend gave up on the render: it waited in the queue or ran longer than its policy allows."""


class RenderLost(RendergateError):
    """The render ended without images, or its job vanished from the backend before reporting a result."""


class ProviderUnavailable(TransientError):
    """Every metadata provider failed (429s past the deadline, 5xx, no connection); worth retrying later."""


class UploadNotReceived(RendergateError):
    """A presigned upload was never made: its URL expired and the grace period passed without an object."""


class TargetsInvalid(RendergateError):
    """The delivery targets document was refused as a whole; the message names every problem found."""


class SettingsInvalid(RendergateError):
    """The environment lacks settings a function cannot work without, or holds values it cannot read; the
    message names every such RENDERGATE_* variable at once."""

    def __init__(self, missing: Iterable[str], invalid: Iterable[str] = ()) -> None:
        self.missing, self.invalid = tuple(missing), tuple(invalid)
        problems = []
        if self.missing:
            problems.append("missing " + ", ".join(self.missing))
        if self.invalid:
            problems.append("not valid: " + "; ".join(self.invalid))
        super().__init__("rendergate settings: " + "; ".join(problems))


class Undeliverable(RendergateError):
    """An event cannot become a request to a target (e.g. it names no library path); nothing was sent."""


class ReplayFailed(Conflict):
    """Replaying a publish failed again; the audit row records the stage and the reason."""


def unknown_fields(names: Iterable[str], what: str = "field") -> BadRequest:
    """BadRequest naming the first few unknown names and how many more, so the answer stays small."""
    ordered = sorted(names)
    shown = [name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…" for name in ordered[:NAMES_SHOWN]]
    more = len(ordered) - len(shown)
    listed = ", ".join(shown) + (f" and {more} more" if more else "")
    return BadRequest(f"unknown {what}{'s' if len(ordered) > 1 else ''}: {listed}")
