"""What people are told about a review (a request, a reminder, an escalation) or a sign-in link: one wording
that each chat and mail target lays out in its own way. The link is always there as text too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Events that ask a person to act through a link: the chat and mail targets write these as messages with a
# button, never as an embed that a link unfurls.
ASKING = frozenset({"review.requested.v1", "review.reminder.v1", "review.escalated.v1", "reviewer.sign_in.v1"})
REVIEW_EVENTS = frozenset({"review.requested.v1", "review.reminder.v1", "review.escalated.v1"})


@dataclass(frozen=True)
class Message:
    """A short message for a person: a subject, a few lines, and the link with what opening it does."""

    subject: str
    lines: tuple[str, ...]
    url: str
    action: str
    review_id: str | None = None

    @property
    def text(self) -> str:
        """The whole message as plain text, the link on its own line."""
        return "\n".join([self.subject, *self.lines, "", f"{self.action}: {self.url}"])


def of(event: dict[str, Any]) -> Message:
    """The message for an event that asks someone to act (one of ASKING)."""
    data = event.get("data") or {}
    event_type = event.get("type")
    url = str(data.get("url") or "")
    if event_type == "reviewer.sign_in.v1":
        minutes = max(1, int(data.get("valid_seconds") or 900) // 60)
        told = (
            f"Open the link and press the button to sign in as {data.get('name')}.",
            f"It works once, for {minutes} minutes. If you did not ask for it, ignore this message.",
        )
        return Message("Your rendergate sign-in link", told, url, "Sign in")
    title = str(data.get("title") or data.get("run_id") or "a run")
    count = int(data.get("assets") or len(data.get("asset_ids") or []))
    facts = f"{count} image{'s' if count != 1 else ''} from {data.get('source') or 'a run'} in {data.get('namespace')}"
    subject = {
        "review.requested.v1": f"Review waiting: {title}",
        "review.reminder.v1": f"Still waiting for review: {title}",
        "review.escalated.v1": f"Review overdue: {title}",
    }.get(str(event_type), f"Review: {title}")
    lines = [facts + "."]
    if data.get("waiting_hours"):
        lines.append(f"Waiting for {data['waiting_hours']} hours without a decision.")
    if data.get("expires_at"):
        lines.append(f"Expires at {data['expires_at']}.")
    return Message(subject, tuple(lines), url, "Open the review", review_id=data.get("review_id"))
