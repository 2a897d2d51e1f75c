"""Credits: a render is priced, and accepted only in the transaction that debits it with its ledger row (402
when the balance does not cover it); priority high costs the boost; every failure path refunds exactly once;
discarded images are refunded by their namespace's policy; admins grant and adjust (large amounts need a second
admin); the daily refresh tops balances up; statements page and export; reconciliation finds drift."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from support.functions import load_function
from support.handlers import AUTH, Context, call, respond
from support.owners import balance, fund, key_for, ledger

# 1000 x 1000 pixels in 20 steps: CreditBaseCost (10) per image
PRICED = {"workflow": "txt2img", "params": {"prompt": "a cat", "width": 1000, "height": 1000, "steps": 20}}


@pytest.fixture
def ada(aws: None) -> dict[str, str]:
    """A key of `ada`, a metered user without limits on concurrent runs."""
    return key_for("ada", "runs", "read", "uploads", limits={"concurrent_runs": 0})


def submit(headers: dict[str, str], **body: Any) -> tuple[int, Any]:
    return call("runs", "POST", "/runs", {**PRICED, **body}, headers)


def run_row(run_id: str) -> Any:
    from rendergate.tables import Run

    return Run.get(run_id, consistent_read=True)


def reasons(owner: str) -> list[tuple[str, int, int]]:
    return [(row["reason"], row["delta"], row["balance"]) for row in ledger(owner)]


def settle(run_id: str) -> dict[str, Any]:
    """What the state machine's SettleFailure / SettleExpiry tasks do."""
    result: dict[str, Any] = load_function("ledger").handler({"settle": run_id}, Context())
    return result


def test_a_render_is_debited_in_the_transaction_that_accepts_it(ada: dict[str, str]) -> None:
    fund("ada", 25)

    status, answer = submit(ada, count=2)

    assert status == 202, answer
    assert answer["estimated_cost"] == {"credits": 20, "base": 20, "boost": 0, "images": 2}
    assert answer["charged"] == 20 and balance("ada") == 5
    [grant, debit] = ledger("ada")
    assert (grant["reason"], grant["balance"]) == ("grant", 25)
    assert (debit["reason"], debit["delta"], debit["balance"], debit["job"], debit["actor"]) == (
        "debit",
        -20,
        5,
        answer["run_id"],
        "ada",
    )
    assert (run_row(answer["run_id"]).owner, run_row(answer["run_id"]).charged) == ("ada", 20)


def test_a_retried_request_is_debited_once(ada: dict[str, str]) -> None:
    fund("ada", 100)
    retried = {**ada, "Idempotency-Key": "retry-me"}
    first, second = submit(retried), submit(retried)
    assert first[1]["run_id"] == second[1]["run_id"]
    assert balance("ada") == 90 and [r for r, _, _ in reasons("ada")] == ["grant", "debit"]


def test_too_few_credits_is_a_402_with_the_balance_and_the_cost_and_nothing_is_accepted(ada: dict[str, str]) -> None:
    from rendergate.tables import Run

    fund("ada", 15)

    status, answer = submit(ada, count=2)

    assert (status, answer["error"], answer["balance"], answer["cost"]) == (402, "InsufficientCredits", 15, 20)
    assert list(Run.scan()) == [] and balance("ada") == 15 and reasons("ada") == [("grant", 15, 15)]


def test_priority_high_costs_the_documented_boost(ada: dict[str, str]) -> None:
    fund("ada", 100)

    status, answer = submit(ada, priority="high")

    assert status == 202
    assert answer["estimated_cost"] == {"credits": 15, "base": 10, "boost": 5, "images": 1}  # +50 %
    assert sorted(reasons("ada")) == [("boost", -5, 85), ("debit", -10, 90), ("grant", 100, 100)]


@pytest.mark.parametrize(
    ("params", "count", "credits"),
    [
        ({"width": 1000, "height": 1000, "steps": 20}, 1, 10),
        ({"width": 1000, "height": 1000, "steps": 40}, 1, 20),  # steps
        ({"width": 2000, "height": 1000, "steps": 20}, 1, 20),  # pixels
        ({"width": 1000, "height": 1000, "steps": 20}, 3, 30),  # count
        ({"width": 64, "height": 64, "steps": 2}, 2, 2),  # at least one credit an image
    ],
)
def test_the_estimate_scales_with_pixels_steps_and_count(
    ada: dict[str, str], params: dict[str, int], count: int, credits: int
) -> None:
    fund("ada", 7)
    body = {"workflow": "txt2img", "params": {"prompt": "a cat", **params}, "count": count}
    status, answer = call("runs", "POST", "/runs/estimate", body, ada)
    assert status == 200, answer
    assert (answer["estimated_cost"]["credits"], answer["balance"], answer["covered"]) == (credits, 7, credits <= 7)
    assert balance("ada") == 7  # an estimate accepts nothing


