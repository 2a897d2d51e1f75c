"""Render backends behind one small interface: submit a graph, ask where a job stands, cancel it, read
the queue's health, fetch an image it rendered. RunPod serverless (`runpod`) and a self-hosted ComfyUI
(`comfyui`) implement it; job statuses are RunPod's vocabulary, which ComfyUI's states map onto. What a
backend can do beyond that (webhooks, a progress socket, a lookup by our id) it declares in its
`Capabilities`, so callers ask the backend instead of checking its name."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from rendergate.errors import RenderFailed, TransientError, scrubbed

if TYPE_CHECKING:
    import requests

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
FAILED, CANCELLED, TIMED_OUT = "FAILED", "CANCELLED", "TIMED_OUT"
NOT_FOUND = "NOT_FOUND"  # the backend does not know the job (any more)
ACTIVE = frozenset({IN_QUEUE, IN_PROGRESS})
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})
TIMEOUT = (3.05, 15)  # connect, read
HEALTH_TIMEOUT = (2, 3)  # an ETA must not hold up POST /runs
SUBMIT_ATTEMPTS = 4
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0
MAX_LIFESPAN_SECONDS = 7 * 24 * 3600  # RunPod's limit for a job's ttl and execution timeout alike
DOWNLOAD_CHUNK = 64 * 1024


def lifespan_seconds(queue_ttl_seconds: int, execution_timeout_seconds: int) -> int:
    """How long a job may live from its submission: waiting in the queue, then running (at most 7 days)."""
    return min(queue_ttl_seconds + execution_timeout_seconds, MAX_LIFESPAN_SECONDS)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do besides submit, status, health and fetch."""

    webhooks: bool  # it reports a job's end to a URL we give it; without, the reconciler follows the job
    lookup_by_run: bool  # it finds a job by our run id, so a submit whose answer was lost can be checked
    cancel: bool  # a queued or running job can be stopped
    progress_socket: bool  # progress can be followed over a socket (`watch`)
    inputs_by_url: bool  # its worker downloads source images from presigned GETs; else they travel with the job
    max_request_bytes: int | None = None  # the largest submit request that can reach the job's worker


@dataclass(frozen=True)
class Upload:
    """Where one rendered image goes: a presigned PUT for the object `key` of the media bucket."""

    url: str
    key: str


@dataclass(frozen=True)
class Submission:
    """Everything a backend needs to render one run."""

    run_id: str
    graph: dict[str, Any]
    images: dict[str, bytes]  # ComfyUI input file name -> bytes of a source image (backends that upload them)
    uploads: list[Upload]  # one per expected image, in order
    webhook_url: str | None
    priority: str  # low | normal | high
    execution_timeout_seconds: int
    queue_ttl_seconds: int
    image_urls: dict[str, str] = field(default_factory=dict)  # input file name -> presigned GET (inputs_by_url)
    image_sizes: dict[str, int] = field(default_factory=dict)  # input file name -> its size in bytes

    @property
    def lifespan_seconds(self) -> int:
        return lifespan_seconds(self.queue_ttl_seconds, self.execution_timeout_seconds)


@dataclass(frozen=True)
class Output:
    """One rendered image as the backend reports it: already uploaded to our bucket, or to be fetched."""

    index: int
    kind: str  # uploaded | inline | url | comfyui
    data: bytes | None = None
    url: str | None = None
    filename: str | None = None
    subfolder: str = ""
    folder_type: str = "output"


@dataclass
class JobState:
    """Where a backend job stands. `error` keeps the backend's own error text."""

    job_id: str
    status: str
    progress: int | None = None
    outputs: list[Output] = field(default_factory=list)
    error: str | None = None
    timings: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    """The backend's queue: jobs waiting and running, and the workers able to take them."""

    queued: int
    running: int
    workers_idle: int
    workers_running: int

    @property
    def depth(self) -> int:
        return self.queued + self.running

    @property
    def workers(self) -> int:
        return self.workers_idle + self.workers_running


class SubmitUncertain(Exception):
    """The submit request was sent but no answer came back: the job may or may not exist. Never resent."""


