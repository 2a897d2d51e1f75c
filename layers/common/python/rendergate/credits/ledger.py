"""The ledger: every change to a balance is one DynamoDB transaction that updates the owner's account and
appends the ledger rows it makes, with the resulting balance, only while the account's sequence number is the
one read (optimistic: a concurrent change makes it read again). Paid work is accepted in the same transaction
that debits it: the run is created only if it is paid for, and it is paid for only if it is created.

Every row's id is derived from what caused it (`debit#{run}`, `refund#{run}`, `grant#{id}`, `refresh#{day}`)
and written only if absent, so a retry, a duplicate event or a second sweep applies nothing twice."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from rendergate import accounts
from rendergate.credits.pricing import Price
from rendergate.errors import Conflict, InsufficientCredits, SpendingCapReached, TooManyRuns, TransientError
from rendergate.tables import Account, LedgerEntry, Run, Unsettled, Write, now_iso, transact

REASONS = ("debit", "refund", "grant", "adjust", "boost", "refresh")
SYSTEM = "system"  # the actor of what the stack does by itself: refunds, refreshes
MAX_ATTEMPTS = 60  # reads of a contended account before giving up with a TransientError
BACKOFF_SECONDS = 0.01


@dataclass(frozen=True)
class Entry:
    """A ledger row to append: `delta` credits for `reason`, caused by `actor`."""

    txn_id: str
    delta: int
    reason: str
    actor: str
    job: str | None = None
    note: str | None = None


@dataclass
class Change:
    """What one transaction does to an account: its rows, the other items it writes with them, and the
    account's own fields that change besides the balance and sequence number."""

    entries: list[Entry]
    writes: list[Write] = field(default_factory=list)
    account_actions: list[Any] = field(default_factory=list)


class Duplicate(Exception):
    """The transaction's first ledger row exists: it was applied before (a retry or a duplicate)."""


class Refused(Exception):
    """One of the other items' conditions failed; `failed` names which."""

    def __init__(self, failed: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(failed)))
        self.failed = failed


def apply(owner: str, plan: Callable[[Account | None], Change | None]) -> tuple[Account | None, Change | None]:
    """Read the owner's account, let `plan` decide what to write (None: nothing), and write it in one
    transaction conditional on the account being unchanged; read again and re-plan on contention. Returns the
    account as read and the change applied. Raises Duplicate or Refused, or what `plan` raises."""
    for attempt in range(MAX_ATTEMPTS):
        account = accounts.find(owner, consistent=True)
        change = plan(account)
        if change is None:
            return account, None
        cancelled = transact(*_writes(owner, account, change), token=uuid.uuid4().hex)
        if cancelled is None:
            return account, change
        if any(name.startswith("entry") for name in cancelled.failed):
            raise Duplicate(change.entries[0].txn_id)
        if others := {name for name in cancelled.failed if name != "account" and not name.startswith("entry")}:
            raise Refused(frozenset(others))
        time.sleep(random.uniform(0, BACKOFF_SECONDS * min(attempt + 1, 10)))
    raise TransientError(f"the credits of {owner} changed {MAX_ATTEMPTS} times while this was written; try again")


def accept_paid_run(run: Run, price: Price, renders: bool) -> bool:
    """Create `run` (not saved yet) as its owner's work: debited `price` when the owner is metered, holding one
    of its concurrent-run slots when it `renders` under a limit. False when a run with its id exists already
    (an idempotent retry). InsufficientCredits (402), TooManyRuns or SpendingCapReached (429) refuse it."""
    owner = str(run.owner)

    def plan(account: Account | None) -> Change | None:
        limits = accounts.limits_of(owner, account)
        metered = accounts.metered(owner, account) and price.total > 0
        slot = renders and limits.concurrent_runs > 0
        run.price, run.charged, run.refunded = price.view(), price.total if metered else 0, 0
        run.holds_slot = True if slot else None
        if not metered and not slot:
            return None
        balance, active = (int(account.balance), int(account.active_runs)) if account else (0, 0)
        if slot and active >= limits.concurrent_runs:
            raise TooManyRuns(
                f"{owner} has {active} runs queued or rendering, as many as its limit of {limits.concurrent_runs}",
                retry_after=_render_wait(),
            )
        entries, actions = [], []
        if metered:
            if balance < price.total:
                raise InsufficientCredits(
                    f"this costs {price.total} credits and {owner} has {balance}", balance=balance, cost=price.total
                )
            actions += _spend(account, price.total, limits.daily_spend, owner)
            entries.append(Entry(f"debit#{run.run_id}", -price.base, "debit", owner, run.run_id))
            if price.boost:
                entries.append(Entry(f"boost#{run.run_id}", -price.boost, "boost", owner, run.run_id, "priority high"))
        if slot:
            actions.append(Account.active_runs.set((Account.active_runs | 0) + 1))
        writes = [Write("run", run, Run.run_id.does_not_exist())]
        writes.append(Write("unsettled", Unsettled(run_id=run.run_id, owner=owner)))
        # A slot without a debit writes no rows: a run that exists already is then what refuses it.
        return Change(entries, writes, actions)

    try:
        _, change = apply(owner, plan)
    except Refused as refused:
        if "run" in refused.failed:
            return False
        raise
    except Duplicate:
        return False  # the debit exists: so does the run it paid for
    if change is None:
        return bool(_create(run))
    return True


