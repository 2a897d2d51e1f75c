"""The HttpApi on loopback: routes read from the translated template, requests handed to the handlers as
API Gateway HTTP API (payload format 2.0) events, responses written back as API Gateway would."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.cloud import ACCOUNT, Stack
from devstack.lambdas import FunctionError, LocalLambda

TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


class LocalHttpApi:
    def __init__(self, stack: Stack, local: LocalLambda, host: str, port: int) -> None:
        self.stack = stack
        self.local = local
        self.routes = [(route, route.pattern()) for route in stack.routes]
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                api.handle(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        match = self._match(request.command, url.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if match is None:
            self._write(
                request,
                {"statusCode": 404, "body": '{"message":"Not Found"}', "headers": {"content-type": "application/json"}},
            )
            return
        route, path_parameters = match
        event = self._event(request, route.method, route.path, url.path, url.query, path_parameters, body)
        try:
            response = self.local.invoke(self.stack.functions[route.function_logical_id], event)
        except FunctionError:
            response = {
                "statusCode": 500,
                "body": '{"message":"Internal Server Error"}',
                "headers": {"content-type": "application/json"},
            }
        self._write(request, response)

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
        content_type = headers.get("content-type", "")
        is_text = not body or content_type.startswith(TEXT_TYPES)
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
            event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
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
