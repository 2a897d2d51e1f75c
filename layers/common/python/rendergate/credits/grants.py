"""Grants and adjustments by admins. One up to `LargeGrantCredits` (either way) is applied at once; a larger
one waits for a second admin (another owner with the `admin` scope) to approve it, the seed's dual
authorisation: the approval and the ledger row are written in one transaction, so it is applied once."""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from rendergate.accounts import owner_name
from rendergate.config import settings
from rendergate.credits.ledger import Entry, Refused, credit
from rendergate.credits.statements import entry_view
from rendergate.errors import BadRequest, Conflict, Forbidden, NotFound, unknown_fields
from rendergate.owners import Caller
from rendergate.runs import run_id_for
from rendergate.tables import CreditApproval, LedgerEntry, Write, now_iso, save_if_absent, update_if

FIELDS = frozenset({"amount", "reason", "note"})
APPROVAL_SECONDS = 7 * 24 * 3600
MAX_AMOUNT = 1_000_000_000
MAX_NOTE = 500
STATUSES = ("pending", "approved", "denied")


def request(
    owner: str, body: dict[str, Any], caller: Caller, idempotency_key: str | None
) -> tuple[dict[str, Any], int]:
    """`POST /admin/credits/{owner}`: `{amount, reason: grant | adjust, note}`. Applied at once (201), or, when
    larger than LargeGrantCredits, recorded as pending for a second admin (202). With an Idempotency-Key a
    retried request applies (or asks) nothing more."""
    owner = owner_name(owner)
    if unknown := set(body) - FIELDS:
        raise unknown_fields(unknown)
    amount, reason = body.get("amount"), body.get("reason", "grant")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0 or abs(amount) > MAX_AMOUNT:
        raise BadRequest(f"amount must be a whole number of credits, not 0, at most {MAX_AMOUNT} either way")
    if reason not in ("grant", "adjust"):
        raise BadRequest("reason must be grant (adding credits) or adjust (either way)")
    if reason == "grant" and amount < 0:
        raise BadRequest("a grant adds credits: use reason adjust to take some away")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise BadRequest(f"note must be a string of at most {MAX_NOTE} characters")
    txn = run_id_for(idempotency_key)  # a fresh id, or one derived from the key
    if abs(amount) > settings().credits.large_grant:
        return _ask(txn, owner, amount, reason, note, caller), 202
    balance, applied = credit(owner, Entry(f"{reason}#{txn}", amount, reason, caller.owner, note=note))
    entry = LedgerEntry.get(owner, f"{reason}#{txn}", consistent_read=True)
    return {"owner": owner, "balance": balance, "applied": applied, "transaction": entry_view(entry)}, 201


def decide(approval_id: str, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`POST /admin/credits/approvals/{id}` `{decision: approve | deny}` by an admin other than the one who
    asked: approving applies it (once); either ends it."""
    if unknown := set(body) - {"decision"}:
        raise unknown_fields(unknown)
    decision = body.get("decision")
    if decision not in ("approve", "deny"):
        raise BadRequest("decision must be approve or deny")
    approval = _get(approval_id)
    if approval.status != "pending":
        raise Conflict(f"approval {approval_id} was {approval.status} by {approval.decided_by}")
    if approval.requested_by == caller.owner:
        raise Forbidden(f"{caller.owner} asked for this: a second admin (another owner) must decide it")
    if approval.expires_at <= now_iso():
        raise Conflict(f"approval {approval_id} expired at {approval.expires_at}: ask again")
    closing: list[Action] = [
        CreditApproval.decided_by.set(caller.owner),
        CreditApproval.decided_at.set(now_iso()),
    ]
    pending = CreditApproval.status == "pending"
    if decision == "deny":
        if not update_if(approval, [CreditApproval.status.set("denied"), *closing], pending):
            raise Conflict(f"approval {approval_id} was decided meanwhile")
        return approval_view(_get(approval_id))
    txn_id = f"{approval.reason}#{approval.approval_id}"
    closing += [CreditApproval.status.set("approved"), CreditApproval.txn_id.set(txn_id)]
    note = f"{approval.note or ''} (approved by {caller.owner})".strip()
    entry = Entry(txn_id, int(approval.amount), str(approval.reason), str(approval.requested_by), note=note)
    try:
        _, applied = credit(str(approval.owner), entry, [Write("approval", approval, pending, closing, kind="update")])
    except Refused:
        applied = False
    if not applied:
        raise Conflict(f"approval {approval_id} was decided meanwhile")
    return approval_view(_get(approval_id))


def list_approvals(status: str | None) -> dict[str, Any]:
    """`GET /admin/credits/approvals?status=pending`: the grants that wait for a second admin (or were decided)."""
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    found = [a for a in CreditApproval.query("approvals", consistent_read=True) if status in (None, a.status)]
    return {"approvals": [approval_view(a) for a in sorted(found, key=lambda a: a.requested_at, reverse=True)]}


def approval_view(approval: CreditApproval) -> dict[str, Any]:
    return {
        "approval_id": approval.approval_id,
        "owner": approval.owner,
        "amount": int(approval.amount),
        "reason": approval.reason,
        "note": approval.note,
        "status": approval.status,
        "requested_by": approval.requested_by,
        "requested_at": approval.requested_at,
        "expires_at": approval.expires_at,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at,
        "transaction": approval.txn_id,
    }


def _ask(approval_id: str, owner: str, amount: int, reason: str, note: str | None, caller: Caller) -> dict[str, Any]:
    approval = CreditApproval(
        approval_id=approval_id,
        owner=owner,
        amount=amount,
        reason=reason,
        note=note,
        requested_by=caller.owner,
        expires_at=now_iso(APPROVAL_SECONDS),
    )
    if not save_if_absent(approval, CreditApproval.approval_id.does_not_exist()):
        earlier = _get(approval_id)
        if (earlier.owner, int(earlier.amount), earlier.reason, earlier.note) != (owner, amount, reason, note):
            raise Conflict("this Idempotency-Key was already used for a different request")
        approval = earlier
    limit = settings().credits.large_grant
    return {
        **approval_view(approval),
        "message": f"{abs(amount)} credits is more than {limit}: a second admin approves it with "
        f"POST /admin/credits/approvals/{approval.approval_id}",
    }


def _get(approval_id: str) -> CreditApproval:
    try:
        uuid.UUID(hex=approval_id)
        return CreditApproval.get("approvals", approval_id, consistent_read=True)
    except (ValueError, DoesNotExist) as error:
        raise NotFound(f"approval {approval_id} does not exist") from error