def refund(run: Run, kind: str, amount: int, note: str) -> int:
    """Give back up to `amount` of what `run` was charged (never more than what is left of it), as the one row
    `{kind}#{run id}`: a second call refunds nothing. Returns the credits refunded by this call."""
    if not run.owner:
        return 0

    def plan(account: Account | None) -> Change | None:
        current = Run.get(run.run_id, consistent_read=True)
        seen = int(current.refunded or 0)
        give = min(int(amount), int(current.charged or 0) - seen)
        if give <= 0 or account is None:
            return None
        refunded = Run.refunded == seen if current.refunded is not None else Run.refunded.does_not_exist()
        record = Write("refunded", current, refunded, [Run.refunded.set(seen + give)], kind="update")
        return Change([Entry(f"{kind}#{run.run_id}", give, "refund", SYSTEM, run.run_id, note)], [record])

    for _ in range(MAX_ATTEMPTS):
        try:
            _, change = apply(str(run.owner), plan)
        except Duplicate:
            return 0
        except Refused:  # another refund of this run moved `refunded` first: read again
            continue
        return change.entries[0].delta if change else 0
    raise TransientError(f"the refunds of run {run.run_id} kept changing while this one was written; try again")


def credit(owner: str, entry: Entry, also: Sequence[Write] = (), kind: str = "user") -> tuple[int, bool]:
    """Add `entry.delta` (a grant, an adjustment or a refresh) to the owner's balance, making its account if it
    has none; Conflict when that would take the balance below zero. Returns the balance after it and whether
    this call applied it (False: the row existed already)."""

    def plan(account: Account | None) -> Change:
        balance = int(account.balance) if account else 0
        if balance + entry.delta < 0:
            raise Conflict(f"{owner} has {balance} credits: an adjustment of {entry.delta} would overdraw it")
        actions = [] if account else [Account.kind.set(kind)]
        return Change([entry], list(also), actions)

    try:
        account, _ = apply(owner, plan)
    except Duplicate:
        return int(LedgerEntry.get(owner, entry.txn_id, consistent_read=True).balance), False
    return (int(account.balance) if account else 0) + entry.delta, True


def release_slot(run: Run) -> bool:
    """Give back the concurrent-run slot the run holds (once: the run's flag and the count move together)."""
    if not run.holds_slot or not run.owner:
        return False
    give_back: list[Action] = [Account.active_runs.set(Account.active_runs - 1)]
    for _ in range(MAX_ATTEMPTS):
        cancelled = transact(
            Write("run", run, Run.holds_slot.exists(), [Run.holds_slot.remove()], kind="update"),
            Write("account", Account(str(run.owner), "account"), None, give_back, kind="update"),
        )
        if cancelled is None or not cancelled.conflict:
            return cancelled is None
    raise TransientError(f"the slot of run {run.run_id} could not be given back for contention; try again")


def _writes(owner: str, account: Account | None, change: Change) -> list[Write]:
    """The transaction: the account (its sequence number and balance), the rows with the balance after each,
    then the other items. The first row is what tells a duplicate."""
    seq = int(account.seq) if account else 0
    balance = int(account.balance) if account else 0
    rows = []
    for index, entry in enumerate(change.entries):
        balance += entry.delta
        at = now_iso()
        row = LedgerEntry(
            owner,
            entry.txn_id,
            at=at,
            month=at[:7],
            delta=entry.delta,
            reason=entry.reason,
            balance=balance,
            actor=entry.actor,
            job=entry.job,
            note=entry.note,
        )
        rows.append(Write(f"entry{index}", row, LedgerEntry.txn_id.does_not_exist()))
    actions = [Account.updated_at.set(now_iso()), *change.account_actions]
    if change.entries or account is None:  # a new account starts with both, so the next read can condition on them
        actions += [Account.seq.set(seq + (1 if change.entries else 0)), Account.balance.set(balance)]
    if account is None:
        actions += [Account.created_at.set(now_iso())]
        condition: Condition = Account.owner.does_not_exist()
    else:
        condition = Account.seq == seq
    state = Write("account", Account(owner, "account"), condition, actions, kind="update")
    return [state, *rows, *change.writes]


def _spend(account: Account | None, cost: int, cap: int, owner: str) -> list[Any]:
    """The account's spending today after `cost`; SpendingCapReached past a daily cap (0: none)."""
    today = accounts.today()
    spent = accounts.spent_on(account, today)
    if cap and spent + cost > cap:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        wait = int((midnight - datetime.now(UTC)).total_seconds()) + 1
        raise SpendingCapReached(
            f"{owner} spent {spent} of its {cap} credits today; this costs {cost}: retry after midnight UTC", wait
        )
    return [Account.spent_day.set(today), Account.spent_today.set(spent + cost)]


def _create(run: Run) -> bool:
    from rendergate import runs

    return runs.create(run)


def _render_wait() -> int:
    from rendergate.config import settings

    return settings().render.seconds_estimate
