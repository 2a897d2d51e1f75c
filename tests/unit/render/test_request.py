"""POST /runs and POST /runs/{id}/cancel through the runs handler: a render request becomes a run with its
exact recipe and a started execution; a deep queue turns low-priority work away; finished runs stay finished."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devstack.comfyui import CpuComfyUI
from support.functions import load_function
from support.handlers import AUTH, Context, call, call_with_headers
from support.runpod import RunPodServer

BODY = {"workflow": "txt2img", "params": {"prompt": "a cat", "width": 64, "height": 64, "steps": 2}}


def run_row(run_id: str) -> Any:
    from rendergate.tables import Run

    return Run.get(run_id)


def executions() -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return [
        sfn.describe_execution(executionArn=e["executionArn"])
        for e in sfn.list_executions(stateMachineArn=arn)["executions"]
    ]


def test_a_render_request_becomes_a_run_with_its_recipe_and_an_execution(aws: None) -> None:
    status, answer = call("runs", "POST", "/runs", {**BODY, "count": 2, "title": "Cat", "tags": ["pets"]}, AUTH)

    assert status == 202
    assert answer["status"] == "queued" and answer["eta_seconds"] > 0
    assert answer["links"] == {
        "self": f"https://api.example.test/runs/{answer['run_id']}",
        "cancel": f"https://api.example.test/runs/{answer['run_id']}/cancel",
    }
    run = run_row(answer["run_id"])
    assert (run.source, run.status, run.title, run.tags, run.priority) == (
        "render",
        "queued",
        "Cat",
        ["pets"],
        "normal",
    )
    assert (run.workflow_name, run.workflow_version, run.workflow_sha256) == (
        "txt2img",
        "1.0.0",
        answer["workflow"]["sha256"],
    )
    assert run.seed == answer["seed"] == run.graph["3"]["inputs"]["seed"]
    assert (run.image_count, run.graph["5"]["inputs"]["batch_size"]) == (2, 2)
    [execution] = executions()
    assert execution["name"] == answer["run_id"]
    started = json.loads(execution["input"])
    assert (started["source"], started["objects"]) == ("render", [])
    assert started["render"] == {"timeout_seconds": 3600, "heartbeat_seconds": 300}


def test_the_view_of_a_render_run_shows_its_recipe_but_never_its_task_token(aws: None) -> None:
    from rendergate.tables import Run

    _, answer = call("runs", "POST", "/runs", BODY, AUTH)
    run_row(answer["run_id"]).update(actions=[Run.task_token.set("secret-token")])
    status, view = call("runs", "GET", f"/runs/{answer['run_id']}", headers=AUTH)
    assert status == 200
    assert view["render"]["workflow"] == "txt2img" and view["render"]["params"]["prompt"] == "a cat"
    assert "secret-token" not in json.dumps(view)


def fill_queue(renderer: CpuComfyUI, jobs: int) -> None:
    """Queue `jobs` slow prompts on the renderer, as other clients would."""
    renderer.step_seconds = 0.05
    for n in range(jobs):
        graph = json.loads(json.dumps(run_graph()))
        graph["6"]["inputs"]["text"] = f"queued {n}"
        requests.post(f"{renderer.url}/prompt", json={"prompt": graph}, timeout=5)


def test_a_deep_queue_turns_low_priority_work_away_and_delays_the_rest(
    aws: None, renderer: CpuComfyUI, settings: Callable[..., None]
) -> None:
    settings(LOW_PRIORITY_QUEUE_LIMIT="1", RENDER_SECONDS_ESTIMATE="10")
    fill_queue(renderer, 3)

    status, answer, headers = call_with_headers("runs", "POST", "/runs", {**BODY, "priority": "low"}, AUTH)
    assert (status, answer["error"]) == (429, "QueueFull")
    assert int(headers["Retry-After"]) >= 10
    assert "low-priority work waits" in answer["message"]
    normal = call("runs", "POST", "/runs", BODY, AUTH)[1]
    high = call("runs", "POST", "/runs", {**BODY, "priority": "high"}, AUTH)[1]
    assert normal["eta_seconds"] == 40  # three ahead on one worker, then its own
    assert high["eta_seconds"] == 10  # ComfyUI puts it at the front
    assert len(executions()) == 2  # nothing was started for the refused request


def test_an_owners_own_low_priority_queue_limit_replaces_the_stacks(
    aws: None, renderer: CpuComfyUI, settings: Callable[..., None]
) -> None:
    from support.owners import key_for

    settings(LOW_PRIORITY_QUEUE_LIMIT="1", RENDER_SECONDS_ESTIMATE="10")
    fill_queue(renderer, 3)
    patient = key_for("ada", "runs", metered=False, limits={"low_priority_queue_limit": 5})
    default = key_for("bob", "runs", metered=False)

    assert call("runs", "POST", "/runs", {**BODY, "priority": "low"}, patient)[0] == 202
    assert call("runs", "POST", "/runs", {**BODY, "priority": "low"}, default)[0] == 429


def test_an_unreachable_backend_still_gets_an_eta(aws: None) -> None:
    status, answer = call("runs", "POST", "/runs", {**BODY, "priority": "low"}, AUTH)
    assert status == 202
    assert answer["eta_seconds"] == 20 + 45  # one job, and a worker to boot


def test_a_pipeline_that_cannot_start_is_a_503_and_the_run_is_failed(aws: None, settings: Callable[..., None]) -> None:
    settings(STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:missing")
    status, answer = call("runs", "POST", "/runs", BODY, AUTH)
    assert (status, answer["error"]) == (503, "TransientError")
    listed = call("runs", "GET", "/runs", headers=AUTH, query={"status": "failed"})[1]
    assert len(listed["runs"]) == 1 and "did not start" in listed["runs"][0]["error"]["message"]


def test_cancel_stops_a_queued_run_once_and_refuses_finished_or_unknown_runs(aws: None) -> None:
    from rendergate.tables import Run

    _, first = call("runs", "POST", "/runs", BODY, AUTH)
    status, answer = call("runs", "POST", f"/runs/{first['run_id']}/cancel", headers=AUTH)
    assert (status, answer) == (200, {"run_id": first["run_id"], "status": "cancelled", "refunded": 0})
    assert run_row(first["run_id"]).status == "cancelled"
    assert call("runs", "POST", f"/runs/{first['run_id']}/cancel", headers=AUTH)[0] == 409

    _, second = call("runs", "POST", "/runs", BODY, AUTH)
    run_row(second["run_id"]).update(actions=[Run.status.set("completed")])
    status, answer = call("runs", "POST", f"/runs/{second['run_id']}/cancel", headers=AUTH)
    assert status == 409 and "is completed" in answer["message"]
    assert call("runs", "POST", "/runs/nope/cancel", headers=AUTH)[0] == 404
    assert call("runs", "POST", f"/runs/{second['run_id']}/cancel")[0] == 401


def test_render_requests_need_the_api_key_and_a_json_object(aws: None) -> None:
    assert call("runs", "POST", "/runs", BODY)[0] == 401
    assert call("runs", "POST", "/runs", "[1]", AUTH)[0] == 400
    assert call("runs", "POST", "/runs", "{oops", AUTH)[0] == 400
    assert call("runs", "POST", "/runs", {**BODY, "bucket": "x"}, AUTH)[1]["message"] == "unknown field: bucket"


IMG2IMG_PARAMS = {"prompt": "a cat", "image": "incoming/r/huge.png"}


def submitted_run(prompt: str) -> str:
    """A render run whose Render task has submitted its job."""
    status, answer = call("runs", "POST", "/runs", {**BODY, "params": {**BODY["params"], "prompt": prompt}}, AUTH)
    assert status == 202, answer
    load_function("render").handler({"task_token": "token", "run_id": answer["run_id"]}, Context())
    return str(answer["run_id"])


def seed_workflow(root: Path, name: str, **defaults: str) -> None:
    """Add workflow `name` (txt2img's graph with other default inputs) to the registry."""
    from workflows.seed import ROOT, seed

    from rendergate import workflows

    folder = root / name / "1.0.0"
    folder.mkdir(parents=True)
    graph = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())
    manifest = json.loads((ROOT / "txt2img/1.0.0/manifest.json").read_text())
    for param, value in defaults.items():
        spec = manifest["params"][param]
        graph[workflows.node_for(graph, spec)]["inputs"][spec["input"]] = value
    data = json.dumps(graph).encode()
    (folder / "workflow.json").write_bytes(data)
    manifest.update(name=name, sha256=workflows.digest(data))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    seed(boto3.client("s3"), "media-bucket", root)


