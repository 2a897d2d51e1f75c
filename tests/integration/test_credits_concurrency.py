"""Credits on the local stack, over HTTP: fifty concurrent submits from one owner with credits for ten are
accepted exactly ten times, and the balance ends at what the ledger adds up to (the reconciliation finds no
drift)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from support.devstack import DevStack

RUN = {"workflow": "txt2img", "params": {"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 1}}
SUBMITS, AFFORDABLE = 50, 10


def admin(devstack: DevStack, method: str, path: str, body: Any = None) -> dict[str, Any]:
    answer = requests.request(method, f"{devstack.api_url}{path}", json=body, headers=devstack.auth, timeout=30)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


def owner_with_key(devstack: DevStack, owner: str, *scopes: str) -> dict[str, str]:
    made = admin(devstack, "POST", "/admin/keys", {"owner": owner, "scopes": list(scopes)})
    # no request rate or concurrent-run limit: this owner is held back by its credits alone
    admin(devstack, "PUT", f"/admin/owners/{owner}", {"limits": {"requests_per_minute": 0, "concurrent_runs": 0}})
    return {"Authorization": f"Bearer {made['key']}"}


def statement(devstack: DevStack, key: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    """The balance and every transaction, paged through."""
    rows: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "20"}
    while True:
        page = requests.get(f"{devstack.api_url}/credits", params=query, headers=key, timeout=30).json()
        rows += page["transactions"]
        if page["next_cursor"] is None:
            return int(page["balance"]), rows
        query["cursor"] = page["next_cursor"]


def test_fifty_concurrent_submits_with_credits_for_ten_are_accepted_ten_times(devstack: DevStack) -> None:
    key = owner_with_key(devstack, "invariant", "runs", "read")
    estimate = requests.post(f"{devstack.api_url}/runs/estimate", json=RUN, headers=key, timeout=30).json()
    cost = estimate["estimated_cost"]["credits"]
    admin(devstack, "POST", "/admin/credits/invariant", {"amount": cost * AFFORDABLE, "note": "ten renders"})

    def submit(_: int) -> int:
        return requests.post(f"{devstack.api_url}/runs", json=RUN, headers=key, timeout=120).status_code

    with ThreadPoolExecutor(SUBMITS) as pool:
        statuses = list(pool.map(submit, range(SUBMITS)))

    assert sorted(statuses) == [202] * AFFORDABLE + [402] * (SUBMITS - AFFORDABLE)
    balance, rows = statement(devstack, key)
    debits = [row for row in rows if row["reason"] == "debit"]
    assert len(debits) == AFFORDABLE and len({row["job"] for row in debits}) == AFFORDABLE
    assert balance == sum(row["delta"] for row in rows)
    assert sum(row["delta"] for row in rows if row["reason"] != "refund") == 0  # the grant, spent ten times

    reconciled = devstack.aws("lambda").invoke(
        FunctionName=devstack.state["ledger_function"], Payload=json.dumps({"job": "reconcile"}).encode()
    )
    result = json.loads(reconciled["Payload"].read())
    assert "FunctionError" not in reconciled, result
    assert [drift for drift in result["drift"] if drift["owner"] == "invariant"] == []
