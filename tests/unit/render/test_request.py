"""POST /runs and POST /runs/{id}/cancel through the runs handler: a render request becomes a run with its
exact recipe and a started execution; a deep queue turns low-priority work away; finished runs stay finished."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import requests

from devstack.comfyui import CpuComfyUI
from support.handlers import AUTH, call, call_with_headers

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


def test_a_deep_queue_turns_low_priority_work_away_and_delays_the_rest(
    aws: None, renderer: CpuComfyUI, settings: Callable[..., None]
) -> None:
    settings(LOW_PRIORITY_QUEUE_LIMIT="1", RENDER_SECONDS_ESTIMATE="10")
    renderer.step_seconds = 0.05
    for n in range(3):
        graph = json.loads(json.dumps(run_graph()))
        graph["6"]["inputs"]["text"] = f"queued {n}"
        requests.post(f"{renderer.url}/prompt", json={"prompt": graph}, timeout=5)

    status, answer, headers = call_with_headers("runs", "POST", "/runs", {**BODY, "priority": "low"}, AUTH)
    assert (status, answer["error"]) == (429, "QueueFull")
    assert int(headers["Retry-After"]) >= 10
    assert "low-priority work waits" in answer["message"]
    normal = call("runs", "POST", "/runs", BODY, AUTH)[1]
    high = call("runs", "POST", "/runs", {**BODY, "priority": "high"}, AUTH)[1]
    assert normal["eta_seconds"] == 40  # three ahead on one worker, then its own
    assert high["eta_seconds"] == 10  # ComfyUI puts it at the front
    assert len(executions()) == 2  # nothing was started for the refused request


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
    assert (status, answer) == (200, {"run_id": first["run_id"], "status": "cancelled"})
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
