"""Our worker under the real runpod SDK's job loop (runpod==1.12.0, in the worker's own virtualenv),
taking jobs from the RunPod-protocol test server as it takes them from RunPod: a job renders, reports
progress and uploads; a cancel during a render stops ComfyUI and nothing is uploaded into the run."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from workflows.seed import ROOT

from devstack.comfyui import CpuComfyUI
from rendergate.backends import COMPLETED, Submission, Upload
from rendergate.backends.comfyui import prompt_id_for
from rendergate.backends.runpod import RunPod
from support.runpod import Bucket, Job, RunPodServer, sdk_worker
from support.waiting import until

TXT2IMG = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())


@pytest.fixture(scope="module")
def runpod(comfy: CpuComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPodServer]:
    server = RunPodServer("sdk-test-key").start()
    with sdk_worker(server, comfy.url, tmp_path_factory.mktemp("worker") / "worker.log"):
        yield server
    server.stop()


def submit(runpod: RunPodServer, bucket: Bucket, marker: str, steps: int = 4, count: int = 1) -> Job:
    graph = copy.deepcopy(TXT2IMG)
    graph["6"]["inputs"]["text"] = f"a lighthouse {marker}"
    graph["3"]["inputs"]["steps"] = steps
    graph["5"]["inputs"].update(width=64, height=64, batch_size=count)
    uploads = [Upload(o["url"], o["key"]) for o in bucket.uploads(marker, count)]
    submission = Submission(f"run-{marker}", graph, {}, uploads, None, "normal", 60, 60)
    job_id = RunPod(runpod.url, runpod.endpoint_id, lambda: runpod.api_key).submit(submission)
    return runpod.jobs[job_id]


def test_a_job_is_taken_rendered_and_uploaded_by_the_sdk_worker(runpod: RunPodServer, bucket: Bucket) -> None:
    job = submit(runpod, bucket, "sdk-ok", count=2)
    until(lambda: job.status == COMPLETED)

    assert job.worker == "worker-1"
    assert [(image["type"], image["key"]) for image in job.output["images"]] == [
        ("uploaded", "renders/sdk-ok/0.png"),
        ("uploaded", "renders/sdk-ok/1.png"),
    ]
    assert bucket.keys("renders/sdk-ok/") == ["renders/sdk-ok/0.png", "renders/sdk-ok/1.png"]
    progress = [r["output"]["percent"] for r in job.results if r.get("status") == "IN_PROGRESS"]
    assert progress and progress[-1] == 100  # progress_update reached RunPod as the running job's output
    state = RunPod(runpod.url, runpod.endpoint_id, lambda: runpod.api_key).status(job.id)
    assert [(o.kind, o.index) for o in state.outputs] == [("uploaded", 0), ("uploaded", 1)]


def test_a_cancel_during_a_render_interrupts_comfyui_and_uploads_nothing(
    runpod: RunPodServer, bucket: Bucket, comfy: CpuComfyUI, tmp_path: Path
) -> None:
    comfy.step_seconds = 0.25  # a render of 40 steps takes ten seconds
    try:
        job = submit(runpod, bucket, "sdk-cancel", steps=40)
        prompt_id = prompt_id_for(job.id)
        until(lambda: comfy.running is not None and comfy.running.prompt_id == prompt_id)
        until(lambda: any(r.get("status") == "IN_PROGRESS" for r in job.results))  # it is rendering

        RunPod(runpod.url, runpod.endpoint_id, lambda: runpod.api_key).cancel(job.id)

        entry = until(lambda: comfy.history.get(prompt_id), timeout=5)  # long before the render would end
    finally:
        comfy.step_seconds = 0.01
    assert "execution_interrupted" in [name for name, _ in entry["status"]["messages"]]
    assert job.status == "CANCELLED"
    time.sleep(1.5)  # what the worker would still do after the interrupt, it has done by now
    assert bucket.keys("renders/sdk-cancel/") == []
    assert [r for r in job.results if r.get("status") != "IN_PROGRESS"] == []  # the SDK sent no result

    after = submit(runpod, bucket, "sdk-after-cancel")  # the worker is free for the next job
    until(lambda: after.status == COMPLETED)
    assert bucket.keys("renders/sdk-after-cancel/") == ["renders/sdk-after-cancel/0.png"]
