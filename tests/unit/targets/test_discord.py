"""Discord's execute-webhook, against a stand-in as strict as Discord where we depend on it: `?wait=true`
answers the saved message (its id is what a retry checks), embeds fit Discord's limits instead of failing,
`allowed_mentions` pings nobody, the cover is a public URL or an attached file (never a presigned URL), and
429, 400, 401 and 404 mean what Discord means by them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from support.deliveries import envelope, once, published
from support.images import png
from support.receivers import Discord

LIBRARY = "library-bucket"


@pytest.fixture
def discord() -> Iterator[Discord]:
    with Discord() as stand_in:
        yield stand_in  # type: ignore[misc]


def test_a_published_item_is_posted_and_discord_answers_with_the_saved_message(discord: Discord) -> None:
    event = published(public_url="https://cdn.example.test/library/sunset/x.png", title="@everyone look")

    verdict = once(discord.target("studio"), event)

    [message] = discord.messages
    assert (verdict.state, verdict.message_id) == ("delivered", message["id"])
    assert message["request"]["allowed_mentions"] == {"parse": []}
    [embed] = message["embeds"]
    assert embed["title"] == "@everyone look"
    assert embed["url"] == embed["image"]["url"] == "https://cdn.example.test/library/sunset/x.png"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Namespace"] == "library" and fields["Tags"] == "sky" and fields["Reviewer"] == "Alice"
    assert discord.seen[0].query["wait"] == ["true"]


def test_without_a_public_url_the_cover_travels_as_an_attachment(aws: None, discord: Discord) -> None:
    image = png(5)
    boto3.client("s3").put_object(Bucket=LIBRARY, Key="library/sunset/x.png", Body=image, ContentType="image/png")

    verdict = once(discord.target("studio"), published())

    [message] = discord.messages
    assert verdict.state == "delivered"
    [attachment] = message["attachments"]
    assert message["embeds"][0]["image"]["url"] == f"attachment://{attachment['filename']}"
    assert discord.files[attachment["url"]] == image
    assert "presigned" not in json.dumps(message) and "X-Amz-Signature" not in json.dumps(message)


def test_a_library_object_discord_cannot_show_goes_without_an_image(aws: None, discord: Discord) -> None:
    boto3.client("s3").put_object(Bucket=LIBRARY, Key="library/sunset/x.png", Body=b"II*\x00", ContentType="image/tiff")

    assert once(discord.target("studio"), published()).state == "delivered"
    assert "image" not in discord.messages[0]["embeds"][0]


def oversized() -> dict[str, Any]:
    """An event whose texts break every embed limit: long emoji titles, 30 long fields."""
    data = {"title": "🎨" * 300, "tags": ["t" * 64] * 30, "reason": "x" * 5000, "message": "y" * 5000}
    data |= {"namespace": "n" * 63, "author": "a" * 400, "reviewer": "r" * 400, "stage": "s" * 2000}
    return envelope("content.publish.failed.v1", data)


def test_texts_beyond_discords_limits_are_cut_not_refused(discord: Discord) -> None:
    from rendergate.targets import discord as adapter

    event = oversized()

    verdict = once(discord.target("studio", events=["content.publish.failed.v1"]), event)

    assert verdict.state == "delivered", discord.seen[-1].body[:300]
    [embed] = discord.messages[0]["embeds"]
    assert embed["title"].endswith("…") and len(embed["title"].encode("utf-16-le")) // 2 <= 256
    huge = {**embed, "fields": [{"name": "f" * 300, "value": "v" * 2000}] * 26}
    assert adapter.fit(huge) != huge
    total = adapter._total(adapter.fit(huge), adapter.fit(huge).get("fields", []))
    assert total <= 6000


def test_the_stand_in_refuses_what_discord_refuses(discord: Discord) -> None:
    """The strictness the tests above lean on: an embed over the limits is a 400 with Discord's errors."""
    import requests

    url = discord.target("studio")["url"] + "?wait=true"
    answer = requests.post(url, json={"embeds": [{"title": "x" * 257}]}, timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (400, 50035)
    assert requests.post(url, json={}, timeout=5).status_code == 400  # an empty message


def test_a_rate_limit_asks_for_the_bodys_float_retry_after(discord: Discord) -> None:
    discord.rate_limit(1.337)

    verdict = once(discord.target("studio"), published(public_url="https://cdn.example.test/x.png"))

    assert (verdict.state, verdict.retry_after, verdict.rate_limited) == ("retry", 1.337, True)
    assert discord.messages == []


def test_a_deleted_webhook_disables_the_target_and_a_bad_token_too(aws: None, discord: Discord) -> None:
    bad_token = {**discord.target("studio"), "url": discord.target("studio")["url"][:-3] + "xyz"}
    assert once(bad_token, published()).state == "disabled"

    discord.delete_webhook()
    verdict = once(discord.target("studio"), published())

    assert (verdict.state, verdict.note) == ("disabled", "HTTP 404: Unknown Webhook")


def test_a_refused_message_fails_with_discords_explanation_and_5xx_is_retried(aws: None, discord: Discord) -> None:
    discord.script((400, {"Content-Type": "application/json"}, {"code": 50035, "message": "Invalid Form Body"}), 502)

    assert once(discord.target("studio"), published()).note == "HTTP 400: Invalid Form Body"
    assert once(discord.target("studio"), published()).state == "retry"


def test_a_review_request_is_text_with_a_link_button_and_the_link_is_not_unfurled(discord: Discord) -> None:
    url = "https://api.example.test/reviews/abc?exp=1&sig=s"
    event = envelope("review.requested.v1", {"url": url, "title": "Sunset", "namespace": "library", "assets": 2})
    mention = "<@&165511591545143296>"

    quiet = once(discord.target("reviews", events=["review.requested.v1"]), event)
    loud = once(discord.target("ops", events=["review.requested.v1"], mention=mention), event)

    assert quiet.state == loud.state == "delivered", discord.seen[-1].body[:300]
    first, second = discord.messages
    assert first["flags"] == 4 and first["embeds"] == [] and url in first["content"]
    assert first["request"]["allowed_mentions"] == {"parse": []} and "<@" not in first["content"]
    [[button]] = [row["components"] for row in first["components"]]
    assert (button["style"], button["url"]) == (5, url)
    assert second["content"].startswith(mention)
    assert second["request"]["allowed_mentions"] == {"parse": [], "roles": ["165511591545143296"]}


def test_the_stand_in_refuses_interactive_components_on_a_webhook_no_application_owns(discord: Discord) -> None:
    import requests

    button = {"type": 2, "style": 1, "label": "Approve", "custom_id": "approve"}
    payload = {"content": "x", "components": [{"type": 1, "components": [button]}]}
    url = discord.target("x")["url"]
    assert requests.post(f"{url}?wait=true&with_components=true", json=payload, timeout=5).status_code == 400
    assert requests.post(f"{url}?wait=true", json=payload, timeout=5).json()["components"] == []
    assert requests.post(f"{url}?wait=true", json={"content": "x", "flags": 64}, timeout=5).status_code == 400
