"""Slack's buttons on a review request: a press signed by Slack decides through the review's own code as the
reviewer the Slack user is, is answered at once, and replaces the message with who decided; forged, stale,
replayed or foreign presses decide nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.deliveries import bus_message, handle
from support.functions import load_function
from support.handlers import Context, respond
from support.receivers import Slack
from support.reviewing import add_reviewer, awaiting

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the unit environment's RENDERGATE_SLACK_SIGNING_SECRET


@pytest.fixture
def slack() -> Iterator[Slack]:
    with Slack(SECRET) as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def handed_on(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The asynchronous invocations the Slack route starts (Lambda's Event invocation), kept to run later."""
    from rendergate import invoke

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(invoke, "start", lambda name, payload: started.append(payload))
    return started


def requested(slack: Slack, settings: Callable[..., None]) -> tuple[str, dict[str, Any]]:
    """A review waiting in `library`, announced to the Slack channel; its id and the message Slack shows."""
    from rendergate import events, runs
    from rendergate.tables import Review, Run

    settings(TARGETS=json.dumps([slack.target("reviews")]))
    review_id, _ = awaiting(assets=2)
    data = runs.review_request(Review.get(review_id), Run.get("run-1"))
    envelope = events.envelope("review.requested.v1", "run-1", data, "run-1", f"review-requested-{review_id}")
    handle(bus_message(envelope))
    [message] = slack.messages
    return review_id, message


def press(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return respond("review", "POST", "/slack/actions", body, headers)


def run_handed_on(handed_on: list[dict[str, Any]]) -> list[Any]:
    handler = load_function("review").handler
    outcomes = [handler(payload, Context()) for payload in handed_on]
    handed_on.clear()
    return outcomes


def test_the_message_has_buttons_and_does_not_unfurl(aws: None, slack: Slack, settings: Callable[..., None]) -> None:
    _, message = requested(slack, settings)
    assert message["unfurl_links"] is False and message["unfurl_media"] is False
    [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
    assert [button["action_id"] for button in actions["elements"]] == ["approve_all", "reject_all", "open"]
    assert "/reviews/" in actions["elements"][2]["url"] and "/reviews/" in message["blocks"][0]["text"]["text"]


def test_a_press_decides_as_the_reviewer_and_the_message_says_who(
    aws: None, slack: Slack, settings: Callable[..., None], handed_on: list[dict[str, Any]]
) -> None:
    from rendergate.tables import Review

    review_id, message = requested(slack, settings)
    ann = add_reviewer(slack_user_id="U0ANN")

    answer = press(*slack.press(message, "approve_all", "U0ANN"))

    assert (answer["statusCode"], answer["body"]) == (200, "")
    assert Review.get(review_id).status == "pending"  # answered first; decided in the next invocation
    assert run_handed_on(handed_on) == ["delivered"]
    row = Review.get(review_id)
    assert (row.status, row.reviewer, row.reviewer_id) == ("decided", "Ann", ann["reviewer_id"])
    assert row.approved == ["run-1-asset-0", "run-1-asset-1"] and row.rejected == []
    [update] = slack.responses
    assert update["replace_original"] is True
    said = json.dumps(update["blocks"])
    assert "Decided: 2 approved, 0 rejected by Ann" in said and "approve_all" not in said


def test_a_press_on_a_review_already_decided_says_so(
    aws: None, slack: Slack, settings: Callable[..., None], handed_on: list[dict[str, Any]]
) -> None:
    from rendergate.tables import Review

    review_id, message = requested(slack, settings)
    add_reviewer(slack_user_id="U0ANN")
    add_reviewer("Bob", "bob@studio.example.test", slack_user_id="U0BOB")
    press(*slack.press(message, "reject_all", "U0BOB"))
    press(*slack.press(message, "approve_all", "U0ANN"))

    assert run_handed_on(handed_on) == ["delivered", "decided"]

    row = Review.get(review_id)
    assert (row.reviewer, row.approved) == ("Bob", [])
    assert "Already decided: 0 approved, 2 rejected by Bob" in json.dumps(slack.responses[-1]["blocks"])


def test_forged_stale_and_replayed_presses_decide_nothing(
    aws: None, slack: Slack, settings: Callable[..., None], handed_on: list[dict[str, Any]]
) -> None:
    _, message = requested(slack, settings)
    add_reviewer(slack_user_id="U0ANN")

    forged = press(*slack.press(message, "approve_all", "U0ANN", secret="not-the-apps-secret"))
    stale = press(*slack.press(message, "approve_all", "U0ANN", timestamp=int(time.time()) - 6 * 60))
    body, headers = slack.press(message, "approve_all", "U0ANN")
    tampered = press(body.replace(b"U0ANN", b"U0BOB"), headers)
    unsigned = press(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert [r["statusCode"] for r in (forged, stale, tampered, unsigned)] == [401, 401, 401, 401]
    assert handed_on == []

    assert press(body, headers)["statusCode"] == 200
    replayed = press(body, headers)
    assert replayed["statusCode"] == 409
    assert len(handed_on) == 1


def test_a_press_by_someone_who_is_not_a_reviewer_decides_nothing(
    aws: None, slack: Slack, settings: Callable[..., None], handed_on: list[dict[str, Any]]
) -> None:
    from rendergate.tables import Review

    review_id, message = requested(slack, settings)
    add_reviewer(slack_user_id="U0ANN", namespaces=["elsewhere"])
    press(*slack.press(message, "approve_all", "U0ANN"))
    assert run_handed_on(handed_on) == ["not a reviewer"]
    assert Review.get(review_id).status == "pending"
    assert slack.responses[-1]["response_type"] == "ephemeral"


def test_the_open_button_and_a_value_we_did_not_offer(
    aws: None, slack: Slack, settings: Callable[..., None], handed_on: list[dict[str, Any]]
) -> None:
    _, message = requested(slack, settings)
    assert press(*slack.press(message, "open", "U0ANN"))["statusCode"] == 200
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "approve_all":
                element["value"] = element["value"][:-2] + "xx"
    assert press(*slack.press(message, "approve_all", "U0ANN"))["statusCode"] == 400
    assert handed_on == []
