"""RunPod serverless through its REST API (`/v2/{endpoint_id}/run`, `/status/{id}`, `/cancel/{id}`,
`/health`), with requests. The runpod SDK is never imported here: it costs ~1.6 s at import.

Output shapes understood: our worker's `{"images": [{"type": "uploaded", "index": …}]}`, stock
worker-comfyui 5.x `{"images": [{"type": "base64" | "s3_url", "data": …}]}`, and the older
`{"status": "success", "message": <url or base64>}`. Images returned as URLs are fetched only from the
prefixes the stack allows (`RunPodOutputUrlPrefixes`)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from rendergate.backends import (
    COMPLETED,
    FAILED,
    HEALTH_TIMEOUT,
    IN_PROGRESS,
    NOT_FOUND,
    TIMEOUT,
    Capabilities,
    Health,
    JobState,
    Output,
    Submission,
    download,
    send,
    session,
)
from rendergate.errors import RenderFailed, TransientError, scrubbed

RUN_BODY_LIMIT = 10_000_000  # RunPod's documented limit of a /run request ("10 MB")
# RunPod's webhook echoes the job's input, and the webhook reaches Lambda (6 MB) inside the event as a
# JSON-escaped string: keep a request at half of that, with room for the output the webhook adds.
WEBHOOK_SAFE_BYTES = 3 * 1024 * 1024 - 256 * 1024
FETCH_DEADLINE_SECONDS = 120


class RunPod:
    name = "runpod"
    capabilities = Capabilities(
        webhooks=True,
        lookup_by_run=False,  # RunPod knows jobs by its own id only
        cancel=True,
        progress_socket=False,  # progress arrives with /status
        inputs_by_url=True,
        max_request_bytes=min(RUN_BODY_LIMIT, WEBHOOK_SAFE_BYTES),
    )

    def __init__(
        self,
        api_base: str,
        endpoint_id: str,
        api_key: Callable[[], str],
        output_url_prefixes: Sequence[str] = (),
        max_output_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.endpoint_id = endpoint_id
        self.base = f"{api_base.rstrip('/')}/{endpoint_id}"
        self._api_key = api_key
        self.output_url_prefixes = tuple(p for p in output_url_prefixes if p)
        self.max_output_bytes = max_output_bytes

    def submit(self, submission: Submission) -> str:
        """POST /run with our webhook and policy; returns RunPod's job id. 4xx answers are RenderFailed."""
        data = request_body(submission)
        limit = self.capabilities.max_request_bytes or RUN_BODY_LIMIT
        if len(data) > limit:
            raise RenderFailed(f"the job is {len(data)} bytes, more than the {limit} a RunPod request may carry")
        url = f"{self.base}/run"
        headers = {**self._headers(), "Content-Type": "application/json"}
        response = send(lambda: session().post(url, data=data, headers=headers, timeout=TIMEOUT), "RunPod /run")
        if response.status_code >= 400:
            raise RenderFailed(scrubbed(f"RunPod refused the job: HTTP {response.status_code}: {response.text[:500]}"))
        job_id = response.json().get("id")
        if not isinstance(job_id, str) or not job_id:
            raise RenderFailed(scrubbed(f"RunPod accepted the job but sent no id: {response.text[:500]}"))
        return job_id

    def status(self, job_id: str) -> JobState:
        url = f"{self.base}/status/{job_id}"
        response = send(lambda: session().get(url, headers=self._headers(), timeout=TIMEOUT), "RunPod /status")
        if response.status_code == 404:
            self._check_endpoint("/status")
            return JobState(job_id, NOT_FOUND)  # the endpoint is there: the job is not (past its ttl)
        if response.status_code >= 400:
            raise TransientError(f"RunPod /status answered HTTP {response.status_code}: {response.text[:300]}")
        return job_state(job_id, response.json())

    def cancel(self, job_id: str) -> None:
        """POST /cancel; a job RunPod no longer knows needs no cancelling, an endpoint it does not know is an error."""
        url = f"{self.base}/cancel/{job_id}"
        response = send(lambda: session().post(url, headers=self._headers(), timeout=TIMEOUT), "RunPod /cancel")
        if response.status_code == 404:
            self._check_endpoint("/cancel")
            return
        if response.status_code >= 400:
            raise TransientError(f"RunPod /cancel answered HTTP {response.status_code}: {response.text[:300]}")

    def health(self) -> Health:
        response = self._health()
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
        """The bytes of an image a stock worker returned inline, or left at a URL under an allowed prefix."""
        if output.kind == "inline" and output.data is not None:
            return output.data
        assert output.url, output
        if not allowed(output.url, self.output_url_prefixes):
            raise RenderFailed(
                f"the worker returned image {output.index + 1} as a URL ({scrubbed(output.url)}), and rendergate "
                "fetches rendered images only from allowed prefixes: add the prefix of that bucket, e.g. "
                f"'{_prefix_of(output.url)}', to the RunPodOutputUrlPrefixes parameter"
            )
        return download(output.url, self.max_output_bytes, FETCH_DEADLINE_SECONDS, f"rendered image {output.index + 1}")

    def watch(self, job_ids: list[str]) -> None:
        return None  # no socket: progress arrives with /status

    def _health(self) -> Any:
        url = f"{self.base}/health"
        return send(
            lambda: session().get(url, headers=self._headers(), timeout=HEALTH_TIMEOUT), "RunPod /health", attempts=1
        )

    def _check_endpoint(self, route: str) -> None:
        """After a 404 from `route`: an error unless RunPod knows the endpoint (then it is the job it does not
        know). Transient, since no job is at fault: the run waits for the configuration to be put right."""
        answer = self._health()
        if answer.status_code >= 400:
            raise TransientError(
                f"RunPod answered {route} with 404 and /health with HTTP {answer.status_code}: it does not know "
                f"endpoint {self.endpoint_id!r} (check the RunPodEndpointId parameter)"
            )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key()}"}


