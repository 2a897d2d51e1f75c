"""rendergate's RunPod serverless worker: ComfyUI runs in the same container; this handler feeds it.

Input: `{"workflow": <ComfyUI API-format graph>, "images": [{"name", "url", "bytes"}]?, "outputs":
[{"url": <presigned PUT>, "key": <the object it writes>}, …]}`. Each source image is downloaded from its
presigned GET (no more than its `bytes`) and uploaded to ComfyUI; the graph runs; each image it saves is
PUT to the next presigned URL, straight into S3 or MinIO (no result-size cap, no storage credentials in
the worker). Progress goes to RunPod as `{"percent", "prompt_id"}` updates. The result lists what was
uploaded where, with timings; a failure comes back as `{"error": "<text>"}`, URLs' secrets removed.

The handler is async so that it can be stopped: when RunPod cancels the job (or its time runs out) the
SDK cancels the handler's task; the job then interrupts its ComfyUI prompt and uploads nothing more.
`run_job` is the whole job and needs no runpod SDK; `handler` connects it to `runpod.serverless`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from rendergate.backends import ACTIVE, COMPLETED, JobState, ProgressWatcher, Submission, download
from rendergate.backends.comfyui import ComfyUI, prompt_id_for
from rendergate.errors import RendergateError, scrubbed

COMFY_URL = os.environ.get("COMFY_URL", "http://127.0.0.1:8188")
READY_SECONDS = float(os.environ.get("COMFY_READY_SECONDS", "300"))
POLL_SECONDS = 0.5
UPLOAD_TIMEOUT = (5, 300)
SOURCE_DEADLINE_SECONDS = 300
MAX_SOURCE_BYTES = 100 * 1024 * 1024  # ComfyUI's own upload limit, for a source image sent without its size
STOP_WAIT_SECONDS = 60

Progress = Callable[[dict[str, Any]], None]
T = TypeVar("T")
log = logging.getLogger("rendergate.worker")
_calls = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rendergate-job")


class JobError(Exception):
    """Why the job failed, as the text RunPod reports in the job's `error`."""


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The entry point `runpod.serverless.start` calls with each job."""
    import runpod  # only in the container: the SDK is heavy and the layer's tests run without it

    return await run_job(
        job.get("input"),
        COMFY_URL,
        lambda update: runpod.serverless.progress_update(job, update),
        job_id=str(job.get("id", "job")),
    )


async def run_job(job_input: Any, comfy_url: str, progress: Progress, job_id: str) -> dict[str, Any]:
    """Render the job's graph on ComfyUI, upload each image to its presigned URL, report what was done.

    The ComfyUI prompt id derives from the RunPod job id, so a job RunPod retries is not queued twice.
    Cancelled (asyncio.CancelledError), it interrupts that prompt, uploads nothing more and re-raises."""
    started = time.monotonic()
    render = Render(ComfyUI(comfy_url, client_id=f"runpod-{job_id}"), prompt_id_for(job_id))
    try:
        workflow, sources, outputs = _validated(job_input)
        await _wait_until_ready(render, comfy_url)
        images = {}
        for name, (url, size) in sources.items():
            images[name] = await render.call(download, url, size, SOURCE_DEADLINE_SECONDS, f"source image {name}")
        # before the prompt is queued, to see it from the start
        watcher = await render.call(render.comfy.watch, [render.prompt_id])
        try:
            await render.call(render.comfy.submit, Submission(job_id, workflow, images, [], None, "normal", 0, 0))
            state = await _wait(render, watcher, progress)
        finally:
            if watcher is not None:
                watcher.close()
        rendered_at = time.monotonic()
        if state.status != COMPLETED:
            raise JobError(state.error or f"ComfyUI ended the prompt as {state.status}")
        if len(state.outputs) > len(outputs):
            raise JobError(f"the workflow saved {len(state.outputs)} images but {len(outputs)} upload URLs were given")
        uploads = []
        for output in state.outputs:
            data = await render.call(render.comfy.fetch, output)
            url, key = outputs[output.index]
            uploads.append(await render.call(_upload, url, key, data, output.index, output.filename))
    except asyncio.CancelledError:
        render.stop()
        raise
    except (JobError, RendergateError) as error:
        return {"error": scrubbed(str(error))}
    except Exception as error:  # anything else still ends the job with a readable error, not a crash
        return {"error": scrubbed(f"{type(error).__name__}: {error}")}
    finished = time.monotonic()
    return {
        "images": uploads,
        "prompt_id": render.prompt_id,
        "timings": {
            "render_ms": int((rendered_at - started) * 1000),
            "upload_ms": int((finished - rendered_at) * 1000),
            "total_ms": int((finished - started) * 1000),
            **{f"comfyui_{k}": v for k, v in state.timings.items()},
        },
    }


class Render:
    """One job's prompt on the in-container ComfyUI. Its blocking calls run on threads, one at a time,
    so the event loop stays free to deliver a cancellation; `stop` interrupts the prompt."""

    def __init__(self, comfy: ComfyUI, prompt_id: str) -> None:
        self.comfy = comfy
        self.prompt_id = prompt_id
        self.in_flight: Future[Any] | None = None

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on a worker thread; a cancellation reaches the awaiting job at once."""
        self.in_flight = _calls.submit(function, *args, **kwargs)
        return await asyncio.wrap_future(self.in_flight)

    def stop(self) -> None:
        """Interrupt the prompt (or take it off ComfyUI's queue) once the call in flight has returned: a
        submit still on its way would otherwise queue the prompt after the interrupt."""
        in_flight = self.in_flight

        def interrupt() -> None:
            if in_flight is not None:
                wait([in_flight], timeout=STOP_WAIT_SECONDS)
            try:
                self.comfy.cancel(self.prompt_id)
            except Exception:  # ComfyUI gone: nothing left to interrupt
                log.exception("interrupting prompt %s failed", self.prompt_id)

        threading.Thread(target=interrupt, name=f"stop-{self.prompt_id}", daemon=True).start()


