"""After publish, every target hears of it, on the local stack through real HTTP: the bus puts each event in
the delivery queue, the notify function delivers to stand-ins on loopback (a Standard Webhooks receiver
verifying with the reference library, Discord, Jellyfin, Kodi), and retries come back through the queue.
Targets are set by writing the SSM document the running stack reads (its cache is 0 here), each test's
targets limited to a namespace of its own."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.deliveries import SECRET
from support.devstack import DevStack, devstack_command
from support.images import photo, save
from support.receivers import HOLD, Discord, Jellyfin, Kodi, WebhookReceiver, running
from support.waiting import eventually, until

UseTargets = Callable[..., None]
_namespaces = (f"deliveries-{n}" for n in itertools.count())


@pytest.fixture
def use_targets(devstack: DevStack) -> Iterator[UseTargets]:
    """Point the running stack at these targets (the document its functions read); none afterwards."""
    ssm = devstack.aws("ssm")

    def use(*items: dict[str, Any]) -> None:
        document = json.dumps(list(items))
        ssm.put_parameter(Name=devstack.state["targets_param"], Value=document, Type="SecureString", Overwrite=True)

    yield use
    use()


@pytest.fixture
def namespace() -> str:
    return next(_namespaces)


def publish(devstack: DevStack, namespace: str, seed: int, title: str = "Harbour at night") -> dict[str, Any]:
    """Upload an image that is approved without review; the completed run. The picture is unlike any other
    test's (a near-duplicate of one already in the library would not be selected, so not published)."""
    picture = save(photo(3000 + seed), "PNG")
    run_id = devstack.upload(picture, "harbour.png", namespace=namespace, title=title, auto_approve=True)
    run = devstack.wait_for(run_id, "completed")
    assert run["status"] == "completed", run
    return run


def deliveries(devstack: DevStack, **query: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{devstack.api_url}/deliveries", params=query, headers=devstack.auth, timeout=10)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["deliveries"])


def settled(devstack: DevStack, event_id: str, count: int) -> list[dict[str, Any]]:
    """The event's deliveries once there are `count` and none is waiting or being sent."""

    def check() -> list[dict[str, Any]]:
        found = deliveries(devstack, event_id=event_id)
        assert len(found) == count and all(d["state"] not in ("pending", "sending") for d in found), found
        return found

    return list(eventually(check, timeout=30))


def queue_idle(devstack: DevStack) -> None:
    """Wait until the delivery queue holds nothing: every message (and retry) handled."""
    sqs = devstack.aws("sqs")

    def empty() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=devstack.state["delivery_queue_url"], AttributeNames=["All"])
        names = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        return all(counts["Attributes"][name] == "0" for name in names)

    until(empty, timeout=30, what="the delivery queue to drain")


def test_every_target_gets_exactly_one_delivery_per_published_asset(
    devstack: DevStack, use_targets: UseTargets, namespace: str
) -> None:
    hook, discord, jellyfin, kodi = WebhookReceiver(SECRET), Discord(), Jellyfin("jf-api-key"), Kodi("kodi", "pw")
    with running(hook, discord, jellyfin, kodi):
        only_ours = {"namespaces": [namespace]}
        use_targets(
            hook.target("n8n", events=["content.publish.approved.v1", "content.published.v1"], **only_ours),
            discord.target("studio", **only_ours),
            jellyfin.target("jf", library_root="/mnt/library", **only_ours),
            kodi.target("kodi", library_root="smb://nas/library/", **only_ours),
        )

        runs = [publish(devstack, namespace, seed) for seed in (201, 202)]
        items = [item for run in runs for item in run["published"]]
        for item in items:
            assert {d["state"] for d in settled(devstack, item["published_event_id"], 4)} == {"delivered"}
        queue_idle(devstack)

        keys = sorted(item["library_key"] for item in items)
        published = [event for event in hook.verified if event["type"] == "content.published.v1"]
        approved = [event for event in hook.verified if event["type"] == "content.publish.approved.v1"]
        assert sorted(event["data"]["library_key"] for event in published) == keys
        assert len(approved) == 2 and all(event["webhook-id"] == event["id"] for event in hook.verified)
        library = devstack.aws("s3")
        covers = {library.get_object(Bucket=i["library_bucket"], Key=i["library_key"])["Body"].read() for i in items}
        assert {discord.files[m["attachments"][0]["url"]] for m in discord.messages} == covers
        assert {m["embeds"][0]["title"] for m in discord.messages} == {"Harbour at night"}
        assert all(m["request"]["allowed_mentions"] == {"parse": []} for m in discord.messages)
        assert sorted(update["Path"] for update in jellyfin.updates) == [f"/mnt/library/{key}" for key in keys]
        assert {update["UpdateType"] for update in jellyfin.updates} == {"Created"}
        folder = f"smb://nas/library/{namespace}/harbour-at-night/"  # both items share the title's folder
        assert kodi.scans == [{"directory": folder, "showdialogs": False}] * 2


