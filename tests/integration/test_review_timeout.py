"""A review nobody decides: the task times out, the run becomes expired, and the link stops working; in a
namespace whose policy auto-rejects, everything is rejected instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.devstack import DevStack, running_devstack
from support.images import png

REVIEW_TIMEOUT = 3


@pytest.fixture(scope="module")
def short_review_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    state_dir: Path = tmp_path_factory.mktemp("short-review")
    with running_devstack(state_dir, {"ReviewTimeoutSeconds": str(REVIEW_TIMEOUT)}) as stack:
        yield stack


def test_an_undecided_review_expires(short_review_stack: DevStack) -> None:
    stack = short_review_stack
    run_id = stack.upload(png(42), "late.png")
    waiting = stack.wait_for(run_id, "awaiting_review")
    link = waiting["review"]["url"]
    form = stack.review_form(link)

    run = stack.wait_for(run_id, "expired", timeout=REVIEW_TIMEOUT + 30)
    assert run["status"] == "expired"
    assert run["error"]["name"] == "States.Timeout"
    assert run["published"] == []
    assert run["review"]["status"] == "expired"

    late = requests.post(link.split("?")[0], data={**form, "all": "approve"}, timeout=10)
    assert late.status_code == 410
    assert requests.get(link, timeout=10).status_code == 410
    assert stack.run(run_id)["status"] == "expired"


def test_a_namespace_that_auto_rejects_rejects_what_nobody_decided(short_review_stack: DevStack) -> None:
    stack = short_review_stack
    policy = requests.put(
        f"{stack.api_url}/review-policies/strict", json={"expiry": "auto-reject"}, headers=stack.auth, timeout=10
    )
    assert (policy.status_code, policy.json()["expiry"]) == (200, "auto-reject")
    run_id = stack.upload(png(43), "unseen.png", namespace="strict")
    stack.wait_for(run_id, "awaiting_review")

    run = stack.wait_for(run_id, "rejected", timeout=REVIEW_TIMEOUT + 30)
    assert (run["status"], run["published"], run["review"]["status"]) == ("rejected", [], "decided")
    assert run.get("error") is None
    assert [asset["status"] for asset in run["assets"]] == ["discarded"]