def run_graph() -> dict[str, Any]:
    from workflows.seed import ROOT

    graph: dict[str, Any] = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())
    graph["3"]["inputs"]["steps"] = 100
    graph["5"]["inputs"].update(width=64, height=64)
    return graph


def test_an_idempotency_key_makes_a_retried_request_the_same_run(aws: None) -> None:
    headers = {**AUTH, "Idempotency-Key": "client-7f3a"}
    first = call("runs", "POST", "/runs", BODY, headers)
    again = call("runs", "POST", "/runs", BODY, headers)

    assert first[0] == again[0] == 202
    assert again[1] == first[1]  # the same run, seed and ETA: nothing is rendered twice
    assert len(executions()) == 1
    status, answer = call("runs", "POST", "/runs", {**BODY, "count": 2}, headers)
    assert (status, answer["error"]) == (409, "Conflict")
    assert "Idempotency-Key" in answer["message"]
    assert call("runs", "POST", "/runs", BODY, {**AUTH, "Idempotency-Key": "has spaces"})[0] == 400
    other = call("runs", "POST", "/runs", BODY, {**AUTH, "Idempotency-Key": "client-7f3b"})[1]
    assert other["run_id"] != first[1]["run_id"]


def test_a_source_image_larger_than_an_upload_may_be_is_refused_at_once(aws: None) -> None:
    boto3.client("s3").put_object(Bucket="media-bucket", Key="incoming/r/huge.png", Body=b"x" * (1024 * 1024 + 1))
    status, answer = call("runs", "POST", "/runs", {"workflow": "img2img", "params": IMG2IMG_PARAMS}, AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "incoming/r/huge.png is 1048577 bytes, more than the 1048576" in answer["message"]
    assert executions() == []


def test_a_graph_too_large_to_keep_or_to_send_is_refused_at_once(
    runpod: RunPodServer, tmp_path: Path, settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate.backends import runpod as adapter

    seed_workflow(tmp_path, "wordy", negative_prompt="x" * 320_000)
    request = {"workflow": "wordy", "params": {"prompt": "a cat"}}
    for backend in ("runpod", "comfyui"):
        settings(RENDER_BACKEND=backend)
        status, answer = call("runs", "POST", "/runs", request, AUTH)
        assert (status, answer["error"]) == (400, "BadRequest")
        assert "more than the 307200 a run can keep" in answer["message"]

    settings(RENDER_BACKEND="runpod")
    smaller = replace(adapter.RunPod.capabilities, max_request_bytes=200_000)
    monkeypatch.setattr(adapter.RunPod, "capabilities", smaller)  # a graph that fits the run, not the request
    seed_workflow(tmp_path / "more", "wordier", negative_prompt="x" * 250_000)
    status, answer = call("runs", "POST", "/runs", {"workflow": "wordier", "params": {"prompt": "a cat"}}, AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "more than the 200000 the runpod backend takes" in answer["message"]
    assert executions() == [] and runpod.run_requests == []


def test_cancelling_records_whether_the_backend_job_was_stopped(
    runpod: RunPodServer, settings: Callable[..., None]
) -> None:
    from rendergate.tables import Run

    run_id = submitted_run("m-stop")
    assert call("runs", "POST", f"/runs/{run_id}/cancel", headers=AUTH)[0] == 200
    [job] = runpod.jobs.values()
    assert (job.status, Run.get(run_id).job_status) == ("CANCELLED", "CANCELLED")

    run_id = submitted_run("m-retired")
    settings(RUNPOD_ENDPOINT_ID="retired-endpoint")  # RunPod no longer knows the endpoint the job went to
    assert call("runs", "POST", f"/runs/{run_id}/cancel", headers=AUTH)[0] == 200  # cancelled all the same
    run = Run.get(run_id)
    assert run.status == "cancelled"
    assert "could not be cancelled" in (run.backend_error or "") and "RunPodEndpointId" in (run.backend_error or "")
