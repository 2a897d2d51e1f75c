"""Handlers map named errors to HTTP codes with a JSON message; nothing surfaces as a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.events import http_request
from support.functions import load_function

AUTH = {"Authorization": "Bearer unit-test-api-key"}


class Context:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "request"

    def get_remaining_time_in_millis(self) -> int:
        return 1000


def call(function: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any):
    handler = load_function(function).handler
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    response = handler(http_request(method, path, raw, headers, **kw), Context())
    return response["statusCode"], json.loads(response["body"])


GOOD = {"filename": "a.png", "content_type": "image/png", "size": 10}


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, GOOD, 401, "Unauthorized"),
        ({"Authorization": "Bearer wrong"}, GOOD, 401, "Unauthorized"),
        (AUTH, "{not json", 400, "BadRequest"),
        (AUTH, "[1, 2]", 400, "BadRequest"),
        (AUTH, None, 400, "BadRequest"),
        (AUTH, {**GOOD, "content_type": "application/pdf"}, 415, "UnsupportedMediaType"),
        (AUTH, {**GOOD, "size": 10**9}, 413, "PayloadTooLarge"),
        (AUTH, {**GOOD, "filename": "x/y.png"}, 400, "BadRequest"),
        (AUTH, GOOD, 201, None),
    ],
)
def test_presign_maps_errors(aws: None, headers: dict[str, str], body: Any, status: int, error: str | None) -> None:
    code, answer = call("presign", "POST", "/uploads", body, headers)
    assert code == status
    if error:
        assert answer["error"] == error
        assert answer["message"]
    else:
        assert answer["run_id"]


def test_runs_unknown_id_is_404_and_bad_query_is_400(aws: None) -> None:
    assert call("runs", "GET", "/runs/nope", headers=AUTH)[0] == 404
    assert call("runs", "GET", "/runs", headers=AUTH, query={"limit": "many"})[0] == 400
    assert call("runs", "GET", "/runs", headers=AUTH, query={"status": "sleeping"})[0] == 400
    assert call("runs", "GET", "/runs", headers=AUTH, query={"cursor": "%%%"})[0] == 400
    assert call("runs", "GET", "/runs")[0] == 401


def test_runs_lists_newest_first_with_a_cursor(aws: None) -> None:
    created = [call("presign", "POST", "/uploads", {**GOOD, "title": f"t{i}"}, AUTH)[1]["run_id"] for i in range(3)]
    status, first = call("runs", "GET", "/runs", headers=AUTH, query={"limit": "2"})
    assert status == 200
    assert [r["run_id"] for r in first["runs"]] == created[::-1][:2]
    _, second = call("runs", "GET", "/runs", headers=AUTH, query={"limit": "2", "cursor": first["next_cursor"]})
    assert [r["run_id"] for r in second["runs"]] == created[:1]
