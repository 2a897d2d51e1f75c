"""A self-hosted ComfyUI through its HTTP API: `POST /prompt`, `GET /history/{prompt_id}`, `GET /queue`,
`GET /view`, `POST /upload/image`, `POST /interrupt`, and progress from `/ws` when it can be reached.

The prompt id is ours (derived from the run id; ComfyUI accepts a client-chosen `prompt_id`), so before
anything is (re)submitted the backend is asked whether it knows the prompt already. Each prompt is queued
under a client id of its own (ComfyUI keeps one websocket per client id and sends a prompt's progress only
to the socket of the client id it was queued with), so concurrent watchers never take each other's socket."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from rendergate.backends import (
    CANCELLED,
    COMPLETED,
    FAILED,
    HEALTH_TIMEOUT,
    IN_PROGRESS,
    IN_QUEUE,
    NOT_FOUND,
    TIMEOUT,
    Capabilities,
    Health,
    JobState,
    Output,
    Submission,
    SubmitUncertain,
    send,
    session,
)
from rendergate.errors import RenderFailed, TransientError

PROMPT_NAMESPACE = uuid.UUID("5d0c6b1a-7e2f-4a3b-9c8d-1e2f3a4b5c6d")


def prompt_id_for(run_id: str) -> str:
    """Our prompt id for a run: the same on every attempt, so a resubmit can be checked first."""
    return str(uuid.uuid5(PROMPT_NAMESPACE, run_id))


class ComfyUI:
    name = "comfyui"
    capabilities = Capabilities(
        webhooks=False,
        lookup_by_run=True,  # the prompt id derives from the run id
        cancel=True,
        progress_socket=True,
        inputs_by_url=False,  # source images are uploaded with POST /upload/image
    )

    def __init__(self, url: str, client_id: str) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id  # each prompt's own client id starts with it (`client_id_for`)

    def client_id_for(self, prompt_id: str) -> str:
        """The client id a prompt is queued and watched under: one per prompt, the same in every process."""
        return f"{self.client_id}-{prompt_id}"

    def submit(self, submission: Submission) -> str:
        """Queue the graph under our prompt id, unless ComfyUI has it already. A refusal is RenderFailed, and
        so is a graph ComfyUI accepts only in part (it would render the valid outputs alone)."""
        prompt_id = prompt_id_for(submission.run_id)
        body: dict[str, Any] = {
            "prompt": submission.graph,
            "prompt_id": prompt_id,
            "client_id": self.client_id_for(prompt_id),
            "extra_data": {"rendergate_run_id": submission.run_id},
        }
        if submission.priority == "high":
            body["front"] = True  # ComfyUI queues it ahead of the others
        url = f"{self.url}/prompt"
        for _ in range(2):
            if self._knows(prompt_id):
                return prompt_id
            for name, data in submission.images.items():
                self._upload(name, data)
            try:
                response = send(lambda: session().post(url, json=body, timeout=TIMEOUT), "ComfyUI /prompt")
            except SubmitUncertain:
                continue  # our prompt id tells whether it arrived: ask before sending again
            if response.status_code == 400:
                raise RenderFailed(f"ComfyUI refused the workflow: {refusal_text(_json(response))}")
            if response.status_code >= 400:
                raise RenderFailed(f"ComfyUI /prompt answered HTTP {response.status_code}: {response.text[:500]}")
            answer = _json(response)
            queued = str(answer.get("prompt_id", prompt_id))
            if answer.get("node_errors"):
                # validate_prompt queues a graph whose outputs are partly valid, with the valid ones alone
                with contextlib.suppress(Exception):  # the refusal stands even when the prompt cannot be taken back
                    self.cancel(queued)
                raise RenderFailed(f"ComfyUI accepted only part of the workflow: {node_errors_text(answer)}")
            return queued
        if self._knows(prompt_id):
            return prompt_id
        raise SubmitUncertain(f"ComfyUI /prompt did not answer for prompt {prompt_id}")

    def status(self, job_id: str) -> JobState:
        """Where the prompt stands. The queue is asked before the history: ComfyUI moves a finished prompt
        from one to the other under one lock (`PromptQueue.task_done`), so a prompt the queue no longer
        shows is in the history by the time it is asked. A miss is asked again, for a prompt queued meanwhile."""
        for _ in range(2):
            state = self._lookup(job_id)
            if state is not None:
                return state
        return JobState(job_id, NOT_FOUND)

    def cancel(self, job_id: str) -> None:
        """Take the prompt off the queue, then interrupt it if it is the one running. In that order a prompt
        cannot start between the two requests and render for nothing."""
        self._post("/queue", {"delete": [job_id]})
        if job_id in _prompt_ids(self._get("/queue").get("queue_running", [])):
            self._post("/interrupt", {"prompt_id": job_id})  # ComfyUI ignores it once another prompt runs

    def health(self) -> Health:
        queue = self._get("/queue", timeout=HEALTH_TIMEOUT, attempts=1)
        running = len(queue.get("queue_running", []))
        return Health(
            queued=len(queue.get("queue_pending", [])),
            running=running,
            workers_idle=0 if running else 1,
            workers_running=1 if running else 0,
        )

    def fetch(self, output: Output) -> bytes:
        params = {"filename": output.filename or "", "subfolder": output.subfolder, "type": output.folder_type}
        url = f"{self.url}/view"
        response = send(lambda: session().get(url, params=params, timeout=TIMEOUT), "ComfyUI /view")
        if response.status_code >= 400:
            raise RenderFailed(f"ComfyUI has no image {output.filename!r}: HTTP {response.status_code}")
        return bytes(response.content)

    def watch(self, prompt_ids: list[str]) -> Watcher | None:
        """Listen on /ws for the progress of these prompts, one socket each under the prompt's own client id;
        None when no socket can be opened."""
        base = self.url.replace("http", "ws", 1) + "/ws?clientId="
        connections = {}
        with contextlib.suppress(Exception):  # progress is best effort: /history still tells when a prompt is done
            import websocket

            for prompt_id in prompt_ids:
                connections[prompt_id] = websocket.create_connection(base + self.client_id_for(prompt_id), timeout=3)
        return Watcher(connections) if connections else None

    def _lookup(self, job_id: str) -> JobState | None:
        queue = self._get("/queue")
        if job_id in _prompt_ids(queue.get("queue_running", [])):
            return JobState(job_id, IN_PROGRESS)
        if job_id in _prompt_ids(queue.get("queue_pending", [])):
            return JobState(job_id, IN_QUEUE, progress=0)
        entry = self._get(f"/history/{job_id}").get(job_id)
        return history_state(job_id, entry) if entry else None

    def _knows(self, prompt_id: str) -> bool:
        return self.status(prompt_id).status != NOT_FOUND

    def _upload(self, name: str, data: bytes) -> None:
        url = f"{self.url}/upload/image"
        files = {"image": (name, data, "application/octet-stream")}
        form = {"overwrite": "true", "type": "input"}
        response = send(lambda: session().post(url, files=files, data=form, timeout=TIMEOUT), "ComfyUI upload")
        if response.status_code >= 400:
            raise RenderFailed(f"ComfyUI refused the source image {name}: HTTP {response.status_code}")

    def _get(self, path: str, timeout: tuple[float, float] = TIMEOUT, attempts: int = 4) -> dict[str, Any]:
        url = f"{self.url}{path}"
        response = send(lambda: session().get(url, timeout=timeout), f"ComfyUI {path}", attempts)
        if response.status_code >= 400:
            raise TransientError(f"ComfyUI {path} answered HTTP {response.status_code}")
        body = response.json()
        return body if isinstance(body, dict) else {}

    def _post(self, path: str, body: dict[str, Any]) -> None:
        url = f"{self.url}{path}"
        send(lambda: session().post(url, json=body, timeout=TIMEOUT), f"ComfyUI {path}")


class Watcher:
    """Progress of prompts from ComfyUI's websocket, one socket per prompt: `progress` steps, and
    `executing` with no node (the prompt finished). A message without the prompt's id (the greeting a
    reconnecting client gets: the node running now) says nothing about how far the prompt is."""

    def __init__(self, connections: dict[str, Any]) -> None:
        self.connections = connections
        self.progress: dict[str, int] = {}

    def poll(self, seconds: float) -> dict[str, int]:
        """Read messages for up to `seconds`, the time shared between the sockets; return the latest
        progress (0-100) per prompt id."""
        deadline = time.monotonic() + seconds
        reading = list(self.connections.items())
        for position, (prompt_id, connection) in enumerate(reading):
            share = (deadline - time.monotonic()) / (len(reading) - position)
            if not self._read(prompt_id, connection, time.monotonic() + share):
                self.connections.pop(prompt_id)
                _close(connection)
        if not self.connections:
            time.sleep(max(0.0, deadline - time.monotonic()))  # keep the caller's pace once every socket is gone
        return dict(self.progress)

    def close(self) -> None:
        for connection in self.connections.values():
            _close(connection)
        self.connections.clear()

    def _read(self, prompt_id: str, connection: Any, until: float) -> bool:
        """Read one socket until `until`; False once it is closed."""
        import json

        from websocket import WebSocketTimeoutException

        while (left := until - time.monotonic()) > 0:
            connection.settimeout(left)
            try:
                message = connection.recv()
            except WebSocketTimeoutException:
                return True
            except Exception:  # the socket closed: /history still tells when the prompt is done
                return False
            if not isinstance(message, str):
                continue  # binary preview frames
            event = json.loads(message)
            data = event.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            if event.get("type") == "progress" and data.get("max"):
                self.progress[prompt_id] = max(self.progress.get(prompt_id, 0), 5 + 90 * data["value"] // data["max"])
            elif event.get("type") == "executing" and data.get("node") is None:
                self.progress[prompt_id] = 100
        return True


def _close(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken socket
        return


def history_state(prompt_id: str, entry: dict[str, Any]) -> JobState:
    """A `/history/{prompt_id}` entry as a JobState."""
    status = entry.get("status") or {}
    messages = {name: data for name, data in status.get("messages", []) if isinstance(data, dict)}
    timings = {}
    if "execution_start" in messages:
        end = messages.get("execution_success") or messages.get("execution_error") or {}
        if isinstance(end.get("timestamp"), int) and isinstance(messages["execution_start"].get("timestamp"), int):
            timings["execution_ms"] = end["timestamp"] - messages["execution_start"]["timestamp"]
    if "execution_interrupted" in messages:
        return JobState(prompt_id, CANCELLED, timings=timings, error="the prompt was interrupted")
    if status.get("status_str") == "error":
        return JobState(prompt_id, FAILED, timings=timings, error=execution_error_text(messages.get("execution_error")))
    if not status.get("completed", True):
        return JobState(prompt_id, IN_PROGRESS, timings=timings)
    outputs: list[Output] = []
    for node_id in sorted(entry.get("outputs", {}), key=_node_order):
        for image in entry["outputs"][node_id].get("images", []):
            if image.get("type") == "output":
                outputs.append(
                    Output(
                        index=len(outputs),
                        kind="comfyui",
                        filename=image.get("filename"),
                        subfolder=image.get("subfolder", ""),
                        folder_type="output",
                    )
                )
    return JobState(prompt_id, COMPLETED, progress=100, outputs=outputs, timings=timings)


def execution_error_text(data: dict[str, Any] | None) -> str:
    """ComfyUI's `execution_error`: which node raised what, and the traceback it sent."""
    if not data:
        return "ComfyUI reported an error without details"
    head = f"{data.get('node_type', 'a node')} (node {data.get('node_id', '?')}) raised "
    head += f"{data.get('exception_type', 'an exception')}: {data.get('exception_message', '')}".rstrip()
    traceback = "".join(data.get("traceback") or [])
    return f"{head}\n{traceback}".strip()


def refusal_text(body: dict[str, Any]) -> str:
    """A 400 from POST /prompt: the error, and each node's errors from `node_errors`."""
    error = body.get("error")
    parts = []
    if isinstance(error, dict):  # its details repeat the node errors, which are listed below with their node
        details = None if body.get("node_errors") else error.get("details")
        parts.append(": ".join(str(p) for p in (error.get("message"), details) if p))
    elif error:
        parts.append(str(error))
    parts.append(node_errors_text(body))
    return "; ".join(p for p in parts if p) or "no reason given"


def node_errors_text(body: dict[str, Any]) -> str:
    """Each node's errors from a /prompt answer's `node_errors`, naming the node and its class."""
    parts = []
    for node_id, node in (body.get("node_errors") or {}).items():
        name = f"node {node_id} ({node.get('class_type')})"
        problems = node.get("errors") or [{}]
        parts += [": ".join(str(p) for p in (name, e.get("message"), e.get("details")) if p) for e in problems]
    return "; ".join(parts)


def _prompt_ids(items: list[Any]) -> set[str]:
    return {str(item[1]) for item in items if isinstance(item, list) and len(item) > 1}


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:500]}
    return body if isinstance(body, dict) else {"error": str(body)}
