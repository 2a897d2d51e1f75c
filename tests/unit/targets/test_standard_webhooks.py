"""Standard Webhooks targets: the CloudEvent as the body, signed so that a receiver using the reference
`standardwebhooks` library verifies it (the README's ten-line receiver among them); the event id is the
webhook id; 410 disables, the rest is retried."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.deliveries import SECRET, envelope, once, published
from support.receivers import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.mark.parametrize("event_type", ["content.publish.approved.v1", "content.publish.failed.v1", "render.failed.v1"])
def test_the_cloudevent_arrives_signed_and_verifies_with_the_reference_library(
    receiver: WebhookReceiver, event_type: str
) -> None:
    event = envelope(event_type, {"run_id": "run-1", "title": "Ünïcode ✓", "reason": 'a "quoted" reason'})

    verdict = once(receiver.target("n8n"), event)

    assert verdict.state == "delivered"
    [seen] = receiver.verified
    assert seen["webhook-id"] == event["id"]
    assert {k: v for k, v in seen.items() if k != "webhook-id"} == event
    assert receiver.seen[0].headers["content-type"] == "application/json"


def test_a_receiver_with_another_secret_refuses_it_and_the_delivery_is_retried(receiver: WebhookReceiver) -> None:
    another_secret = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="

    verdict = once(receiver.target("n8n", secret=another_secret), published())

    assert (verdict.state, receiver.refused) == ("retry", 1)


def test_410_gone_disables_and_a_named_wait_is_kept(receiver: WebhookReceiver) -> None:
    receiver.script(410, (503, {"Retry-After": "7"}, b""), 400)

    assert once(receiver.target("n8n"), published()).state == "disabled"
    unavailable = once(receiver.target("n8n"), published())
    assert (unavailable.state, unavailable.retry_after, unavailable.rate_limited) == ("retry", 7.0, False)
    assert once(receiver.target("n8n"), published()).state == "retry"  # Standard Webhooks: any other failure


def test_the_readmes_receiver_verifies_what_we_send_and_refuses_a_forgery(tmp_path: Path) -> None:
    import re

    from support.aws import ROOT
    from support.devstack import free_port
    from support.waiting import until

    [code] = [
        block
        for block in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
        if "class Receiver" in block
    ]
    (tmp_path / "receiver.py").write_text(code)
    port = free_port()
    env = {**os.environ, "SECRET": SECRET, "PORT": str(port)}
    command = [sys.executable, str(tmp_path / "receiver.py")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        until(lambda: _listening(port), timeout=10, what="the receiver to listen")
        target = {"name": "local", "kind": "webhook", "url": f"http://127.0.0.1:{port}/", "secret": SECRET}
        event = published()

        assert once(target, event).state == "delivered"
        assert once({**target, "secret": "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="}, event).state == "retry"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert output.splitlines()[0].startswith("content.published.v1 {'run_id': 'run-1'")
    assert len(output.splitlines()) == 1


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
