"""A CPU renderer that speaks ComfyUI's HTTP API, for the local stack and the tests (DESIGN §5).

Routes as ComfyUI serves them (also under `/api`): `POST /prompt` → `{prompt_id, number, node_errors}`
or a 400 `{error, node_errors}`; `GET /prompt`; `GET|POST /queue`; `GET /history[/{prompt_id}]`;
`GET /view?filename&subfolder&type`; `POST /upload/image`; `POST /interrupt`; `GET /object_info`;
`GET /system_stats`; and the `/ws?clientId=` websocket with `status`, `execution_start`, `executing`,
`progress`, `executed`, `execution_success`, `execution_error` and `execution_interrupted` messages.
Prompts run one at a time, in queue order; the pictures come from `cpu_nodes`.

Where rendergate depends on it, it behaves as ComfyUI 0.8 does, awkward parts included (server.py,
execution.py and main.py): one websocket per client id, a new connection replacing the old one and the
close of either dropping whichever holds the id (`websocket_handler`); a prompt's messages go only to
the socket of the client id it was queued with; a client connecting mid-prompt is greeted with
`executing {node}` and no prompt id; a finished prompt leaves the queue and enters the history under one
lock (`PromptQueue.task_done`), and only then is `executing` with no node sent (`prompt_worker`).
Two hooks let tests stop the renderer at the moments that matter: `answering(method, path)` runs after an
answer is made and before it is sent, `stepping(prompt_id, step, steps)` after each sampling step."""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import shutil
import struct
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack import cpu_nodes

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(order=True)
class QueueItem:
    number: float
    order: int
    prompt_id: str = field(compare=False)
    prompt: dict[str, Any] = field(compare=False)
    extra_data: dict[str, Any] = field(compare=False)
    outputs: list[str] = field(compare=False)

    def as_list(self) -> list[Any]:
        """The queue entry as ComfyUI lists it: [number, prompt_id, prompt, extra_data, outputs]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class WebSocket:
    """The server side of one websocket: text frames out, and the client's close and ping honoured."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self.open = True

    def send_json(self, message: dict[str, Any]) -> None:
        self._send(0x1, json.dumps(message).encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        with self.lock:
            if not self.open:
                return
            try:
                self.connection.sendall(header + payload)
            except OSError:
                self.open = False

    def serve(self, read: Any) -> None:
        """Read the client's frames until it closes: answer pings, ignore text."""
        while self.open:
            head = read(2)
            if len(head) < 2:
                break
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", read(8))[0]
            mask = read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read(length)))
            if opcode == 0x8:
                self._send(0x8, payload[:2])
                break
            if opcode == 0x9:
                self._send(0xA, payload)
        self.open = False


