"""Email through SES (moto): a plain-text and an HTML part, the link written out in both, from the target's
verified sender; a sender SES does not accept fails the delivery."""

from __future__ import annotations

import json

import boto3

from support.deliveries import envelope
from support.reviewing import SENDER, sent_mail


def attempt(item: dict[str, object], event: dict[str, object]) -> object:
    from rendergate.targets import parse

    [target] = parse(json.dumps([item]))
    return target.adapter.deliver(target, event)


def test_a_review_request_mails_the_link_as_text_and_html(aws: None) -> None:
    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    url = "https://api.example.test/reviews/abc?exp=1&sig=s"
    data = {"url": url, "title": "Sunset", "namespace": "library", "source": "render", "assets": 3, "review_id": "abc"}
    event = envelope("review.requested.v1", data) | {"recipient": {"name": "Ann", "email": "ann@studio.example.test"}}

    verdict, answer, outcome = attempt({"name": "mail", "kind": "email", "sender": SENDER}, event)  # type: ignore[misc]

    assert (verdict.state, answer, outcome) == ("delivered", None, "answered")
    [mail] = sent_mail()
    assert mail["Subject"] == "Review waiting: Sunset" and mail["To"] == "Ann <ann@studio.example.test>"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "3 images from render in library." in text and f"Open the review: {url}" in text
    assert 'href="https://api.example.test/reviews/abc?exp=1&amp;sig=s"' in html and "Or copy this link" in html


def test_an_unverified_sender_fails_and_a_target_without_to_takes_only_addressed_mail(aws: None) -> None:
    from rendergate.targets import parse

    event = envelope("review.requested.v1", {"url": "https://x.test/r", "title": "T"})
    event |= {"recipient": {"name": "Ann", "email": "ann@studio.example.test"}}
    verdict, _, _ = attempt({"name": "mail", "kind": "email", "sender": "nobody@studio.example.test"}, event)  # type: ignore[misc]
    assert verdict.state == "failed" and "MessageRejected" in verdict.note
    [channel, personal] = parse(
        json.dumps(
            [
                {"name": "list", "kind": "email", "sender": SENDER, "to": "team@studio.example.test"},
                {"name": "mail", "kind": "email", "sender": SENDER},
            ]
        )
    )
    assert channel.wants("review.requested.v1", "library") and not personal.wants("review.requested.v1", "library")
