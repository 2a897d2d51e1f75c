"""Owners, keys and credits for tests: callers for tests that call the stages directly (as the authoriser lets
them through), and keys and balances made through the same code the admin routes use."""

from __future__ import annotations

from typing import Any

from rendergate.owners import SCOPES, Caller

ADMIN = Caller("admin", "bootstrap", frozenset(SCOPES))  # the bootstrap key's owner: unmetered and unlimited


def key_for(owner: str, *scopes: str, **account: Any) -> dict[str, str]:
    """The Authorization header of a new key of `owner` with `scopes` (every one when none are named); the
    owner's account gets `account` (`metered`, `limits`, `kind`) first."""
    from rendergate import accounts, owners

    if account:
        accounts.configure(owner, account)
    made = owners.create_key({"owner": owner, "scopes": list(scopes or SCOPES)}, ADMIN)
    return {"Authorization": f"Bearer {made['key']}"}


def fund(owner: str, credits: int) -> int:
    """Grant `owner` credits as an admin would (under the large-grant limit, one grant per call); its balance."""
    import uuid

    from rendergate.credits.ledger import Entry, credit

    balance, _ = credit(owner, Entry(f"grant#{uuid.uuid4().hex}", credits, "grant", "admin", note="test funds"))
    return balance


def balance(owner: str) -> int:
    from rendergate import accounts

    account = accounts.find(owner, consistent=True)
    return int(account.balance) if account else 0


def ledger(owner: str) -> list[dict[str, Any]]:
    """The owner's ledger rows, oldest first."""
    from rendergate.credits.statements import entry_view
    from rendergate.tables import LedgerEntry

    return [entry_view(row) for row in LedgerEntry.by_at.query(owner, consistent_read=True)]
