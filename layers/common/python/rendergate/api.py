"""The shared HttpApi resolver: API key auth, and the one table that maps named errors to HTTP codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from rendergate import config, errors, signing
from rendergate.observability import logger

# Domain errors → HTTP status, in one place. Order matters: the first matching class wins.
HTTP_STATUS: list[tuple[type[Exception], int]] = [
    (errors.Unauthorized, 401),
    (errors.LinkInvalid, 403),
    (errors.NotFound, 404),
    (errors.ReviewAlreadyDecided, 409),
    (errors.Conflict, 409),
    (errors.ReviewExpired, 410),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.BadRequest, 400),
    (errors.ImageRejected, 422),
    (errors.QueueFull, 429),
    (errors.TransientError, 503),
]


def status_for(error: Exception) -> int:
    return next((status for kind, status in HTTP_STATUS if isinstance(error, kind)), 500)


def http_app(require_api_key: bool = True) -> APIGatewayHttpResolver:
    """A resolver that answers errors as JSON `{error, message}` and, by default, requires the API key."""
    app = APIGatewayHttpResolver()

    @app.exception_handler(errors.RendergateError)
    def domain_error(error: errors.RendergateError) -> Response[str]:
        response = json_error(status_for(error), type(error).__name__, str(error))
        if isinstance(error, errors.QueueFull):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(json.JSONDecodeError)
    def malformed_json(error: json.JSONDecodeError) -> Response[str]:
        return json_error(400, "BadRequest", f"the body is not valid JSON: {error.msg}")

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        return json_error(404, "NotFound", "no such route")

    if require_api_key:
        app.use(middlewares=[api_key_middleware])
    return app


def api_key_middleware(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    signing.check_api_key(app.current_event.headers.get("authorization"), config.api_key_hash())
    return next_middleware(app)


def json_error(status: int, error: str, message: str) -> Response[str]:
    if status >= 500:
        logger.error("request failed", extra={"error": error})
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": error, "message": message}),
    )


def json_body(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest."""
    body = app.current_event.json_body if app.current_event.body else None
    if not isinstance(body, dict):
        raise errors.BadRequest("send a JSON object as the body")
    return body


def html(status: int, page: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.TEXT_HTML,
        body=page,
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"},
    )


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
