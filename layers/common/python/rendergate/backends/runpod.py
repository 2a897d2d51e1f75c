"""RunPod serverless through its REST API (`/v2/{endpoint_id}/run`, `/status/{id}`, `/cancel/{id}`,
`/health`), with requests. The runpod SDK is never imported here: it costs ~1.6 s at import.

Output shapes understood: our worker's `{"images": [{"type": "uploaded", "index": …}]}`, stock
worker-comfyui 5.x `{"images": [{"type": "base64" | "s3_url", "data": …}]}`, and the older
`{"status": "success", "message": <url or base64>}`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from rendergate.backends import (
    COMPLETED,
    FAILED,
    HEALTH_TIMEOUT,
    IN_PROGRESS,
    NOT_FOUND,
    TIMEOUT,
    Health,
    JobState,
    Output,
    Submission,
    send,
    session,
)
from rendergate.errors import RenderFailed, TransientError


class RunPod:
    name = "runpod"

    def __init__(self, api_base: str, endpoint_id: str, api_key: Callable[[], str]) -> None:
        self.base = f"{api_base.rstrip('/')}/{endpoint_id}"
        self._api_key = api_key

    def submit(self, submission: Submission) -> str:
        """POST /run with our webhook and policy; returns RunPod's job id. 4xx answers are RenderFailed."""
        body: dict[str, Any] = {
            "input": {
                "workflow": submission.graph,
                "outputs": submission.upload_urls,
                "rendergate_run_id": submission.run_id,
            },
            "policy": {
                "executionTimeout": submission.execution_timeout_seconds * 1000,
                "ttl": max(submission.queue_ttl_seconds, 10) * 1000,
                "lowPriority": submission.priority == "low",
            },
        }
        if submission.images:
            body["input"]["images"] = [
                {"name": name, "image": base64.b64encode(data).decode()} for name, data in submission.images.items()
            ]
        if submission.webhook_url:
            body["webhook"] = submission.webhook_url
        url = f"{self.base}/run"
        response = send(lambda: session().post(url, json=body, headers=self._headers(), timeout=TIMEOUT), "RunPod /run")
        if response.status_code >= 400:
            raise RenderFailed(f"RunPod refused the job: HTTP {response.status_code}: {response.text[:500]}")
        job_id = response.json().get("id")
        if not isinstance(job_id, str) or not job_id:
            raise RenderFailed(f"RunPod accepted the job but sent no id: {response.text[:500]}")
        return job_id

    def status(self, job_id: str) -> JobState:
        url = f"{self.base}/status/{job_id}"
        response = send(lambda: session().get(url, headers=self._headers(), timeout=TIMEOUT), "RunPod /status")
        if response.status_code == 404:
            return JobState(job_id, NOT_FOUND)
        if response.status_code >= 400:
            raise TransientError(f"RunPod /status answered HTTP {response.status_code}: {response.text[:300]}")
        return job_state(job_id, response.json())

    def cancel(self, job_id: str) -> None:
        url = f"{self.base}/cancel/{job_id}"
        response = send(lambda: session().post(url, headers=self._headers(), timeout=TIMEOUT), "RunPod /cancel")
        if response.status_code >= 400 and response.status_code != 404:
            raise TransientError(f"RunPod /cancel answered HTTP {response.status_code}: {response.text[:300]}")

    def health(self) -> Health:
        url = f"{self.base}/health"
        response = send(
            lambda: session().get(url, headers=self._headers(), timeout=HEALTH_TIMEOUT), "RunPod /health", attempts=1
        )
        if response.status_code >= 400:
            raise TransientError(f"RunPod /health answered HTTP {response.status_code}")
        body = response.json()
        jobs, workers = body.get("jobs", {}), body.get("workers", {})
        return Health(
            queued=int(jobs.get("inQueue", 0)),
            running=int(jobs.get("inProgress", 0)),
            workers_idle=int(workers.get("idle", 0)) + int(workers.get("ready", 0)),
            workers_running=int(workers.get("running", 0)),
        )

    def fetch(self, output: Output) -> bytes:
        """The bytes of an image worker-comfyui left in its own bucket (`s3_url`)."""
        if output.kind == "inline" and output.data is not None:
            return output.data
        assert output.url, output
        url = output.url
        response = send(lambda: session().get(url, timeout=TIMEOUT), "fetching a rendered image")
        if response.status_code >= 400:
            raise RenderFailed(
                f"the rendered image at {url.split('?')[0]} cannot be fetched: HTTP {response.status_code}"
            )
        return bytes(response.content)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key()}"}


