"""The ComfyUI adapter against the CPU renderer: our prompt id makes a resubmit safe, high priority goes
to the front, refusals (whole or partial) and execution errors keep ComfyUI's words, a prompt finishing
between two requests is never taken for lost, each prompt's progress reaches its own watcher, and cancel
and fetch work."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
import requests
from workflows.seed import ROOT

from devstack.comfyui import CpuComfyUI
from rendergate.backends import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, NOT_FOUND, Submission
from rendergate.backends.comfyui import ComfyUI, Watcher, prompt_id_for
from rendergate.errors import RenderFailed
from support.comfyui import Halfway, partly_valid
from support.waiting import eventually

GRAPH = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())


def graph(prompt: str = "a cat", steps: int = 2, size: int = 64, **node_inputs: Any) -> dict[str, Any]:
    made = copy.deepcopy(GRAPH)
    made["6"]["inputs"]["text"] = prompt
    made["3"]["inputs"]["steps"] = steps
    made["5"]["inputs"].update(width=size, height=size)
    for key, value in node_inputs.items():
        node, name = key.split("_", 1)
        made[node]["inputs"][name] = value
    return made


def submit(backend: ComfyUI, run_id: str, made: dict[str, Any], priority: str = "normal") -> str:
    return backend.submit(Submission(run_id, made, {}, [], None, priority, 0, 0))


def settle(backend: ComfyUI, job_id: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while (state := backend.status(job_id)).status in (IN_QUEUE, IN_PROGRESS) and time.monotonic() < deadline:
        time.sleep(0.05)
    return state


@pytest.fixture
def comfy(renderer: CpuComfyUI) -> ComfyUI:
    return ComfyUI(renderer.url, client_id="rendergate-unit")


def test_a_prompt_is_queued_under_our_id_and_a_resubmit_queues_nothing(comfy: ComfyUI, renderer: CpuComfyUI) -> None:
    job_id = submit(comfy, "run-1", graph())
    assert job_id == prompt_id_for("run-1")
    assert submit(comfy, "run-1", graph()) == job_id
    state = settle(comfy, job_id)
    assert state.status == COMPLETED
    assert submit(comfy, "run-1", graph()) == job_id  # done already: still the same prompt
    assert len(renderer.history) == 1
    [image] = state.outputs
    assert comfy.fetch(image).startswith(b"\x89PNG")


def test_high_priority_goes_to_the_front_of_the_queue(comfy: ComfyUI, renderer: CpuComfyUI) -> None:
    renderer.step_seconds = 0.02
    blocker = submit(comfy, "run-blocker", graph(steps=200))
    normal = submit(comfy, "run-normal", graph("n"))
    urgent = submit(comfy, "run-urgent", graph("u"), priority="high")
    pending = [item.prompt_id for item in sorted(renderer.queue)]
    assert pending.index(urgent) < pending.index(normal)
    comfy.cancel(blocker)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"4_ckpt_name": "missing.safetensors"},
            "node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: 'missing.safetensors'",
        ),
        ({"3_steps": 0}, "node 3 (KSampler): Value 0 smaller than min of 1: steps"),
        ({"3_sampler_name": "warp"}, "node 3 (KSampler): Value not in list: sampler_name: 'warp'"),
    ],
)
def test_a_refused_workflow_keeps_comfyuis_node_errors(comfy: ComfyUI, change: dict[str, Any], words: str) -> None:
    with pytest.raises(RenderFailed, match="ComfyUI refused the workflow: Prompt outputs failed validation") as refused:
        submit(comfy, "run-refused", graph(**change))
    assert words in str(refused.value)


def test_an_unknown_node_type_is_refused_by_name(comfy: ComfyUI) -> None:
    made = graph()
    made["3"]["class_type"] = "FancySampler"
    with pytest.raises(RenderFailed, match=r"Cannot execute because node FancySampler does not exist\.: Node ID '#3'"):
        submit(comfy, "run-unknown-node", made)


def test_a_partly_valid_workflow_is_refused_naming_the_nodes_and_not_rendered(comfy: ComfyUI, halfway: Halfway) -> None:
    words = r"accepted only part of the workflow: node 12 \(KSampler\): Value not in list: sampler_name: 'warp'"
    with pytest.raises(RenderFailed, match=words):
        submit(comfy, "run-partial", partly_valid(graph(steps=10)))
    state = settle(comfy, prompt_id_for("run-partial"))
    assert state.status in (NOT_FOUND, CANCELLED) and state.outputs == []  # taken off the queue, or interrupted


def test_an_execution_error_fails_with_node_exception_and_traceback(comfy: ComfyUI) -> None:
    state = settle(comfy, submit(comfy, "run-corrupt", graph(**{"4_ckpt_name": "corrupt.safetensors"})))
    assert state.status == FAILED
    assert state.error and state.error.startswith(
        "CheckpointLoaderSimple (node 4) raised safetensors_rust.SafetensorError: Error while deserializing header"
    )
    assert "File " in state.error


def test_cancel_takes_a_queued_prompt_off_and_interrupts_a_running_one(comfy: ComfyUI, renderer: CpuComfyUI) -> None:
    renderer.step_seconds = 0.02
    running = submit(comfy, "run-long", graph(steps=400))
    queued = submit(comfy, "run-waiting", graph())
    while comfy.status(running).status != IN_PROGRESS:
        time.sleep(0.02)
    comfy.cancel(queued)
    assert comfy.status(queued).status == NOT_FOUND
    comfy.cancel(running)
    assert settle(comfy, running).status == CANCELLED


def test_a_prompt_finishing_between_two_requests_is_never_reported_lost(
    comfy: ComfyUI, renderer: CpuComfyUI, halfway: Halfway
) -> None:
    job_id = submit(comfy, "run-race", graph(steps=10))
    halfway.wait_until_reached(job_id)
    halfway.finish_after_next_answer(job_id)
    assert comfy.status(job_id).status in (IN_PROGRESS, COMPLETED)  # running when asked, or done: never lost
    assert job_id in renderer.history
    assert comfy.status(job_id).status == COMPLETED


def test_a_prompt_queued_while_it_is_asked_about_is_found(
    comfy: ComfyUI, renderer: CpuComfyUI, halfway: Halfway
) -> None:
    halfway.wait_until_reached(submit(comfy, "run-ahead", graph(steps=10)))
    job_id = prompt_id_for("run-in-flight")

    def arriving_now(method: str, path: str) -> None:  # a submit whose answer was lost lands meanwhile
        renderer.answering = None
        requests.post(f"{renderer.url}/prompt", json={"prompt": graph(), "prompt_id": job_id}, timeout=5)

    renderer.answering = arriving_now
    assert comfy.status(job_id).status == IN_QUEUE


def test_concurrent_watchers_each_hear_their_own_prompt(comfy: ComfyUI, halfway: Halfway) -> None:
    jobs = [prompt_id_for(f"run-watched-{n}") for n in (1, 2)]
    watchers = {job: comfy.watch([job]) for job in jobs}
    for n in (1, 2):
        submit(comfy, f"run-watched-{n}", graph(f"picture {n}", steps=10))
    for job in jobs:
        halfway.wait_until_reached(job)
        eventually(lambda job=job: _heard(watchers[job], job, midway=True))
        halfway.release(job)
        eventually(lambda job=job: _heard(watchers[job], job, midway=False))
    for watcher in watchers.values():
        assert watcher is not None
        watcher.close()


def test_a_watcher_joining_mid_prompt_does_not_take_the_greeting_for_the_end(comfy: ComfyUI, halfway: Halfway) -> None:
    job_id = submit(comfy, "run-joined-late", graph(steps=10))
    halfway.wait_until_reached(job_id)
    watcher = comfy.watch([job_id])
    assert watcher is not None
    assert watcher.poll(0.5).get(job_id, 0) < 100  # ComfyUI greets with the node running now, not an end
    halfway.release(job_id)
    eventually(lambda: _heard(watcher, job_id, midway=False))
    watcher.close()


def test_without_a_websocket_there_is_no_watcher(renderer: CpuComfyUI) -> None:
    from support.devstack import free_port

    assert ComfyUI(f"http://127.0.0.1:{free_port()}", "x").watch(["p"]) is None


def _heard(watcher: Watcher | None, job_id: str, midway: bool) -> None:
    assert watcher is not None
    progress = watcher.poll(0.1).get(job_id, 0)
    assert 0 < progress < 100 if midway else progress == 100, progress


def test_health_counts_the_queue(comfy: ComfyUI, renderer: CpuComfyUI) -> None:
    renderer.step_seconds = 0.02
    assert (comfy.health().depth, comfy.health().workers_idle) == (0, 1)
    long = submit(comfy, "run-h1", graph(steps=300))
    submit(comfy, "run-h2", graph())
    while comfy.status(long).status != IN_PROGRESS:
        time.sleep(0.02)
    health = comfy.health()
    assert (health.queued, health.running, health.workers_running) == (1, 1, 1)
    comfy.cancel(long)
