"""Every request body is read one way (rendergate.api): hostile bodies get a short 4xx JSON answer,
never a 500. Given a body no client should send, when it reaches a handler, then the answer says why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rendergate.signing import webhook_token
from support.handlers import AUTH, call, respond

GOOD = {"filename": "a.png", "content_type": "image/png", "size": 10}
LIMIT = 256 * 1024  # rendergate.api.MAX_BODY_BYTES, as README documents it
MESSAGE_LIMIT = 600  # rendergate.api.MAX_MESSAGE_CHARS
NOT_UTF8 = b'{"filename": "caf\xe9.png", "content_type": "image/png", "size": 10}'  # Latin-1, not UTF-8
RENDER = '{"workflow": "txt2img", "params": {"prompt": "a cat", "cfg": %s}}'


def webhook_path(run_id: str = "run-1") -> str:
    return f"/webhooks/runpod/{run_id}/{webhook_token(b'unit-test-webhook-secret', run_id)}"


@pytest.mark.parametrize(
    ("function", "path", "headers"),
    [("presign", "/uploads", AUTH), ("runs", "/runs", AUTH), ("webhooks", webhook_path(), {})],
)
def test_a_body_that_is_not_utf8_is_a_400(aws: None, function: str, path: str, headers: dict[str, str]) -> None:
    status, answer = call(function, "POST", path, NOT_UTF8, headers)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "UTF-8" in answer["message"]


def test_a_text_body_with_a_lone_surrogate_is_a_400(aws: None) -> None:
    # a text event can carry what a JSON decoder made of broken bytes: a lone surrogate
    status, answer = call("presign", "POST", "/uploads", json.dumps(GOOD)[:-1] + ', "title": "\udcff"}', AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "surrogate" in answer["message"]


def test_a_base64_body_that_is_utf8_json_is_read(aws: None) -> None:
    status, answer = call("presign", "POST", "/uploads", json.dumps(GOOD).encode(), AUTH)
    assert status == 201, answer


@pytest.mark.parametrize("nesting", ["[" * 100_000 + "]" * 100_000, '{"a":' * 40_000 + "1" + "}" * 40_000])
def test_deeply_nested_json_is_a_400(aws: None, nesting: str) -> None:
    status, answer = call("presign", "POST", "/uploads", nesting, AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "nested too deeply" in answer["message"]


def test_json_nested_past_the_limit_is_a_400_even_when_python_could_parse_it(aws: None) -> None:
    body = {**GOOD, "tags": json.loads("[" * 40 + "]" * 40)}
    status, answer = call("presign", "POST", "/uploads", body, AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "nested too deeply" in answer["message"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_refused(aws: None, number: str) -> None:
    status, answer = call("runs", "POST", "/runs", RENDER % number, AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")
    assert "finite" in answer["message"]


def test_an_integer_too_long_to_convert_is_a_400(aws: None) -> None:
    status, answer = call("presign", "POST", "/uploads", json.dumps(GOOD).replace("10", "9" * 5000), AUTH)
    assert (status, answer["error"]) == (400, "BadRequest")


def test_a_body_over_the_limit_is_a_413_with_a_short_answer(aws: None) -> None:
    unknown = {f"field{i:07d}": 1 for i in range(5 * 1024 * 1024 // 16)}
    for body in (json.dumps(unknown), json.dumps(unknown).encode()):
        response = respond("presign", "POST", "/uploads", body, AUTH)
        assert response["statusCode"] == 413
        assert json.loads(response["body"])["error"] == "BodyTooLarge"
        assert str(LIMIT) in json.loads(response["body"])["message"]
        assert len(response["body"]) < 300


def test_unknown_fields_are_named_a_few_at_a_time(aws: None) -> None:
    unknown = {f"field{i:07d}": 1 for i in range(10_000)}
    response = respond("presign", "POST", "/uploads", {**GOOD, **unknown}, AUTH)
    assert response["statusCode"] == 400
    message = json.loads(response["body"])["message"]
    assert message == (
        "unknown fields: field0000000, field0000001, field0000002, field0000003, field0000004 and 9995 more"
    )


def test_unknown_render_fields_and_parameters_are_named_a_few_at_a_time(aws: None) -> None:
    many = {f"x{i:05d}": 1 for i in range(5000)}
    status, answer = call("runs", "POST", "/runs", {"workflow": "txt2img", **many}, AUTH)
    assert status == 400 and answer["message"].endswith("and 4995 more")
    status, answer = call("runs", "POST", "/runs", {"workflow": "txt2img", "params": {"prompt": "a", **many}}, AUTH)
    assert status == 400 and "params.x00000" in answer["message"] and "and 4995 more" in answer["message"]


def test_every_error_message_is_capped(aws: None) -> None:
    long_name = "n" * 100_000
    status, answer = call("presign", "POST", "/uploads", {**GOOD, "filename": long_name + ".png"}, AUTH)
    assert status == 400
    assert len(answer["message"]) <= MESSAGE_LIMIT
    status, answer = call("presign", "POST", "/uploads", {**GOOD, long_name: 1}, AUTH)
    assert status == 400
    assert len(answer["message"]) <= MESSAGE_LIMIT


@pytest.mark.parametrize(
    "body", [NOT_UTF8, "[" * 100_000, "x" * (LIMIT + 1), '{"id": NaN}', "not json", '{"id": "job"}']
)
def test_a_forged_webhook_url_is_a_403_whatever_the_body(aws: None, body: Any) -> None:
    status, answer = call("webhooks", "POST", "/webhooks/runpod/run-1/forged", body)
    assert (status, answer["error"]) == (403, "LinkInvalid")
