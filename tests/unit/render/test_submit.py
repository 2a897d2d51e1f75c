"""The Render task: however often Step Functions invokes it, one job is submitted; a cancelled run is never
submitted; a refused workflow fails the task with ComfyUI's reason, and so does one ComfyUI accepts only
in part, which is then never rendered."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.comfyui import CpuComfyUI
from rendergate.errors import RenderFailed
from support.comfyui import Halfway, partly_valid
from support.functions import load_function
from support.handlers import AUTH, Context, call
from support.runpod import RunPodServer
from support.waiting import eventually

BODY = {"workflow": "txt2img", "params": {"prompt": "a cat", "width": 64, "height": 64, "steps": 2}}


def render_task(run_id: str, token: str) -> Any:
    return load_function("render").handler({"task_token": token, "run_id": run_id}, Context())


def requested(**params: Any) -> str:
    status, answer = call("runs", "POST", "/runs", {**BODY, "params": {**BODY["params"], **params}}, AUTH)
    assert status == 202, answer
    return str(answer["run_id"])


def test_the_render_task_submits_once_however_often_it_runs(aws: None, renderer: CpuComfyUI) -> None:
    from rendergate.backends.comfyui import prompt_id_for
    from rendergate.tables import Run

    run_id = requested()
    first = render_task(run_id, "token-1")
    again = render_task(run_id, "token-2")  # a retried task gets a new token

    assert (first["submitted"], again["submitted"]) == (True, False)
    run = Run.get(run_id)
    assert (run.status, run.job_id, run.task_token) == ("rendering", prompt_id_for(run_id), "token-2")
    assert [item.prompt_id for item in renderer.queue] + list(renderer.history) + (
        [renderer.running.prompt_id] if renderer.running else []
    ) == [prompt_id_for(run_id)]


def test_a_cancelled_run_is_never_submitted(aws: None, renderer: CpuComfyUI) -> None:
    run_id = requested()
    assert call("runs", "POST", f"/runs/{run_id}/cancel", headers=AUTH)[0] == 200
    assert render_task(run_id, "token")["status"] == "cancelled"
    assert not renderer.queue and not renderer.history


def test_a_refused_workflow_fails_the_task_with_comfyuis_reason(aws: None, renderer: CpuComfyUI) -> None:
    from rendergate.tables import Run

    run_id = requested(model="missing.safetensors")
    with pytest.raises(RenderFailed, match=r"ckpt_name: 'missing\.safetensors' not in"):
        render_task(run_id, "token")
    run = Run.get(run_id)
    assert run.submit_state == "refused" and "missing.safetensors" in (run.backend_error or "")


def test_a_partly_valid_workflow_fails_the_task_naming_the_nodes_and_never_renders(
    aws: None, renderer: CpuComfyUI, halfway: Halfway
) -> None:
    from rendergate.backends.comfyui import prompt_id_for
    from rendergate.tables import Run

    blocker = requested(prompt="first in line")
    render_task(blocker, "token-blocker")
    halfway.wait_until_reached(prompt_id_for(blocker))
    run_id = requested()
    run = Run.get(run_id)
    run.update(actions=[Run.graph.set(partly_valid(run.graph or {}))])  # a workflow with a second, broken output
    with pytest.raises(RenderFailed, match=r"only part of the workflow: node 12 \(KSampler\): Value not in list"):
        render_task(run_id, "token")
    assert Run.get(run_id).submit_state == "refused"
    halfway.release(prompt_id_for(blocker))
    eventually(lambda: _rendered(renderer, prompt_id_for(blocker)))
    assert prompt_id_for(run_id) not in renderer.history and not renderer.queue  # taken off the queue unrendered


def _rendered(renderer: CpuComfyUI, prompt_id: str) -> None:
    assert prompt_id in renderer.history and renderer.running is None


def test_a_submit_that_died_mid_request_is_not_resent_to_runpod(runpod: RunPodServer) -> None:
    from rendergate.tables import Run

    run_id = requested()
    Run.get(run_id).update(actions=[Run.status.set("rendering"), Run.submit_state.set("sending")])
    assert render_task(run_id, "token-2")["submitted"] is False
    assert runpod.run_requests == []
    assert Run.get(run_id).submit_state == "uncertain"  # the job's webhook or the reconciler settles it


def test_a_runpod_submit_records_the_job_and_its_webhook(runpod: RunPodServer) -> None:
    from rendergate.tables import Run

    run_id = requested()
    assert render_task(run_id, "token")["submitted"] is True
    [job] = runpod.jobs.values()
    run = Run.get(run_id)
    assert (run.job_id, run.job_status, run.submit_state) == (job.id, "IN_QUEUE", "submitted")
    assert job.webhook and job.webhook.startswith(f"https://api.example.test/webhooks/runpod/{run_id}/")
    [output] = job.input["outputs"]
    assert output["key"].startswith(f"renders/{run_id}/") and f"/renders/{run_id}/" in output["url"]


def test_a_job_submitted_for_a_run_cancelled_meanwhile_is_cancelled_too(
    runpod: RunPodServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate.backends.runpod import RunPod

    run_id = requested()
    send = RunPod.submit

    def cancelled_while_sending(self: RunPod, submission: Any) -> str:
        job_id = send(self, submission)
        assert call("runs", "POST", f"/runs/{run_id}/cancel", headers=AUTH)[0] == 200  # the run had no job yet
        return job_id

    monkeypatch.setattr(RunPod, "submit", cancelled_while_sending)
    render_task(run_id, "token")
    [job] = runpod.jobs.values()
    assert job.status == "CANCELLED"
