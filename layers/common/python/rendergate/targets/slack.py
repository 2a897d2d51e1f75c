"""Slack: a message to a channel's incoming webhook, as Block Kit. A review request carries buttons: approve
all and reject all (their presses come back to `POST /slack/actions`, signed by Slack) and one that opens the
review. Links are not unfurled (`unfurl_links`, `unfurl_media` false), so a preview fetcher never opens them.
Slack answers `ok` (200); 400 with a reason such as `invalid_payload` fails the delivery; 403, 404 and 410
(`action_prohibited`, `no_service`, `channel_not_found`, `channel_is_archived`) disable the target; 429 waits
its Retry-After."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rendergate import config, signing
from rendergate.targets import messages
from rendergate.targets.http import Answer, Outgoing, Verdict, retry_after

if TYPE_CHECKING:
    from rendergate.targets import Target

DEFAULT_EVENTS = ("review.requested.v1", "content.published.v1")
TEXT_LIMIT = 3000  # a section's text
BUTTON_VALUE_PURPOSE = "slack-action"
DECISIONS = {"approve_all": "approve", "reject_all": "reject"}


def request(target: Target, event: dict[str, Any]) -> Outgoing:
    body = {**message(event), "unfurl_links": False, "unfurl_media": False}
    return Outgoing(target.url, {"Content-Type": "application/json"}, body=json.dumps(body).encode())


def outcome(answer: Answer) -> Verdict:
    said = answer.text.strip()[:100]
    if answer.ok:
        return Verdict("delivered")
    if answer.status == 429:
        wait = retry_after(answer)
        return Verdict("retry", "HTTP 429: rate limited", retry_after=wait, rate_limited=True)
    if answer.status in (403, 404, 410):
        return Verdict("disabled", f"HTTP {answer.status}: {said or 'Slack refused the webhook'}")
    if answer.status == 400:
        return Verdict("failed", f"HTTP 400: {said or 'Slack refused the message'}")
    return Verdict("retry", f"HTTP {answer.status}", retry_after=retry_after(answer))


def message(event: dict[str, Any]) -> dict[str, Any]:
    """The `text` (notifications and screen readers) and `blocks` of an event's message."""
    if event.get("type") in messages.ASKING:
        asked = messages.of(event)
        return {"text": _cut(asked.text), "blocks": asking_blocks(asked)}
    data = event.get("data") or {}
    title = data.get("title") or data.get("library_key") or event.get("type")
    link = data.get("public_url") or data.get("url")
    text = f"{event.get('type')}: {title}" + (f"\n{link}" if isinstance(link, str) and link else "")
    return {"text": _cut(text), "blocks": [_section(_escape(text))]}


def asking_blocks(asked: messages.Message, decided: str | None = None) -> list[dict[str, Any]]:
    """A message that asks someone to act: what, the link as text, and its buttons (none once `decided`)."""
    lines = "\n".join(_escape(line) for line in asked.lines)
    blocks: list[dict[str, Any]] = [
        _section(f"*{_escape(asked.subject)}*\n{lines}\n<{asked.url}|{_escape(asked.action)}>"),
    ]
    if decided is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(decided)}]})
        return blocks
    buttons: list[dict[str, Any]] = []
    if asked.review_id:
        for action_id, label, style in (
            ("approve_all", "Approve all", "primary"),
            ("reject_all", "Reject all", "danger"),
        ):
            buttons.append(
                {
                    "type": "button",
                    "action_id": action_id,
                    "text": {"type": "plain_text", "text": label},
                    "style": style,
                    "value": button_value(asked.review_id, DECISIONS[action_id]),
                    "confirm": {
                        "title": {"type": "plain_text", "text": label},
                        "text": {"type": "plain_text", "text": f"{label} of this review?"},
                        "confirm": {"type": "plain_text", "text": label},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            )
    buttons.append(
        {"type": "button", "action_id": "open", "text": {"type": "plain_text", "text": asked.action}, "url": asked.url}
    )
    blocks.append({"type": "actions", "block_id": "review", "elements": buttons})
    return blocks


def button_value(review_id: str, decision: str) -> str:
    """A button's value: the review and the decision, sealed, so a press acts only on what we offered."""
    payload = json.dumps({"review_id": review_id, "decision": decision}).encode()
    return signing.seal(config.link_signing_key(), BUTTON_VALUE_PURPOSE, payload)


def read_button_value(value: str) -> dict[str, str] | None:
    payload = signing.unseal(config.link_signing_key(), BUTTON_VALUE_PURPOSE, value)
    return json.loads(payload) if payload is not None else None


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text)}}


def _escape(text: str) -> str:
    """Slack's control characters in message text (`&`, `<`, `>`), so nothing becomes a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
