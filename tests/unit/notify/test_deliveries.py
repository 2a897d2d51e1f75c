"""Deliveries on moto to stand-ins on loopback: one per (event, target), recorded; retried through the
delivery queue with backoff or the wait the target asked for, up to the limit; claimed, so no copy of a
message sends twice; answered ones never sent again; unknown outcomes retried and recorded as such;
disabled targets stop."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.deliveries import SECRET, Clock, Scheduled, bus_message, envelope, handle, published
from support.receivers import DROP, HOLD, Discord, Jellyfin, Kodi, WebhookReceiver, running
from support.waiting import until

Targets = Callable[..., None]


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def discord() -> Iterator[Discord]:
    with Discord() as stand_in:
        yield stand_in  # type: ignore[misc]


def rows(event_id: str) -> dict[str, Any]:
    """The deliveries of one event, by target name."""
    from rendergate.tables import Delivery

    return {row.target: row for row in Delivery.by_event.query(event_id)}


def only(event_id: str) -> Any:
    [row] = rows(event_id).values()
    return row


def refused_while_down(targets: Targets, hook: WebhookReceiver) -> dict[str, Any]:
    """An event whose first attempt found the receiver down (not sent; a retry waits); the receiver is up again."""
    targets(hook.target("n8n"))
    hook.stop()
    event = published()
    handle(bus_message(event))
    hook.start()
    return event


def test_every_target_that_wants_an_event_gets_exactly_one_delivery_however_many_copies_arrive(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, discord: Discord
) -> None:
    jellyfin, kodi = Jellyfin("key"), Kodi("kodi", "pw")
    with running(jellyfin, kodi):
        only_published = hook.target("n8n", events=["content.published.v1"])
        targets(only_published, discord.target("studio"), jellyfin.target("jf"), kodi.target("kodi"))
        event = published()

        first = handle(bus_message(event), bus_message(event))  # two copies in one batch, handled at once
        again = handle(bus_message(event))  # and one more later

        assert first == again == {"batchItemFailures": []}
        assert (len(hook.verified), len(discord.messages), len(jellyfin.updates), len(kodi.scans)) == (1, 1, 1, 1)
        delivered = rows(event["id"])
        assert sorted(delivered) == ["jf", "kodi", "n8n", "studio"]
        assert {(row.state, row.attempts) for row in delivered.values()} == {("delivered", 1)}
        assert delivered["studio"].message_id == discord.messages[0]["id"]
        assert scheduled.sent == []


def test_targets_get_only_the_events_and_namespaces_they_asked_for(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, discord: Discord
) -> None:
    from support.stages import new_run

    alice_run = new_run("Alice's", namespace="alice")
    alice_hook = WebhookReceiver(SECRET)
    with running(alice_hook):
        targets(
            hook.target("n8n"),
            discord.target("studio"),
            alice_hook.target("alice", events=["render.failed.v1", "content.published.v1"], namespaces=["alice"]),
        )
        sent = [
            envelope("content.publish.approved.v1", {"namespace": "library"}),
            envelope("content.publish.failed.v1", {"namespace": "library", "stage": "copy"}),
            envelope("render.failed.v1", {"run_id": alice_run, "error": "RenderFailed"}, run_id=alice_run),
            published(namespace="alice"),
            envelope("content.discarded.v1", {"namespace": "library"}),
        ]
        handle(*[bus_message(event) for event in sent])

        assert sorted(e["type"] for e in hook.verified) == sorted(e["type"] for e in sent[:4])
        assert [m["embeds"][0]["footer"]["text"] for m in discord.messages] == ["rendergate · Published"]
        # the render event names no namespace: it is the run's
        assert sorted(e["type"] for e in alice_hook.verified) == ["content.published.v1", "render.failed.v1"]


def test_a_failed_attempt_is_retried_through_the_queue_after_a_backoff(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    targets(hook.target("n8n"))
    hook.script((503, {"Content-Type": "text/plain"}, b"upstream\n  busy"))
    event = published()

    handle(bus_message(event))

    row = only(event["id"])
    assert (row.state, row.attempts, row.failures, row.last_status, row.response_excerpt) == (
        "pending",
        1,
        1,
        503,
        "upstream busy",
    )
    [(message, delay)] = scheduled.sent
    assert 2.5 <= delay <= 5  # the first step, 5 s, with equal jitter
    assert json.loads(message)["delivery_id"] == row.delivery_id

    handle(*scheduled.take())  # arrives early (a duplicate, or a long wait's first hop): sent on, not sent
    assert len(hook.seen) == 1 and len(scheduled.sent) == 1
    handle(json.dumps({"delivery_id": row.delivery_id, "due": 0}))  # a stray copy: the row's time decides
    assert len(hook.seen) == 1

    clock.advance(delay)
    handle(*scheduled.take())

    row = only(event["id"])
    assert (row.state, row.attempts, row.last_status, len(hook.verified)) == ("delivered", 2, 204, 1)
    assert [entry["outcome"] for entry in row.history] == ["answered", "answered"]
    assert [entry.get("status") for entry in row.history] == [503, 204]


def test_a_rate_limit_waits_exactly_the_retry_after_asked_and_does_not_count(
    scheduled: Scheduled, targets: Targets, discord: Discord, clock: Clock
) -> None:
    targets(discord.target("studio"))
    discord.rate_limit(1.337)
    event = published(public_url="https://cdn.example.test/x.png")

    handle(bus_message(event))

    row = only(event["id"])
    assert (row.state, row.failures, row.last_status) == ("pending", 0, 429)
    [(_, delay)] = scheduled.sent
    assert delay == 1.337
    clock.advance(1.337)
    handle(*scheduled.take())
    assert only(event["id"]).state == "delivered"
    assert len(discord.messages) == 1


def test_after_the_last_allowed_attempt_a_delivery_fails(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock, settings: Callable[..., None]
) -> None:
    targets(hook.target("n8n"))
    settings(DELIVERY_MAX_ATTEMPTS="2")
    hook.script(500, 500, 500)
    event = published()

    handle(bus_message(event))
    clock.advance(3600)
    handle(*scheduled.take())

    row = only(event["id"])
    assert (row.state, row.attempts) == ("failed", 2)
    assert row.note.startswith("gave up after 2 failed attempts")
    assert scheduled.sent == []


def test_an_answer_that_never_came_is_retried_and_recorded_as_unknown(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    targets(hook.target("n8n"))
    hook.script(DROP)
    event = published()

    handle(bus_message(event))
    row = only(event["id"])
    assert (row.state, row.last_outcome, row.last_status) == ("pending", "unknown", None)
    assert "may have been received" in row.note or "dropped" in row.note

    clock.advance(5)
    handle(*scheduled.take())
    assert only(event["id"]).state == "delivered"
    assert [seen.headers["webhook-id"] for seen in hook.seen] == [event["id"]] * 2  # the receiver can dedupe


def test_a_target_that_is_down_is_recorded_as_not_sent_and_gets_it_later(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    event = refused_while_down(targets, hook)

    row = only(event["id"])
    assert (row.state, row.last_outcome, row.note) == (
        "pending",
        "not_sent",
        "no connection could be made (connection refused)",
    )
    clock.advance(5)
    handle(*scheduled.take())
    assert only(event["id"]).state == "delivered" and len(hook.verified) == 1


def test_an_attempt_that_died_unrecorded_is_taken_over_and_counted_as_unknown(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    from rendergate.notify.deliveries import LEASE_SECONDS
    from rendergate.tables import Delivery, iso_at

    event = refused_while_down(targets, hook)
    row = only(event["id"])
    claimed = iso_at(clock.now)
    row.update(actions=[Delivery.state.set("sending"), Delivery.claimed_at.set(claimed), Delivery.attempts.set(2)])

    clock.advance(10)
    handle(*scheduled.take())
    assert only(event["id"]).state == "sending" and hook.seen == []  # its claim may still be alive

    clock.advance(LEASE_SECONDS)
    handle(json.dumps({"delivery_id": row.delivery_id, "due": 0}))

    row = only(event["id"])
    assert (row.state, row.attempts, row.failures) == ("delivered", 3, 2)
    assert {
        "at": claimed,
        "attempt": 2,
        "outcome": "unknown",
        "note": "the attempt never recorded an answer",
    } in row.history


def test_two_copies_of_a_retry_never_send_at_once(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    event = refused_while_down(targets, hook)
    hook.script(HOLD)
    clock.advance(5)
    [retry] = scheduled.take()

    first = threading.Thread(target=handle, args=(retry,))
    first.start()
    until(lambda: hook.holding == 1, what="the first copy's request to arrive")
    handle(retry)  # the second copy finds the delivery being sent
    hook.release()
    first.join(10)

    assert len(hook.seen) == 1 and len(hook.verified) == 1
    assert only(event["id"]).state == "delivered"


def test_two_attempts_that_read_a_delivery_at_the_same_moment_send_it_once(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    from rendergate.notify.deliveries import _attempt
    from rendergate.tables import Delivery

    event = refused_while_down(targets, hook)
    hook.script(HOLD)
    clock.advance(5)
    delivery_id = only(event["id"]).delivery_id
    first, second = Delivery.get(delivery_id), Delivery.get(delivery_id)  # both read it pending

    sending = threading.Thread(target=_attempt, args=(first, lambda: 60_000, False))
    sending.start()
    until(lambda: hook.holding == 1, what="the first attempt's request to arrive")
    _attempt(second, lambda: 60_000, False)  # its claim finds the attempt count moved on
    hook.release()
    sending.join(10)

    assert len(hook.seen) == 1
    assert (only(event["id"]).state, only(event["id"]).attempts) == ("delivered", 2)


def test_a_delivered_notification_is_never_sent_again(scheduled: Scheduled, targets: Targets, discord: Discord) -> None:
    from support.handlers import AUTH, call

    targets(discord.target("studio"))
    event = published(public_url="https://cdn.example.test/x.png")
    handle(bus_message(event))
    row = only(event["id"])

    handle(json.dumps({"delivery_id": row.delivery_id, "due": 0}))
    status, answer = call("audit", "POST", f"/deliveries/{row.delivery_id}/retry", headers=AUTH)

    assert len(discord.messages) == 1
    assert status == 409 and "never sent again" in answer["message"]


def test_a_deleted_discord_webhook_disables_the_target_until_a_retry_enables_it(
    scheduled: Scheduled, targets: Targets, discord: Discord
) -> None:
    from support.handlers import AUTH, call

    targets(discord.target("studio"))
    discord.delete_webhook()
    first, second = (
        published(public_url="https://cdn.example.test/1.png"),
        published(public_url="https://cdn.example.test/2.png"),
    )

    handle(bus_message(first))
    handle(bus_message(second))

    assert only(first["id"]).state == "disabled" and only(first["id"]).last_status == 404
    later = only(second["id"])
    assert later.state == "disabled" and later.attempts == 0 and "disabled since" in later.note
    assert len(discord.seen) == 1  # the second never reached Discord

    discord.exists = True  # the webhook was made again with the same URL
    status, answer = call("audit", "POST", f"/deliveries/{later.delivery_id}/retry", headers=AUTH)
    assert (status, answer["state"]) == (202, "pending")
    handle(*scheduled.take())
    assert only(second["id"]).state == "delivered"


def test_a_disabled_target_given_a_new_url_takes_deliveries_again(
    scheduled: Scheduled, targets: Targets, discord: Discord
) -> None:
    targets(discord.target("studio"))
    discord.delete_webhook()
    handle(bus_message(published(public_url="https://cdn.example.test/1.png")))
    replacement = Discord()
    with running(replacement):
        targets(replacement.target("studio"))
        event = published(public_url="https://cdn.example.test/2.png")
        handle(bus_message(event))
        assert only(event["id"]).state == "delivered" and len(replacement.messages) == 1


def test_a_target_removed_from_the_document_closes_its_waiting_deliveries(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, discord: Discord, clock: Clock
) -> None:
    targets(hook.target("n8n"), discord.target("studio"))
    hook.stop()
    event = published(public_url="https://cdn.example.test/x.png")
    handle(bus_message(event))

    targets(discord.target("studio"))
    clock.advance(5)
    handle(*scheduled.take())

    row = rows(event["id"])["n8n"]
    assert (row.state, row.note) == ("disabled", "the target n8n is no longer in the targets document")


def test_with_too_little_time_left_an_attempt_waits_for_the_next_invocation(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver
) -> None:
    targets(hook.target("n8n"))
    event = published()

    handle(bus_message(event), remaining_ms=10_000)

    assert hook.seen == [] and only(event["id"]).state == "pending"
    [(_, delay)] = scheduled.sent
    assert delay == 0
    handle(*scheduled.take())
    assert only(event["id"]).state == "delivered"


def test_a_refused_document_delivers_nothing_and_its_messages_come_back(
    scheduled: Scheduled, settings: Callable[..., None], hook: WebhookReceiver
) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    from rendergate.tables import Delivery

    settings(TARGETS=json.dumps([hook.target("n8n"), {"name": "typo", "kind": "webhok"}]))

    with pytest.raises(BatchProcessingError, match="typo"):  # the whole batch goes back to the queue
        handle(bus_message(published()), bus_message(published()))

    assert list(Delivery.scan()) == [] and hook.seen == []


def test_an_event_a_target_cannot_carry_fails_without_being_sent(scheduled: Scheduled, targets: Targets) -> None:
    jellyfin = Jellyfin("key")
    with running(jellyfin):
        targets(jellyfin.target("jf"))
        event = published(library_key=None)

        handle(bus_message(event))

        row = only(event["id"])
        assert (row.state, row.last_outcome, row.attempts) == ("failed", "not_sent", 1)
        assert "names no library key" in row.note and jellyfin.seen == []


def test_messages_that_are_not_ours_are_dropped(scheduled: Scheduled, targets: Targets, hook: WebhookReceiver) -> None:
    targets(hook.target("n8n"))

    answer = handle("not json", json.dumps({"source": "aws.s3", "detail": {}}), bus_message({"type": "x"}))

    assert answer == {"batchItemFailures": []} and hook.seen == []


def test_the_sweep_sends_an_overdue_deliverys_message_again(
    scheduled: Scheduled, targets: Targets, hook: WebhookReceiver, clock: Clock
) -> None:
    from rendergate.sweep import sweep

    event = refused_while_down(targets, hook)
    scheduled.take()  # the retry message was lost

    clock.advance(5)
    assert sweep(lambda: 60_000)["deliveries"] == {}  # not overdue yet
    clock.advance(120)
    assert sweep(lambda: 60_000)["deliveries"] == {only(event["id"]).delivery_id: "resent"}
    handle(*scheduled.take())
    assert only(event["id"]).state == "delivered"


@pytest.mark.parametrize("failures", [1, 2, 3, 6, 12])
def test_backoff_grows_fourfold_from_five_seconds_with_jitter_and_a_cap(failures: int) -> None:
    from rendergate.notify.deliveries import retry_delay

    step = min(6 * 3600, 5 * 4 ** (failures - 1))
    delays = [retry_delay(failures, None) for _ in range(50)]

    assert all(step / 2 <= delay <= step for delay in delays)
    assert len(set(delays)) > 1
    assert retry_delay(failures, 0.25) == 1.0 and retry_delay(failures, 42.5) == 42.5
