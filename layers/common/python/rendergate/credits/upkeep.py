"""The ledger's scheduled jobs: the daily refresh (each owner with a `daily_refresh` is topped up to it, once
a day) and the reconciliation (each balance against the sum of its ledger rows; drift raises the
`LedgerDrift` metric, which the stack's alarm watches, and a `ledger.drift.v1` event on the bus)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from rendergate import accounts, events
from rendergate.credits.ledger import SYSTEM, Change, Duplicate, Entry, apply
from rendergate.observability import logger
from rendergate.tables import Account, LedgerEntry

MARGIN_MS = 10_000
metrics = Metrics()


def refresh(remaining_ms: Callable[[], int], day: str | None = None) -> dict[str, Any]:
    """Top every owner with a `daily_refresh` up to it for `day` (today, UTC): one `refresh#{day}` row each,
    so a second run of the same day adds nothing."""
    day = day or accounts.today()
    topped: dict[str, int] = {}
    for account in Account.scan(Account.item == "account"):
        if remaining_ms() < MARGIN_MS:
            break
        owner = str(account.owner)
        quota = accounts.limits_of(owner, account).daily_refresh
        if quota > int(account.balance) and _top_up(owner, quota, day):
            topped[owner] = quota
    logger.info("daily refresh", extra={"day": day, "owners": len(topped)})
    return {"day": day, "topped_up": topped}


def _top_up(owner: str, quota: int, day: str) -> bool:
    def plan(account: Account | None) -> Change | None:
        balance = int(account.balance) if account else 0
        if balance >= quota:
            return None
        return Change([Entry(f"refresh#{day}", quota - balance, "refresh", SYSTEM, note=f"daily top-up to {quota}")])

    try:
        _, change = apply(owner, plan)
    except Duplicate:  # refreshed today already
        return False
    return change is not None


def reconcile(remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Compare each balance with the sum of its owner's ledger rows (and the account's sequence number with
    their count). A transaction landing between the reads is told apart by the sequence number moving; what
    still differs is drift: logged, counted in the LedgerDrift metric and announced on the bus."""
    checked, drift = 0, []
    for account in Account.scan(Account.item == "account"):
        if remaining_ms() < MARGIN_MS:
            break
        owner = str(account.owner)
        rows = list(LedgerEntry.query(owner, consistent_read=True))
        again = accounts.find(owner, consistent=True)
        if again is None or int(again.seq) != int(account.seq):
            continue  # it moved while being read: the next pass compares it
        checked += 1
        total = sum(int(row.delta) for row in rows)
        if total != int(again.balance) or len(rows) != int(again.seq):
            drift.append(
                {
                    "owner": owner,
                    "balance": int(again.balance),
                    "ledger_sum": total,
                    "seq": int(again.seq),
                    "rows": len(rows),
                }
            )
    metrics.add_metric(name="LedgerDrift", unit=MetricUnit.Count, value=len(drift))
    if drift:
        logger.error("ledger drift", extra={"drift": drift})
        stamp = int(time.time() // 3600)
        events.emit(
            "ledger.drift.v1",
            subject="ledger",
            data={"owners": drift},
            correlation_id=f"reconcile-{stamp}",
            event_id=f"ledger-drift-{stamp}",
        )
    return {"checked": checked, "drift": drift}