def _validated(job_input: Any) -> tuple[dict[str, Any], dict[str, tuple[str, int]], list[tuple[str, str]]]:
    if not isinstance(job_input, dict):
        raise JobError("input must be an object with 'workflow' and 'outputs'")
    workflow = job_input.get("workflow")
    if not isinstance(workflow, dict) or not workflow:
        raise JobError("input.workflow must be a ComfyUI API-format graph (an object of nodes)")
    outputs = job_input.get("outputs")
    if (
        not isinstance(outputs, list)
        or not outputs
        or not all(isinstance(o, dict) and _is_url(o.get("url")) and isinstance(o.get("key"), str) for o in outputs)
    ):
        raise JobError("input.outputs must list one {url, key} per image: a presigned PUT and the object it writes")
    sources: dict[str, tuple[str, int]] = {}
    for position, image in enumerate(job_input.get("images") or []):
        if not isinstance(image, dict) or not isinstance(image.get("name"), str) or "/" in image["name"]:
            raise JobError(f"input.images[{position}] must be {{name, url, bytes}} with a plain file name")
        size = image.get("bytes")
        if not _is_url(image.get("url")) or not (size is None or (isinstance(size, int) and size > 0)):
            raise JobError(f"input.images[{position}] needs a presigned GET 'url' and its size in 'bytes'")
        sources[image["name"]] = (image["url"], size or MAX_SOURCE_BYTES)
    return workflow, sources, [(o["url"], o["key"]) for o in outputs]


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and bool(urlsplit(value).netloc)


async def _wait_until_ready(render: Render, comfy_url: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            if (await render.call(requests.get, f"{comfy_url}/system_stats", timeout=5)).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise JobError(f"ComfyUI at {comfy_url} did not come up within {READY_SECONDS:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def _wait(render: Render, watcher: ProgressWatcher | None, progress: Progress) -> JobState:
    """Follow the prompt to its end: progress from /ws when it is there, the end from /history."""
    reported = -1
    while True:
        if watcher is not None:
            percent = (await render.call(watcher.poll, POLL_SECONDS)).get(render.prompt_id)
        else:
            await asyncio.sleep(POLL_SECONDS)
            percent = None
        if percent is not None and percent != reported:
            reported = percent
            progress({"percent": percent, "prompt_id": render.prompt_id})
        state = await render.call(render.comfy.status, render.prompt_id)
        if state.status not in ACTIVE:
            return state


def _upload(url: str, key: str, data: bytes, index: int, filename: str | None) -> dict[str, Any]:
    response = requests.put(url, data=data, headers={"Content-Type": "image/png"}, timeout=UPLOAD_TIMEOUT)
    if response.status_code not in (200, 201, 204):
        raise JobError(f"uploading image {index + 1} failed: HTTP {response.status_code}: {response.text[:300]}")
    return {
        "type": "uploaded",
        "index": index,
        "key": key,
        "filename": filename,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler})
