"""rendergate's RunPod serverless worker: ComfyUI runs in the same container; this handler feeds it.

Input: `{"workflow": <ComfyUI API-format graph>, "images": [{"name", "image": <base64>}]?,
"outputs": [<presigned PUT URL>, …]}`. The graph runs on the in-container ComfyUI; each image it saves
is PUT to the next presigned URL, straight into S3 or MinIO (no 20 MB result cap, no storage
credentials in the worker). Progress goes to RunPod as `{"percent", "prompt_id"}` updates. The
result lists what was uploaded where, with timings; failures come back as `{"error": "<text>"}`.

`run_job` is the whole job and needs no runpod SDK; `handler` connects it to `runpod.serverless`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from rendergate.backends import ACTIVE, COMPLETED, Submission
from rendergate.backends.comfyui import ComfyUI
from rendergate.errors import RendergateError

COMFY_URL = os.environ.get("COMFY_URL", "http://127.0.0.1:8188")
READY_SECONDS = float(os.environ.get("COMFY_READY_SECONDS", "300"))
POLL_SECONDS = 0.5
UPLOAD_TIMEOUT = (5, 300)

Progress = Callable[[dict[str, Any]], None]


class JobError(Exception):
    """Why the job failed, as the text RunPod reports in the job's `error`."""


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The entry point `runpod.serverless.start` calls with each job."""
    import runpod  # only in the container: the SDK is heavy and the tests run without it

    return run_job(
        job.get("input"),
        COMFY_URL,
        lambda update: runpod.serverless.progress_update(job, update),
        job_id=str(job.get("id", "job")),
    )


def run_job(job_input: Any, comfy_url: str, progress: Progress, job_id: str) -> dict[str, Any]:
    """Render the job's graph on ComfyUI, upload each image to its presigned URL, report what was done.

    The ComfyUI prompt id derives from the RunPod job id, so a job RunPod retries is not queued twice."""
    started = time.monotonic()
    try:
        workflow, images, outputs = _validated(job_input)
        comfy = ComfyUI(comfy_url, client_id=f"runpod-{job_id}")
        _wait_until_ready(comfy_url)
        submission = Submission(job_id, workflow, images, outputs, None, "normal", 0, 0)
        prompt_id = comfy.submit(submission)
        state = _wait(comfy, prompt_id, progress)
        rendered_at = time.monotonic()
        if state.status != COMPLETED:
            raise JobError(state.error or f"ComfyUI ended the prompt as {state.status}")
        if len(state.outputs) > len(outputs):
            raise JobError(f"the workflow saved {len(state.outputs)} images but {len(outputs)} upload URLs were given")
        uploads = [_upload(outputs[o.index], comfy.fetch(o), o.index, o.filename) for o in state.outputs]
    except (JobError, RendergateError) as error:
        return {"error": str(error)}
    except Exception as error:  # anything else still ends the job with a readable error, not a crash
        return {"error": f"{type(error).__name__}: {error}"}
    finished = time.monotonic()
    return {
        "images": uploads,
        "prompt_id": prompt_id,
        "timings": {
            "render_ms": int((rendered_at - started) * 1000),
            "upload_ms": int((finished - rendered_at) * 1000),
            "total_ms": int((finished - started) * 1000),
            **{f"comfyui_{k}": v for k, v in state.timings.items()},
        },
    }


def _validated(job_input: Any) -> tuple[dict[str, Any], dict[str, bytes], list[str]]:
    if not isinstance(job_input, dict):
        raise JobError("input must be an object with 'workflow' and 'outputs'")
    workflow = job_input.get("workflow")
    if not isinstance(workflow, dict) or not workflow:
        raise JobError("input.workflow must be a ComfyUI API-format graph (an object of nodes)")
    outputs = job_input.get("outputs")
    if not isinstance(outputs, list) or not outputs or not all(_is_url(u) for u in outputs):
        raise JobError("input.outputs must list one presigned PUT URL per image")
    images: dict[str, bytes] = {}
    for position, image in enumerate(job_input.get("images") or []):
        if not isinstance(image, dict) or not isinstance(image.get("name"), str) or "/" in image["name"]:
            raise JobError(f"input.images[{position}] must be {{name, image}} with a plain file name")
        try:
            images[image["name"]] = base64.b64decode(str(image.get("image", "")).split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError) as error:
            raise JobError(f"input.images[{position}].image is not base64: {error}") from error
    return workflow, images, outputs


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and bool(urlsplit(value).netloc)


def _wait_until_ready(comfy_url: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            if requests.get(f"{comfy_url}/system_stats", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise JobError(f"ComfyUI at {comfy_url} did not come up within {READY_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)


def _wait(comfy: ComfyUI, prompt_id: str, progress: Progress) -> Any:
    """Follow the prompt to its end: progress from /ws when it is there, the end from /history."""
    watcher = comfy.watch([prompt_id])
    reported = -1
    try:
        while True:
            if watcher is not None:
                percent = watcher.poll(POLL_SECONDS).get(prompt_id)
            else:
                time.sleep(POLL_SECONDS)
                percent = None
            if percent is not None and percent != reported:
                reported = percent
                progress({"percent": percent, "prompt_id": prompt_id})
            state = comfy.status(prompt_id)
            if state.status not in ACTIVE:
                return state
    finally:
        if watcher is not None:
            watcher.close()


def _upload(url: str, data: bytes, index: int, filename: str | None) -> dict[str, Any]:
    response = requests.put(url, data=data, headers={"Content-Type": "image/png"}, timeout=UPLOAD_TIMEOUT)
    if response.status_code not in (200, 201, 204):
        raise JobError(f"uploading image {index + 1} failed: HTTP {response.status_code}: {response.text[:300]}")
    return {
        "type": "uploaded",
        "index": index,
        "key": unquote(urlsplit(url).path).lstrip("/"),
        "filename": filename,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler})
