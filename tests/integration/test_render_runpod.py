"""Render runs on RunPod, through the RunPod-protocol test server: our worker under the runpod SDK's job
loop on the CPU renderer, webhooks and the reconciler, every failure shape, backpressure, retries
without duplicate jobs, heartbeats, cancellation (queued, and in the middle of a render), source images
by URL, and where images returned as URLs may come from."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.comfyui import CpuComfyUI
from rendergate.backends.comfyui import prompt_id_for
from support.devstack import DevStack, running_devstack
from support.images import png
from support.runpod import IDLE_TIMEOUT_SECONDS, Outcome, RunPodServer, sdk_worker
from support.waiting import until

RUNPOD_KEY = "runpod-test-key"
HEARTBEAT_SECONDS = 4
SMALL = {"width": 128, "height": 96, "steps": 3}


@pytest.fixture(scope="module")
def renderer() -> Iterator[CpuComfyUI]:
    """The ComfyUI inside the worker's container."""
    renderer = CpuComfyUI(port=0, step_seconds=0.001).start()
    yield renderer
    renderer.stop()


@pytest.fixture(scope="module")
def runpod(renderer: CpuComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPodServer]:
    """RunPod, with one worker (ours, under the runpod SDK) that wakes only for normal-priority jobs."""
    server = RunPodServer(RUNPOD_KEY, endpoint_id="test-endpoint").start()
    with sdk_worker(server, renderer.url, tmp_path_factory.mktemp("runpod-worker") / "worker.log"):
        yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(runpod: RunPodServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    parameters = {
        "RenderBackend": "runpod",
        "RunPodApiBase": runpod.url,
        "RunPodEndpointId": runpod.endpoint_id,
        "RunPodOutputUrlPrefixes": f"{runpod.base}/files/",
        "RenderHeartbeatSeconds": str(HEARTBEAT_SECONDS),
        "RenderQueueTtlSeconds": "120",
        "RenderExecutionTimeoutSeconds": "60",
        "ReconcilePollSeconds": "0",
        "LowPriorityQueueLimit": "3",
    }
    env = {"RENDERGATE_RUNPOD_API_KEY": RUNPOD_KEY}
    with running_devstack(tmp_path_factory.mktemp("runpod-stack"), parameters, env) as devstack:
        yield devstack


def render(stack: DevStack, marker: str, count: int = 1, **fields: Any) -> str:
    params = {"prompt": f"a lighthouse {marker}", **SMALL, **fields.pop("params", {})}
    return str(stack.render(workflow="txt2img", params=params, count=count, **fields)["run_id"])


def dead_letters(stack: DevStack) -> list[dict[str, Any]]:
    """Every message in the render dead-letter queue (peeked: they stay for the operator)."""
    sqs = stack.aws("sqs")
    found: dict[str, dict[str, Any]] = {}
    for _ in range(5):
        messages = sqs.receive_message(
            QueueUrl=stack.state["render_dlq_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        found.update({m["MessageId"]: json.loads(m["Body"]) for m in messages.get("Messages", [])})
    return list(found.values())


def test_a_render_on_our_worker_is_reviewed_and_published(stack: DevStack, runpod: RunPodServer) -> None:
    run_id = render(stack, "m-happy", count=2, title="Lighthouse", namespace="renders")
    run = stack.wait_for(run_id, "awaiting_review")

    assert run["status"] == "awaiting_review"
    [job] = runpod.jobs_for("m-happy")
    assert job.policy == {"executionTimeout": 60_000, "ttl": 180_000, "lowPriority": False}  # queue + execution
    assert job.webhook and job.webhook.startswith(f"{stack.api_url}/webhooks/runpod/{run_id}/")
    assert job.deliveries == [200]
    assert (run["render"]["job_id"], run["render"]["job_status"], run["render"]["progress"]) == (
        job.id,
        "COMPLETED",
        100,
    )
    assert {"queue_ms", "execution_ms", "worker_total_ms"} <= set(run["render"]["timings"])
    keys = [asset["key"] for asset in run["assets"]]
    assert keys == [f"renders/{run_id}/txt2img-{run['render']['seed']}-0{i}.png" for i in (1, 2)]
    assert [image["key"] for image in job.output["images"]] == keys
    for asset in run["assets"]:
        assert (asset["width"], asset["height"], asset["format"]) == (128, 96, "PNG")
        assert asset["render"]["seed"] == run["render"]["seed"]
        assert asset["render"]["sha256"] == run["render"]["sha256"]

    assert stack.decide(run["review"]["url"], all="approve", reviewer="Rita").status_code == 200
    done = stack.wait_for(run_id, "completed")
    published = sorted(item["library_key"] for item in done["published"])
    assert published == [f"renders/lighthouse/{key.rsplit('/', 1)[1]}" for key in keys]


def test_low_priority_work_renders_on_an_endpoint_scaled_to_zero(stack: DevStack, runpod: RunPodServer) -> None:
    # RunPod's lowPriority jobs never wake a worker: sent as such, this one would wait out its ttl
    while any(job.status in ("IN_QUEUE", "IN_PROGRESS") for job in runpod.jobs.values()):
        time.sleep(0.2)
    time.sleep(IDLE_TIMEOUT_SECONDS)  # the endpoint has scaled to zero
    answer = stack.render(workflow="txt2img", params={"prompt": "m-low", **SMALL}, priority="low")
    assert answer["eta_seconds"] > 0
    assert stack.wait_for(answer["run_id"], "awaiting_review")["status"] == "awaiting_review"
    [job] = runpod.jobs_for("m-low")
    assert job.policy["lowPriority"] is False


def test_a_deep_queue_turns_low_priority_work_away_but_not_normal_work(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.health = {"jobs": {"inQueue": 9, "inProgress": 2}, "workers": {"idle": 0, "running": 2}}
    try:
        time.sleep(5.1)  # the API caches the backend's health for a few seconds
        body = {"workflow": "txt2img", "params": {"prompt": "m-busy", **SMALL}, "priority": "low"}
        refused = requests.post(f"{stack.api_url}/runs", json=body, headers=stack.auth, timeout=30)
        assert refused.status_code == 429
        assert refused.json()["error"] == "QueueFull"
        assert int(refused.headers["Retry-After"]) > 0
        accepted = stack.render(**{**body, "priority": "normal"})
        assert accepted["eta_seconds"] >= 6 * 20  # eleven jobs ahead on two workers
        stack.cancel(accepted["run_id"])
    finally:
        runpod.health = None
    assert runpod.jobs_for("m-busy") == [] or all(j.cancelled for j in runpod.jobs_for("m-busy"))


def test_transient_submit_errors_are_retried_and_make_one_job(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.refuse("m-flaky", 429, 503)
    run_id = render(stack, "m-flaky")
    assert stack.wait_for(run_id, "awaiting_review")["status"] == "awaiting_review"
    assert len([r for r in runpod.run_requests if "m-flaky" in json.dumps(r)]) == 3
    assert len(runpod.jobs_for("m-flaky")) == 1


def test_a_submit_whose_answer_is_lost_is_not_resent(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.lose_answer("m-lost-answer")
    run_id = render(stack, "m-lost-answer")
    run = stack.wait_for(run_id, "awaiting_review")
    assert run["status"] == "awaiting_review"  # the webhook told us the job id
    [job] = runpod.jobs_for("m-lost-answer")
    assert run["render"]["job_id"] == job.id
    assert len([r for r in runpod.run_requests if "m-lost-answer" in json.dumps(r)]) == 1


TRACEBACK_ERROR = json.dumps(
    {
        "error_type": "<class 'torch.OutOfMemoryError'>",
        "error_message": "CUDA out of memory. Tried to allocate 2.00 GiB",
        "error_traceback": 'Traceback (most recent call last):\n  File "handler.py", line 9, in handler\n',
        "hostname": "worker-1",
    }
)


@pytest.mark.parametrize(
    ("outcome", "name", "words"),
    [
        (Outcome("failed", error="ComfyUI server (127.0.0.1:8188) not reachable"), "RenderFailed", ["not reachable"]),
        (
            Outcome("failed", error=TRACEBACK_ERROR),
            "RenderFailed",
            ["torch.OutOfMemoryError", "Tried to allocate", "Traceback"],
        ),
        (
            Outcome("failed", error="Job processing failed", details=["Node 4: Value not in list: ckpt_name"]),
            "RenderFailed",
            ["Job processing failed", "Node 4: Value not in list"],
        ),
        (Outcome("timed_out"), "RenderTimedOut", ["timed out"]),
        (Outcome("no_output"), "RenderLost", ["without output"]),
    ],
    ids=["plain-error", "traceback-error", "details-error", "timed-out", "no-output"],
)
def test_a_failed_job_fails_the_run_with_the_backend_text_and_is_dead_lettered(
    stack: DevStack, runpod: RunPodServer, outcome: Outcome, name: str, words: list[str]
) -> None:
    marker = f"m-fail-{name}-{len(runpod.jobs)}"
    runpod.script(marker, outcome)
    run_id = render(stack, marker)
    run = stack.wait_for(run_id, "failed")

    assert run["status"] == "failed"
    assert run["error"]["name"] == name
    for word in words:
        assert word in run["error"]["message"]
    listed = requests.get(f"{stack.api_url}/runs?status=failed&limit=100", headers=stack.auth, timeout=10).json()
    assert run_id in [r["run_id"] for r in listed["runs"]]
    [parked] = [m for m in dead_letters(stack) if m["run_id"] == run_id]
    assert parked["error"]["Error"] == name


@pytest.mark.parametrize(("kind", "count"), [("base64", 2), ("s3_url", 2), ("legacy", 1)])
def test_stock_worker_outputs_are_copied_into_the_run(
    stack: DevStack, runpod: RunPodServer, kind: str, count: int
) -> None:
    marker = f"m-shape-{kind}"
    runpod.script(marker, Outcome(kind))
    run_id = render(stack, marker, count=count)
    run = stack.wait_for(run_id, "awaiting_review")
    assert run["status"] == "awaiting_review"
    assert [a["status"] for a in run["assets"]] == ["enriched"] * count
    assert all(a["key"].startswith(f"renders/{run_id}/") for a in run["assets"])


def test_duplicate_and_late_webhooks_change_nothing(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-dup", Outcome(webhooks=2, late_webhook_after=1.5))
    run_id = render(stack, "m-dup", count=2)
    run = stack.wait_for(run_id, "awaiting_review")
    [job] = runpod.jobs_for("m-dup")
    time.sleep(2.5)
    assert job.deliveries == [200, 200, 200]
    after = stack.run(run_id)
    assert (after["status"], len(after["assets"])) == ("awaiting_review", 2)
    assert after["review"]["review_id"] == run["review"]["review_id"]
    assert [e["name"] for e in stack.executions()].count(run_id) == 1
    events = stack.aws("dynamodb").scan(TableName=stack.state["tables"]["render_events"])["Items"]
    assert [e["event_id"]["S"] for e in events if e["run_id"]["S"] == run_id] == [f"{job.id}:COMPLETED"]


def test_a_webhook_with_a_wrong_token_is_refused_and_retried_then_the_reconciler_completes(
    stack: DevStack, runpod: RunPodServer
) -> None:
    runpod.script("m-forged", Outcome(forge_token=True))
    run_id = render(stack, "m-forged")
    [job] = wait_for_job(runpod, "m-forged")
    deadline = time.monotonic() + 20
    while len(job.deliveries) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.deliveries == [403, 403, 403]
    assert stack.run(run_id)["status"] == "rendering"

    assert stack.reconcile()[run_id] == "completed"
    assert stack.wait_for(run_id, "awaiting_review")["status"] == "awaiting_review"


def test_without_a_webhook_the_reconciler_completes_the_render(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-silent", Outcome(send_webhook=False))
    run_id = render(stack, "m-silent")
    [job] = wait_for_job(runpod, "m-silent")
    while job.status != "COMPLETED":
        time.sleep(0.1)
    assert stack.run(run_id)["status"] == "rendering"
    assert stack.reconcile()[run_id] == "completed"
    assert stack.wait_for(run_id, "awaiting_review")["status"] == "awaiting_review"


def test_a_job_that_vanishes_fails_the_run_as_lost(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-vanish", Outcome("vanish", run_seconds=2))
    run_id = render(stack, "m-vanish")
    [job] = wait_for_job(runpod, "m-vanish")
    while job.status != "IN_PROGRESS":
        time.sleep(0.1)
    assert stack.reconcile()[run_id] == "IN_PROGRESS"
    while job.id not in runpod.vanished:
        time.sleep(0.1)
    assert stack.reconcile()[run_id] == "failed"
    run = stack.wait_for(run_id, "failed")
    assert run["error"]["name"] == "RenderLost"
    assert "vanished" in run["error"]["message"]


def test_heartbeats_keep_a_long_queued_render_alive(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-patient", Outcome(queue_seconds=HEARTBEAT_SECONDS * 2.5))
    run_id = render(stack, "m-patient")
    deadline = time.monotonic() + HEARTBEAT_SECONDS * 6
    while stack.run(run_id)["status"] in ("queued", "rendering") and time.monotonic() < deadline:
        stack.reconcile()  # what the schedule does, often enough for this short heartbeat
        time.sleep(0.5)
    run = stack.wait_for(run_id, "awaiting_review")
    assert run["status"] == "awaiting_review", run["error"]


def test_without_heartbeats_a_long_queued_render_times_out(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-forgotten", Outcome(queue_seconds=HEARTBEAT_SECONDS * 2.5))
    run_id = render(stack, "m-forgotten")
    run = stack.wait_for(run_id, "failed", timeout=HEARTBEAT_SECONDS * 6)
    assert run["status"] == "failed"
    assert run["error"]["name"] == "States.HeartbeatTimeout"  # no heartbeat came, though the task had time left


def test_cancelling_a_queued_render_cancels_the_job_and_stops_the_run(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-cancel", Outcome(queue_seconds=30))
    run_id = render(stack, "m-cancel")
    [job] = wait_for_job(runpod, "m-cancel")

    answer = stack.cancel(run_id)
    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")
    assert job.cancelled and job.status == "CANCELLED"
    assert stack.run(run_id)["status"] == "cancelled"
    [execution] = [e for e in stack.executions() if e["name"] == run_id]
    deadline = time.monotonic() + 10
    while execution["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
        [execution] = [e for e in stack.executions() if e["name"] == run_id]
    assert execution["status"] == "ABORTED"

    again = stack.cancel(run_id)
    assert again.status_code == 409
    assert "cancelled" in again.json()["message"]


def test_cancelling_a_render_in_progress_stops_the_worker_and_uploads_nothing(
    stack: DevStack, runpod: RunPodServer, renderer: CpuComfyUI
) -> None:
    renderer.step_seconds = 0.25  # forty steps: ten seconds of rendering
    try:
        run_id = render(stack, "m-stop-now", params={"steps": 40})
        [job] = wait_for_job(runpod, "m-stop-now")
        prompt_id = prompt_id_for(job.id)
        until(lambda: renderer.running is not None and renderer.running.prompt_id == prompt_id)

        assert stack.cancel(run_id).status_code == 200

        entry = until(lambda: renderer.history.get(prompt_id), timeout=5)  # long before it would have ended
    finally:
        renderer.step_seconds = 0.001
    assert "execution_interrupted" in [name for name, _ in entry["status"]["messages"]]
    time.sleep(1.5)  # whatever the worker would still do, it has done by now
    media = stack.aws("s3").list_objects_v2(Bucket=stack.state["media_bucket"], Prefix=f"renders/{run_id}/")
    assert media.get("KeyCount", 0) == 0
    assert [r for r in job.results if r.get("status") != "IN_PROGRESS"] == []  # no result was sent
    run = stack.run(run_id)
    assert (run["status"], run["render"]["job_status"], job.status) == ("cancelled", "CANCELLED", "CANCELLED")


def test_img2img_sends_its_source_image_as_a_url_the_worker_downloads(stack: DevStack, runpod: RunPodServer) -> None:
    source = png(7, (96, 64))
    key = "renders/m-i2i-source/source.png"
    stack.aws("s3").put_object(Bucket=stack.state["media_bucket"], Key=key, Body=source)
    params = {"prompt": "m-i2i", "image": key, "steps": 2}
    answer = stack.render(workflow="img2img", params=params, count=2)
    run = stack.wait_for(answer["run_id"], "awaiting_review")

    assert run["status"] == "awaiting_review", run["error"]
    assert [(a["width"], a["height"]) for a in run["assets"]] == [(96, 64), (96, 64)]
    [job] = runpod.jobs_for("m-i2i")
    [image] = job.input["images"]
    assert set(image) == {"name", "url", "bytes"} and image["bytes"] == len(source)  # no image in the request
    assert image["url"].startswith(f"{stack.state['moto_url']}/{stack.state['media_bucket']}/{key}?")
    assert job.deliveries == [200]  # the webhook, which echoes the input, reached the stack


def test_an_image_at_a_url_outside_the_allowed_prefixes_is_not_fetched(stack: DevStack, runpod: RunPodServer) -> None:
    runpod.script("m-elsewhere", Outcome("s3_url", output_url="http://169.254.169.254/latest/meta-data/image.png"))
    run = stack.wait_for(render(stack, "m-elsewhere"), "failed")
    assert run["error"]["name"] == "RenderFailed"
    assert "fetches rendered images only from allowed prefixes" in run["error"]["message"]
    assert "RunPodOutputUrlPrefixes" in run["error"]["message"]


def test_no_error_shows_the_secrets_of_a_presigned_url(stack: DevStack, runpod: RunPodServer) -> None:
    error = (
        "ConnectionError: HTTPSConnectionPool(host='media.s3.amazonaws.com', port=443): Max retries exceeded with "
        "url: /renders/r/1.png?X-Amz-Credential=AKIAEXAMPLE%2F20260101&X-Amz-Security-Token=SESSIONTOKEN"
    )
    runpod.script("m-leak", Outcome("failed", error=error))
    run_id = render(stack, "m-leak")
    run = stack.wait_for(run_id, "failed")

    assert run["error"]["message"].endswith("url: /renders/r/1.png?[redacted]")
    listed = requests.get(f"{stack.api_url}/runs?status=failed&limit=100", headers=stack.auth, timeout=10).text
    parked = json.dumps([m for m in dead_letters(stack) if m["run_id"] == run_id])
    for shown in (json.dumps(run), listed, parked):
        assert "AKIAEXAMPLE" not in shown and "SESSIONTOKEN" not in shown


def wait_for_job(runpod: RunPodServer, marker: str, timeout: float = 20) -> list[Any]:
    jobs: list[Any] = until(lambda: runpod.jobs_for(marker), timeout, f"a job for {marker}")
    return jobs
