"""Slack's incoming webhooks: `ok` delivers; a removed webhook (404 no_service), an archived channel (410) or
a forbidden post (403) disable the target; a refused payload fails; a rate limit waits its Retry-After."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.deliveries import envelope, once, published
from support.receivers import Slack


@pytest.fixture
def slack() -> Iterator[Slack]:
    with Slack("secret") as stand_in:
        yield stand_in  # type: ignore[misc]


def test_a_published_item_is_posted_as_text(slack: Slack) -> None:
    assert once(slack.target("studio"), published(title="<!channel> & co")).state == "delivered"
    [message] = slack.messages
    assert "&lt;!channel&gt; &amp; co" in message["blocks"][0]["text"]["text"]
    assert message["unfurl_links"] is False


def test_a_sign_in_link_is_a_button_and_text(slack: Slack) -> None:
    event = envelope("reviewer.sign_in.v1", {"name": "Ann", "url": "https://api.example.test/signin?token=t"})
    assert once(slack.target("studio", events=["content.published.v1"]), event).state == "delivered"
    [message] = slack.messages
    assert "https://api.example.test/signin?token=t" in message["text"]
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["open"]


def test_slacks_answers_mean_what_slack_means(slack: Slack) -> None:
    target = slack.target("studio")
    slack.script((429, {"Retry-After": "3"}, b"rate_limited"), (400, {}, b"invalid_blocks"), (500, {}, b""))
    waited = once(target, published())
    assert (waited.state, waited.retry_after, waited.rate_limited) == ("retry", 3.0, True)
    refused = once(target, published())
    assert (refused.state, refused.note) == ("failed", "HTTP 400: invalid_blocks")
    assert once(target, published()).state == "retry"
    slack.exists = False
    gone = once(target, published())
    assert (gone.state, gone.note) == ("disabled", "HTTP 404: no_service")
