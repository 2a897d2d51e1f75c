"""GET /runs pages with cursors the API signed: a crafted cursor or limit is a 400, never a 500."""

from __future__ import annotations

import base64
import json

import pytest

from support.handlers import AUTH, call

GOOD = {"filename": "a.png", "content_type": "image/png", "size": 10}


def crafted(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        crafted({"listing": {"S": "runs"}}),  # a partial key
        crafted({"listing": {"S": "runs"}, "created_at": {"N": "1"}, "run_id": {"S": "x"}}),  # a wrong type
        crafted({"listing": "runs", "created_at": "x", "run_id": "x"}),  # not attribute maps
        crafted(["listing"]),
        "bm90IGpzb24",  # base64 of "not json"
        "%%%",
    ],
)
def test_a_crafted_cursor_is_a_400(aws: None, cursor: str) -> None:
    status, answer = call("runs", "GET", "/runs", headers=AUTH, query={"cursor": cursor})
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "cursor" in answer["message"]


def test_a_cursor_altered_by_one_character_is_a_400(aws: None) -> None:
    for i in range(3):
        call("presign", "POST", "/uploads", {**GOOD, "title": f"t{i}"}, AUTH)
    cursor = call("runs", "GET", "/runs", headers=AUTH, query={"limit": "1"})[1]["next_cursor"]
    payload, _, mac = cursor.partition(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded["key"]["run_id"]["S"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=") + "." + mac
    assert call("runs", "GET", "/runs", headers=AUTH, query={"cursor": forged})[0] == 400
    assert call("runs", "GET", "/runs", headers=AUTH, query={"cursor": cursor})[0] == 200


def test_a_review_link_signature_is_not_a_cursor(aws: None) -> None:
    from rendergate.signing import sign_link

    signature = sign_link(b"unit-test-link-key", "review-id", 10**10)
    assert call("runs", "GET", "/runs", headers=AUTH, query={"cursor": f"{crafted({})}.{signature}"})[0] == 400


@pytest.mark.parametrize("limit", ["²", "٣", "9" * 5000, "-1", "0", "101", "1.5", ""])
def test_a_limit_that_is_not_1_to_100_is_a_400(aws: None, limit: str) -> None:
    status, answer = call("runs", "GET", "/runs", headers=AUTH, query={"limit": limit})
    assert (status, answer["error"]) == (400, "BadRequest")
