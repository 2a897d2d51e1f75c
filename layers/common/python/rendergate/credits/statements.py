"""Statements: an owner's balance and its transactions newest first (`GET /credits`), and the whole ledger of
a period as CSV for admins (`GET /credits/export`)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

from rendergate import accounts, listing
from rendergate.accounts import owner_name
from rendergate.errors import BadRequest, Forbidden
from rendergate.owners import Caller
from rendergate.tables import LedgerEntry

CURSOR_PURPOSE = "credits-cursor"
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_EXPORT_DAYS = 366
MAX_EXPORT_ROWS = 20_000  # a Lambda answer holds 6 MB; a row is about 200 bytes
COLUMNS = ("at", "owner", "txn_id", "reason", "delta", "balance", "job", "actor", "note")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


def statement(caller: Caller, owner: str | None, limit: str, cursor: str | None) -> dict[str, Any]:
    """`GET /credits?owner=&limit=&cursor=`: the balance, limits and spending of the caller (an admin may name
    another owner), and its transactions newest first."""
    owner = owner_name(owner) if owner is not None else caller.owner
    if not caller.sees(owner):
        raise Forbidden("only an admin may read another owner's credits", scope="admin")
    account = accounts.view(owner)
    found, next_cursor = listing.page(
        LedgerEntry.by_at,
        owner,
        CURSOR_PURPOSE,
        f"owner={owner}",
        limit,
        cursor,
        scan_index_forward=False,
        consistent_read=True,
    )
    return {
        "owner": owner,
        "balance": account["balance"],
        "metered": account["metered"],
        "spent_today": account["spent_today"],
        "active_runs": account["active_runs"],
        "limits": account["limits"],
        "transactions": [entry_view(entry) for entry in found],
        "next_cursor": next_cursor,
    }


def export(since: str | None, until: str | None, owner: str | None) -> str:
    """`GET /credits/export?from=YYYY-MM-DD&to=YYYY-MM-DD&owner=`: every ledger row of the period (both days
    included, UTC), oldest first, as CSV. At most MAX_EXPORT_DAYS days and MAX_EXPORT_ROWS rows."""
    first, last = _day(since, "from"), _day(until, "to")
    if last < first or (last - first).days >= MAX_EXPORT_DAYS:
        raise BadRequest(f"to must not be before from, and the period at most {MAX_EXPORT_DAYS} days")
    if owner is not None:
        owner_name(owner)
    start, end = first.isoformat(), (last + timedelta(days=1)).isoformat()
    rows: list[LedgerEntry] = []
    for month in _months(first, last):
        for entry in LedgerEntry.by_month.query(month, LedgerEntry.at.between(start, end)):
            if entry.at < end and owner in (None, entry.owner):
                rows.append(entry)
                if len(rows) > MAX_EXPORT_ROWS:
                    raise BadRequest(f"the period holds more than {MAX_EXPORT_ROWS} transactions: export a shorter one")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for entry in sorted(rows, key=lambda e: (e.at, e.owner, e.txn_id)):
        view = entry_view(entry)
        writer.writerow([_cell(view.get(column)) for column in COLUMNS])
    return out.getvalue()


def entry_view(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger row as the API shows it."""
    return {
        "owner": entry.owner,
        "txn_id": entry.txn_id,
        "at": entry.at,
        "reason": entry.reason,
        "delta": int(entry.delta),
        "balance": int(entry.balance),
        "job": entry.job,
        "actor": entry.actor,
        "note": entry.note,
    }


def _cell(value: Any) -> Any:
    """A text cell that would start a spreadsheet formula is quoted as text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _day(value: str | None, name: str) -> date:
    if value is None or not DAY.match(value):
        raise BadRequest(f"{name} must be a day, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise BadRequest(f"{name} is not a day of the calendar: {value}") from error


def _months(first: date, last: date) -> list[str]:
    months, current = [], first.replace(day=1)
    while current <= last:
        months.append(current.strftime("%Y-%m"))
        current = (current + timedelta(days=32)).replace(day=1)
    return months
