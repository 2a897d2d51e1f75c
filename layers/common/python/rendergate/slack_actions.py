"""Slack's buttons on a review request: `POST /slack/actions` takes Slack's `block_actions` payload (a form
field `payload` holding JSON), verified per Slack's request signing (HMAC-SHA256 of `v0:{timestamp}:{body}`
with the app's signing secret, the timestamp within five minutes; the `slack-sdk` verifier). Each signed
request is taken once. It is answered at once (Slack waits 3 s at most); the decision is made in a second,
asynchronous invocation through the same code as the review page, and the message is then replaced, through
the interaction's `response_url`, by one that says who decided."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from rendergate import config, invoke, review, reviewers, runs
from rendergate.errors import BadRequest, Conflict, NotFound, Unauthorized
from rendergate.observability import logger
from rendergate.tables import Review, UsedToken, save_if_absent
from rendergate.targets import messages, slack
from rendergate.targets.http import NoAnswer, Outgoing, send

REPLAY_SECONDS = 10 * 60  # longer than the five minutes a signature is accepted for
DONE = {"approve": "Approved all", "reject": "Rejected all"}


def receive(headers: Mapping[str, str], body: bytes) -> None:
    """Check and take one Slack request; hand a decision to the asynchronous invocation. Unauthorized for a
    missing, forged or stale signature; Conflict for a request taken before (a replay)."""
    from slack_sdk.signature import SignatureVerifier

    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp, signature = lowered.get("x-slack-request-timestamp", ""), lowered.get("x-slack-signature", "")
    try:
        text = body.decode("utf-8")
        valid = timestamp.isdigit() and SignatureVerifier(config.slack_signing_secret()).is_valid(
            text, timestamp, signature
        )
    except (UnicodeDecodeError, ValueError):
        valid = False
    if not valid:
        raise Unauthorized("the Slack signature is missing, stale or not valid")
    seen = UsedToken(
        f"used#slack#{hashlib.sha256(signature.encode()).hexdigest()}", ttl=int(time.time()) + REPLAY_SECONDS
    )
    if not save_if_absent(seen, UsedToken.key.does_not_exist()):
        raise Conflict("this Slack request was received before")
    payload = _payload(text)
    if payload.get("type") != "block_actions" or not payload.get("actions"):
        return  # nothing we offered (Slack sends other interactions to the same URL)
    action = payload["actions"][0]
    if action.get("action_id") not in slack.DECISIONS:
        return  # the open button: Slack wants the press acknowledged, nothing more
    chosen = slack.read_button_value(str(action.get("value") or ""))
    if chosen is None or chosen.get("decision") != slack.DECISIONS[action["action_id"]]:
        raise BadRequest("the button's value is not one this stack offered")
    user = payload.get("user") or {}
    invoke.start(
        config.settings().review.function,
        {
            "slack_action": {
                "review_id": chosen["review_id"],
                "decision": chosen["decision"],
                "user_id": str(user.get("id") or ""),
                "user_name": str(user.get("name") or user.get("username") or ""),
                "response_url": str(payload.get("response_url") or ""),
            }
        },
    )


def act(action: dict[str, str]) -> str:
    """The asynchronous half: decide as the Slack user's reviewer, then replace the message. The outcome."""
    try:
        row = Review.get(action["review_id"])
    except Review.DoesNotExist:
        return "unknown review"
    run = runs.get(row.run_id)
    reviewer = next(
        (r for r in reviewers.of_namespace(run.namespace) if r.slack_user_id and r.slack_user_id == action["user_id"]),
        None,
    )
    if reviewer is None:
        _respond(
            action["response_url"],
            {
                "response_type": "ephemeral",
                "replace_original": False,
                "text": f"You are not a reviewer of {run.namespace}, so your press decided nothing.",
            },
        )
        return "not a reviewer"
    try:
        outcome = review.decide_from_slack(row.review_id, action["decision"], reviewer.name, reviewer.reviewer_id)
    except NotFound:
        outcome = "closed"
    row, run = Review.get(row.review_id), runs.get(row.run_id)
    asked = messages.of({"type": "review.requested.v1", "data": runs.review_request(row, run)})
    _respond(
        action["response_url"],
        {
            "replace_original": True,
            "text": asked.subject,
            "blocks": slack.asking_blocks(asked, _said(row, run, outcome)),
        },
    )
    return outcome


def _said(row: Review, run: Any, outcome: str) -> str:
    """Who decided, for the message: this press's outcome, or what was there before it."""
    if row.status == "decided":
        approved, rejected = len(row.approved or []), len(row.rejected or [])
        what = f"{approved} approved, {rejected} rejected by {row.reviewer} at {row.decided_at}"
        return f"Already decided: {what}" if outcome == "decided" else f"Decided: {what}"
    return f"This review no longer takes decisions (the run is {run.status})."


def _respond(response_url: str, body: dict[str, Any]) -> None:
    try:
        answer = send(Outgoing(response_url, {"Content-Type": "application/json"}, body=json.dumps(body).encode()))
    except NoAnswer as missing:
        logger.warning("Slack's response_url did not answer", extra={"reason": str(missing)})
        return
    if not answer.ok:
        logger.warning("Slack refused the message update", extra={"status": answer.status, "said": answer.excerpt})


def _payload(text: str) -> dict[str, Any]:
    fields = parse_qs(text, max_num_fields=10)
    try:
        payload = json.loads(fields["payload"][0])
    except (KeyError, IndexError, ValueError) as error:
        raise BadRequest("a Slack interaction is a form with a JSON `payload` field") from error
    if not isinstance(payload, dict):
        raise BadRequest("a Slack interaction's payload is a JSON object")
    return payload
