"""Settling paid runs: what an ending gives back, given once however often it is asked for.

- `failed` (at any stage): everything charged.
- `cancelled` or `expired` before the work was done (no image rendered; an upload whose enrichment never
  began): everything charged.
- otherwise (completed, rejected, or cancelled or expired with its images made): each image that was not
  published counts as discarded, and the namespace's `discard_refund` share of its part of the base cost is
  given back.

Settling also gives back the run's concurrent-run slot. It happens where a run ends (the state machine's
RecordFailure and RecordExpiry, a cancel, the sweep's expiry, publish) and, for anything those missed, in the
sweep, which settles every paid run that ended and was not settled."""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from rendergate import collections, runs
from rendergate.credits.ledger import refund, release_slot
from rendergate.credits.pricing import Price
from rendergate.observability import logger
from rendergate.tables import Asset, Run, Unsettled, epoch_of

SETTLE_AFTER_SECONDS = 60  # the sweep leaves a run that ended this recently to the path it ended on
MARGIN_MS = 5_000


def settle(run_id: str) -> dict[str, Any]:
    """Settle one run: give back its slot once its images are made or it ended, and once it ended, what its
    ending gives back. Returns what was done (`refunded` by this call, `open` while it goes on)."""
    run = runs.find(run_id, consistent=True)
    if run is None:
        return {"run_id": run_id, "outcome": "unknown"}
    released = release_slot(run) if run.holds_slot and (run.status in runs.FINAL or work_done(run)) else False
    if run.status not in runs.FINAL:
        return {"run_id": run_id, "outcome": "open", "released": released}
    refunded = 0
    if run.charged:
        if run.status == "failed" or (run.status in ("cancelled", "expired") and not work_done(run)):
            refunded = refund(run, "refund", int(run.charged), f"the run ended {run.status}")
        else:
            refunded = refund_discards(run)
    _settled(run_id)
    if refunded:
        logger.info("refunded", extra={"run_id": run_id, "owner": run.owner, "credits": refunded})
    return {"run_id": run_id, "outcome": run.status, "refunded": refunded, "released": released}


def refund_discards(run: Run) -> int:
    """The namespace's share of the base cost of each image of the run that was not published (discarded by
    the reviewer, or left when the run was cancelled or expired), once."""
    fraction = Fraction(str(collections.discard_refund(run.namespace)))
    price = Price.of(run.price)
    if fraction <= 0 or not price.images:
        return 0
    assets = list(Asset.by_run.query(run.run_id))
    discarded = sum(1 for asset in assets if asset.status not in ("published", "rejected", "failed"))
    amount = int(fraction * Fraction(price.base, price.images) * discarded)
    note = f"{discarded} discarded image(s), {fraction} of each one's cost"
    return refund(run, "discard", amount, note) if amount else 0


def work_done(run: Run) -> bool:
    """Whether what the run paid for happened: its images were rendered, or its uploads' enrichment began."""
    return bool(run.rendered_at or run.started_at)


def settle_ended(remaining_ms: Callable[[], int]) -> dict[str, str]:
    """The sweep's part: settle every paid run that ended (or rendered while holding a slot) at least
    SETTLE_AFTER_SECONDS ago and was not settled where it ended."""
    outcomes: dict[str, str] = {}
    markers = list(Unsettled.query("settle"))
    found = {run.run_id: run for run in Run.batch_get([marker.run_id for marker in markers])} if markers else {}
    for marker in markers:
        if remaining_ms() < MARGIN_MS:
            break
        run = found.get(marker.run_id)
        if run is None:
            _settled(marker.run_id)  # the run never came to be (its transaction wrote nothing but this marker)
            continue
        due = run.status in runs.FINAL or (run.holds_slot and work_done(run))
        if due and time.time() - epoch_of(str(run.updated_at)) >= SETTLE_AFTER_SECONDS:
            try:
                outcomes[run.run_id] = str(settle(run.run_id)["outcome"])
            except Exception:  # one run that cannot be settled must not stop the others
                logger.exception("settling a run failed", extra={"run_id": run.run_id})
                outcomes[run.run_id] = "error"
    return outcomes


def _settled(run_id: str) -> None:
    Unsettled(run_id=run_id, owner="").delete()