def test_a_failed_render_is_refunded_in_full_exactly_once(ada: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from rendergate import runs
    from rendergate.credits import settlement

    fund("ada", 30)
    _, answer = submit(ada, count=2)
    runs.advance(run_row(answer["run_id"]), "failed", error_name="RenderFailed", error_cause="out of memory")

    # The state machine settles it, its retry settles it again, and so does the sweep
    assert settle(answer["run_id"])["refunded"] == 20
    assert settle(answer["run_id"])["refunded"] == 0
    monkeypatch.setattr(settlement, "SETTLE_AFTER_SECONDS", -1)
    settlement.settle_ended(lambda: 60_000)

    assert balance("ada") == 30
    assert reasons("ada") == [("grant", 30, 30), ("debit", -20, 10), ("refund", 20, 30)]


def test_a_run_cancelled_before_rendering_is_refunded_once(ada: dict[str, str]) -> None:
    fund("ada", 30)
    _, answer = submit(ada, count=2)

    status, cancelled = call("runs", "POST", f"/runs/{answer['run_id']}/cancel", headers=ada)
    assert (status, cancelled["refunded"]) == (200, 20)
    assert call("runs", "POST", f"/runs/{answer['run_id']}/cancel", headers=ada)[0] == 409
    assert settle(answer["run_id"])["refunded"] == 0
    assert balance("ada") == 30 and [r for r, _, _ in reasons("ada")] == ["grant", "debit", "refund"]


def test_a_run_cancelled_after_its_images_were_rendered_is_not_refunded_in_full(ada: dict[str, str]) -> None:
    from rendergate.tables import Run, now_iso

    fund("ada", 30)
    _, answer = submit(ada, count=2)
    run_row(answer["run_id"]).update(actions=[Run.rendered_at.set(now_iso())])

    status, cancelled = call("runs", "POST", f"/runs/{answer['run_id']}/cancel", headers=ada)

    assert (status, cancelled["refunded"]) == (200, 0)  # the namespace refunds no discards by default
    assert balance("ada") == 10


def test_a_run_whose_pipeline_did_not_start_is_refunded(ada: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from rendergate import executions

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(executions, "start", refuse)
    fund("ada", 30)

    status, _ = submit(ada)

    assert status == 503 and balance("ada") == 30
    assert [r for r, _, _ in reasons("ada")] == ["grant", "debit", "refund"]


def test_an_upload_run_whose_files_never_arrive_is_refunded(aws: None, settings: Callable[..., None]) -> None:
    from rendergate import runs
    from rendergate.credits import settlement

    settings(UPLOAD_IMAGE_COST="3")
    headers = key_for("ada", "uploads", "read")
    fund("ada", 10)
    status, upload = call(
        "presign", "POST", "/uploads", {"filename": "a.png", "content_type": "image/png", "size": 1024}, headers
    )
    assert status == 201 and upload["charged"] == 3 and balance("ada") == 7

    runs.advance(run_row(upload["run_id"]), "expired")
    settlement.settle(upload["run_id"])
    settlement.settle(upload["run_id"])

    assert balance("ada") == 10 and [r for r, _, _ in reasons("ada")] == ["grant", "debit", "refund"]


def discard(run_id: str, statuses: list[str]) -> None:
    """Give the run images in `statuses` and end it completed, as a review and publish would."""
    from rendergate.tables import Asset, Run, now_iso

    for number, status in enumerate(statuses):
        Asset(
            f"{run_id}-{number}", run_id=run_id, bucket="media", key=f"k{number}", filename="a.png", status=status
        ).save()
    run_row(run_id).update(actions=[Run.status.set("completed"), Run.rendered_at.set(now_iso())])


@pytest.mark.parametrize(("policy", "refunded"), [(None, 0), (0, 0), (0.5, 10), (1, 20)])
def test_discarded_images_are_refunded_by_the_namespaces_policy(
    ada: dict[str, str], policy: float | None, refunded: int
) -> None:
    if policy is not None:
        assert call("collections", "PUT", "/libraries/library", {"discard_refund": policy}, AUTH)[0] == 200
    fund("ada", 100)
    _, answer = submit(ada, count=4)  # 40 credits, 10 an image
    discard(answer["run_id"], ["published", "discarded", "discarded", "published"])

    assert settle(answer["run_id"])["refunded"] == refunded
    assert settle(answer["run_id"])["refunded"] == 0
    assert balance("ada") == 60 + refunded


def test_a_bad_discard_policy_is_a_400(aws: None) -> None:
    for value in (-0.1, 1.5, "half", True):
        assert call("collections", "PUT", "/libraries/library", {"discard_refund": value}, AUTH)[0] == 400


def test_an_admin_grants_and_adjusts_with_a_note(aws: None) -> None:
    status, granted = call("admin", "POST", "/admin/credits/ada", {"amount": 100, "note": "welcome"}, AUTH)
    assert (status, granted["balance"], granted["transaction"]["note"]) == (201, 100, "welcome")
    assert granted["transaction"]["actor"] == "admin"

    status, adjusted = call(
        "admin", "POST", "/admin/credits/ada", {"amount": -30, "reason": "adjust", "note": "double grant"}, AUTH
    )
    assert (status, adjusted["balance"]) == (201, 70)
    assert call("admin", "POST", "/admin/credits/ada", {"amount": -71, "reason": "adjust"}, AUTH)[0] == 409
    assert call("admin", "POST", "/admin/credits/ada", {"amount": -5}, AUTH)[0] == 400  # a grant only adds

    again = {**AUTH, "Idempotency-Key": "grant-1"}
    assert call("admin", "POST", "/admin/credits/ada", {"amount": 5}, again)[1]["applied"] is True
    assert call("admin", "POST", "/admin/credits/ada", {"amount": 5}, again)[1]["applied"] is False
    assert reasons("ada") == [("grant", 100, 100), ("adjust", -30, 70), ("grant", 5, 75)]


def test_a_large_grant_needs_a_second_admins_approval_and_is_applied_once(aws: None) -> None:
    second = key_for("bea", "admin")

    status, asked = call("admin", "POST", "/admin/credits/ada", {"amount": 5000, "note": "prize"}, AUTH)
    assert (status, asked["status"]) == (202, "pending") and balance("ada") == 0
    path = f"/admin/credits/approvals/{asked['approval_id']}"

    assert call("admin", "POST", path, {"decision": "approve"}, AUTH)[0] == 403  # not the admin who asked
    status, approved = call("admin", "POST", path, {"decision": "approve"}, second)
    assert (status, approved["status"], approved["decided_by"]) == (200, "approved", "bea")
    assert call("admin", "POST", path, {"decision": "approve"}, second)[0] == 409
    assert balance("ada") == 5000
    [row] = ledger("ada")
    assert (row["reason"], row["delta"], row["actor"]) == ("grant", 5000, "admin") and "approved by bea" in row["note"]


def test_a_denied_large_adjustment_changes_nothing(aws: None) -> None:
    fund("ada", 900)
    fund("ada", 900)
    _, asked = call("admin", "POST", "/admin/credits/ada", {"amount": -1500, "reason": "adjust"}, AUTH)
    status, denied = call(
        "admin",
        "POST",
        f"/admin/credits/approvals/{asked['approval_id']}",
        {"decision": "deny"},
        key_for("bea", "admin"),
    )
    assert (status, denied["status"]) == (200, "denied") and balance("ada") == 1800
    _, pending = call("admin", "GET", "/admin/credits/approvals", headers=AUTH, query={"status": "pending"})
    assert pending["approvals"] == []


def test_the_daily_refresh_tops_balances_up_to_the_quota_once_a_day(aws: None) -> None:
    from rendergate import accounts
    from rendergate.credits import upkeep

    accounts.configure("ada", {"limits": {"daily_refresh": 50}})
    accounts.configure("bob", {"limits": {"daily_refresh": 50}})
    fund("ada", 20)
    fund("bob", 80)

    assert upkeep.refresh(lambda: 60_000, day="2030-01-01")["topped_up"] == {"ada": 50}
    assert upkeep.refresh(lambda: 60_000, day="2030-01-01")["topped_up"] == {}
    assert (balance("ada"), balance("bob")) == (50, 80)

    from rendergate.credits.ledger import Entry, credit

    credit("ada", Entry("adjust#spent", -45, "adjust", "admin"))
    assert upkeep.refresh(lambda: 60_000, day="2030-01-02")["topped_up"] == {"ada": 50}
    assert reasons("ada")[-1] == ("refresh", 45, 50)


def test_the_schedule_runs_the_refresh_with_the_stacks_default_quota(aws: None, settings: Callable[..., None]) -> None:
    settings(DEFAULT_DAILY_REFRESH="25")
    key_for("ada", "read")  # an account, as a new key makes one

    load_function("ledger").handler({"job": "refresh"}, Context(remaining_ms=120_000))

    assert balance("ada") == 25


def test_a_statement_pages_through_the_owners_transactions_newest_first(ada: dict[str, str]) -> None:
    for credits in (1, 2, 3, 4, 5):
        fund("ada", credits)
    seen: list[int] = []
    cursor = None
    while True:
        status, page = call(
            "admin", "GET", "/credits", headers=ada, query={"limit": "2", **({"cursor": cursor} if cursor else {})}
        )
        assert status == 200 and page["owner"] == "ada" and page["balance"] == 15
        seen += [row["delta"] for row in page["transactions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]


def test_only_an_admin_reads_another_owners_statement(ada: dict[str, str]) -> None:
    fund("bob", 3)
    status, answer = call("admin", "GET", "/credits", headers=ada, query={"owner": "bob"})
    assert (status, answer["scope"]) == (403, "admin")
    assert call("admin", "GET", "/credits", headers=AUTH, query={"owner": "bob"})[1]["balance"] == 3


def test_the_ledger_exports_as_csv_for_admins_only(ada: dict[str, str]) -> None:
    from rendergate.credits.ledger import Entry, credit
    from rendergate.tables import now_iso

    credit("ada", Entry("grant#formula", 7, "grant", "admin", note="=HYPERLINK(1)"))
    fund("bob", 3)
    today = now_iso()[:10]

    response = respond("admin", "GET", "/credits/export", headers=AUTH, query={"from": today, "to": today})

    assert response["statusCode"] == 200 and response["headers"]["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response["body"])))
    assert sorted((row["owner"], row["delta"]) for row in rows) == [("ada", "7"), ("bob", "3")]
    assert next(row for row in rows if row["owner"] == "ada")["note"] == "'=HYPERLINK(1)"
    status, refused = call("admin", "GET", "/credits/export", headers=ada, query={"from": today, "to": today})
    assert (status, refused["scope"]) == (403, "admin")
    assert call("admin", "GET", "/credits/export", headers=AUTH, query={"from": today})[0] == 400


def emitted_metrics(output: str) -> dict[str, Any]:
    """The embedded-metric-format document the function printed."""
    for line in output.splitlines():
        if '"_aws"' in line:
            document: dict[str, Any] = json.loads(line)
            return document
    raise AssertionError(f"no metrics in {output!r}")


def test_reconciliation_raises_the_drift_alarms_metric_when_a_balance_differs_from_its_ledger(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from rendergate.tables import Account
    from support.aws import TEMPLATE

    fund("ada", 10)
    handler = load_function("ledger").handler
    assert handler({"job": "reconcile"}, Context(remaining_ms=120_000))["drift"] == []
    assert emitted_metrics(capsys.readouterr().out)["LedgerDrift"] == [0.0]

    Account.get("ada", "account").update(
        actions=[Account.balance.set(Account.balance + 5)]
    )  # written around the ledger
    result = handler({"job": "reconcile"}, Context(remaining_ms=120_000))

    assert result["drift"] == [{"owner": "ada", "balance": 15, "ledger_sum": 10, "seq": 1, "rows": 1}]
    metrics = emitted_metrics(capsys.readouterr().out)
    alarm = TEMPLATE["Resources"]["LedgerDriftAlarm"]["Properties"]
    [declared] = metrics["_aws"]["CloudWatchMetrics"]
    assert declared["Namespace"] == alarm["Namespace"]
    assert {m["Name"] for m in declared["Metrics"]} >= {alarm["MetricName"]}
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}.items() <= {
        k: metrics[k] for k in metrics if k != "_aws"
    }.items()
    assert metrics["LedgerDrift"] == [1.0]
