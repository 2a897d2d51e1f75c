"""API Gateway's Lambda authoriser for HTTP APIs, as the local HttpApi runs it, from the translated template's
`x-amazon-apigateway-authorizer` (what API Gateway's documentation says it does, and `sam local` copies):

- the identity sources must all be in the request, not empty, or the answer is 401 without calling the
  function;
- the function gets the payload format 2.0 request (`type: REQUEST`, `identitySource`, `routeArn`, the headers,
  the request context) and answers simply `{isAuthorized, context}`; anything else, or a failed invocation, is a
  500;
- `isAuthorized: false` is a 403; `true` hands the context to the integration as
  `requestContext.authorizer.lambda`;
- with `authorizerResultTtlInSeconds` above 0 the answer is kept for that long, keyed on the identity source
  values alone: the same header gets the same answer on every route until it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REGION, ACCOUNT, API_ID, STAGE = "us-east-1", "123456789012", "devstack", "$default"


@dataclass(frozen=True)
class AuthorizerConfig:
    """One Lambda authoriser of the HttpApi, as the translated template declares it."""

    name: str
    function_logical_id: str
    identity_sources: tuple[str, ...]
    ttl_seconds: int
    payload_format: str = "2.0"
    simple_responses: bool = True


@dataclass(frozen=True)
class Verdict:
    """What API Gateway does with a request: answer it itself (`status`), or pass it on with `context`."""

    status: int | None
    context: dict[str, Any] | None = None


class GatewayAuthorizer:
    """Runs one authoriser for requests (their integration events) and keeps its answers as API Gateway does."""

    def __init__(
        self,
        config: AuthorizerConfig,
        invoke: Callable[[dict[str, Any]], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.payload_format != "2.0" or not config.simple_responses:
            raise ValueError(
                f"{config.name}: the local HttpApi runs payload 2.0 authorisers with simple responses only"
            )
        self.config = config
        self._invoke = invoke
        self._clock = clock
        self._answers: dict[tuple[str, ...], tuple[float, Verdict]] = {}
        self._lock = threading.Lock()

    def authorise(self, event: dict[str, Any]) -> Verdict:
        """The verdict for a request, given as the event its integration would get."""
        identity = self.identity(event)
        if identity is None:
            return Verdict(401)
        now = self._clock()
        with self._lock:
            kept = self._answers.get(identity)
        if kept is not None and kept[0] > now:
            return kept[1]
        try:
            verdict = _read(self._invoke(self.request(event, identity)))
        except Exception:  # the function failed (Lambda's FunctionError) or could not be invoked
            return Verdict(500)
        if verdict.status != 500 and self.config.ttl_seconds > 0:
            with self._lock:
                self._answers[identity] = (now + self.config.ttl_seconds, verdict)
        return verdict

    def identity(self, event: dict[str, Any]) -> tuple[str, ...] | None:
        """The values of the identity sources, or None when one is missing or empty."""
        values = []
        for source in self.config.identity_sources:
            value = _source_value(source, event)
            if not value:
                return None
            values.append(value)
        return tuple(values)

    def request(self, event: dict[str, Any], identity: tuple[str, ...]) -> dict[str, Any]:
        """The payload format 2.0 request the authoriser function gets."""
        context = event["requestContext"]
        method, path = context["http"]["method"], event["rawPath"]
        request = {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
            "identitySource": list(identity),
            "routeKey": event["routeKey"],
            "rawPath": path,
            "rawQueryString": event.get("rawQueryString", ""),
            "headers": dict(event.get("headers") or {}),
            "requestContext": context,
        }
        for name in ("cookies", "queryStringParameters", "pathParameters", "stageVariables"):
            if name in event:
                request[name] = event[name]
        return request


def _read(response: Any) -> Verdict:
    """A simple response as API Gateway reads it: a boolean `isAuthorized` and, optionally, a `context` object."""
    if not isinstance(response, dict) or not isinstance(response.get("isAuthorized"), bool):
        return Verdict(500)
    context = response.get("context", {})
    if not isinstance(context, dict):
        return Verdict(500)
    return Verdict(None, context) if response["isAuthorized"] else Verdict(403)


def _source_value(source: str, event: dict[str, Any]) -> str | None:
    if source.startswith("$request.header."):
        name = source.removeprefix("$request.header.").lower()  # header names are case-insensitive
        return (event.get("headers") or {}).get(name)
    if source.startswith("$request.querystring."):
        return (event.get("queryStringParameters") or {}).get(source.removeprefix("$request.querystring."))
    if source.startswith("$context."):
        value = event.get("requestContext", {}).get(source.removeprefix("$context."))
        return None if value is None else str(value)
    if source.startswith("$stageVariables."):
        return (event.get("stageVariables") or {}).get(source.removeprefix("$stageVariables."))
    raise ValueError(f"an identity source API Gateway does not take: {source}")
