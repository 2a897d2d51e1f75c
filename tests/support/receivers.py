"""The peers deliveries go to, on loopback, each as strict as the real one where our code depends on it:
a Standard Webhooks receiver that verifies with the reference `standardwebhooks` library; Discord's
execute-webhook (`?wait=true` answers the saved message; embed limits, `allowed_mentions`, multipart
`payload_json` + `files[n]` with `attachment://` references, a per-webhook rate limit that answers 429 with
a float `retry_after`, and a deleted webhook's 404); Jellyfin's `POST /Library/Media/Updated` (its
`Authorization: MediaBrowser Token="…"` parsing, URL-decoding included; the legacy `X-Emby-Token` ignored, as
current Jellyfin does by default); and Kodi's JSON-RPC over HTTP (basic auth, the exact Content-Types it
takes, JSON-RPC 2.0 envelopes, `VideoLibrary.Scan`'s parameters).

Every stand-in records what it saw and can be scripted: answer a status, drop the connection without an
answer, hold a request until released, or be down altogether (stopped, then started on the same port)."""

from __future__ import annotations

import io
import itertools
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

DROP = "drop"  # close the connection without an answer: the sender cannot know what happened
HOLD = "hold"  # keep the request waiting until `release()`, then answer as usual
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


class StandIn:
    """A peer on 127.0.0.1. Subclasses say how the real one answers (`answer`); scripted steps come first."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.seen: list[Seen] = []
        self.holding = 0
        self._script: list[Any] = []
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandIn:
        """Listen (again, on the same port once it has one)."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._handle(self)

            do_GET = do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def script(self, *steps: Any) -> None:
        """Answer the next requests with these steps (a status, an (status, headers, body) answer, DROP or
        HOLD), one each, before answering as the real peer does."""
        with self._lock:
            self._script.extend(steps)

    def release(self) -> None:
        self._released.set()

    def answer(self, seen: Seen) -> Answer:
        raise NotImplementedError

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        parts = urllib.parse.urlsplit(request.path)
        seen = Seen(
            request.command,
            parts.path,
            urllib.parse.parse_qs(parts.query, keep_blank_values=True),
            {name.lower(): value for name, value in request.headers.items()},
            request.rfile.read(length),
        )
        with self._lock:
            self.seen.append(seen)
            step = self._script.pop(0) if self._script else None
        if step == DROP:
            request.close_connection = True
            return
        if step == HOLD:
            with self._lock:
                self.holding += 1
            self._released.wait(60)
            with self._lock:
                self.holding -= 1
            step = None
        status, headers, body = self.answer(seen) if step is None else _as_answer(step)
        request.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.release()
        self.stop()


def _as_answer(step: Any) -> Answer:
    if isinstance(step, int):
        return step, {}, b""
    status, headers, body = step
    return status, headers, body if isinstance(body, bytes) else json.dumps(body).encode()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


class WebhookReceiver(StandIn):
    """A Standard Webhooks listener (what an n8n workflow or any service does): it verifies every request
    with the reference library, within its five-minute tolerance, and keeps what verified."""

    def __init__(self, secret: str, port: int = 0) -> None:
        super().__init__(port)
        self.secret = secret
        self.verified: list[dict[str, Any]] = []
        self.refused = 0

    def target(self, name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "kind": "webhook", "url": f"{self.url}/hooks/rendergate", "secret": self.secret, **extra}

    def answer(self, seen: Seen) -> Answer:
        try:
            payload = Webhook(self.secret).verify(seen.body, seen.headers)
        except (WebhookVerificationError, ValueError):  # the library raises ValueError on malformed headers
            with self._lock:
                self.refused += 1
            return 401, {}, b"signature refused"
        with self._lock:
            self.verified.append({"webhook-id": seen.headers["webhook-id"], **payload})
        return 204, {}, b""


