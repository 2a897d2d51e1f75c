"""The RunPod adapter against the RunPod-protocol test server: what /run is sent, which answers are retried,
that a lost answer is never resent, and every status and output shape RunPod and its workers produce."""

from __future__ import annotations

import json
import time

import pytest
import requests

from rendergate.backends import COMPLETED, FAILED, IN_PROGRESS, NOT_FOUND, Submission, SubmitUncertain
from rendergate.backends.runpod import RunPod, error_text, job_state, outputs
from rendergate.errors import RenderFailed, TransientError
from support.images import png
from support.runpod import Outcome, RunPodServer


def submission(marker: str = "m", priority: str = "normal", images: dict[str, bytes] | None = None) -> Submission:
    graph = {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": marker}}}
    return Submission(
        f"run-{marker}",
        graph,
        images or {},
        ["https://bucket.example/put"],
        "https://hook.example/w",
        priority,
        90,
        600,
    )


def adapter(runpod: RunPodServer, key: str | None = None) -> RunPod:
    return RunPod(runpod.url, "endpoint-1", lambda: key or runpod.api_key)


def test_a_submit_carries_the_graph_webhook_and_policy(runpod: RunPodServer) -> None:
    runpod.script("m-sent", Outcome("timed_out", queue_seconds=5))
    job_id = adapter(runpod).submit(submission("m-sent", "low", {"in.png": b"\x89PNG"}))
    [request] = runpod.run_requests
    assert request["webhook"] == "https://hook.example/w"
    assert request["policy"] == {"executionTimeout": 90_000, "ttl": 600_000, "lowPriority": True}
    assert request["input"]["outputs"] == ["https://bucket.example/put"]
    assert request["input"]["images"] == [{"name": "in.png", "image": "iVBORw=="}]
    assert request["input"]["rendergate_run_id"] == "run-m-sent"
    assert runpod.jobs[job_id].endpoint == "endpoint-1"


def test_normal_and_high_priority_are_not_low_priority(runpod: RunPodServer) -> None:
    for priority in ("normal", "high"):
        adapter(runpod).submit(submission(f"m-{priority}", priority))
    assert [r["policy"]["lowPriority"] for r in runpod.run_requests] == [False, False]


def test_the_server_takes_the_key_bare_or_as_bearer_and_refuses_others(runpod: RunPodServer) -> None:
    health = f"{runpod.url}/endpoint-1/health"
    assert requests.get(health, headers={"Authorization": runpod.api_key}, timeout=5).status_code == 200
    assert requests.get(health, headers={"Authorization": f"Bearer {runpod.api_key}"}, timeout=5).status_code == 200
    assert requests.get(health, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    with pytest.raises(RenderFailed, match="HTTP 401"):
        adapter(runpod, key="wrong").submit(submission())


def test_429_and_5xx_answers_are_retried_and_make_one_job(runpod: RunPodServer) -> None:
    runpod.refuse("m-busy", 429, 502, 503)
    job_id = adapter(runpod).submit(submission("m-busy"))
    assert len(runpod.run_requests) == 4
    assert list(runpod.jobs) == [job_id]


def test_an_endpoint_that_keeps_failing_is_a_transient_error_with_no_job(runpod: RunPodServer) -> None:
    runpod.refuse("m-down", 503, 503, 503, 503)
    with pytest.raises(TransientError, match="HTTP 503"):
        adapter(runpod).submit(submission("m-down"))
    assert runpod.jobs == {}


def test_a_lost_answer_is_uncertain_and_never_resent(runpod: RunPodServer) -> None:
    runpod.lose_answer("m-lost")
    with pytest.raises(SubmitUncertain):
        adapter(runpod).submit(submission("m-lost"))
    assert len(runpod.run_requests) == 1
    assert len(runpod.jobs) == 1


def test_an_unreachable_endpoint_is_transient(renderer: object) -> None:
    from support.devstack import free_port

    unreachable = RunPod(f"http://127.0.0.1:{free_port()}/v2", "endpoint-1", lambda: "key")
    with pytest.raises(TransientError, match="cannot be reached"):
        unreachable.submit(submission())


def test_status_follows_the_job_and_a_forgotten_job_is_not_found(runpod: RunPodServer) -> None:
    runpod.script("m-status", Outcome("base64", run_seconds=0.3))
    backend = adapter(runpod)
    job_id = backend.submit(submission("m-status"))
    assert backend.status(job_id).status in ("IN_QUEUE", IN_PROGRESS)
    deadline = time.monotonic() + 5
    while runpod.jobs[job_id].status != COMPLETED and time.monotonic() < deadline:
        time.sleep(0.05)
    done = backend.status(job_id)
    assert done.status == COMPLETED and len(done.outputs) == 1
    assert done.outputs[0].data == png(40)
    runpod.vanished.add(job_id)
    assert backend.status(job_id).status == NOT_FOUND


def test_cancel_and_health(runpod: RunPodServer) -> None:
    runpod.script("m-cancel", Outcome(queue_seconds=30))
    backend = adapter(runpod)
    job_id = backend.submit(submission("m-cancel"))
    health = backend.health()
    assert (health.queued, health.depth, health.workers_idle) == (1, 1, 1)
    backend.cancel(job_id)
    assert backend.status(job_id).status == "CANCELLED"
    backend.cancel("no-such-job")  # nothing to cancel is not an error


TRACEBACK = json.dumps(
    {
        "error_type": "<class 'ValueError'>",
        "error_message": "bad latent",
        "error_traceback": "Traceback (most recent call last):\n  boom\n",
        "hostname": "h",
    }
)


@pytest.mark.parametrize(
    ("error", "output", "expected"),
    [
        ("CUDA out of memory", None, "CUDA out of memory"),
        (TRACEBACK, None, "ValueError: bad latent\nTraceback (most recent call last):\n  boom"),
        (
            "Job processing failed",
            {"details": ["Node 4: missing model", "Node 9: no images"]},
            "Job processing failed: Node 4: missing model; Node 9: no images",
        ),
        (None, {"details": "only details"}, "only details"),
        ({"code": 7}, None, '{"code": 7}'),
        (None, None, "the backend reported a failure without a message"),
        ("not {json", None, "not {json"),
    ],
)
def test_error_text_keeps_the_backends_words(error: object, output: object, expected: str) -> None:
    assert error_text(error, output) == expected


def test_output_shapes_of_every_worker() -> None:
    ours = outputs({"images": [{"type": "uploaded", "index": 1, "key": "b/k"}, {"type": "uploaded", "index": 0}]})
    assert [(o.kind, o.index) for o in ours] == [("uploaded", 1), ("uploaded", 0)]
    stock = outputs(
        {
            "images": [
                {"type": "base64", "data": "aGk=", "filename": "a.png"},
                {"type": "s3_url", "data": "https://x/b.png"},
            ]
        }
    )
    assert [(o.kind, o.data, o.url) for o in stock] == [("inline", b"hi", None), ("url", None, "https://x/b.png")]
    assert [(o.kind, o.url) for o in outputs({"status": "success", "message": "https://x/c.png"})] == [
        ("url", "https://x/c.png")
    ]
    assert [o.data for o in outputs({"status": "success", "message": "data:image/png;base64,aGk="})] == [b"hi"]
    assert outputs({"images": [{"type": "base64", "data": "!!not base64!!"}]})[0].data is None
    assert outputs(None) == outputs({"status": "success_no_images", "images": []}) == []


def test_job_states_from_status_bodies() -> None:
    running = job_state("j", {"status": "IN_PROGRESS", "output": {"percent": 42}, "delayTime": 1200})
    assert (running.status, running.progress, running.timings) == (IN_PROGRESS, 42, {"queue_ms": 1200})
    old_failure = job_state("j", {"status": "COMPLETED", "output": {"status": "error", "message": "no GPU"}})
    assert (old_failure.status, old_failure.error) == (FAILED, "no GPU")
    failed = job_state("j", {"status": "FAILED", "error": TRACEBACK, "executionTime": 50})
    assert failed.error and failed.error.startswith("ValueError: bad latent") and failed.timings == {"execution_ms": 50}
    done = job_state("j", {"status": "COMPLETED", "output": {"images": [], "timings": {"total_ms": 9}}})
    assert (done.outputs, done.progress, done.timings) == ([], 100, {"worker_total_ms": 9})