class ProgressWatcher(Protocol):
    def poll(self, seconds: float) -> dict[str, int]: ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str
    capabilities: Capabilities

    def submit(self, submission: Submission) -> str: ...

    def status(self, job_id: str) -> JobState: ...

    def cancel(self, job_id: str) -> None: ...

    def health(self) -> Health: ...

    def fetch(self, output: Output) -> bytes: ...

    def watch(self, job_ids: list[str]) -> ProgressWatcher | None: ...


@cache
def backend(name: str) -> Backend:
    """The backend called `name` (`runpod` or `comfyui`), configured from the settings, created once."""
    from rendergate import config

    settings = config.settings()
    if name == "runpod":
        from rendergate.backends.runpod import RunPod

        return RunPod(
            settings.render.runpod_api_base,
            settings.render.runpod_endpoint_id,
            config.runpod_api_key,
            output_url_prefixes=settings.render.runpod_output_url_prefixes,
            max_output_bytes=settings.uploads.max_bytes,
        )
    if name == "comfyui":
        from rendergate.backends.comfyui import ComfyUI

        return ComfyUI(settings.render.comfyui_url, client_id=f"rendergate-{settings.stage}")
    raise ValueError(f"unknown render backend {name!r} (runpod or comfyui)")


@cache
def session() -> requests.Session:
    """One HTTP session per process; no automatic retries, so a POST is never repeated behind our back."""
    import requests

    return requests.Session()


def send(request: Callable[[], requests.Response], what: str, attempts: int = SUBMIT_ATTEMPTS) -> requests.Response:
    """Send a request that is safe to repeat only when it certainly did not arrive or was refused as
    overloaded: 429 and 5xx answers, and connections never made, are retried with exponential backoff
    and full jitter (honouring Retry-After); a request sent without an answer raises SubmitUncertain."""
    import requests

    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = request()
        except requests.RequestException as error:
            if not _never_sent(error):
                raise SubmitUncertain(scrubbed(f"{what}: sent, but no answer came back ({error})")) from error
            if last:
                raise TransientError(scrubbed(f"{what}: the backend cannot be reached ({error})")) from error
            _pause(attempt, None)
            continue
        if response.status_code == 429 or response.status_code >= 500:
            if last:
                raise TransientError(f"{what}: the backend answered HTTP {response.status_code} {attempt + 1} times")
            _pause(attempt, response.headers.get("Retry-After"))
            continue
        return response
    raise AssertionError("unreachable")


def download(url: str, max_bytes: int, deadline_seconds: float, what: str) -> bytes:
    """GET `url` as a stream: at most `max_bytes`, within connect and read timeouts and a total deadline
    (a server that trickles bytes cannot hold us past it). RenderFailed says which limit was hit; an
    answer that did not come (or a 429 or 5xx) is a TransientError, since a GET is safe to repeat."""
    import requests
    from urllib3.exceptions import HTTPError

    deadline = time.monotonic() + deadline_seconds
    shown = scrubbed(url)
    try:
        with session().get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientError(f"{what} at {shown}: HTTP {response.status_code}")
            if response.status_code >= 400:
                raise RenderFailed(f"{what} at {shown} cannot be fetched: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise RenderFailed(f"{what} at {shown} is {declared} bytes, more than the {max_bytes} bytes allowed")
            data = bytearray()
            # read1 returns what has arrived and never waits to fill the chunk, so the deadline is checked often
            while chunk := response.raw.read1(DOWNLOAD_CHUNK, decode_content=True):
                data += chunk
                if len(data) > max_bytes:
                    raise RenderFailed(f"{what} at {shown} is larger than the {max_bytes} bytes allowed")
                if time.monotonic() > deadline:
                    raise RenderFailed(f"{what} at {shown} did not arrive within {deadline_seconds:.0f} s")
    except (requests.RequestException, HTTPError) as error:
        raise TransientError(scrubbed(f"{what} at {shown} cannot be fetched: {error}")) from error
    return bytes(data)


def _never_sent(error: Exception) -> bool:
    """True when the connection was never made, so the backend cannot have seen the request."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _pause(attempt: int, retry_after: str | None) -> None:
    delay = random.uniform(0, min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt))
    if retry_after and retry_after.isdigit():
        delay = max(delay, min(float(retry_after), MAX_BACKOFF_SECONDS))
    time.sleep(delay)