class Discord(StandIn):
    """Discord's execute-webhook for one webhook (`/api/webhooks/{id}/{token}`)."""

    TITLE, DESCRIPTION, FIELDS, FIELD_NAME, FIELD_VALUE, FOOTER, AUTHOR, TOTAL = (
        256,
        4096,
        25,
        256,
        1024,
        2048,
        256,
        6000,
    )
    MAX_FILE_BYTES = 10 * 1024 * 1024
    ATTACHABLE = (".png", ".jpg", ".jpeg", ".webp", ".gif")

    def __init__(self, port: int = 0, per_window: int = 5, window_seconds: float = 2.0) -> None:
        super().__init__(port)
        self.webhook_id, self.token = "1130000000000000001", "tOkEn-abc_123"
        self.exists = True
        self.messages: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}  # attachment url -> bytes
        self.per_window, self.window_seconds = per_window, window_seconds
        self._accepted: list[float] = []
        self._ids = itertools.count(1240000000000000001)

    def target(self, name: str, **extra: Any) -> dict[str, Any]:
        url = f"{self.url}/api/webhooks/{self.webhook_id}/{self.token}"
        return {"name": name, "kind": "discord", "url": url, **extra}

    def rate_limit(self, retry_after: float) -> None:
        """The next request meets a rate limit that resets after `retry_after` seconds."""
        headers = {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": "shared"}
        self.script((429, {"Content-Type": "application/json", **headers}, _rate_limited(retry_after)))

    def delete_webhook(self) -> None:
        """Someone deleted the webhook in Discord: from now on it is 404 Unknown Webhook."""
        self.exists = False

    def answer(self, seen: Seen) -> Answer:
        route = seen.path.split("/")
        if len(route) < 5 or route[-3] != "webhooks" or seen.method != "POST":
            return _json(404, {"message": "404: Not Found", "code": 0})
        if not self.exists or route[-2] != self.webhook_id:
            return _json(404, {"message": "Unknown Webhook", "code": 10015})
        if route[-1] != self.token:
            return _json(401, {"message": "Invalid Webhook Token", "code": 50027})
        waited = self._rate(seen)
        if waited is not None:
            return waited
        try:
            payload, files = self._payload(seen)
        except _Invalid as invalid:
            return _json(invalid.status, invalid.body)
        errors = self._check(payload, files) | self._flags_and_components(payload, seen)
        if errors:
            return _json(400, {"code": 50035, "errors": errors, "message": "Invalid Form Body"})
        if seen.query.get("with_components", ["false"])[-1] != "true":
            payload.pop("components", None)  # a webhook no application owns: ignored without with_components
        message = self._save(payload, files)
        wait = seen.query.get("wait", ["false"])[-1]
        if wait in ("true", "True", "1"):
            return _json(200, message)
        return 204, {}, b""

    def _rate(self, seen: Seen) -> Answer | None:
        with self._lock:
            now = time.monotonic()
            self._accepted = [at for at in self._accepted if at > now - self.window_seconds]
            if len(self._accepted) >= self.per_window:
                retry_after = round(self._accepted[0] + self.window_seconds - now, 3)
                headers = {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Remaining": "0"}
                return 429, {"Content-Type": "application/json", **headers}, _rate_limited(retry_after)
            self._accepted.append(now)
        return None

    def _payload(self, seen: Seen) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        content_type = seen.headers.get("content-type", "")
        if content_type.split(";")[0].strip() == "application/json":
            try:
                payload = json.loads(seen.body)
            except ValueError:
                raise _Invalid(400, {"code": 50109, "message": "The request body contains invalid JSON."}) from None
            return (payload if isinstance(payload, dict) else {}), {}
        if content_type.startswith("multipart/form-data"):
            from werkzeug.formparser import parse_form_data

            environ = {
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": content_type,
                "CONTENT_LENGTH": str(len(seen.body)),
                "wsgi.input": io.BytesIO(seen.body),
            }
            _, form, uploaded = parse_form_data(environ)
            files = {}
            for key, upload in uploaded.items():
                data = upload.read()
                if len(data) > self.MAX_FILE_BYTES:
                    raise _Invalid(413, {"code": 40005, "message": "Request entity too large"})
                if not key.startswith("files[") or not upload.filename:
                    raise _Invalid(400, {"code": 50035, "message": "Invalid Form Body"})
                files[key[6:-1]] = (upload.filename, data)
            payload = json.loads(form["payload_json"]) if "payload_json" in form else dict(form)
            return payload, files
        raise _Invalid(400, {"code": 50035, "message": "Invalid Form Body (invalid Content-Type provided)"})

    def _check(self, payload: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        embeds = payload.get("embeds") or []
        if not (payload.get("content") or embeds or files or payload.get("poll")):
            errors["content"] = _error("BASE_TYPE_REQUIRED", "Cannot send an empty message")
        if len(str(payload.get("content") or "")) > 2000:
            errors["content"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if not isinstance(embeds, list) or len(embeds) > 10:
            errors["embeds"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            return errors
        names = {filename for filename, _ in files.values()}
        total = 0
        for index, embed in enumerate(embeds):
            problems, length = self._embed(embed, names)
            total += length
            if problems:
                errors.setdefault("embeds", {})[str(index)] = problems
        if total > self.TOTAL:
            errors.setdefault("embeds", {})["_errors"] = [
                {"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}
            ]
        mentions = payload.get("allowed_mentions")
        if mentions is not None:
            parse = mentions.get("parse", []) if isinstance(mentions, dict) else None
            if not isinstance(parse, list) or not set(parse) <= {"users", "roles", "everyone"}:
                errors["allowed_mentions"] = _error("MESSAGE_ALLOWED_MENTIONS_PARSE_INVALID", "Invalid parse value")
        for index, attachment in enumerate(payload.get("attachments") or []):
            if str(attachment.get("id")) not in files:
                errors.setdefault("attachments", {})[str(index)] = _error(
                    "ATTACHMENT_NOT_FOUND", "Attachment data not found"
                )
        return errors

    def _flags_and_components(self, payload: dict[str, Any], seen: Seen) -> dict[str, Any]:
        """A webhook may set only SUPPRESS_EMBEDS (4) and SUPPRESS_NOTIFICATIONS (4096); one that no application
        owns may send link buttons (style 5, a url, no custom_id) but no interactive component."""
        errors: dict[str, Any] = {}
        if int(payload.get("flags") or 0) & ~(4 | 4096):
            errors["flags"] = _error("MESSAGE_FLAGS_INVALID", "Invalid flags")
        if seen.query.get("with_components", ["false"])[-1] != "true":
            return errors
        for row in payload.get("components") or []:
            for component in row.get("components") or []:
                if component.get("style") != 5 or "custom_id" in component or not component.get("url"):
                    errors["components"] = _error(
                        "COMPONENT_INTERACTIVE_NOT_ALLOWED", "Interactive components need an application-owned webhook"
                    )
        return errors

    def _embed(self, embed: Any, files: set[str]) -> tuple[dict[str, Any], int]:
        if not isinstance(embed, dict):
            return _error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"), 0
        problems: dict[str, Any] = {}
        texts = []

        def text(path: str, value: Any, limit: int, required: bool = False) -> None:
            value = str(value if value is not None else "").strip()
            if required and not value:
                problems[path] = _error("BASE_TYPE_REQUIRED", "This field is required")
            elif _units(value) > limit:
                problems[path] = _error("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
            texts.append(value)

        text("title", embed.get("title"), self.TITLE)
        text("description", embed.get("description"), self.DESCRIPTION)
        if "footer" in embed:
            text("footer.text", (embed["footer"] or {}).get("text"), self.FOOTER, required=True)
        if "author" in embed:
            text("author.name", (embed["author"] or {}).get("name"), self.AUTHOR, required=True)
        fields = embed.get("fields") or []
        if len(fields) > self.FIELDS:
            problems["fields"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for index, item in enumerate(fields):
            text(f"fields.{index}.name", item.get("name"), self.FIELD_NAME, required=True)
            text(f"fields.{index}.value", item.get("value"), self.FIELD_VALUE, required=True)
        if "url" in embed and not str(embed["url"]).startswith(("http://", "https://")):
            problems["url"] = _error("URL_TYPE_INVALID_URL", "Not a well formed URL.")
        if "timestamp" in embed:
            try:
                datetime.fromisoformat(str(embed["timestamp"]).replace("Z", "+00:00"))
            except ValueError:
                problems["timestamp"] = _error("DATE_TYPE_INVALID_DATE", "Could not interpret as a date.")
        if not 0 <= int(embed.get("color", 0)) <= 0xFFFFFF:
            problems["color"] = _error("NUMBER_TYPE_MAX", "int value should be <= 16777215.")
        for key in ("image", "thumbnail"):
            url = str((embed.get(key) or {}).get("url", "")) if key in embed else None
            if url is None:
                continue
            if url.startswith("attachment://"):
                name = url.removeprefix("attachment://")
                if name not in files or not name.lower().endswith(self.ATTACHABLE):
                    problems[f"{key}.url"] = _error("ATTACHMENT_NOT_FOUND", f"No attached file named {name}")
            elif not url.startswith(("http://", "https://")):
                problems[f"{key}.url"] = _error("URL_TYPE_INVALID_URL", "Scheme must be one of ('http', 'https').")
        return problems, sum(_units(value) for value in texts)

    def _save(self, payload: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
        message_id = str(next(self._ids))
        attachments = []
        for index, (filename, data) in files.items():
            url = f"{self.url}/attachments/{message_id}/{index}/{filename}"
            attachments.append({"id": f"{message_id}{index}", "filename": filename, "size": len(data), "url": url})
            self.files[url] = data
        message = {
            "id": message_id,
            "type": 0,
            "content": payload.get("content", ""),
            "flags": int(payload.get("flags") or 0),
            "components": payload.get("components", []),
            "channel_id": "1130000000000000002",
            "webhook_id": self.webhook_id,
            "author": {"id": self.webhook_id, "username": "rendergate", "bot": True},
            "embeds": payload.get("embeds", []),
            "attachments": attachments,
            "mentions": [],
            "timestamp": datetime.now().astimezone().isoformat(),
            "request": payload,
        }
        with self._lock:
            self.messages.append(message)
        return message


class Jellyfin(StandIn):
    """Jellyfin's `POST /Library/Media/Updated` for one API key (legacy authorization off, its default)."""

    def __init__(self, api_key: str, port: int = 0, legacy_authorization: bool = False) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.legacy_authorization = legacy_authorization
        self.updates: list[dict[str, Any]] = []

    def target(self, name: str, library_root: str = "/mnt/library", **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "kind": "jellyfin",
            "url": self.url,
            "api_key": self.api_key,
            "library_root": library_root,
            **extra,
        }

    def answer(self, seen: Seen) -> Answer:
        if seen.path != "/Library/Media/Updated" or seen.method != "POST":
            return 404, {}, b""
        if self._token(seen) != self.api_key:
            return 401, {}, b""
        if seen.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _json(415, {"title": "Unsupported Media Type", "status": 415})
        try:
            body = json.loads(seen.body)
        except ValueError:
            return _json(400, {"title": "One or more validation errors occurred.", "status": 400})
        updates = body.get("Updates", []) if isinstance(body, dict) else None
        if not isinstance(updates, list):
            return _json(400, {"title": "One or more validation errors occurred.", "status": 400})
        for update in updates:
            if not isinstance(update, dict) or not update.get("Path"):
                return _json(400, {"title": "Item path can't be null.", "status": 400})
        with self._lock:
            self.updates.extend(updates)
        return 204, {}, b""

    def _token(self, seen: Seen) -> str | None:
        """Where Jellyfin finds the token: `Authorization: MediaBrowser …` (and, only with legacy
        authorization on, `Emby …`, X-Emby-Authorization, X-Emby-Token, X-MediaBrowser-Token, api_key), or
        the ApiKey query parameter."""
        header = seen.headers.get("authorization") or (
            seen.headers.get("x-emby-authorization") if self.legacy_authorization else None
        )
        token = None
        if header and " " in header:
            scheme, _, rest = header.partition(" ")
            schemes = ("mediabrowser", "emby") if self.legacy_authorization else ("mediabrowser",)
            if scheme.lower() in schemes:
                token = _jellyfin_parts(rest).get("Token")
        if not token and self.legacy_authorization:
            token = seen.headers.get("x-emby-token") or seen.headers.get("x-mediabrowser-token")
        if not token:
            token = (seen.query.get("ApiKey") or [None])[0]
        if not token and self.legacy_authorization:
            token = (seen.query.get("api_key") or [None])[0]
        return token


def _jellyfin_parts(header: str) -> dict[str, str]:
    """Jellyfin's own reading of `key="value", …`: quotes toggle escaping, commas end values, and every value
    is URL-decoded (so a '+' in a token becomes a space)."""
    result: dict[str, str] = {}
    escaped, start, key = False, 0, ""
    index = 0
    for index, char in enumerate(header):
        if char in '",':
            escaped = (not escaped) == (char == '"')
            if char == "," and not escaped:
                if start < index:
                    result[key] = urllib.parse.unquote_plus(header[start:index].strip('"'))
                    key = ""
                start = index + 1
        elif not escaped and char == "=":
            key = header[start:index].strip()
            start = index + 1
    if start < len(header):
        result[key] = urllib.parse.unquote_plus(header[start:].strip('"'))
    return result


class Kodi(StandIn):
    """Kodi's web server at `/jsonrpc` with its authentication on (the default)."""

    CONTENT_TYPES = ("application/json-rpc", "application/json", "application/jsonrequest")
    MAX_BODY = 65536

    def __init__(self, username: str = "kodi", password: str = "", port: int = 0) -> None:
        super().__init__(port)
        self.username, self.password = username, password
        self.scans: list[dict[str, Any]] = []

    def target(self, name: str, library_root: str = "smb://nas/library/", **extra: Any) -> dict[str, Any]:
        credentials = {"username": self.username, "password": self.password}
        return {
            "name": name,
            "kind": "kodi",
            "url": f"{self.url}/jsonrpc",
            "library_root": library_root,
            **credentials,
            **extra,
        }

    def answer(self, seen: Seen) -> Answer:
        if not self._authorised(seen):
            return 401, {"WWW-Authenticate": 'Basic realm="Kodi"'}, b""
        if seen.path != "/jsonrpc":
            return 404, {}, b""
        content_type = seen.headers.get("content-type", "")
        if seen.method == "POST" and content_type and content_type not in self.CONTENT_TYPES:
            return 415, {}, b""  # compared whole: "application/json; charset=utf-8" is refused
        if len(seen.body) > self.MAX_BODY:
            return 413, {}, b""
        try:
            call = json.loads(seen.body)
        except ValueError:
            return _json(200, _rpc_error(None, -32700, "Parse error."))
        if not _proper(call):
            return _json(
                200, _rpc_error(call.get("id") if isinstance(call, dict) else None, -32600, "Invalid request.")
            )
        reply = self._call(call)
        if "id" not in call:
            return 200, {"Content-Type": "application/json"}, b""  # a notification gets no answer
        return _json(200, reply)

    def _authorised(self, seen: Seen) -> bool:
        import base64

        scheme, _, encoded = seen.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.username, self.password)

    def _call(self, call: dict[str, Any]) -> dict[str, Any]:
        method = str(call["method"]).lower()
        if method == "jsonrpc.ping":
            return {"id": call.get("id"), "jsonrpc": "2.0", "result": "pong"}
        if method != "videolibrary.scan":
            return _rpc_error(call.get("id"), -32601, "Method not found.")
        params = call.get("params", {})
        known = {"directory": str, "showdialogs": bool}
        if isinstance(params, list):
            params = dict(zip(known, params, strict=False))
        if not isinstance(params, dict) or any(
            k not in known or not isinstance(v, known[k]) for k, v in params.items()
        ):
            return _rpc_error(call.get("id"), -32602, "Invalid params.")
        with self._lock:
            self.scans.append(
                {"directory": params.get("directory", ""), "showdialogs": params.get("showdialogs", True)}
            )
        return {"id": call.get("id"), "jsonrpc": "2.0", "result": "OK"}


def _proper(call: Any) -> bool:
    """Kodi's IsProperJSONRPC: an object, jsonrpc "2.0", a string method, object or array params, a scalar id."""
    return (
        isinstance(call, dict)
        and call.get("jsonrpc") == "2.0"
        and isinstance(call.get("method"), str)
        and isinstance(call.get("params", {}), dict | list)
        and (not isinstance(call.get("id"), dict | list) if "id" in call else True)
    )


def _rpc_error(call_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "id": call_id, "jsonrpc": "2.0"}


class _Invalid(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status, self.body = status, body


def _error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _rate_limited(retry_after: float) -> bytes:
    return json.dumps({"message": "You are being rate limited.", "retry_after": retry_after, "global": False}).encode()


def _units(text: str) -> int:
    """Discord's limits, counted in UTF-16 units: never fewer than characters, so the stricter count."""
    return len(text.encode("utf-16-le")) // 2


@contextmanager
def running(*stand_ins: StandIn) -> Iterator[None]:
    """Start the stand-ins, and stop them (releasing held requests) afterwards."""
    for stand_in in stand_ins:
        stand_in.start()
    try:
        yield
    finally:
        for stand_in in stand_ins:
            stand_in.release()
            stand_in.stop()


class Slack(StandIn):
    """Slack for one app: an incoming webhook (`/services/T…/B…/…`) that takes Block Kit messages as Slack
    does (`text` or `blocks` required, Block Kit's limits, `ok` on success, `no_service` once the webhook is
    removed, a 1-per-second rate limit answered 429 with Retry-After), the `response_url` of an interaction
    (`/actions/…`, at most five uses, `replace_original`), and a user pressing a button: the `block_actions`
    payload Slack posts to the app's request URL, form-encoded and signed with the app's signing secret by
    the `slack-sdk`'s own signer."""

    def __init__(self, signing_secret: str, port: int = 0, per_second: int = 20) -> None:
        super().__init__(port)
        self.signing_secret = signing_secret
        self.exists = True
        self.messages: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.per_second = per_second
        self._sent: list[float] = []
        self._uses: dict[str, int] = {}

    def target(self, name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "kind": "slack", "url": f"{self.url}/services/T0001/B0001/XXXXXXXX", **extra}

    def answer(self, seen: Seen) -> Answer:
        if seen.method != "POST":
            return 405, {}, b""
        if seen.path.startswith("/services/"):
            return self._incoming(seen)
        if seen.path.startswith("/actions/"):
            return self._response_url(seen)
        return 404, {}, b"no_service"

    def _incoming(self, seen: Seen) -> Answer:
        if not self.exists or seen.path != "/services/T0001/B0001/XXXXXXXX":
            return 404, {}, b"no_service"
        with self._lock:
            now = time.monotonic()
            self._sent = [at for at in self._sent if at > now - 1]
            if len(self._sent) >= self.per_second:
                return 429, {"Retry-After": "1"}, b"rate_limited"
            self._sent.append(now)
        try:
            body = json.loads(seen.body)
        except ValueError:
            return 400, {}, b"invalid_payload"
        problem = _block_kit_problem(body)
        if problem:
            return 400, {}, problem.encode()
        with self._lock:
            self.messages.append(body)
        return 200, {"Content-Type": "text/html"}, b"ok"

    def _response_url(self, seen: Seen) -> Answer:
        with self._lock:
            self._uses[seen.path] = self._uses.get(seen.path, 0) + 1
            if self._uses[seen.path] > 5:
                return 404, {}, b"used_url"
        body = json.loads(seen.body)
        problem = _block_kit_problem(body)
        if problem:
            return 400, {}, problem.encode()
        with self._lock:
            self.responses.append(body)
        return 200, {"Content-Type": "application/json"}, b'{"ok":true}'

    def press(
        self,
        message: dict[str, Any],
        action_id: str,
        user_id: str,
        user_name: str = "ann",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A user presses a button of `message`: the `block_actions` request Slack sends the app's request URL
        (body and headers, signed), for the test to post (and post again)."""
        from slack_sdk.signature import SignatureVerifier

        [button] = [
            element
            for block in message["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element["action_id"] == action_id
        ]
        payload = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0001"},
            "trigger_id": "1.2.3",
            "team": {"id": "T0001", "domain": "studio"},
            "channel": {"id": "C0001", "name": "reviews"},
            "message": message,
            "response_url": f"{self.url}/actions/T0001/{next(_response_ids)}/responsesecret",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "review",
                    "text": button["text"],
                    **({"value": button["value"]} if "value" in button else {}),
                    **({"style": button["style"]} if "style" in button else {}),
                    "action_ts": "1700000001.000200",
                }
            ],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(timestamp=stamp, body=body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": str(signature),
        }
        return body, headers


_response_ids = itertools.count(1)


def _block_kit_problem(body: Any) -> str | None:
    """What Slack would refuse in a message (the checks our messages could fail), or None."""
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return "no_text"
    for flag in ("unfurl_links", "unfurl_media", "replace_original"):
        if flag in body and not isinstance(body[flag], bool):
            return "invalid_payload"
    blocks = body.get("blocks") or []
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        if kind == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return "invalid_blocks"
        if kind == "actions":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= 25:
                return "invalid_blocks"
            for element in elements:
                if element.get("type") != "button" or len(element["text"]["text"]) > 75:
                    return "invalid_blocks"
                if len(element.get("value", "")) > 2000 or len(element.get("url", "")) > 3000:
                    return "invalid_blocks"
                if element.get("style") not in (None, "primary", "danger"):
                    return "invalid_blocks"
        elif kind not in ("section", "context", "divider", "header", "image"):
            return "invalid_blocks"
    return None
