"""A RunPod-protocol server on loopback, written for the tests.

It serves RunPod's serverless routes (`POST /v2/{endpoint}/run`, `GET /v2/{endpoint}/status/{id}`,
`POST /v2/{endpoint}/cancel/{id}`, `GET /v2/{endpoint}/health`) with `Authorization: Bearer <key>` or the
bare key, and delivers webhooks as RunPod does: the status body, retried twice more on a non-200 answer.
By default a job runs our own worker (infra/runpod-worker/handler.py) against a CPU renderer; scripted
outcomes cover the rest: 429 and 5xx answers to /run, a /run whose answer is lost, FAILED with each
error shape, TIMED_OUT, jobs that vanish (404, as after their ttl), COMPLETED without output, stock
worker-comfyui and older output shapes, and duplicate and late webhooks."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

from support.images import png

ROOT = Path(__file__).resolve().parents[2]
ROUTE = re.compile(r"^/v2/(?P<endpoint>[^/]+)/(?P<action>run|status|cancel|health)(?:/(?P<job>[^/]+))?$")


def load_worker() -> ModuleType:
    """Our RunPod worker's handler module, loaded by path (its folder name is not a package name)."""
    spec = importlib.util.spec_from_file_location("runpod_worker_handler", ROOT / "infra/runpod-worker/handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Outcome:
    """How a scripted job goes.

    kind: worker (run our worker), base64 | s3_url (stock worker-comfyui 5.x output), legacy ({status,
    message}), failed, timed_out, vanish (404 from then on, no webhook), no_output (COMPLETED, no output).
    """

    kind: str = "worker"
    error: Any = None  # failed: RunPod's `error` (plain or JSON-encoded traceback)
    details: list[str] | None = None  # failed: `output.details`, as worker-comfyui sends them
    queue_seconds: float = 0.0
    run_seconds: float = 0.0
    webhooks: int = 1  # deliveries of the final status; 2 makes a duplicate
    late_webhook_after: float | None = None  # one more delivery this long after the others
    send_webhook: bool = True
    forge_token: bool = False  # deliver to the run's webhook URL with a wrong token


@dataclass
class Job:
    id: str
    endpoint: str
    input: dict[str, Any]
    webhook: str | None
    policy: dict[str, Any]
    outcome: Outcome
    status: str = "IN_QUEUE"
    output: Any = None
    error: Any = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    cancelled: bool = False
    deliveries: list[int] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The /status answer, which is also the webhook's body."""
        body: dict[str, Any] = {"id": self.id, "status": self.status, "workerId": "test-worker"}
        if self.started is not None:
            body["delayTime"] = int((self.started - self.created) * 1000)
        if self.finished is not None and self.started is not None:
            body["executionTime"] = int((self.finished - self.started) * 1000)
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body


class RunPodServer:
    def __init__(self, api_key: str, comfy_url: str, webhook_retry_seconds: float = 0.3) -> None:
        self.api_key = api_key
        self.comfy_url = comfy_url
        self.webhook_retry_seconds = webhook_retry_seconds
        self.jobs: dict[str, Job] = {}
        self.vanished: set[str] = set()
        self.run_requests: list[dict[str, Any]] = []  # every /run body, refused ones too
        self.refusals: list[tuple[str, deque[int]]] = []  # answers for the next /run requests that match
        self.lost_answers: list[str] = []  # /run requests that match: create the job, drop the connection
        self.scripts: list[tuple[str, Outcome]] = []
        self.health: dict[str, Any] | None = None  # overrides the computed /health
        self.files: dict[str, bytes] = {}  # what s3_url outputs point at
        self.lock = threading.Lock()
        self.worker = load_worker()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.url = f"{self.base}/v2"

    def start(self) -> RunPodServer:
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.http.shutdown()

    def refuse(self, match: str, *statuses: int) -> None:
        """Answer the next /run requests whose input contains `match` with these statuses, in order."""
        with self.lock:
            self.refusals.append((match, deque(statuses)))

    def lose_answer(self, match: str) -> None:
        """For the next /run request containing `match`: create the job, then close without answering."""
        with self.lock:
            self.lost_answers.append(match)

    def script(self, match: str, outcome: Outcome) -> None:
        """The next job whose input contains `match` goes as `outcome` (else our worker runs it)."""
        with self.lock:
            self.scripts.append((match, outcome))

    def jobs_for(self, text: str) -> list[Job]:
        return [job for job in self.jobs.values() if text in json.dumps(job.input)]

    # ---------- HTTP ----------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if path.startswith("/files/"):
            data = self.files.get(path.removeprefix("/files/"))
            self._answer(request, 200 if data else 404, data or b"", "image/png")
            return
        match = ROUTE.match(path)
        if not match:
            self._json(request, 404, {"error": "not found"})
            return
        authorization = request.headers.get("Authorization", "")
        if authorization.removeprefix("Bearer ").strip() != self.api_key:
            self._json(request, 401, {"error": "Unauthorized"})
            return
        action, job_id = match["action"], match["job"]
        if action == "run" and request.command == "POST":
            self._run(request, match["endpoint"], json.loads(body or b"{}"))
        elif action == "status":
            job = self.jobs.get(job_id or "")
            if job is None or job.id in self.vanished:
                self._json(request, 404, {"error": "request does not exist"})
            else:
                self._json(request, 200, job.body())
        elif action == "cancel" and request.command == "POST":
            job = self.jobs.get(job_id or "")
            if job is None:
                self._json(request, 404, {"error": "request does not exist"})
                return
            job.cancelled = True
            if job.status in ("IN_QUEUE", "IN_PROGRESS"):
                job.status = "CANCELLED"
            self._json(request, 200, {"id": job.id, "status": job.status})
        elif action == "health":
            self._json(request, 200, self.health or self._health())
        else:
            self._json(request, 405, {"error": "method not allowed"})

    def _run(self, request: BaseHTTPRequestHandler, endpoint: str, body: dict[str, Any]) -> None:
        text = json.dumps(body.get("input"))
        with self.lock:
            self.run_requests.append(body)
            refusal = next((statuses for match, statuses in self.refusals if match in text and statuses), None)
            if refusal:
                status = refusal.popleft()
                headers = {"Retry-After": "0"} if status == 429 else {}
                self._json(request, status, {"error": "try again later"}, headers)
                return
            job = Job(
                id=f"{uuid.uuid4()}-u1",
                endpoint=endpoint,
                input=body.get("input") or {},
                webhook=body.get("webhook"),
                policy=body.get("policy") or {},
                outcome=self._outcome_for(body),
            )
            self.jobs[job.id] = job
            lose_answer = next((match for match in self.lost_answers if match in text), None)
            if lose_answer:
                self.lost_answers.remove(lose_answer)
        threading.Thread(target=self._lifecycle, args=(job,), daemon=True).start()
        if lose_answer:
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_WR)  # the job exists; the client never hears about it
            return
        self._json(request, 200, {"id": job.id, "status": "IN_QUEUE"})

    def _outcome_for(self, body: dict[str, Any]) -> Outcome:
        text = json.dumps(body.get("input"))
        for index, (match, outcome) in enumerate(self.scripts):
            if match in text:
                del self.scripts[index]
                return outcome
        return Outcome()

    def _health(self) -> dict[str, Any]:
        statuses = [job.status for job in self.jobs.values() if job.id not in self.vanished]
        running = statuses.count("IN_PROGRESS")
        return {
            "jobs": {
                "completed": statuses.count("COMPLETED"),
                "failed": statuses.count("FAILED"),
                "inProgress": running,
                "inQueue": statuses.count("IN_QUEUE"),
                "retried": 0,
            },
            "workers": {"idle": 1, "initializing": 0, "ready": 0, "running": running, "throttled": 0, "unhealthy": 0},
        }

    @staticmethod
    def _json(request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        RunPodServer._answer(request, status, json.dumps(body).encode(), "application/json", headers)

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    # ---------- a job's life ----------

    def _lifecycle(self, job: Job) -> None:
        outcome = job.outcome
        if not self._wait(job, outcome.queue_seconds):
            return
        job.started = time.monotonic()
        job.status = "IN_PROGRESS"
        if not self._wait(job, outcome.run_seconds):
            return
        if outcome.kind == "vanish":
            self.vanished.add(job.id)
            return
        output, error, status = self._result(job)
        if job.cancelled:
            return
        job.output, job.error = output, error
        job.finished = time.monotonic()
        job.status = status
        if job.webhook and outcome.send_webhook:
            for _ in range(outcome.webhooks):
                self._deliver(job)
            if outcome.late_webhook_after is not None:
                threading.Timer(outcome.late_webhook_after, self._deliver, args=(job,)).start()

    def _wait(self, job: Job, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if job.cancelled:
                return False
            time.sleep(0.05)
        return not job.cancelled

    def _result(self, job: Job) -> tuple[Any, Any, str]:
        outcome = job.outcome
        count = max(len(job.input.get("outputs") or []), 1)
        if outcome.kind == "worker":
            result = self.worker.run_job(job.input, self.comfy_url, self._progress(job), job_id=job.id)
            error = result.pop("error", None)  # as runpod's SDK does with a handler's {"error": …}
            return result or None, error, "FAILED" if error else "COMPLETED"
        if outcome.kind == "base64":
            images = [
                {"filename": f"ComfyUI_{i:05d}_.png", "type": "base64", "data": _b64(png(i + 40))} for i in range(count)
            ]
            return {"images": images}, None, "COMPLETED"
        if outcome.kind == "s3_url":
            images = []
            for i in range(count):
                name = f"{job.id}-{i}.png"
                self.files[name] = png(i + 60)
                images.append({"filename": name, "type": "s3_url", "data": f"{self.base}/files/{name}"})
            return {"images": images}, None, "COMPLETED"
        if outcome.kind == "legacy":
            name = f"{job.id}-legacy.png"
            self.files[name] = png(80)
            return {"status": "success", "message": f"{self.base}/files/{name}"}, None, "COMPLETED"
        if outcome.kind == "failed":
            output = {"details": outcome.details} if outcome.details else None
            return output, outcome.error, "FAILED"
        if outcome.kind == "timed_out":
            return None, None, "TIMED_OUT"
        if outcome.kind == "no_output":
            return None, None, "COMPLETED"
        raise ValueError(f"unknown outcome {outcome.kind}")

    def _progress(self, job: Job) -> Callable[[dict[str, Any]], None]:
        def update(progress: dict[str, Any]) -> None:
            job.output = progress  # RunPod shows the latest progress_update as the running job's output

        return update

    def _deliver(self, job: Job) -> None:
        """POST the status body to the webhook; on a non-200 answer retry twice more, as RunPod does."""
        assert job.webhook
        url = job.webhook + "x" if job.outcome.forge_token else job.webhook
        for attempt in range(3):
            try:
                status = requests.post(url, json=job.body(), timeout=10).status_code
            except requests.RequestException:
                status = 0
            job.deliveries.append(status)
            if status == 200:
                return
            if attempt < 2:
                time.sleep(self.webhook_retry_seconds)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