def request_body(submission: Submission) -> bytes:
    """The /run request for a submission: input, webhook and policy, as the bytes that are sent."""
    job_input: dict[str, Any] = {
        "workflow": submission.graph,
        "outputs": [{"url": upload.url, "key": upload.key} for upload in submission.uploads],
        "rendergate_run_id": submission.run_id,
    }
    if submission.image_urls:
        job_input["images"] = [
            {"name": name, "url": url, "bytes": submission.image_sizes.get(name)}
            for name, url in submission.image_urls.items()
        ]
    body: dict[str, Any] = {
        "input": job_input,
        "policy": {
            "executionTimeout": submission.execution_timeout_seconds * 1000,
            # ttl is the job's whole life, queue and execution: a job that waited is not killed mid-render
            "ttl": max(submission.lifespan_seconds, 10) * 1000,
            # lowPriority jobs never wake a worker: on a scale-to-zero endpoint they would wait out their ttl
            "lowPriority": False,
        },
    }
    if submission.webhook_url:
        body["webhook"] = submission.webhook_url
    return json.dumps(body, separators=(",", ":")).encode()


def allowed(url: str, prefixes: Sequence[str]) -> bool:
    """True when `url` lies under one of `prefixes`: the same scheme and host, and a path below the prefix's."""
    target = urlsplit(url)
    if target.username or target.password or target.fragment:
        return False
    if any(segment in (".", "..") for segment in unquote(target.path).split("/")):
        return False
    for prefix in prefixes:
        allowed_part = urlsplit(prefix)
        base = allowed_part.path if allowed_part.path.endswith("/") else f"{allowed_part.path}/"
        same_origin = (target.scheme.lower(), target.netloc.lower()) == (
            allowed_part.scheme.lower(),
            allowed_part.netloc.lower(),
        )
        if same_origin and target.path.startswith(base):
            return True
    return False


def _prefix_of(url: str) -> str:
    parts = urlsplit(url)
    folder = parts.path.split("/")[1] if parts.path.count("/") > 1 else ""
    return f"{parts.scheme}://{parts.netloc}/{folder + '/' if folder else ''}"


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
            state.status, state.error = FAILED, scrubbed(str(output.get("message") or "the worker reported an error"))
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
    return scrubbed(text) or "the backend reported a failure without a message"


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
