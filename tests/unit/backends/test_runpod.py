"""The RunPod adapter against the RunPod-protocol test server: what /run is sent, which answers are retried,
that a lost answer is never resent, the job's lifespan, cancelling, fetching what stock workers return,
and every status and output shape RunPod and its workers produce."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest
import requests

from rendergate.backends import COMPLETED, FAILED, IN_PROGRESS, NOT_FOUND, Submission, SubmitUncertain, Upload
from rendergate.backends.runpod import RunPod, allowed, error_text, job_state, outputs
from rendergate.errors import RenderFailed, TransientError
from support.devstack import free_port
from support.images import png
from support.runpod import Outcome, RunPodServer

PRESIGNED = "https://bucket.example/renders/r/1.png?X-Amz-Signature=abc"


def submission(marker: str = "m", priority: str = "normal", queue_ttl: int = 600, execution: int = 90) -> Submission:
    graph = {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": marker}}}
    uploads = [Upload(PRESIGNED, "renders/r/1.png")]
    return Submission(f"run-{marker}", graph, {}, uploads, "https://hook.example/w", priority, execution, queue_ttl)


def adapter(runpod: RunPodServer, key: str | None = None, prefixes: tuple[str, ...] = ()) -> RunPod:
    return RunPod(runpod.url, runpod.endpoint_id, lambda: key or runpod.api_key, prefixes, max_output_bytes=4096)


def test_a_submit_carries_the_graph_webhook_policy_and_source_images_by_url(runpod: RunPodServer) -> None:
    runpod.script("m-sent", Outcome("timed_out", queue_seconds=5))
    source = "https://bucket.example/incoming/s.png?X-Amz-Signature=def"
    sent = replace(submission("m-sent"), image_urls={"in.png": source}, image_sizes={"in.png": 2048})
    job_id = adapter(runpod).submit(sent)
    [request] = runpod.run_requests
    assert request["webhook"] == "https://hook.example/w"
    assert request["input"]["outputs"] == [{"url": PRESIGNED, "key": "renders/r/1.png"}]
    assert request["input"]["images"] == [{"name": "in.png", "url": source, "bytes": 2048}]
    assert request["input"]["rendergate_run_id"] == "run-m-sent"
    assert runpod.jobs[job_id].endpoint == "endpoint-1"


def test_the_ttl_is_the_jobs_whole_lifespan_capped_at_seven_days(runpod: RunPodServer) -> None:
    adapter(runpod).submit(submission("m-ttl", queue_ttl=600, execution=90))
    adapter(runpod).submit(submission("m-week", queue_ttl=7 * 24 * 3600, execution=3600))
    assert [r["policy"] for r in runpod.run_requests] == [
        {"executionTimeout": 90_000, "ttl": 690_000, "lowPriority": False},
        {"executionTimeout": 3_600_000, "ttl": 7 * 24 * 3600 * 1000, "lowPriority": False},
    ]


def test_a_job_that_waited_long_in_the_queue_still_has_its_execution_time(runpod: RunPodServer) -> None:
    # RunPod deletes a job `ttl` after its submission, running or not: a ttl of the queue time alone
    # would delete this one (8 s queued, 4 s running, queue ttl 10 s) before it finished
    runpod.script("m-late", Outcome("base64", queue_seconds=8, run_seconds=4))
    backend = adapter(runpod)
    job_id = backend.submit(submission("m-late", queue_ttl=10, execution=5))
    deadline = time.monotonic() + 20
    while (state := backend.status(job_id)).status not in (COMPLETED, NOT_FOUND) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.status == COMPLETED


def test_low_priority_is_not_runpods_low_priority(runpod: RunPodServer) -> None:
    # lowPriority jobs never wake a worker: on a scale-to-zero endpoint they would wait out their ttl
    for priority in ("low", "normal", "high"):
        adapter(runpod).submit(submission(f"m-{priority}", priority))
    assert [r["policy"]["lowPriority"] for r in runpod.run_requests] == [False, False, False]


def test_a_job_too_large_for_runpod_and_its_webhook_is_refused_before_sending(runpod: RunPodServer) -> None:
    graph = {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": "x" * 4_000_000}}}
    with pytest.raises(RenderFailed, match=r"more than the \d+ a RunPod request may carry"):
        adapter(runpod).submit(replace(submission("m-huge"), graph=graph))
    assert runpod.run_requests == []


def test_the_server_refuses_what_runpod_refuses(runpod: RunPodServer) -> None:
    run = f"{runpod.url}/{runpod.endpoint_id}/run"
    auth = {"Authorization": runpod.api_key}
    big = {"input": {"blob": "x" * 10_000_001}}
    assert requests.post(run, json=big, headers=auth, timeout=30).status_code == 413
    short = {"input": {}, "policy": {"ttl": 9_000}}
    assert requests.post(run, json=short, headers=auth, timeout=5).status_code == 400
    long = {"input": {}, "policy": {"executionTimeout": 8 * 24 * 3600 * 1000}}
    assert requests.post(run, json=long, headers=auth, timeout=5).status_code == 400


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


def test_an_unreachable_endpoint_is_transient() -> None:
    unreachable = RunPod(f"http://127.0.0.1:{free_port()}/v2", "endpoint-1", lambda: "key")
    with pytest.raises(TransientError, match="cannot be reached"):
        unreachable.submit(submission())


def test_images_at_urls_are_fetched_only_from_allowed_prefixes(runpod: RunPodServer) -> None:
    runpod.files["a.png"] = png(3)
    at = Outcome("s3_url", output_url=runpod.file_url("a.png"))
    with pytest.raises(
        RenderFailed, match=r"only from allowed prefixes.*'http://127\.0\.0\.1:\d+/files/'.*RunPodOutputUrlPrefixes"
    ):
        adapter(runpod).fetch(outputs({"images": [{"type": "s3_url", "data": at.output_url}]})[0])
    allowed_here = adapter(runpod, prefixes=(f"{runpod.base}/files/",))
    assert allowed_here.fetch(outputs({"status": "success", "message": runpod.file_url("a.png")})[0]) == png(3)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://bucket.s3.amazonaws.com/renders/a.png?X-Amz-Signature=1", True),
        ("http://bucket.s3.amazonaws.com/renders/a.png", False),  # https unless the prefix says http
        ("https://bucket.s3.amazonaws.com.evil.example/renders/a.png", False),
        ("https://bucket.s3.amazonaws.com/renderskey.png", False),
        ("https://bucket.s3.amazonaws.com/renders/../secrets/a.png", False),
        ("https://bucket.s3.amazonaws.com/renders/%2e%2e/secrets/a.png", False),
        ("https://user:pw@bucket.s3.amazonaws.com/renders/a.png", False),
        ("http://minio.internal:9000/outputs/a.png", True),
        ("http://minio.internal:9001/outputs/a.png", False),
    ],
)
def test_allowed_prefixes_match_scheme_host_and_a_whole_path_segment(url: str, ok: bool) -> None:
    prefixes = ("https://bucket.s3.amazonaws.com/renders", "http://minio.internal:9000/outputs/")
    assert allowed(url, prefixes) is ok


def test_a_fetch_stops_past_its_size_cap_and_its_deadline(
    runpod: RunPodServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate.backends import runpod as module

    backend = adapter(runpod, prefixes=(f"{runpod.base}/files/",))  # at most 4096 bytes

    def fetch(name: str) -> bytes:
        return backend.fetch(outputs({"status": "success", "message": runpod.file_url(name)})[0])

    runpod.files["big.png"] = os.urandom(10_000)
    with pytest.raises(RenderFailed, match="is 10000 bytes, more than the 4096 bytes allowed"):
        fetch("big.png")  # said upfront
    runpod.files["unsaid.png"], runpod.file_delays["unsaid.png"] = os.urandom(10_000), 0.0
    with pytest.raises(RenderFailed, match="is larger than the 4096 bytes allowed"):
        fetch("unsaid.png")  # streamed: stopped once past the cap
    runpod.files["slow.png"], runpod.file_delays["slow.png"] = png(5, (16, 16)), 0.05
    monkeypatch.setattr(module, "FETCH_DEADLINE_SECONDS", 1)
    started = time.monotonic()
    with pytest.raises(RenderFailed, match="did not arrive within 1 s"):
        fetch("slow.png")
    assert time.monotonic() - started < 3  # not the minute a byte every 50 ms would take


def test_a_fetch_that_cannot_connect_keeps_the_urls_secrets_out_of_its_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/bucket/a.png?X-Amz-Credential=AKIA&X-Amz-Security-Token=tok"
    backend = RunPod("http://127.0.0.1:9/v2", "e", lambda: "k", (f"http://{url.split('/')[2]}/bucket/",))
    with pytest.raises(TransientError) as raised:
        backend.fetch(outputs({"status": "success", "message": url})[0])
    assert "/bucket/a.png?[redacted]" in str(raised.value)
    assert "AKIA" not in str(raised.value) and "tok" not in str(raised.value)


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
    backend.cancel("no-such-job")  # a job RunPod does not know needs no cancelling


def test_an_endpoint_runpod_does_not_know_is_an_error_not_a_missing_job(runpod: RunPodServer) -> None:
    wrong = RunPod(runpod.url, "no-such-endpoint", lambda: runpod.api_key)
    with pytest.raises(TransientError, match=r"does not know endpoint 'no-such-endpoint'.*RunPodEndpointId"):
        wrong.cancel("some-job")
    with pytest.raises(TransientError, match="does not know endpoint"):
        wrong.status("some-job")  # not NOT_FOUND: that would fail the run as lost


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
        (
            "PUT https://b.s3.amazonaws.com/k.png?X-Amz-Signature=s3cr3t failed",
            None,
            "PUT https://b.s3.amazonaws.com/k.png?[redacted] failed",
        ),
    ],
)
def test_error_text_keeps_the_backends_words(error: object, output: object, expected: str) -> None:
    assert error_text(error, output) == expected


def test_output_shapes_of_every_worker() -> None:
    ours = outputs({"images": [{"type": "uploaded", "index": 1, "key": "k1"}, {"type": "uploaded", "index": 0}]})
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
