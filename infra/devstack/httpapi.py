"""The HttpApi on loopback: routes read from the translated template, requests handed to the handlers as
API Gateway HTTP API (payload format 2.0) events, responses written back as API Gateway would. Routes behind
a Lambda authoriser get its verdict first (`devstack.authorizer`), as API Gateway gives it.

Bodies reach the handler as API Gateway HTTP APIs deliver them: as text only when the Content-Type is
text/*, application/json, application/xml or application/javascript (form posts and a missing type are
base64, `isBase64Encoded: true`); a body that is not valid UTF-8 is base64 whatever its type, since an
event, being JSON, cannot carry those bytes as text."""

from __future__ import annotations

import base64
import json
import threading
import time
import traceback
import uuid
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.authorizer import GatewayAuthorizer
from devstack.cloud import ACCOUNT, Stack
from devstack.lambdas import FunctionError, LocalLambda

TEXT_TYPES = ("application/json", "application/xml", "application/javascript")
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for HTTP APIs
GATEWAY_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}


class GatewayServer(ThreadingHTTPServer):
    """API Gateway takes many connections at once; the standard library's listen backlog of 5 resets the rest."""

    request_queue_size = 128


class LocalHttpApi:
    def __init__(self, stack: Stack, local: LocalLambda, host: str, port: int) -> None:
        self.stack = stack
        self.local = local
        self.routes = [(route, route.pattern()) for route in stack.routes]
        self.authorizers = {
            name: GatewayAuthorizer(config, partial(local.invoke, stack.functions[config.function_logical_id]))
            for name, config in stack.authorizers.items()
        }
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                try:
                    api.handle(self)
                except Exception:  # answer as API Gateway would; a dropped connection tells a client nothing
                    traceback.print_exc()
                    api.gateway_error(self, 500)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = GatewayServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        match = self._match(request.command, url.path)
        length = request.headers.get("Content-Length") or "0"
        if not length.isdecimal():
            request.close_connection = True
            self.gateway_error(request, 400)
            return
        if int(length) > MAX_BODY_BYTES:
            request.close_connection = True  # the body is left unread
            self.gateway_error(request, 413)
            return
        body = request.rfile.read(int(length)) if int(length) else b""
        if match is None:
            self.gateway_error(request, 404)
            return
        route, path_parameters = match
        event = self._event(request, route.method, route.path, url.path, url.query, path_parameters, body)
        if route.authorizer is not None:
            verdict = self.authorizers[route.authorizer].authorise(event)
            if verdict.status is not None:
                self.gateway_error(request, verdict.status)
                return
            event["requestContext"]["authorizer"] = {"lambda": verdict.context}
        try:
            response = self.local.invoke(self.stack.functions[route.function_logical_id], event)
        except FunctionError:
            self.gateway_error(request, 500)
            return
        self._write(request, response)

    def gateway_error(self, request: BaseHTTPRequestHandler, status: int) -> None:
        """An answer API Gateway gives itself, without the function: `{"message": ...}`."""
        body = json.dumps({"message": GATEWAY_ERRORS[status]})
        self._write(request, {"statusCode": status, "body": body, "headers": {"content-type": "application/json"}})

    def _match(self, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
        for route, pattern in self.routes:
            found = pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        method: str,
        route_path: str,
        path: str,
        query: str,
        path_parameters: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        query_parameters: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            query_parameters[name] = f"{query_parameters[name]},{value}" if name in query_parameters else value
        text = body_text(headers.get("content-type", ""), body)
        is_text = text is not None
        now = time.time()
        route_key = f"{method} {route_path}"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "devstack",
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": "devstack",
                "http": {
                    "method": request.command,
                    "path": path,
                    "protocol": request.request_version,
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": not is_text,
        }
        if "cookie" in headers:
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
        if query_parameters:
            event["queryStringParameters"] = query_parameters
        if path_parameters:
            event["pathParameters"] = path_parameters
        if body:
            event["body"] = text if text is not None else base64.b64encode(body).decode()
        return event

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, response: dict[str, Any]) -> None:
        raw = response.get("body") or ""
        body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
        request.send_response(int(response.get("statusCode", 200)))
        headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(str(v) for v in values)
        headers.setdefault("content-type", "application/json")
        headers["content-length"] = str(len(body))
        for name, value in headers.items():
            request.send_header(name, value)
        for cookie in response.get("cookies") or []:
            request.send_header("set-cookie", cookie)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


def body_text(content_type: str, body: bytes) -> str | None:
    """The body as the event's text, or None when it goes base64-encoded (not a text type, or not UTF-8)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return ""
    if not (media_type.startswith("text/") or media_type in TEXT_TYPES):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None
