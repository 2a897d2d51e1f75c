"""A RunPod-protocol server on loopback, written for the tests, and our worker running against it under
the real runpod SDK.

Clients meet RunPod's serverless routes (`POST /v2/{endpoint}/run`, `GET …/status/{id}`, `POST
…/cancel/{id}`, `GET …/health`) with `Authorization: Bearer <key>` or the bare key. Workers meet the
routes the SDK's job loop uses (`job-take`, `job-done`, `job-stop`, `ping`), found the way the SDK finds
them on RunPod: RUNPOD_WEBHOOK_GET_JOB, RUNPOD_WEBHOOK_POST_OUTPUT and RUNPOD_WEBHOOK_PING.

It holds to RunPod's documented rules where our code depends on them: a /run body over 10 MB is
refused, and so is a policy outside RunPod's limits (ttl 10 s … 7 days, executionTimeout 5 s … 7
days); `ttl` is the job's whole life from submission, queued or running: past it the job is deleted
(404) and a worker still running it is told to stop; a job running past its executionTimeout is
TIMED_OUT and its worker told to stop; a cancelled job's worker is told to stop; `lowPriority` jobs
never wake a worker (with no normal job around, a scale-to-zero endpoint never runs them); a webhook
carries the status body plus the job's `input` and `webhook`, retried twice more on a non-200 answer.

A job runs on our worker (`sdk_worker`) unless it is scripted: 429 and 5xx answers to /run, a /run whose
answer is lost, FAILED with each error shape, TIMED_OUT, jobs that vanish, COMPLETED without output,
stock worker-comfyui and older output shapes, and duplicate and late webhooks."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

from support.images import png

ROOT = Path(__file__).resolve().parents[2]
WORKER_PYTHON = ROOT / ".venv-worker/bin/python"  # `make worker-venv`: runpod==1.12.0 and the worker's packages
API_ROUTE = re.compile(r"^/v2/(?P<endpoint>[^/]+)/(?P<action>run|status|cancel|health)(?:/(?P<job>[^/]+))?$")
WORKER_ROUTE = re.compile(
    r"^/v2/(?P<endpoint>[^/]+)/(?P<action>job-take|job-done|job-stop|ping)/(?P<worker>[^/]+)(?:/(?P<job>[^/]+))?$"
)
RUN_BODY_LIMIT = 10_000_000  # "Maximum payload size: 10 MB" for /run
MIN_TTL_MS, MIN_EXECUTION_MS, MAX_POLICY_MS = 10_000, 5_000, 7 * 24 * 3600 * 1000
DEFAULT_TTL_MS, DEFAULT_EXECUTION_MS = 24 * 3600 * 1000, 600_000
IDLE_TIMEOUT_SECONDS = 5.0  # an endpoint's default: how long a worker stays up after its last job
LONG_POLL_SECONDS = 1.0
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


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

    kind: worker (taken by a worker, `sdk_worker`), base64 | s3_url (stock worker-comfyui 5.x output),
    legacy ({status, message}), failed, timed_out, vanish (404 from then on, no webhook), no_output
    (COMPLETED, no output).
    """

    kind: str = "worker"
    error: Any = None  # failed: RunPod's `error` (plain or JSON-encoded traceback)
    details: list[str] | None = None  # failed: `output.details`, as worker-comfyui sends them
    queue_seconds: float = 0.0  # before a worker may take it (scripted: before it starts)
    run_seconds: float = 0.0  # scripted: how long it runs
    webhooks: int = 1  # deliveries of the final status; 2 makes a duplicate
    late_webhook_after: float | None = None  # one more delivery this long after the others
    send_webhook: bool = True
    forge_token: bool = False  # deliver to the run's webhook URL with a wrong token
    output_url: str | None = None  # s3_url and legacy: where the images are said to be (else served here)


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
    worker: str | None = None  # the worker that took it
    results: list[dict[str, Any]] = field(default_factory=list)  # what workers posted to job-done
    deliveries: list[int] = field(default_factory=list)

    @property
    def ttl(self) -> float:
        return float(self.policy.get("ttl", DEFAULT_TTL_MS)) / 1000

    @property
    def execution_timeout(self) -> float:
        return float(self.policy.get("executionTimeout", DEFAULT_EXECUTION_MS)) / 1000

    @property
    def low_priority(self) -> bool:
        return bool(self.policy.get("lowPriority"))

    def body(self) -> dict[str, Any]:
        """The /status answer."""
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            body["delayTime"] = int((self.started - self.created) * 1000)
            body["workerId"] = self.worker or "scripted-worker"
        if self.finished is not None and self.started is not None:
            body["executionTime"] = int((self.finished - self.started) * 1000)
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body

    def webhook_body(self) -> dict[str, Any]:
        """What a webhook carries: the status body, the job's input and the webhook itself."""
        return {**self.body(), "input": self.input, "webhook": self.webhook}


