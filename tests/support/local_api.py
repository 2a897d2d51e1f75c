"""Some of the HTTP API on loopback for unit tests: real HTTP requests become API Gateway (2.0) events for the
functions' handlers, which run in this process against in-process moto (the devstack does this for all
routes, in its own process)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.handlers import respond

ROUTES = [
    ("POST", re.compile(r"^/uploads$"), "presign"),
    ("POST", re.compile(r"^/webhooks/comfy$"), "inbound"),
    ("POST", re.compile(r"^/webhooks/minio$"), "inbound"),
    ("GET", re.compile(r"^/runs/[^/]+$"), "runs"),
]


@contextmanager
def local_api() -> Iterator[str]:
    """Serve the routes above on a free loopback port; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            function = next((f for m, p, f in ROUTES if m == self.command and p.match(self.path)), None)
            if function is None:
                self._answer({"statusCode": 404, "body": json.dumps({"message": "Not Found"})})
                return
            text: str | bytes = body.decode() if _is_text(self.headers.get("Content-Type", ""), body) else body
            self._answer(respond(function, self.command, self.path, text or None, dict(self.headers.items())))

        do_POST = do_GET

        def _answer(self, response: dict[str, Any]) -> None:
            payload = str(response.get("body") or "").encode()
            self.send_response(int(response["statusCode"]))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _is_text(content_type: str, body: bytes) -> bool:
    if not content_type.startswith("application/json"):
        return False
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True
