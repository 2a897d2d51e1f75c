"""Reviews: a recorded decision always reaches the state machine (retried in the request, then by the
sweep), a review of a run that no longer waits shows the run's state and takes no decision, and review
pages cannot be framed."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from support.faults import INTERNAL, THROTTLED, UNAVAILABLE, failing
from support.handlers import AUTH, call, respond

TOKEN = "task-token-of-the-review"


def awaiting(status: str = "awaiting_review", expires_in: int = 3600) -> tuple[str, str]:
    """A run waiting for review with one asset; returns (run id, review link)."""
    from rendergate import review, runs
    from rendergate.tables import Asset, Review, Run

    run = Run("run-1", status=status, source="upload", namespace="library", title="Sunset")
    run.save()
    key = "incoming/run-1/a.png"
    Asset("asset-1", run_id="run-1", bucket="media-bucket", key=key, filename="a.png", status="enriched").save()
    row = Review(
        review.review_id_for(TOKEN),
        run_id="run-1",
        task_token=TOKEN,
        asset_ids=["asset-1"],
        expires_at=int(time.time()) + expires_in,
        ttl=int(time.time()) + 10**6,
    )
    row.save()
    run.update(actions=[Run.review_id.set(row.review_id)])
    return "run-1", runs.review_link(row)


def post(link: str, **form: str) -> dict[str, Any]:
    url = urlsplit(link)
    signed = {k: v[0] for k, v in parse_qs(url.query).items()}
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return respond("review", "POST", url.path, urlencode({**signed, **form}).encode(), headers)


def get(link: str) -> dict[str, Any]:
    url = urlsplit(link)
    return respond("review", "GET", url.path, query={k: v[0] for k, v in parse_qs(url.query).items()})


def sfn() -> Any:
    from rendergate import executions

    return executions._sfn()


def review_row() -> Any:
    from rendergate.tables import Review, Run

    return Review.get(Run.get("run-1").review_id)


def backdate_decision(seconds: int = 60) -> None:
    from rendergate.tables import Review

    row = review_row()
    earlier = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds))
    row.update(actions=[Review.decided_at.set(earlier)])


def sweep() -> dict[str, dict[str, str]]:
    from rendergate.sweep import sweep as sweep_once

    return sweep_once(lambda: 60_000)


def test_a_decision_is_delivered_once_and_recorded_as_delivered(aws: None) -> None:
    _, link = awaiting()
    with failing(sfn(), "SendTaskSuccess") as sent:
        answer = post(link, all="approve", reviewer="Ann")
    assert answer["statusCode"] == 200
    assert "your decision is recorded" in answer["body"]
    [decision] = sent.calls
    assert decision["taskToken"] == TOKEN
    assert review_row().delivered_at
    assert call("runs", "GET", "/runs/run-1", headers=AUTH)[1]["review"]["delivery"] == "delivered"


@pytest.mark.parametrize("fault", [THROTTLED, INTERNAL, UNAVAILABLE])
def test_a_throttle_or_5xx_is_retried_inside_the_request(aws: None, fault: tuple[int, str, str]) -> None:
    _, link = awaiting()
    with failing(sfn(), "SendTaskSuccess", fault, fault) as sent:
        answer = post(link, all="approve")
    assert answer["statusCode"] == 200
    assert len(sent.calls) == 3
    assert review_row().delivered_at


@pytest.mark.parametrize("fault", [THROTTLED, INTERNAL])
def test_a_decision_that_cannot_be_delivered_is_kept_and_the_sweep_delivers_it(
    aws: None, fault: tuple[int, str, str]
) -> None:
    _, link = awaiting()
    with failing(sfn(), "SendTaskSuccess", *[fault] * 3) as sent:
        answer = post(link, all="reject", reviewer="Ann", notes="too dark")
    assert answer["statusCode"] == 202
    assert "your decision is recorded" in answer["body"]
    assert "sent again shortly" in answer["body"]
    assert len(sent.calls) == 3
    row = review_row()
    assert (row.status, row.delivered_at, row.rejected) == ("decided", None, ["asset-1"])
    run = call("runs", "GET", "/runs/run-1", headers=AUTH)[1]
    assert (run["review"]["status"], run["review"]["delivery"]) == ("decided", "pending")

    again = post(link, all="approve")
    assert again["statusCode"] == 409

    with failing(sfn(), "SendTaskSuccess") as resent:
        assert sweep()["decisions"] == {}  # the reviewer's request may still be sending it
        backdate_decision()
        assert sweep()["decisions"] == {"run-1": "delivered"}
        assert sweep()["decisions"] == {}
    [decision] = resent.calls
    output = json.loads(decision["output"])
    assert decision["taskToken"] == TOKEN
    assert (output["approved"], output["rejected"], output["reviewer"], output["notes"]) == (
        [],
        ["asset-1"],
        "Ann",
        "too dark",
    )
    assert review_row().delivered_at


def test_the_sweep_keeps_trying_while_step_functions_throttles(aws: None) -> None:
    _, link = awaiting()
    with failing(sfn(), "SendTaskSuccess", *[THROTTLED] * 6):
        assert post(link, all="approve")["statusCode"] == 202
        backdate_decision()
        assert sweep()["decisions"] == {"run-1": "pending"}
    assert review_row().delivered_at is None
    assert sweep()["decisions"] == {"run-1": "delivered"}


def test_a_resend_to_a_task_already_resumed_sends_no_second_decision(aws: None) -> None:
    _, link = awaiting()
    with failing(sfn(), "SendTaskSuccess", *[THROTTLED] * 3):
        assert post(link, all="approve")["statusCode"] == 202
    backdate_decision()
    with failing(sfn(), "SendTaskSuccess", (400, "TaskTimedOut", "Task Timed Out")) as resent:
        assert sweep()["decisions"] == {"run-1": "dead"}
    assert len(resent.calls) == 1
    assert review_row().status == "decided"


def test_the_review_of_a_cancelled_run_shows_its_state_and_takes_no_decision(aws: None) -> None:
    _, link = awaiting(status="cancelled")
    page = get(link)
    assert page["statusCode"] == 410
    assert "<form" not in page["body"]
    assert "This review is closed" in page["body"]
    assert "<strong>cancelled</strong>" in page["body"]
    with failing(sfn(), "SendTaskSuccess") as sent:
        answer = post(link, all="approve")
    assert answer["statusCode"] == 410
    assert "<strong>cancelled</strong>" in answer["body"]
    assert sent.calls == []
    assert review_row().status == "pending"
    assert call("runs", "GET", "/runs/run-1", headers=AUTH)[1]["review"]["status"] == "closed"


def test_a_decided_review_shows_the_decision_not_the_form(aws: None) -> None:
    _, link = awaiting()
    assert post(link, all="approve")["statusCode"] == 200
    page = get(link)
    assert page["statusCode"] == 200
    assert "<form" not in page["body"]
    assert "This review was already decided" in page["body"]


def test_a_decision_cannot_be_recorded_once_the_run_stopped_waiting(aws: None) -> None:
    """The run is cancelled between the page and the POST: the conditional write checks the run too."""
    from rendergate.tables import Run

    _, link = awaiting()
    assert get(link)["statusCode"] == 200
    from rendergate import review

    real_get = review.runs.get
    calls = iter(range(100))

    def cancelled_after_first_read(run_id: str) -> Any:
        run = real_get(run_id)
        if next(calls) == 0:
            Run.get(run_id).update(actions=[Run.status.set("cancelled")])
        return run

    review.runs.get = cancelled_after_first_read  # type: ignore[assignment]
    try:
        with failing(sfn(), "SendTaskSuccess") as sent:
            answer = post(link, all="approve")
    finally:
        review.runs.get = real_get  # type: ignore[assignment]
    assert answer["statusCode"] == 410
    assert sent.calls == []
    assert review_row().status == "pending"


def test_after_a_review_times_out_the_run_shows_it_expired(aws: None) -> None:
    from rendergate.tables import Run

    awaiting(expires_in=-1)
    assert call("runs", "GET", "/runs/run-1", headers=AUTH)[1]["review"]["status"] == "expired"
    awaiting()
    Run.get("run-1").update(actions=[Run.status.set("expired")])  # what RecordExpiry writes
    assert call("runs", "GET", "/runs/run-1", headers=AUTH)[1]["review"]["status"] == "expired"


def test_review_pages_cannot_be_framed_and_run_only_their_own_script(aws: None) -> None:
    import base64
    import hashlib
    import re

    _, link = awaiting()
    page = get(link)
    [script] = re.findall(r"<script>(.*?)</script>", page["body"], re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    for response in (page, get(link.replace("sig=", "sig=x")), post(link, all="approve")):
        headers = {k.lower(): v for k, v in response["headers"].items()}
        policy = [directive.strip() for directive in headers["content-security-policy"].split(";")]
        assert "frame-ancestors 'none'" in policy
        assert f"script-src 'sha256-{digest}'" in policy
        assert headers["x-frame-options"] == "DENY"


def test_a_form_that_is_not_utf8_is_a_clear_page(aws: None) -> None:
    _, link = awaiting()
    url = urlsplit(link)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    answer = respond("review", "POST", url.path, url.query.encode() + b"&notes=caf\xe9&all=approve", headers)
    assert answer["statusCode"] == 400
    assert "UTF-8" in answer["body"]
    assert review_row().status == "pending"