class RunPodServer:
    def __init__(
        self,
        api_key: str,
        endpoint_id: str = "endpoint-1",
        webhook_retry_seconds: float = 0.3,
        worker_key: str = "runpod-worker-key",
    ) -> None:
        self.api_key = api_key
        self.endpoint_id = endpoint_id
        self.worker_key = worker_key
        self.webhook_retry_seconds = webhook_retry_seconds
        self.jobs: dict[str, Job] = {}
        self.vanished: set[str] = set()  # deleted: past their ttl, or scripted to vanish
        self.run_requests: list[dict[str, Any]] = []  # every /run body, refused ones too
        self.refusals: list[tuple[str, deque[int]]] = []  # answers for the next /run requests that match
        self.lost_answers: list[str] = []  # /run requests that match: create the job, drop the connection
        self.scripts: list[tuple[str, Outcome]] = []
        self.health: dict[str, Any] | None = None  # overrides the computed /health
        self.files: dict[str, bytes] = {}  # what s3_url outputs point at
        self.file_delays: dict[str, float] = {}  # files streamed without a length, with a pause after each byte
        self.workers_seen: set[str] = set()
        self.stop_signals: dict[str, list[str]] = {}  # worker -> job ids it is to stop
        self.last_normal_job_at = float("-inf")  # when a job that wakes workers last ended
        self.lock = threading.Condition()
        self.stopped = threading.Event()
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
        threading.Thread(target=self._enforce_limits, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        with self.lock:
            self.lock.notify_all()
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
        """The next job whose input contains `match` goes as `outcome` (else a worker runs it)."""
        with self.lock:
            self.scripts.append((match, outcome))

    def jobs_for(self, text: str) -> list[Job]:
        return [job for job in self.jobs.values() if text in json.dumps(job.input)]

    def worker_env(self, worker_id: str) -> dict[str, str]:
        """The settings RunPod gives a worker's container, pointed at this server."""
        worker = f"{self.url}/{self.endpoint_id}"
        return {
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_AI_API_KEY": self.worker_key,
            "RUNPOD_WEBHOOK_GET_JOB": f"{worker}/job-take/{worker_id}?gpu=cpu",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{worker}/job-done/{worker_id}/$ID?gpu=cpu",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{worker}/job-stream/{worker_id}/$ID?gpu=cpu",
            "RUNPOD_WEBHOOK_PING": f"{worker}/ping/{worker_id}?gpu=cpu",
        }

    # ---------- HTTP ----------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if length > RUN_BODY_LIMIT:
            self._json(request, 413, {"error": f"request body exceeds {RUN_BODY_LIMIT} bytes"})
            return
        if path.startswith("/files/"):
            self._file(request, path.removeprefix("/files/"))
            return
        if match := WORKER_ROUTE.match(path):
            self._worker_call(request, match, body)
            return
        match = API_ROUTE.match(path)
        if not match:
            self._json(request, 404, {"error": "not found"})
            return
        authorization = request.headers.get("Authorization", "")
        if authorization.removeprefix("Bearer ").strip() != self.api_key:
            self._json(request, 401, {"error": "Unauthorized"})
            return
        if match["endpoint"] != self.endpoint_id:
            self._json(request, 404, {"error": "endpoint not found"})
            return
        action, job = match["action"], self._job(match["job"])
        if action == "run" and request.command == "POST":
            self._run(request, match["endpoint"], json.loads(body or b"{}"))
        elif action == "status":
            if job is None:
                self._json(request, 404, {"error": "request does not exist"})
            else:
                self._json(request, 200, job.body())
        elif action == "cancel" and request.command == "POST":
            if job is None:
                self._json(request, 404, {"error": "request does not exist"})
                return
            self._cancel(job)
            self._json(request, 200, {"id": job.id, "status": job.status})
        elif action == "health":
            self._json(request, 200, self.health or self._health())
        else:
            self._json(request, 405, {"error": "method not allowed"})

    def _file(self, request: BaseHTTPRequestHandler, name: str) -> None:
        data, delay = self.files.get(name), self.file_delays.get(name)
        if not data or delay is None:
            self._answer(request, 200 if data else 404, data or b"", "image/png")
            return
        request.send_response(200)  # streamed until the connection closes, its length not said upfront
        request.send_header("Content-Type", "image/png")
        request.send_header("Connection", "close")
        request.end_headers()
        request.close_connection = True
        for byte in data:  # a trickle: every byte arrives well within any read timeout
            if self.stopped.is_set():
                return
            try:
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
            except OSError:  # the client gave up
                return
            time.sleep(delay)

    def _job(self, job_id: str | None) -> Job | None:
        job = self.jobs.get(job_id or "")
        return None if job is None or job.id in self.vanished else job

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
            policy = body.get("policy") or {}
            if problem := _policy_problem(policy):
                self._json(request, 400, {"error": problem})
                return
            job = Job(
                id=f"{uuid.uuid4()}-u1",
                endpoint=endpoint,
                input=body.get("input") or {},
                webhook=body.get("webhook"),
                policy=policy,
                outcome=self._outcome_for(body),
            )
            self.jobs[job.id] = job
            lose_answer = next((match for match in self.lost_answers if match in text), None)
            if lose_answer:
                self.lost_answers.remove(lose_answer)
            self.lock.notify_all()
        if job.outcome.kind != "worker":
            threading.Thread(target=self._scripted, args=(job,), daemon=True).start()
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

    def _cancel(self, job: Job) -> None:
        with self.lock:
            job.cancelled = True
            if job.status in ("IN_QUEUE", "IN_PROGRESS"):
                job.status = "CANCELLED"
                job.finished = time.monotonic()
                self._stop_worker_of(job)

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

    # ---------- the worker's side ----------

    def _worker_call(self, request: BaseHTTPRequestHandler, match: re.Match[str], body: bytes) -> None:
        if request.headers.get("Authorization", "") != self.worker_key or match["endpoint"] != self.endpoint_id:
            self._json(request, 401, {"error": "Unauthorized"})
            return
        worker, action = match["worker"], match["action"]
        with self.lock:
            self.workers_seen.add(worker)
        if action == "job-take":
            job = self._take(worker)
            if job is None:
                self._answer(request, 204, b"", "application/json")
            else:
                self._json(request, 200, {"id": job.id, "input": job.input})
        elif action == "job-done":
            self._done(worker, match["job"] or "", json.loads(body or b"{}"))
            self._json(request, 200, {})
        elif action == "job-stop":
            with self.lock:
                self.lock.wait_for(lambda: self.stop_signals.get(worker) or self.stopped.is_set(), LONG_POLL_SECONDS)
                doomed = self.stop_signals.pop(worker, [])
            if doomed:
                self._json(request, 200, {"jobsToStop": doomed})
            else:
                self._answer(request, 204, b"", "application/json")
        else:
            self._json(request, 200, {"status": "pong"})

    def _take(self, worker: str) -> Job | None:
        """The oldest job a worker may take now, held for a while as RunPod's long poll does."""
        deadline = time.monotonic() + LONG_POLL_SECONDS
        with self.lock:
            while not self.stopped.is_set():
                job = next((job for job in self.jobs.values() if self._takeable(job)), None)
                if job is not None:
                    job.status, job.started, job.worker = "IN_PROGRESS", time.monotonic(), worker
                    return job
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(min(left, 0.1))
        return None

    def _takeable(self, job: Job) -> bool:
        if job.outcome.kind != "worker" or job.status != "IN_QUEUE" or job.id in self.vanished:
            return False
        if time.monotonic() - job.created < job.outcome.queue_seconds:
            return False
        return not job.low_priority or self._worker_awake()

    def _worker_awake(self) -> bool:
        """A scale-to-zero endpoint has a worker only while normal jobs keep one busy (or just after)."""
        normal = [job for job in self.jobs.values() if not job.low_priority and job.id not in self.vanished]
        busy = any(job.status in ("IN_QUEUE", "IN_PROGRESS") for job in normal)
        return busy or time.monotonic() - self.last_normal_job_at < IDLE_TIMEOUT_SECONDS

    def _done(self, worker: str, job_id: str, result: dict[str, Any]) -> None:
        """A worker's job-done post: progress while the job runs, else its result (ignored once the job ended)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return
            job.results.append(result)
            if job.id in self.vanished or job.status != "IN_PROGRESS" or job.worker != worker:
                return  # cancelled, timed out or deleted meanwhile: RunPod keeps what it has
            if result.get("status") == "IN_PROGRESS":
                job.output = result.get("output")
                return
            job.output, job.error = result.get("output"), result.get("error")
            self._finish(job, "FAILED" if job.error else "COMPLETED")
        self._report(job)

    def _stop_worker_of(self, job: Job) -> None:
        if job.worker is not None:
            self.stop_signals.setdefault(job.worker, []).append(job.id)
            self.lock.notify_all()

    def _finish(self, job: Job, status: str) -> None:
        job.status, job.finished = status, time.monotonic()
        if not job.low_priority:
            self.last_normal_job_at = job.finished

    # ---------- RunPod's limits ----------

    def _enforce_limits(self) -> None:
        """Delete jobs past their ttl, time out jobs past their executionTimeout, and stop their workers."""
        while not self.stopped.wait(0.05):
            timed_out = []
            with self.lock:
                now = time.monotonic()
                for job in list(self.jobs.values()):
                    if job.id in self.vanished:
                        continue
                    if now - job.created > job.ttl:
                        self.vanished.add(job.id)  # its data is gone, whatever its state: /status answers 404
                        if job.status == "IN_PROGRESS":
                            self._stop_worker_of(job)
                    elif job.status == "IN_PROGRESS" and job.started and now - job.started > job.execution_timeout:
                        self._finish(job, "TIMED_OUT")
                        self._stop_worker_of(job)
                        timed_out.append(job)
            for job in timed_out:
                self._report(job)

    # ---------- scripted jobs ----------

    def _scripted(self, job: Job) -> None:
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
        with self.lock:
            if job.cancelled or job.id in self.vanished or job.status != "IN_PROGRESS":
                return
            job.output, job.error = output, error
            self._finish(job, status)
        self._report(job)

    def _wait(self, job: Job, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if job.cancelled or job.id in self.vanished:
                return False
            time.sleep(0.05)
        return not job.cancelled and job.id not in self.vanished

    def _result(self, job: Job) -> tuple[Any, Any, str]:
        outcome = job.outcome
        count = max(len(job.input.get("outputs") or []), 1)
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
                images.append({"filename": name, "type": "s3_url", "data": outcome.output_url or self.file_url(name)})
            return {"images": images}, None, "COMPLETED"
        if outcome.kind == "legacy":
            name = f"{job.id}-legacy.png"
            self.files[name] = png(80)
            return {"status": "success", "message": outcome.output_url or self.file_url(name)}, None, "COMPLETED"
        if outcome.kind == "failed":
            output = {"details": outcome.details} if outcome.details else None
            return output, outcome.error, "FAILED"
        if outcome.kind == "timed_out":
            return None, None, "TIMED_OUT"
        if outcome.kind == "no_output":
            return None, None, "COMPLETED"
        raise ValueError(f"unknown outcome {outcome.kind}")

    def file_url(self, name: str) -> str:
        """Where this server serves a stock worker's image (the bucket such a worker would upload to)."""
        return f"{self.base}/files/{name}"

    # ---------- webhooks ----------

    def _report(self, job: Job) -> None:
        if not job.webhook or not job.outcome.send_webhook:
            return
        threading.Thread(target=self._deliveries, args=(job,), daemon=True).start()

    def _deliveries(self, job: Job) -> None:
        for _ in range(job.outcome.webhooks):
            self._deliver(job)
        if job.outcome.late_webhook_after is not None:
            threading.Timer(job.outcome.late_webhook_after, self._deliver, args=(job,)).start()

    def _deliver(self, job: Job) -> None:
        """POST the webhook body; on a non-200 answer retry twice more, as RunPod does."""
        assert job.webhook
        url = job.webhook + "x" if job.outcome.forge_token else job.webhook
        for attempt in range(3):
            try:
                status = requests.post(url, json=job.webhook_body(), timeout=10).status_code
            except requests.RequestException:
                status = 0
            job.deliveries.append(status)
            if status == 200:
                return
            if attempt < 2:
                time.sleep(self.webhook_retry_seconds)

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


@dataclass
class Bucket:
    """A bucket as a worker reaches it: only through presigned URLs (the tests look inside too)."""

    client: Any
    name: str

    def uploads(self, run: str, count: int) -> list[dict[str, str]]:
        """A job's `outputs`: a presigned PUT per image, with the key it writes."""
        keys = [f"renders/{run}/{i}.png" for i in range(count)]
        return [{"url": self._presign("put_object", key), "key": key} for key in keys]

    def source(self, key: str, data: bytes, name: str = "source-1.png") -> dict[str, Any]:
        """A source image in the bucket, as a job names it: a presigned GET and its size."""
        self.client.put_object(Bucket=self.name, Key=key, Body=data)
        return {"name": name, "url": self._presign("get_object", key), "bytes": len(data)}

    def keys(self, prefix: str) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def _presign(self, operation: str, key: str) -> str:
        params = {"Bucket": self.name, "Key": key}
        url: str = self.client.generate_presigned_url(operation, Params=params, ExpiresIn=300)
        return url


@contextmanager
def sdk_worker(server: RunPodServer, comfy_url: str, log: Path, worker_id: str = "worker-1") -> Iterator[None]:
    """Our worker (infra/runpod-worker/handler.py) under the runpod SDK's own job loop, in its own
    virtualenv, taking jobs from `server` as it takes them from RunPod; its ComfyUI is at `comfy_url`."""
    if not WORKER_PYTHON.exists():
        raise RuntimeError(f"{WORKER_PYTHON} is missing: `make worker-venv` creates the worker's virtualenv")
    env = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR") if name in os.environ}
    env["HOME"] = str(log.parent)  # no ~/.runpod credentials of whoever runs the tests
    env.update(server.worker_env(worker_id))
    env.update(
        COMFY_URL=comfy_url,
        COMFY_READY_SECONDS="10",
        PYTHONPATH=str(ROOT / "layers/common/python"),
        PYTHONUNBUFFERED="1",
        RUNPOD_SKIP_GPU_CHECK="true",  # no GPU here, and no system checks that reach the internet
        RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="true",
    )
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603
            [str(WORKER_PYTHON), str(ROOT / "infra/runpod-worker/handler.py")],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the SDK's ping process goes with it
        )
        try:
            deadline = time.monotonic() + 60
            while worker_id not in server.workers_seen:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start:\n{log.read_text()[-4000:]}")
                time.sleep(0.1)
            yield
        finally:
            _end(process)


def _end(process: subprocess.Popen[bytes]) -> None:
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _policy_problem(policy: dict[str, Any]) -> str | None:
    ttl, execution = policy.get("ttl"), policy.get("executionTimeout")
    if ttl is not None and not (isinstance(ttl, int) and MIN_TTL_MS <= ttl <= MAX_POLICY_MS):
        return f"policy.ttl must be between {MIN_TTL_MS} and {MAX_POLICY_MS} ms"
    if execution is not None and not (isinstance(execution, int) and MIN_EXECUTION_MS <= execution <= MAX_POLICY_MS):
        return f"policy.executionTimeout must be between {MIN_EXECUTION_MS} and {MAX_POLICY_MS} ms"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
