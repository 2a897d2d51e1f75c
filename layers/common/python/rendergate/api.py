"""The shared HttpApi resolver: the caller the authoriser let through (its scope checked against the route's,
its request rate counted), the one way request bodies are read, and the one table that maps named errors to
HTTP codes."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.shared.cookies import Cookie

from rendergate import accounts, errors, owners, pages
from rendergate.observability import logger
from rendergate.owners import Caller

# Domain errors → HTTP status, in one place. Order matters: the first matching class wins.
HTTP_STATUS: list[tuple[type[Exception], int]] = [
    (errors.Unauthorized, 401),
    (errors.InsufficientCredits, 402),
    (errors.Forbidden, 403),
    (errors.LinkInvalid, 403),
    (errors.NotFound, 404),
    (errors.ReviewAlreadyDecided, 409),
    (errors.Conflict, 409),
    (errors.ReviewExpired, 410),
    (errors.ReviewClosed, 410),
    (errors.PayloadTooLarge, 413),
    (errors.BodyTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.BadRequest, 400),
    (errors.ImageRejected, 422),
    (errors.TooManyRequests, 429),
    (errors.TransientError, 503),
    (errors.TargetsInvalid, 503),
]
# Request bodies are small JSON or form posts; far below API Gateway's 10 MB and Lambda's 6 MB payload limits.
MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32
MAX_FORM_FIELDS = 200
MAX_MESSAGE_CHARS = 600  # every error message an answer carries, JSON or page
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": pages.CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def status_for(error: Exception) -> int:
    return next((status for kind, status in HTTP_STATUS if isinstance(error, kind)), 500)


def http_app(require_api_key: bool = True) -> APIGatewayHttpResolver:
    """A resolver that answers errors as JSON `{error, message}` and, by default, serves only callers the
    authoriser let through, with the scope their route needs (`caller(app)` is then who asked)."""
    app = APIGatewayHttpResolver()

    @app.exception_handler(errors.RendergateError)
    def domain_error(error: errors.RendergateError) -> Response[str]:
        response = json_error(status_for(error), type(error).__name__, str(error), error.details())
        if isinstance(error, errors.TooManyRequests):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        return json_error(404, "NotFound", "no such route")

    if require_api_key:
        app.use(middlewares=[caller_middleware])
    return app


def caller_middleware(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Who sent the request (from the authoriser), refused without the route's scope or past its rate."""
    event = app.current_event
    caller = owners.caller_of(event.raw_event)
    owners.require(caller, event.route_key)
    accounts.admit(caller)
    app.append_context(caller=caller)
    return next_middleware(app)


def caller(app: APIGatewayHttpResolver) -> Caller:
    """The caller of the request being handled."""
    found: Caller = app.context["caller"]
    return found


def json_error(status: int, error: str, message: str, details: dict[str, Any] | None = None) -> Response[str]:
    if status >= 500:
        logger.error("request failed", extra={"error": error})
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": error, "message": capped(message), **(details or {})}),
    )


def capped(message: str) -> str:
    """An error message cut to MAX_MESSAGE_CHARS, so no answer echoes a large request back."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def json_body(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The request body as a JSON object: BadRequest unless it is UTF-8 JSON with finite numbers, at most
    MAX_JSON_DEPTH deep; BodyTooLarge beyond MAX_BODY_BYTES."""
    body = parse_json(body_text(app))
    if not isinstance(body, dict):
        raise errors.BadRequest("send a JSON object as the body")
    return body


def form_body(app: APIGatewayHttpResolver) -> dict[str, str]:
    """The request body as an HTML form (application/x-www-form-urlencoded); the last of repeated fields wins."""
    try:
        fields = parse_qsl(body_text(app), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as error:
        raise errors.BadRequest(f"the form has more than {MAX_FORM_FIELDS} fields") from error
    return dict(fields)


def body_text(app: APIGatewayHttpResolver) -> str:
    """The body as text. API Gateway base64-encodes bodies that are not text (isBase64Encoded); either way
    the bytes must be UTF-8 and at most MAX_BODY_BYTES."""
    event = app.current_event
    if not event.is_base64_encoded:
        raw = event.body or ""
        if len(raw) > MAX_BODY_BYTES or len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise _too_large()
        return raw
    data = body_bytes(app)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise errors.BadRequest(
            f"the body is not valid UTF-8 (byte {error.start} is not part of a UTF-8 character): send UTF-8 text"
        ) from error


def body_bytes(app: APIGatewayHttpResolver) -> bytes:
    """The body's bytes as the client sent them (for signatures over the raw body), at most MAX_BODY_BYTES."""
    event = app.current_event
    raw = event.body or ""
    if not event.is_base64_encoded:
        data = raw.encode("utf-8", "surrogatepass")
        if len(data) > MAX_BODY_BYTES:
            raise _too_large()
        return data
    if len(raw) > (MAX_BODY_BYTES + 2) // 3 * 4:  # the base64 of MAX_BODY_BYTES bytes
        raise _too_large()
    try:
        data = base64.b64decode(raw, validate=True)
    except binascii.Error as error:
        raise errors.BadRequest("the body is marked base64-encoded but is not valid base64") from error
    if len(data) > MAX_BODY_BYTES:
        raise _too_large()
    return data


def parse_json(text: str) -> Any:
    """Strict JSON: refuses NaN, Infinity and numbers that overflow to them, lone surrogates, and nesting
    deeper than MAX_JSON_DEPTH, each as a BadRequest that says which."""
    if not text.strip():
        raise errors.BadRequest("send a JSON object as the body")
    try:
        value = json.loads(text, parse_constant=_non_finite, parse_float=_finite_float)
    except RecursionError as error:
        raise errors.BadRequest(f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels") from error
    except json.JSONDecodeError as error:
        raise errors.BadRequest(f"the body is not valid JSON: {error.msg} (at character {error.pos})") from error
    except ValueError as error:  # an integer with more digits than Python converts
        raise errors.BadRequest(f"the body is not valid JSON: {error}") from error
    _check_values(value)
    return value


def _non_finite(constant: str) -> Any:
    raise errors.BadRequest(f"numbers must be finite: {constant} is not allowed")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise errors.BadRequest(f"numbers must be finite: {literal[:40]} is out of range")
    return number


def _check_values(value: Any) -> None:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
            raise errors.BadRequest(f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as error:
                raise errors.BadRequest("the body has a string with a lone surrogate (\\ud800-\\udfff)") from error


def _too_large() -> errors.BodyTooLarge:
    return errors.BodyTooLarge(f"the request body is larger than {MAX_BODY_BYTES} bytes")


def html(status: int, page: str, location: str | None = None, cookies: list[Cookie] | None = None) -> Response[str]:
    """An HTML page that is never cached, indexed or framed (or a 303 to `location`), setting `cookies`."""
    headers = dict(SECURITY_HEADERS) | ({"Location": location} if location else {})
    return Response(
        status_code=status, content_type=content_types.TEXT_HTML, body=page, headers=headers, cookies=cookies or []
    )


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
