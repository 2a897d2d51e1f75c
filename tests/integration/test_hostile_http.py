"""Hostile requests over real HTTP on the local stack: every one gets an answer (a 4xx JSON or page),
never a 500 and never a connection closed without one."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from rendergate.signing import webhook_token
from support.devstack import DevStack

NOT_UTF8 = b'{"filename": "caf\xe9.png", "content_type": "image/png", "size": 10}'


def raw_post(devstack: DevStack, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A POST sent as written (no client-side encoding), read back whole."""
    url = urlsplit(devstack.api_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("content_type", ["application/json", "text/plain; charset=utf-8", "application/octet-stream"])
def test_a_body_that_is_not_utf8_is_a_400_answer(devstack: DevStack, content_type: str) -> None:
    headers = {**devstack.auth, "Content-Type": content_type}
    status, _, body = raw_post(devstack, "/uploads", NOT_UTF8, headers)
    assert status == 400
    answer = json.loads(body)
    assert answer["error"] == "BadRequest"
    assert "UTF-8" in answer["message"]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_forged_webhook_url_with_a_broken_body_is_a_403(devstack: DevStack, content_type: str) -> None:
    status, _, body = raw_post(devstack, "/webhooks/runpod/some-run/forged", NOT_UTF8, {"Content-Type": content_type})
    assert status == 403
    assert json.loads(body)["error"] == "LinkInvalid"


def test_a_genuine_webhook_url_with_a_body_that_is_not_utf8_is_a_400(devstack: DevStack) -> None:
    token = webhook_token(devstack.state["webhook_secret"].encode(), "some-run")
    path = f"/webhooks/runpod/some-run/{token}"
    status, _, body = raw_post(devstack, path, NOT_UTF8, {"Content-Type": "application/json"})
    assert status == 400
    assert "UTF-8" in json.loads(body)["message"]


def test_nan_and_deep_nesting_are_refused_over_http(devstack: DevStack) -> None:
    headers = {**devstack.auth, "Content-Type": "application/json"}
    nan = b'{"workflow": "txt2img", "params": {"prompt": "a cat", "cfg": NaN}}'
    status, _, body = raw_post(devstack, "/runs", nan, headers)
    assert (status, json.loads(body)["error"]) == (400, "BadRequest")
    status, _, body = raw_post(devstack, "/uploads", b"[" * 100_000, headers)
    assert status == 400
    assert "nested too deeply" in json.loads(body)["message"]


def test_a_huge_body_is_a_413_with_a_short_answer(devstack: DevStack) -> None:
    fields = {f"field{i:07d}": 1 for i in range(300_000)}
    answer = requests.post(f"{devstack.api_url}/uploads", json=fields, headers=devstack.auth, timeout=60)
    assert answer.status_code == 413
    assert answer.json()["error"] == "BodyTooLarge"
    assert len(answer.content) < 300


def test_a_content_length_that_is_not_a_number_is_answered(devstack: DevStack) -> None:
    url = urlsplit(devstack.api_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.putrequest("POST", "/uploads")
        connection.putheader("Content-Length", "lots")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400
        assert json.loads(response.read()) == {"message": "Bad Request"}
    finally:
        connection.close()


def test_the_review_of_a_cancelled_run_shows_the_cancellation(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review(title="Cancelled before review")
    link = run["review"]["url"]
    form = devstack.review_form(link)
    assert devstack.cancel(run["run_id"]).status_code == 200

    page = requests.get(link, timeout=10)
    assert page.status_code == 410
    assert "<form" not in page.text
    assert "<strong>cancelled</strong>" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"].split("; ")
    assert page.headers["X-Frame-Options"] == "DENY"

    refused = requests.post(link.split("?")[0], data={**form, "all": "approve"}, timeout=10)
    assert refused.status_code == 410
    assert "<strong>cancelled</strong>" in refused.text
    after = devstack.run(run["run_id"])
    assert after["status"] == "cancelled"
    assert after["review"]["status"] == "closed"
    assert after["published"] == []