class CpuComfyUI:
    """ComfyUI's HTTP API on loopback, rendering on the CPU. `start()` serves it; `url` is where."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8188, step_seconds: float = 0.01) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cpu-comfyui-"))
        self.input_dir, self.output_dir, self.temp_dir = (self.root / d for d in ("input", "output", "temp"))
        for folder in (self.input_dir, self.output_dir, self.temp_dir):
            folder.mkdir()
        self.step_seconds = step_seconds
        self.cond = threading.Condition()
        self.queue: list[QueueItem] = []
        self.running: QueueItem | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, WebSocket] = {}
        self.connected: list[str] = []  # the client id of every websocket accepted, in order
        self.client_id: str | None = None  # the client of the prompt executing last (PromptServer.client_id)
        self.last_node_id: str | None = None  # the node executing now, for a client that reconnects
        self.answering: Callable[[str, str], None] | None = None
        self.stepping: Callable[[str, int, int], None] | None = None
        self.counters: dict[str, int] = {}
        self.number = 0
        self.order = 0
        self.interrupt = threading.Event()
        self.stopped = threading.Event()
        renderer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                renderer.handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def start(self) -> CpuComfyUI:
        threading.Thread(target=self.server.serve_forever, daemon=True, name="cpu-comfyui-http").start()
        threading.Thread(target=self._work, daemon=True, name="cpu-comfyui-worker").start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        with self.cond:
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---------- HTTP ----------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        path = url.path.removeprefix("/api") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if path == "/ws" and request.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket(request, query.get("clientId") or uuid.uuid4().hex)
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        route = (request.command, path)
        try:
            if route == ("POST", "/prompt"):
                status, answer = self._post_prompt(json.loads(body or b"{}"))
            elif route == ("GET", "/prompt"):
                status, answer = 200, {"exec_info": {"queue_remaining": self._remaining()}}
            elif route == ("GET", "/queue"):
                status, answer = 200, self._queue_view()
            elif route == ("POST", "/queue"):
                status, answer = 200, self._post_queue(json.loads(body or b"{}"))
            elif route == ("POST", "/interrupt"):
                status, answer = 200, self._post_interrupt(json.loads(body or b"{}") if body else {})
            elif request.command == "GET" and path.startswith("/history"):
                status, answer = 200, self._history(path.removeprefix("/history").strip("/"))
            elif route == ("POST", "/history"):
                status, answer = 200, self._post_history(json.loads(body or b"{}"))
            elif route == ("GET", "/view"):
                self._view(request, query)
                return
            elif route == ("POST", "/upload/image"):
                status, answer = self._upload(request.headers.get("Content-Type", ""), body)
            elif route == ("GET", "/object_info"):
                status, answer = 200, cpu_nodes.object_info()
            elif route == ("GET", "/system_stats"):
                status, answer = 200, self._system_stats()
            elif route == ("GET", "/"):
                self._write(
                    request, 200, b"<!doctype html><title>ComfyUI (rendergate CPU renderer)</title>", "text/html"
                )
                return
            else:
                status, answer = 404, {"error": "not found"}
        except json.JSONDecodeError:
            status, answer = 400, {"error": "the body is not JSON"}
        if self.answering is not None:
            self.answering(request.command, path)
        self._write(request, status, json.dumps(answer).encode(), "application/json")

    def _post_prompt(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return 400, {"error": error, "node_errors": {}}
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        checked = cpu_nodes.validate(body["prompt"], self.input_dir)
        if not checked.ok:
            return 400, {"error": checked.error, "node_errors": checked.node_errors}
        extra_data = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        with self.cond:
            number = float(body["number"]) if "number" in body else self.number
            if "number" not in body:
                number = -number if body.get("front") else number
                self.number += 1
            self.order += 1
            item = QueueItem(number, self.order, prompt_id, body["prompt"], extra_data, checked.outputs)
            heapq.heappush(self.queue, item)
            self.cond.notify_all()
        self._broadcast_status()
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": checked.node_errors}

    def _queue_view(self) -> dict[str, Any]:
        with self.cond:
            running = [self.running.as_list()] if self.running else []
            return {"queue_running": running, "queue_pending": [item.as_list() for item in sorted(self.queue)]}

    def _post_queue(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.cond:
            if body.get("clear"):
                self.queue.clear()
            doomed = set(body.get("delete") or [])
            self.queue = [item for item in self.queue if item.prompt_id not in doomed]
            heapq.heapify(self.queue)
        self._broadcast_status()
        return {}

    def _post_interrupt(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.cond:
            wanted = body.get("prompt_id")
            if self.running and (wanted is None or wanted == self.running.prompt_id):
                self.interrupt.set()
        return {}

    def _history(self, prompt_id: str) -> dict[str, Any]:
        with self.cond:
            if prompt_id:
                return {prompt_id: self.history[prompt_id]} if prompt_id in self.history else {}
            return dict(self.history)

    def _post_history(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.cond:
            if body.get("clear"):
                self.history.clear()
            for prompt_id in body.get("delete") or []:
                self.history.pop(prompt_id, None)
        return {}

    def _view(self, request: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        folder = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}.get(
            query.get("type", "output")
        )
        filename = query.get("filename", "")
        if folder is None or not filename or filename.startswith("/") or ".." in filename:
            self._write(request, 400, b"", "text/plain")
            return
        path = (folder / query.get("subfolder", "") / filename).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            self._write(request, 404, b"", "text/plain")
            return
        self._write(request, 200, path.read_bytes(), "image/png")

    def _upload(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        image = fields.get("image")
        if not image or not image[0] or "/" in image[0] or image[0].startswith("."):
            return 400, {"error": "send the file as the 'image' field with a plain file name"}
        folder = {"input": self.input_dir, "temp": self.temp_dir}.get(
            _text(fields.get("type")) or "input", self.input_dir
        )
        (folder / image[0]).write_bytes(image[1] or b"")
        return 200, {"name": image[0], "subfolder": "", "type": _text(fields.get("type")) or "input"}

    def _system_stats(self) -> dict[str, Any]:
        return {
            "system": {"os": sys.platform, "comfyui_version": "rendergate-cpu", "python_version": sys.version},
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0}],
        }

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    # ---------- websocket ----------

    def _websocket(self, request: BaseHTTPRequestHandler, client_id: str) -> None:
        key = request.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()  # noqa: S324
        request.send_response(101, "Switching Protocols")
        request.send_header("Upgrade", "websocket")
        request.send_header("Connection", "Upgrade")
        request.send_header("Sec-WebSocket-Accept", accept)
        request.end_headers()
        request.wfile.flush()
        socket = WebSocket(request.connection)
        with self.cond:
            # websocket_handler: the new socket takes the id; the old one stays open but hears nothing more
            self.sockets[client_id] = socket
            self.connected.append(client_id)
            executing = self.last_node_id if self.client_id == client_id else None
        socket.send_json({"type": "status", "data": {"status": self._status(), "sid": client_id}})
        if executing is not None:  # the running prompt's client reconnected: the node, without a prompt id
            socket.send_json({"type": "executing", "data": {"node": executing}})
        try:
            socket.serve(request.rfile.read)
        finally:
            with self.cond:
                self.sockets.pop(client_id, None)  # as ComfyUI does: even when another socket holds the id now
            request.close_connection = True

    def _send(self, client_id: str | None, kind: str, data: dict[str, Any]) -> None:
        if client_id is None:
            return
        with self.cond:
            socket = self.sockets.get(client_id)
        if socket is not None:
            socket.send_json({"type": kind, "data": data})

    def _broadcast_status(self) -> None:
        with self.cond:
            sockets = list(self.sockets.values())
        for socket in sockets:
            socket.send_json({"type": "status", "data": {"status": self._status()}})

    def _status(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self._remaining()}}

    def _remaining(self) -> int:
        with self.cond:
            return len(self.queue) + (1 if self.running else 0)

    # ---------- execution ----------

    def _work(self) -> None:
        while not self.stopped.is_set():
            with self.cond:
                while not self.queue and not self.stopped.is_set():
                    self.cond.wait(timeout=0.5)
                if self.stopped.is_set():
                    return
                item = heapq.heappop(self.queue)
                self.running = item
                self.client_id = item.extra_data.get("client_id")
                self.interrupt.clear()
            self._broadcast_status()
            entry = self._execute(item)
            with self.cond:  # task_done: out of the queue and into the history under the one lock
                self.history[item.prompt_id] = entry
                self.running = None
            self._broadcast_status()
            self._send(item.extra_data.get("client_id"), "executing", {"node": None, "prompt_id": item.prompt_id})

    def _execute(self, item: QueueItem) -> dict[str, Any]:
        client_id = item.extra_data.get("client_id")
        messages: list[list[Any]] = []

        def note(kind: str, data: dict[str, Any]) -> None:
            data = {**data, "prompt_id": item.prompt_id, "timestamp": int(time.time() * 1000)}
            messages.append([kind, data])
            self._send(client_id, kind, data)

        def send(kind: str, data: dict[str, Any]) -> None:
            if kind == "executing":
                self.last_node_id = data["node"]
            self._send(client_id, kind, data)

        def stepped(step: int, steps: int) -> None:
            if self.stepping is not None:
                self.stepping(item.prompt_id, step, steps)

        run = cpu_nodes.Run(
            prompt_id=item.prompt_id,
            prompt=item.prompt,
            input_dir=self.input_dir,
            output_dir=self.output_dir,
            temp_dir=self.temp_dir,
            step_seconds=self.step_seconds,
            send=send,
            interrupted=self.interrupt.is_set,
            next_filename=self._next_filename,
            stepped=stepped,
        )
        note("execution_start", {})
        note("execution_cached", {"nodes": []})
        status = {"status_str": "success", "completed": True}
        try:
            cpu_nodes.execute(run, item.outputs)
            note("execution_success", {})
        except cpu_nodes.Interrupted:
            node_id = run.executed[-1] if run.executed else None
            node_type = item.prompt[node_id]["class_type"] if node_id else None
            note("execution_interrupted", {"node_id": node_id, "node_type": node_type, "executed": run.executed})
            status = {"status_str": "error", "completed": False}
        except cpu_nodes.NodeFailure as failure:
            error = failure.error
            note(
                "execution_error",
                {
                    "node_id": failure.node_id,
                    "node_type": failure.node_type,
                    "executed": run.executed,
                    "exception_message": str(error),
                    "exception_type": f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins."),
                    "traceback": traceback.format_tb(error.__traceback__),
                    "current_inputs": {},
                    "current_outputs": {},
                },
            )
            status = {"status_str": "error", "completed": False}
        self.last_node_id = None
        meta = {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in run.outputs_ui}
        return {
            "prompt": item.as_list(),
            "outputs": run.outputs_ui,
            "status": {**status, "messages": messages},
            "meta": meta,
        }

    def _next_filename(self, prefix: str) -> str:
        with self.cond:
            self.counters[prefix] = self.counters.get(prefix, 0) + 1
            return f"{prefix}_{self.counters[prefix]:05d}_.png"


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        data = value[1]
        return data.decode() if isinstance(data, bytes) else str(data or "")
    return str(value or "")


def main() -> int:
    """`python -m devstack.comfyui [--port 8188]`: the CPU renderer on its own."""
    import argparse

    parser = argparse.ArgumentParser(prog="devstack.comfyui", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    args = parser.parse_args()
    renderer = CpuComfyUI(args.host, args.port).start()
    print(f"CPU ComfyUI renderer on {renderer.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        renderer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
