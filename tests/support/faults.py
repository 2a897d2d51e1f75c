"""AWS answering with errors, as the wire carries them: botocore parses and retries them itself."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any, Self

import requests
from botocore.awsrequest import AWSResponse

# What Step Functions answers when it throttles or fails inside (awsJson1_0 error bodies).
THROTTLED = (400, "ThrottlingException", "Rate exceeded")
INTERNAL = (500, "InternalFailure", "The request processing has failed because of an unknown error")
UNAVAILABLE = (503, "ServiceUnavailable", "Service Unavailable")
JSON_1_0 = {"Content-Type": "application/x-amz-json-1.0"}


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


class _Loopback:
    """An HTTP server on a free loopback port (`url`), serving on its own threads inside the `with` block."""

    server: ThreadingHTTPServer
    url: str

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Faults:
    """The answers still to give (status, error code, message); calls sees every request body sent (JSON
    bodies decoded). S3 (`rest-xml`) errors are XML, as S3 sends them; the others AWS JSON."""

    answers: list[tuple[int, str, str]]
    calls: list[Any] = field(default_factory=list)
    xml: bool = False

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        body = request.body or b"{}"
        self.calls.append(json.loads(body) if not self.xml else body)
        if not self.answers:
            return None  # through to the service
        status, code, message = self.answers.pop(0)
        if self.xml:
            error = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(error))
        return AWSResponse(
            request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(_error(code, message))
        )


@contextmanager
def failing(client: Any, operation: str, *answers: tuple[int, str, str]) -> Iterator[Faults]:
    """`client`'s `operation` first answers with `answers`, then reaches the service as usual."""
    faults = Faults(list(answers), xml=client.meta.service_model.protocol == "rest-xml")
    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register_first(event, faults)
    try:
        yield faults
    finally:
        client.meta.events.unregister(event, faults)


class FaultyProxy(_Loopback):
    """An HTTP proxy on loopback in front of moto that answers chosen operations of an AWS JSON protocol
    (by X-Amz-Target) with errors, so a stack pointed at it (`AWS_ENDPOINT_URL_SFN`) meets them for real."""

    def __init__(self) -> None:
        self.target = ""  # moto's URL, known once the stack is up
        self.failing: dict[str, tuple[int, str, str]] = {}
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                proxy.calls.append(operation)
                if operation in proxy.failing:
                    status, code, message = proxy.failing[operation]
                    self._answer(status, JSON_1_0, _error(code, message))
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                forwarded = requests.post(proxy.target + self.path, data=body, headers=headers, timeout=60)
                self._answer(
                    forwarded.status_code, {"Content-Type": forwarded.headers["Content-Type"]}, forwarded.content
                )

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._listen(Handler)


def _error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


class FlakyFront(_Loopback):
    """An HTTP front on loopback for any server: the first requests meet the scripted failures (a status code,
    as a gateway answers when its backend fails, or a number of seconds as a float: the request reaches the
    server only that late, after the client gave up), the rest are forwarded to `target`. `seen` keeps each
    request's headers, `answered` the server's status for each request forwarded."""

    def __init__(self, target: str, *failures: int | float) -> None:
        self.target = target
        self.failures = list(failures)
        self.seen: list[dict[str, str]] = []
        self.answered: list[int] = []
        self.idle = threading.Semaphore(0)  # released once per request forwarded
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                front.seen.append(dict(self.headers.items()))
                failure = front.failures.pop(0) if front.failures else None
                if isinstance(failure, int):
                    self._answer(failure, b'{"message": "Service Unavailable"}')
                    return
                if isinstance(failure, float):
                    time.sleep(failure)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                forwarded = requests.post(front.target + self.path, data=body, headers=headers, timeout=60)
                front.answered.append(forwarded.status_code)
                front.idle.release()
                with contextlib.suppress(OSError):  # a late answer finds its client gone
                    self._answer(forwarded.status_code, forwarded.content)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._listen(Handler)
