"""Nothing is left hanging on the local stack: an upload that never arrives expires (and its late object
starts nothing), and a decision Step Functions would not take at first still reaches it through the
sweep. Step Functions' refusals come from a proxy in front of moto that answers as AWS does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.devstack import DevStack, running_devstack
from support.faults import THROTTLED, FaultyProxy
from support.images import png
from support.waiting import eventually


@pytest.fixture(scope="module")
def proxy() -> Iterator[FaultyProxy]:
    with FaultyProxy() as running:
        yield running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, proxy: FaultyProxy) -> Iterator[DevStack]:
    state_dir: Path = tmp_path_factory.mktemp("nothing-hangs")
    parameters = {"UploadUrlExpirySeconds": "1", "UploadGraceSeconds": "1"}
    with running_devstack(state_dir, parameters, env={"AWS_ENDPOINT_URL_SFN": proxy.url}) as running:
        proxy.target = running.state["moto_url"]
        yield running


def sweep(stack: DevStack) -> dict[str, dict[str, str]]:
    """Run the sweep now, as its schedule would, through Lambda's Invoke."""
    function = stack.state["functions"]["SweepFunction"]
    answer = stack.aws("lambda").invoke(FunctionName=function, Payload=b'{"source": "aws.events"}')
    result: dict[str, dict[str, str]] = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    return result


def test_an_upload_that_never_arrives_expires_and_a_late_object_starts_nothing(stack: DevStack) -> None:
    presigned = stack.presign("never.png", 100)
    run_id, key = presigned["run_id"], presigned["key"]
    time.sleep(2.5)  # the URL's second and the grace period's second

    assert sweep(stack)["uploads"] == {run_id: "expired"}
    run = stack.run(run_id)
    assert run["status"] == "expired"
    assert run["error"]["name"] == "UploadNotReceived"

    bucket = stack.state["media_bucket"]
    stack.aws("s3").put_object(Bucket=bucket, Key=key, Body=png(3), ContentType="image/png")

    def discarded() -> None:
        tags = stack.aws("s3").get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        assert {"Key": "rendergate-discard", "Value": "true"} in tags

    eventually(discarded, timeout=30)
    assert stack.run(run_id)["status"] == "expired"
    assert run_id not in [e["name"] for e in stack.executions()]


def test_a_decision_step_functions_refused_reaches_it_through_the_sweep(stack: DevStack, proxy: FaultyProxy) -> None:
    run_id = stack.upload(png(11), "held.png", title="Held back")
    run = stack.wait_for(run_id, "awaiting_review")
    link = run["review"]["url"]
    form = stack.review_form(link)

    proxy.failing["SendTaskSuccess"] = THROTTLED
    try:
        decided = requests.post(link.split("?")[0], data={**form, "all": "approve"}, timeout=30)
        assert decided.status_code == 202
        assert "your decision is recorded" in decided.text
        assert proxy.calls.count("SendTaskSuccess") == 3  # botocore's retries, inside the request
        again = requests.post(link.split("?")[0], data={**form, "all": "reject"}, timeout=30)
        assert again.status_code == 409
        waiting: dict[str, Any] = stack.run(run_id)
        assert waiting["status"] == "awaiting_review"
        assert (waiting["review"]["status"], waiting["review"]["delivery"]) == ("decided", "pending")
    finally:
        del proxy.failing["SendTaskSuccess"]

    def redelivered() -> None:
        assert sweep(stack)["decisions"].get(run_id) == "delivered"

    eventually(redelivered, timeout=40)
    done = stack.wait_for(run_id, "completed")
    assert done["status"] == "completed"
    assert done["review"]["delivery"] == "delivered"
    assert done["review"]["delivered_at"]
    assert [item["library_key"] for item in done["published"]] == ["library/held-back/held.png"]