def job_state(job_id: str, body: dict[str, Any]) -> JobState:
    """A /status answer (or a webhook body, which has the same shape) as a JobState."""
    status = str(body.get("status", ""))
    output = body.get("output")
    state = JobState(job_id, status, timings=_timings(body, output))
    if status == IN_PROGRESS and isinstance(output, dict) and isinstance(output.get("percent"), int | float):
        state.progress = int(output["percent"])  # our worker's progress_update
    if status == FAILED:
        state.error = error_text(body.get("error"), output)
    if status == COMPLETED:
        if isinstance(output, dict) and output.get("status") == "error":  # the older shape's failure
            state.status, state.error = FAILED, str(output.get("message") or "the worker reported an error")
        else:
            state.outputs = outputs(output)
            state.progress = 100
    return state


def outputs(output: Any) -> list[Output]:
    """The images in a COMPLETED job's output, whichever worker produced it."""
    if not isinstance(output, dict):
        return []
    images = output.get("images")
    if isinstance(images, list):
        found = []
        for position, image in enumerate(images):
            if not isinstance(image, dict):
                continue
            kind, data, filename = image.get("type"), image.get("data"), image.get("filename")
            if kind == "uploaded":
                found.append(Output(int(image.get("index", position)), "uploaded", filename=filename))
            elif kind == "base64" and isinstance(data, str):
                found.append(Output(position, "inline", data=_decode(data), filename=filename))
            elif kind == "s3_url" and isinstance(data, str):
                found.append(Output(position, "url", url=data, filename=filename))
        return found
    message = output.get("message")
    if output.get("status") == "success" and isinstance(message, str) and message:
        if message.startswith(("http://", "https://")):
            return [Output(0, "url", url=message)]
        return [Output(0, "inline", data=_decode(message))]
    return []


def error_text(error: Any, output: Any = None) -> str:
    """The backend's error as text: a plain string, a JSON-encoded traceback, and `output.details`."""
    text = ""
    if isinstance(error, str):
        text = error
        try:
            decoded = json.loads(error)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict) and ("error_message" in decoded or "error_traceback" in decoded):
            kind = str(decoded.get("error_type", "")).removeprefix("<class '").removesuffix("'>")
            head = f"{kind}: {decoded.get('error_message', '')}".strip(": ")
            text = f"{head}\n{decoded.get('error_traceback', '')}".strip()
    elif error is not None:
        text = json.dumps(error)
    details = output.get("details") if isinstance(output, dict) else None
    if details:
        lines = details if isinstance(details, list) else [details]
        text = f"{text}: " if text else ""
        text += "; ".join(str(line) for line in lines)
    return text or "the backend reported a failure without a message"


def _timings(body: dict[str, Any], output: Any) -> dict[str, int]:
    timings = {}
    for source, name in (("delayTime", "queue_ms"), ("executionTime", "execution_ms")):
        if isinstance(body.get(source), int | float):
            timings[name] = int(body[source])
    if isinstance(output, dict) and isinstance(output.get("timings"), dict):
        timings.update({f"worker_{k}": int(v) for k, v in output["timings"].items() if isinstance(v, int | float)})
    return timings


def _decode(data: str) -> bytes | None:
    """Base64 (or a data: URI) to bytes; None when it is not valid, which collecting the outputs reports."""
    try:
        return base64.b64decode(data.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        return None
