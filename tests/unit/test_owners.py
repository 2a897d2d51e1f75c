"""Owners: what each owner asks for is recorded as theirs (runs and uploads here; entities and decisions in
media/test_entities_api.py); `GET /runs` shows an owner its own runs and an admin anyone's; quotas per owner
(requests a minute per key, concurrent runs, spending a day) answer 429 with Retry-After, with the stack's
defaults unless the owner's account overrides them; and the ledger's transaction holds when another change
lands between its read and its write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support.handlers import AUTH, call, call_with_headers
from support.owners import balance, fund, key_for, ledger

BODY = {"workflow": "txt2img", "params": {"prompt": "a cat", "width": 1000, "height": 1000, "steps": 20}}
UPLOAD = {"filename": "a.png", "content_type": "image/png", "size": 1024}


def run_row(run_id: str) -> Any:
    from rendergate.tables import Run

    return Run.get(run_id, consistent_read=True)


def test_runs_and_uploads_record_the_owner_that_asked(aws: None) -> None:
    ada = key_for("ada", "runs", "uploads", "read", metered=False)
    _, render = call("runs", "POST", "/runs", BODY, ada)
    _, upload = call("presign", "POST", "/uploads", UPLOAD, ada)
    _, external = call("runs", "POST", "/runs", {"source": "external", "title": "x"}, ada)
    assert [run_row(a["run_id"]).owner for a in (render, upload, external)] == ["ada", "ada", "ada"]


def test_get_runs_shows_an_owner_its_own_and_an_admin_anyones(aws: None) -> None:
    ada = key_for("ada", "runs", "read", metered=False)
    bob = key_for("bob", "runs", "read", metered=False)
    _, mine = call("runs", "POST", "/runs", BODY, ada)
    _, theirs = call("runs", "POST", "/runs", BODY, bob)

    assert [r["run_id"] for r in call("runs", "GET", "/runs", headers=ada)[1]["runs"]] == [mine["run_id"]]
    status, refused = call("runs", "GET", "/runs", headers=ada, query={"owner": "bob"})
    assert (status, refused["scope"]) == (403, "admin")
    assert call("runs", "GET", f"/runs/{theirs['run_id']}", headers=ada)[0] == 404  # tells nothing
    assert call("runs", "POST", f"/runs/{theirs['run_id']}/cancel", headers=ada)[0] == 404

    everyone = {r["run_id"] for r in call("runs", "GET", "/runs", headers=AUTH)[1]["runs"]}
    assert everyone == {mine["run_id"], theirs["run_id"]}
    chosen = call("runs", "GET", "/runs", headers=AUTH, query={"owner": "bob"})[1]["runs"]
    assert [r["run_id"] for r in chosen] == [theirs["run_id"]]
    assert call("runs", "GET", "/runs", headers=AUTH, query={"owner": "Bob!"})[0] == 400


def test_a_key_over_its_owners_request_rate_gets_429_with_retry_after(aws: None) -> None:
    ada = key_for("ada", "read", limits={"requests_per_minute": 3})
    for _ in range(3):
        assert call("runs", "GET", "/runs", headers=ada)[0] == 200

    status, answer, headers = call_with_headers("runs", "GET", "/runs", headers=ada)

    assert (status, answer["error"]) == (429, "RateLimited")
    assert 1 <= int(headers["Retry-After"]) <= 60 and answer["retry_after"] == int(headers["Retry-After"])
    other_key = key_for("ada", "read")  # the rate is counted per key
    assert call("runs", "GET", "/runs", headers=other_key)[0] == 200


def test_an_owner_at_its_concurrent_run_limit_gets_429_until_one_ends(aws: None) -> None:
    ada = key_for("ada", "runs", "read", limits={"concurrent_runs": 2})
    fund("ada", 100)
    first = call("runs", "POST", "/runs", BODY, ada)[1]
    assert call("runs", "POST", "/runs", BODY, ada)[0] == 202

    status, answer, headers = call_with_headers("runs", "POST", "/runs", BODY, ada)

    assert (status, answer["error"]) == (429, "TooManyRuns") and int(headers["Retry-After"]) >= 1
    assert balance("ada") == 80  # the refused one was not debited
    assert call("runs", "POST", f"/runs/{first['run_id']}/cancel", headers=ada)[0] == 200
    assert call("runs", "POST", "/runs", BODY, ada)[0] == 202


def test_an_owners_daily_spending_cap_turns_work_away_until_midnight(aws: None) -> None:
    ada = key_for("ada", "runs", limits={"daily_spend": 25, "concurrent_runs": 0})
    fund("ada", 100)
    assert call("runs", "POST", "/runs", {**BODY, "count": 2}, ada)[0] == 202

    status, answer, headers = call_with_headers("runs", "POST", "/runs", BODY, ada)

    assert (status, answer["error"]) == (429, "SpendingCapReached")
    assert 1 <= int(headers["Retry-After"]) <= 24 * 3600 + 1
    assert balance("ada") == 80 and [row["reason"] for row in ledger("ada")] == ["grant", "debit"]


def test_the_documented_defaults_apply_until_an_owner_overrides_them(aws: None, settings: Callable[..., None]) -> None:
    key_for("ada", "read")
    _, view = call("admin", "GET", "/admin/owners/ada", headers=AUTH)
    assert view["limits"] == {
        "requests_per_minute": 120,
        "concurrent_runs": 4,
        "daily_spend": 0,
        "daily_refresh": 0,
        "low_priority_queue_limit": 10,
    }
    assert view["metered"] is True

    settings(DEFAULT_CONCURRENT_RUNS="1")
    ada = key_for("ada", "runs")
    fund("ada", 100)
    assert call("runs", "POST", "/runs", BODY, ada)[0] == 202
    assert call("runs", "POST", "/runs", BODY, ada)[0] == 429

    status, view = call("admin", "PUT", "/admin/owners/ada", {"limits": {"concurrent_runs": 3}}, AUTH)
    assert (status, view["limits"]["concurrent_runs"], view["overrides"]) == (200, 3, {"concurrent_runs": 3})
    assert call("runs", "POST", "/runs", BODY, ada)[0] == 202
    assert call("admin", "PUT", "/admin/owners/ada", {"limits": {"concurrent_runs": -1}}, AUTH)[0] == 400
    assert call("admin", "PUT", "/admin/owners/ada", {"limits": {"speed": 1}}, AUTH)[0] == 400


def test_the_bootstrap_admin_is_unmetered_and_unlimited(aws: None) -> None:
    for _ in range(6):
        assert call("runs", "POST", "/runs", BODY, AUTH)[0] == 202
    assert balance("admin") == 0 and ledger("admin") == []


def test_a_debit_that_meets_a_concurrent_change_reads_again_and_never_overdraws(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate.credits import ledger as credits_ledger
    from rendergate.credits.ledger import Entry, credit

    ada = key_for("ada", "runs", limits={"concurrent_runs": 0})
    fund("ada", 10)
    original = credits_ledger._writes
    raced: list[int] = []

    def another_debit_lands_first(owner: str, account: Any, change: Any) -> Any:
        if not raced:  # between this request's read and its write, the balance is spent elsewhere
            raced.append(1)
            credit("ada", Entry("adjust#elsewhere", -5, "adjust", "admin"))
        return original(owner, account, change)

    monkeypatch.setattr(credits_ledger, "_writes", another_debit_lands_first)

    status, answer = call("runs", "POST", "/runs", BODY, ada)  # costs 10; 5 are left once it writes

    assert (status, answer["balance"], answer["cost"]) == (402, 5, 10)
    assert balance("ada") == 5 == sum(row["delta"] for row in ledger("ada"))
