"""API Gateway in front of the handlers for unit tests: the template's routes (translated as the devstack
translates them) give a request its route key and path parameters, and a route behind the authoriser gets
the real authoriser function's verdict, run as the local stack runs it (`devstack.authorizer`), without
keeping answers (the local stack's tests cover the cache)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from devstack.authorizer import AuthorizerConfig, GatewayAuthorizer
from devstack.cloud import Route, authorizers, package, routes, translate
from support.aws import ROOT, TEMPLATE
from support.functions import load_function


def admit(function: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """Give `event` the route key and path parameters of the template's route of `function` it matches, and
    the authoriser's context; or API Gateway's own answer (401, 403, 500) when the authoriser refuses it."""
    found = _route(function, event["requestContext"]["http"]["method"], event["rawPath"])
    if found is None:
        return None  # a path no route of the function has: the handler answers it (404)
    route, path_parameters = found
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{route.method} {route.path}"
    if path_parameters:
        event["pathParameters"] = path_parameters
    if route.authorizer is None:
        return None
    verdict = _authorizer(route.authorizer).authorise(event)
    if verdict.status is not None:
        messages = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}
        body = json.dumps({"message": messages[verdict.status]})
        return {"statusCode": verdict.status, "body": body, "headers": {"content-type": "application/json"}}
    event["requestContext"]["authorizer"] = {"lambda": verdict.context}
    return None


def route_keys(function: str) -> list[str]:
    """The route keys of a function's routes behind the authoriser."""
    logical_id = _logical_id(function)
    return [f"{r.method} {r.path}" for r in _api()[0] if r.function_logical_id == logical_id and r.authorizer]


def _route(function: str, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    logical_id = _logical_id(function)
    for route in _api()[0]:
        matched = route.pattern().match(path)
        if matched and route.function_logical_id == logical_id and route.method in (method, "ANY"):
            return route, matched.groupdict()
    return None


@cache
def _authorizer(name: str) -> GatewayAuthorizer:
    config: AuthorizerConfig = replace(_api()[1][name], ttl_seconds=0)
    return GatewayAuthorizer(config, _invoker(config.function_logical_id))


def _invoker(logical_id: str) -> Callable[[dict[str, Any]], Any]:
    """Invoke the authoriser function's handler as Lambda would."""
    folder = _folder(logical_id)

    def invoke(request: dict[str, Any]) -> Any:
        return load_function(folder).handler(request, None)

    return invoke


@cache
def _api() -> tuple[list[Route], dict[str, AuthorizerConfig]]:
    sam_template = yaml_parse((ROOT / "template.yaml").read_text())
    package(sam_template, None)
    translated = translate(sam_template, {}, None)
    return routes(translated), authorizers(translated, {})


def _logical_id(function: str) -> str:
    found = [
        logical_id
        for logical_id, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and resource["Properties"]["CodeUri"] == f"functions/{function}/"
    ]
    assert found, f"no function in functions/{function}/"
    return found[0]


def _folder(logical_id: str) -> str:
    return str(TEMPLATE["Resources"][logical_id]["Properties"]["CodeUri"]).strip("/").split("/")[-1]


def guarded_routes() -> list[tuple[str, str, str]]:
    """Every route of the template behind the authoriser: (function folder, method, path)."""
    return [(_folder(r.function_logical_id), r.method, r.path) for r in _api()[0] if r.authorizer]


def authorizer(ttl_seconds: int, clock: Callable[[], float]) -> GatewayAuthorizer:
    """The template's authoriser run as the local stack runs it, keeping answers `ttl_seconds` by `clock`."""
    [config] = _api()[1].values()
    return GatewayAuthorizer(replace(config, ttl_seconds=ttl_seconds), _invoker(config.function_logical_id), clock)


def cache_seconds() -> int:
    """How long API Gateway keeps the authoriser's answers by the template's defaults."""
    [config] = _api()[1].values()
    return config.ttl_seconds
