"""A self-hosted ComfyUI through its HTTP API: `POST /prompt`, `GET /history/{prompt_id}`, `GET /queue`,
`GET /view`, `POST /upload/image`, `POST /interrupt`, and progress from `/ws` when it can be reached.

The prompt id is ours (derived from the run id; ComfyUI accepts a client-chosen `prompt_id`), so before
anything is (re)submitted the backend is asked whether it knows the prompt already."""

from __future__ import annotations

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
        self.client_id = client_id

    def submit(self, submission: Submission) -> str:
        """Queue the graph under our prompt id, unless ComfyUI has it already. 400 answers are RenderFailed."""
        prompt_id = prompt_id_for(submission.run_id)
        body: dict[str, Any] = {
            "prompt": submission.graph,
            "prompt_id": prompt_id,
            "client_id": self.client_id,
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
            return str(response.json().get("prompt_id", prompt_id))
        if self._knows(prompt_id):
            return prompt_id
        raise SubmitUncertain(f"ComfyUI /prompt did not answer for prompt {prompt_id}")

    def status(self, job_id: str) -> JobState:
        entry = self._get(f"/history/{job_id}").get(job_id)
        if entry:
            return history_state(job_id, entry)
        queue = self._get("/queue")
        if job_id in _prompt_ids(queue.get("queue_running", [])):
            return JobState(job_id, IN_PROGRESS)
        if job_id in _prompt_ids(queue.get("queue_pending", [])):
            return JobState(job_id, IN_QUEUE, progress=0)
        return JobState(job_id, NOT_FOUND)

    def cancel(self, job_id: str) -> None:
        """Take a queued prompt off the queue, or interrupt it when it is the one running."""
        queue = self._get("/queue")
        if job_id in _prompt_ids(queue.get("queue_pending", [])):
            self._post("/queue", {"delete": [job_id]})
        elif job_id in _prompt_ids(queue.get("queue_running", [])):
            self._post("/interrupt", {"prompt_id": job_id})

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

    def watch(self) -> Watcher | None:
        """Listen on /ws for progress of the prompts we queued; None when the socket cannot be opened."""
        try:
            import websocket

            socket_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
            return Watcher(websocket.create_connection(socket_url, timeout=3))
        except Exception:  # progress is best effort: /history still tells when a prompt is done
            return None

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
    """Progress of our prompts from ComfyUI's websocket: `progress` steps, and `executing` with no node
    (the prompt finished)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.progress: dict[str, int] = {}

    def poll(self, seconds: float) -> dict[str, int]:
        """Read messages for up to `seconds`; return the latest progress (0-100) per prompt id."""
        import json

        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.connection.settimeout(left)
            try:
                message = self.connection.recv()
            except Exception:  # a timeout, or the socket closed: what we have is what we know
                break
            if not isinstance(message, str):
                continue  # binary preview frames
            event = json.loads(message)
            data = event.get("data") or {}
            prompt_id = data.get("prompt_id")
            if event.get("type") == "progress" and prompt_id and data.get("max"):
                self.progress[prompt_id] = max(self.progress.get(prompt_id, 0), 5 + 90 * data["value"] // data["max"])
            elif event.get("type") == "executing" and prompt_id and data.get("node") is None:
                self.progress[prompt_id] = 100
        return dict(self.progress)

    def close(self) -> None:
        try:
            self.connection.close()
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
    node_errors = body.get("node_errors") or {}
    parts = []
    if isinstance(error, dict):  # its details repeat the node errors, which are listed below with their node
        details = None if node_errors else error.get("details")
        parts.append(": ".join(str(p) for p in (error.get("message"), details) if p))
    elif error:
        parts.append(str(error))
    for node_id, node in node_errors.items():
        for problem in node.get("errors", []):
            parts.append(
                f"node {node_id} ({node.get('class_type')}): {problem.get('message')}: {problem.get('details')}"
            )
    return "; ".join(p for p in parts if p) or "no reason given"


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