def test_a_target_that_is_down_for_a_while_gets_it_later(
    devstack: DevStack, use_targets: UseTargets, namespace: str
) -> None:
    hook = WebhookReceiver(SECRET)
    hook.start()
    hook.stop()  # the port is known, nothing listens
    use_targets(hook.target("n8n", events=["content.published.v1"], namespaces=[namespace]))

    [item] = publish(devstack, namespace, 203)["published"]
    event_id = item["published_event_id"]

    def refused() -> dict[str, Any]:
        [delivery] = deliveries(devstack, event_id=event_id)
        assert delivery["last_outcome"] == "not_sent" and delivery["state"] == "pending", delivery
        return delivery

    waiting = eventually(refused, timeout=20)
    assert waiting["note"] == "no connection could be made (connection refused)"
    with running(hook):
        [delivered] = settled(devstack, event_id, 1)
    assert delivered["state"] == "delivered" and delivered["attempts"] >= 2
    assert [event["id"] for event in hook.verified] == [event_id]


def test_a_rate_limit_is_waited_out_as_discord_asks(
    devstack: DevStack, use_targets: UseTargets, namespace: str
) -> None:
    discord = Discord()
    with running(discord):
        use_targets(discord.target("studio", namespaces=[namespace]))
        discord.rate_limit(1.5)

        [item] = publish(devstack, namespace, 204)["published"]

        [delivery] = settled(devstack, item["published_event_id"], 1)
        assert (delivery["state"], delivery["attempts"], delivery["failed_attempts"]) == ("delivered", 2, 0)
        assert [entry["status"] for entry in delivery["history"]] == [429, 200]
        first, second = discord.seen
        assert second.at - first.at >= 1.5
        assert delivery["message_id"] == discord.messages[0]["id"]


def test_a_disabled_target_stops_until_a_retry_enables_it(
    devstack: DevStack, use_targets: UseTargets, namespace: str
) -> None:
    discord = Discord()
    with running(discord):
        use_targets(discord.target("studio", namespaces=[namespace]))
        discord.delete_webhook()

        [first] = publish(devstack, namespace, 205)["published"]
        [gone] = settled(devstack, first["published_event_id"], 1)
        assert (gone["state"], gone["last_status"], gone["note"]) == ("disabled", 404, "HTTP 404: Unknown Webhook")
        [second] = publish(devstack, namespace, 206)["published"]
        [stopped] = settled(devstack, second["published_event_id"], 1)
        assert stopped["state"] == "disabled" and stopped["attempts"] == 0
        assert len(discord.seen) == 1

        discord.exists = True  # the webhook was made again
        retried = requests.post(
            f"{devstack.api_url}/deliveries/{stopped['delivery_id']}/retry", headers=devstack.auth, timeout=10
        )
        assert retried.status_code == 202, retried.text
        [delivered] = settled(devstack, second["published_event_id"], 1)
        assert delivered["state"] == "delivered" and len(discord.messages) == 1


def test_a_duplicate_event_delivers_nothing_new(devstack: DevStack, use_targets: UseTargets, namespace: str) -> None:
    hook = WebhookReceiver(SECRET)
    with running(hook):
        use_targets(hook.target("n8n", events=["content.published.v1"], namespaces=[namespace]))
        [item] = publish(devstack, namespace, 207)["published"]
        settled(devstack, item["published_event_id"], 1)
        [event] = [{k: v for k, v in e.items() if k != "webhook-id"} for e in hook.verified]

        entry = {"EventBusName": devstack.state["event_bus"], "Source": "rendergate", "DetailType": event["type"]}
        devstack.aws("events").put_events(Entries=[{**entry, "Detail": json.dumps(event)}] * 2)
        queue_idle(devstack)

        assert len(hook.seen) == 1
        assert len(deliveries(devstack, event_id=item["published_event_id"])) == 1


def test_a_slow_target_never_delays_the_runs_completion(
    devstack: DevStack, use_targets: UseTargets, namespace: str
) -> None:
    hook = WebhookReceiver(SECRET)
    with running(hook):
        use_targets(hook.target("n8n", events=["content.publish.approved.v1"], namespaces=[namespace]))
        hook.script(HOLD)

        run = publish(devstack, namespace, 208)  # completes while the receiver holds the approval

        until(lambda: hook.holding == 1, timeout=20, what="the approval to reach the held receiver")
        assert devstack.run(run["run_id"])["status"] == "completed"
        hook.release()
        until(lambda: len(hook.verified) == 1, timeout=20, what="the held delivery to finish")


def test_the_demo_prints_where_each_delivery_went(devstack: DevStack, use_targets: UseTargets) -> None:
    hook = WebhookReceiver(SECRET)
    with running(hook):
        use_targets(hook.target("n8n", events=["content.published.v1"], namespaces=["library"]))

        result = devstack_command(
            "demo", Path(devstack.state["outbox"]).parent, "--approve", "--title", "Delivered demo"
        )

    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("delivery: ")]
    assert line.startswith(
        f"delivery: n8n (webhook, {hook.url}) content.published.v1 -> delivered (HTTP 204, 1 attempt)"
    )


def test_replaying_a_published_approval_says_nothing_changed(devstack: DevStack, namespace: str) -> None:
    run = publish(devstack, namespace, 209)
    [row] = devstack.audit_rows(run["run_id"])

    def replay(event_id: str) -> subprocess.CompletedProcess[str]:
        return devstack_command("replay", Path(devstack.state["outbox"]).parent, event_id, timeout=60)

    done = replay(row["publish_event_id"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("already published at ") and "nothing was changed" in done.stdout
    assert devstack.audit_rows(run["run_id"])[0]["updated_at"] == row["updated_at"]
    missing = replay("no-such-approval")
    assert missing.returncode == 1 and "NotFound" in missing.stderr
