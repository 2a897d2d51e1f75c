"""Review requests reach the namespace's reviewers through the delivery machinery: each reviewer through their
own target (or by email), once, beside the channels that asked for review events; an escalation goes to the
target its policy names."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import boto3
import pytest

from support.deliveries import Scheduled, bus_message, envelope, handle
from support.receivers import Slack
from support.reviewing import SENDER, add_reviewer, sent_mail


@pytest.fixture
def slack() -> Iterator[Slack]:
    with Slack("secret") as stand_in:
        yield stand_in  # type: ignore[misc]


def request(namespace: str = "library", event_type: str = "review.requested.v1", **data: object) -> dict[str, object]:
    fields = {"url": "https://api.example.test/reviews/r1?exp=1&sig=s", "title": "Sunset", "namespace": namespace}
    return envelope(event_type, {**fields, "review_id": "r1", "assets": 1, **data})


def test_each_reviewer_of_the_namespace_is_told_once_through_their_own_target(
    scheduled: Scheduled, settings: Callable[..., None], slack: Slack
) -> None:
    from rendergate.tables import Delivery

    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    document = [slack.target("reviews"), {"name": "mail", "kind": "email", "sender": SENDER}]
    settings(TARGETS=json.dumps(document))
    add_reviewer("Ann", "ann@studio.example.test")
    add_reviewer("Bob", "bob@studio.example.test", target="reviews")  # the channel tells him already
    add_reviewer("Cara", "cara@studio.example.test", namespaces=["elsewhere"])
    add_reviewer("Dan", "dan@studio.example.test", namespaces=["*"])
    event = request()

    handle(bus_message(event), bus_message(event))  # EventBridge delivers at least once

    rows = list(Delivery.by_event.query(event["id"]))
    assert sorted((row.target, row.recipient is not None, row.state) for row in rows) == [
        ("mail", True, "delivered"),
        ("mail", True, "delivered"),
        ("reviews", False, "delivered"),
    ]
    assert sorted(mail["To"] for mail in sent_mail()) == [
        "Ann <ann@studio.example.test>",
        "Dan <dan@studio.example.test>",
    ]
    assert len(slack.messages) == 1


def test_an_escalation_goes_to_the_target_the_policy_names(
    scheduled: Scheduled, settings: Callable[..., None], slack: Slack
) -> None:
    settings(TARGETS=json.dumps([slack.target("ops", events=["content.published.v1"])]))
    handle(bus_message(request(event_type="review.escalated.v1", escalate_to="ops", waiting_hours=48)))
    [message] = slack.messages
    assert message["text"].startswith("Review overdue: Sunset") and "Waiting for 48 hours" in message["text"]


def test_a_reviewer_removed_before_the_attempt_is_not_written_to(
    scheduled: Scheduled, settings: Callable[..., None]
) -> None:
    from rendergate import notify, reviewers
    from rendergate.tables import Delivery

    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    settings(TARGETS=json.dumps([{"name": "mail", "kind": "email", "sender": SENDER}]))
    ann = reviewers.get(add_reviewer()["reviewer_id"])
    sent = notify.send_personal(ann, "reviewer.sign_in.v1", {"name": "Ann", "url": "https://x.test/signin?token=t"})
    reviewers.delete(ann.reviewer_id)
    handle(*scheduled.take())
    row = Delivery.get(sent["delivery_id"])
    assert (row.state, row.note) == ("failed", "the reviewer it was addressed to was removed")
    assert sent_mail() == []
