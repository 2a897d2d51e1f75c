"""Handlers map named errors to HTTP codes with a JSON message; nothing surfaces as a 500."""

from __future__ import annotations

from typing import Any

import pytest

from support.handlers import AUTH, call

GOOD = {"filename": "a.png", "content_type": "image/png", "size": 10}


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
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


@pytest.mark.parametrize(
    ("headers", "status", "message"), [({}, 401, "Unauthorized"), ({"Authorization": "Bearer wrong"}, 403, "Forbidden")]
)
def test_api_gateway_answers_for_a_missing_or_refused_key(
    aws: None, headers: dict[str, str], status: int, message: str
) -> None:
    assert call("presign", "POST", "/uploads", GOOD, headers) == (status, {"message": message})


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


def test_runs_of_one_status_come_in_full_pages_newest_first(aws: None) -> None:
    from rendergate.tables import Run

    created = [call("presign", "POST", "/uploads", {**GOOD, "title": f"t{i}"}, AUTH)[1]["run_id"] for i in range(5)]
    for run_id in created[:3]:
        Run.get(run_id).update(actions=[Run.status.set("failed")])
    _, first = call("runs", "GET", "/runs", headers=AUTH, query={"status": "failed", "limit": "2"})
    assert [r["run_id"] for r in first["runs"]] == [created[2], created[1]]
    _, second = call(
        "runs", "GET", "/runs", headers=AUTH, query={"status": "failed", "limit": "2", "cursor": first["next_cursor"]}
    )
    assert [r["run_id"] for r in second["runs"]] == [created[0]]
    mixed = call("runs", "GET", "/runs", headers=AUTH, query={"status": "queued", "cursor": first["next_cursor"]})
    assert mixed[0] == 400
