"""Accounts: per owner, whether its work is metered (paid in credits), the limits that apply to it (the
stack's defaults, overridden per owner), and the request rate every API call is admitted under."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from rendergate.config import settings
from rendergate.errors import BadRequest, RateLimited, unknown_fields
from rendergate.names import OWNER
from rendergate.tables import Account, RateWindow, now_iso, save_if_absent

if TYPE_CHECKING:
    from rendergate.owners import Caller

BOOTSTRAP_OWNER = "admin"  # the owner of the key whose sha256 is in SSM: unmetered and unlimited by default
KINDS = ("user", "service")
WINDOW_SECONDS = 60
MAX_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    """What an owner may do; 0 means no limit (no refresh for `daily_refresh`)."""

    requests_per_minute: int  # per key
    concurrent_runs: int  # renders queued or rendering at once
    daily_spend: int  # credits debited per UTC day
    daily_refresh: int  # the balance is topped up to this every day
    low_priority_queue_limit: int  # queue depth above which its low-priority renders are turned away


LIMIT_NAMES = tuple(field.name for field in fields(Limits))


def owner_name(value: Any) -> str:
    """An owner's name: 1-63 characters of a-z, 0-9, '.', '_' or '-'; BadRequest otherwise."""
    if not isinstance(value, str) or not OWNER.match(value):
        raise BadRequest("owner must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
    return value


def today() -> str:
    """The UTC day (YYYY-MM-DD) that daily spending and the daily refresh count in."""
    return time.strftime("%Y-%m-%d", time.gmtime())


def spent_on(account: Account | None, day: str) -> int:
    """What the account spent on `day` (it keeps only its latest day's spending)."""
    return int(account.spent_today) if account and account.spent_day == day else 0


def defaults(owner: str) -> Limits:
    """The stack's limits for an owner that has no overrides; the bootstrap owner has none of them."""
    current = settings()
    if owner == BOOTSTRAP_OWNER:
        return Limits(0, 0, 0, 0, current.render.low_priority_queue_limit)
    return Limits(
        requests_per_minute=current.owners.requests_per_minute,
        concurrent_runs=current.owners.concurrent_runs,
        daily_spend=current.owners.daily_spend,
        daily_refresh=current.owners.daily_refresh,
        low_priority_queue_limit=current.render.low_priority_queue_limit,
    )


def limits_of(owner: str, account: Account | None) -> Limits:
    """The limits that apply: the defaults with the account's overrides."""
    overrides = {name: int(value) for name, value in ((account.limits or {}) if account else {}).items()}
    return replace(defaults(owner), **{k: v for k, v in overrides.items() if k in LIMIT_NAMES})


def metered(owner: str, account: Account | None) -> bool:
    """Whether the owner's work is debited: as its account says, else DefaultMetered (never for the bootstrap
    owner, so a stack that had one key goes on rendering as it did)."""
    if account is not None and account.metered is not None:
        return bool(account.metered)
    return owner != BOOTSTRAP_OWNER and settings().owners.metered


def find(owner: str, consistent: bool = False) -> Account | None:
    try:
        return Account.get(owner, "account", consistent_read=consistent)
    except DoesNotExist:
        return None


def ensure(owner: str, kind: str = "user") -> Account:
    """The owner's account, made (with a zero balance) if it has none yet."""
    save_if_absent(Account(owner, kind=kind), Account.owner.does_not_exist())
    account = find(owner, consistent=True)
    assert account is not None
    return account


def view(owner: str) -> dict[str, Any]:
    """`GET /admin/owners/{owner}`: the account, its effective limits and which of them are its own."""
    account = find(owner, consistent=True)
    return {
        "owner": owner,
        "exists": account is not None,
        "kind": account.kind if account else None,
        "metered": metered(owner, account),
        "balance": int(account.balance) if account else 0,
        "active_runs": int(account.active_runs) if account else 0,
        "spent_today": spent_on(account, today()),
        "limits": asdict(limits_of(owner, account)),
        "overrides": dict(account.limits or {}) if account else {},
        "refreshed_on": account.refreshed_on if account else None,
    }


def configure(owner: str, body: dict[str, Any]) -> dict[str, Any]:
    """`PUT /admin/owners/{owner}`: `kind`, `metered` (null: the default) and `limits` overrides (null removes
    one). The balance only moves through the ledger."""
    owner_name(owner)
    if unknown := set(body) - {"kind", "metered", "limits"}:
        raise unknown_fields(unknown)
    kind = body.get("kind", "user")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    account = ensure(owner, kind)
    actions: list[Action] = [Account.updated_at.set(now_iso())]
    if "kind" in body:
        actions.append(Account.kind.set(kind))
    if "metered" in body:
        if body["metered"] is not None and not isinstance(body["metered"], bool):
            raise BadRequest("metered must be true, false or null (the stack's default)")
        actions.append(Account.metered.remove() if body["metered"] is None else Account.metered.set(body["metered"]))
    if "limits" in body:
        actions.append(Account.limits.set(_overrides(dict(account.limits or {}), body["limits"])))
    account.update(actions=actions)
    return view(owner)


def admit(caller: Caller) -> None:
    """Count the request against its key's minute; RateLimited (429 with Retry-After) past the owner's
    `requests_per_minute`. Unlimited keys are not counted."""
    limit = caller.requests_per_minute
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    counter = RateWindow(f"rate#{caller.key_id}", str(window))
    counter.update(actions=[RateWindow.hits.add(1), RateWindow.ttl.set((window + 2) * WINDOW_SECONDS)])
    if int(counter.hits) > limit:
        wait = (window + 1) * WINDOW_SECONDS - now
        raise RateLimited(
            f"this key may send {limit} requests a minute: retry after {int(wait) + 1} seconds", int(wait) + 1
        )


def _overrides(current: dict[str, Any], sent: Any) -> dict[str, int]:
    if not isinstance(sent, dict):
        raise BadRequest(f"limits must be an object of {', '.join(LIMIT_NAMES)}")
    if unknown := set(sent) - set(LIMIT_NAMES):
        raise unknown_fields(unknown, "limit")
    for name, value in sent.items():
        if value is None:
            current.pop(name, None)
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
            raise BadRequest(f"limits.{name} must be a whole number from 0 (no limit) to {MAX_LIMIT}, or null")
        else:
            current[name] = value
    return {name: int(value) for name, value in current.items()}
