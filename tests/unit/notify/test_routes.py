"""`GET /deliveries?event_id=&target=&state=` and `POST /deliveries/{id}/retry` (API key): what went where
and how it ended, in pages with signed cursors; a failed or disabled delivery can be tried again, a
delivered or waiting one cannot. Wrong input is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.deliveries import SECRET, Scheduled, bus_message, handle, published
from support.handlers import AUTH, call
from support.receivers import Discord, WebhookReceiver

Targets = Callable[..., None]


@pytest.fixture
def stand_ins(targets: Targets) -> Iterator[tuple[WebhookReceiver, Discord]]:
    with WebhookReceiver(SECRET) as hook, Discord() as discord:
        targets(hook.target("n8n"), discord.target("studio"))
        yield hook, discord  # type: ignore[misc]


def deliveries(**query: str) -> tuple[int, Any]:
    return call("audit", "GET", "/deliveries", headers=AUTH, query=query)


def failed_once(hook: WebhookReceiver, settings: Callable[..., None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event whose delivery to n8n failed for good (one attempt allowed, answered 500); event and delivery."""
    settings(DELIVERY_MAX_ATTEMPTS="1")
    hook.script(500)
    event = published(public_url="https://cdn.example.test/x.png")
    handle(bus_message(event))
    [failed] = deliveries(event_id=event["id"], target="n8n")[1]["deliveries"]
    assert failed["state"] == "failed"
    return event, failed


def test_the_deliveries_of_an_event_one_per_target(scheduled: Scheduled, stand_ins: Any) -> None:
    event = published(public_url="https://cdn.example.test/x.png")
    handle(bus_message(event))

    status, answer = deliveries(event_id=event["id"])

    assert status == 200
    listed = {item["target"]: item for item in answer["deliveries"]}
    assert sorted(listed) == ["n8n", "studio"]
    studio = listed["studio"]
    assert (studio["kind"], studio["state"], studio["attempts"], studio["last_status"]) == (
        "discord",
        "delivered",
        1,
        200,
    )
    assert studio["event_type"] == "content.published.v1" and studio["run_id"] == "run-1"
    assert studio["target_host"].startswith("http://127.0.0.1:") and "tOkEn" not in str(answer)
    assert deliveries(event_id=event["id"], target="n8n")[1]["deliveries"][0]["target"] == "n8n"


def test_by_target_newest_first_and_by_state_in_pages(scheduled: Scheduled, stand_ins: Any) -> None:
    hook, _ = stand_ins
    hook.script(500, 500)
    events = [published(public_url=f"https://cdn.example.test/{n}.png") for n in range(3)]
    for event in events:
        handle(bus_message(event))

    _, by_target = deliveries(target="n8n", limit="2")
    _, rest = deliveries(target="n8n", limit="2", cursor=by_target["next_cursor"])
    assert [d["event_id"] for d in by_target["deliveries"] + rest["deliveries"]] == [e["id"] for e in reversed(events)]
    assert rest["next_cursor"] is None

    _, waiting = deliveries(state="pending")
    assert sorted(d["event_id"] for d in waiting["deliveries"]) == sorted(e["id"] for e in events[:2])
    assert {d["next_attempt_at"] is not None for d in waiting["deliveries"]} == {True}
    _, pending_of_n8n = deliveries(target="n8n", state="pending")
    assert len(pending_of_n8n["deliveries"]) == 2


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({}, "filter by event_id, target or state"),
        ({"state": "lost"}, "state must be one of"),
        ({"target": "../etc"}, "target must be"),
        ({"event_id": "a b"}, "event_id must be"),
        ({"state": "failed", "limit": "0"}, "limit must be"),
        ({"state": "failed", "cursor": "forged.cursor"}, "cursor is not one this API returned"),
    ],
)
def test_wrong_filters_are_a_400(aws: None, query: dict[str, str], named: str) -> None:
    status, answer = deliveries(**query)

    assert status == 400 and named in answer["message"]


def test_a_cursor_is_good_for_its_own_listing_only(scheduled: Scheduled, stand_ins: Any) -> None:
    for n in range(2):
        handle(bus_message(published(public_url=f"https://cdn.example.test/{n}.png")))
    cursor = deliveries(target="n8n", limit="1")[1]["next_cursor"]

    status, answer = deliveries(target="studio", limit="1", cursor=cursor)

    assert status == 400 and "another listing" in answer["message"]


def test_a_failed_delivery_is_retried_on_request_with_a_fresh_set_of_attempts(
    scheduled: Scheduled, stand_ins: Any, settings: Callable[..., None]
) -> None:
    event, failed = failed_once(stand_ins[0], settings)

    status, answer = call("audit", "POST", f"/deliveries/{failed['delivery_id']}/retry", headers=AUTH)

    assert (status, answer["state"], answer["failed_attempts"]) == (202, "pending", 0)
    assert call("audit", "POST", f"/deliveries/{failed['delivery_id']}/retry", headers=AUTH)[0] == 409  # waiting
    handle(*scheduled.take())
    [done] = deliveries(event_id=event["id"], target="n8n")[1]["deliveries"]
    assert (done["state"], done["attempts"]) == ("delivered", 2)
    assert [h["outcome"] for h in done["history"]] == ["answered", "retry requested", "answered"]


def test_retrying_what_does_not_exist_or_needs_the_api_key(aws: None) -> None:
    assert call("audit", "POST", "/deliveries/nope/retry", headers=AUTH)[0] == 404
    assert call("audit", "POST", "/deliveries/nope/retry")[0] == 401
    assert call("audit", "GET", "/deliveries", query={"state": "failed"})[0] == 401


def test_a_retry_under_a_refused_targets_document_is_a_503_that_says_why(
    scheduled: Scheduled, stand_ins: Any, settings: Callable[..., None]
) -> None:
    _, failed = failed_once(stand_ins[0], settings)
    settings(TARGETS='[{"name": "n8n", "kind": "webhook"}]')

    status, answer = call("audit", "POST", f"/deliveries/{failed['delivery_id']}/retry", headers=AUTH)

    assert (status, answer["error"]) == (503, "TargetsInvalid")
    assert "a webhook target needs secret" in answer["message"]
