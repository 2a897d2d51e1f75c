"""Pages for the list routes: a `limit`, and a cursor that is the next page's key sealed (HMAC, under the
link-signing key) for one purpose and one listing, so only keys we handed out come back to DynamoDB."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pynamodb.indexes import Index
from pynamodb.models import Model

from rendergate import config, signing
from rendergate.errors import BadRequest

LIMIT = re.compile(r"^[0-9]{1,3}$")
M = TypeVar("M", bound=Model)


def page(
    index: Index[M],
    hash_key: str,
    purpose: str,
    listing: str,
    limit: str,
    cursor: str | None,
    **options: Any,
) -> tuple[list[M], str | None]:
    """One page of `index.query(hash_key, **options)` (the options as its query
    takes them: range_key_condition, filter_condition, scan_index_forward, consistent_read), starting where
    the cursor left off; returns the items and the cursor of the next page (None at the end)."""
    if not LIMIT.match(limit) or not 1 <= int(limit) <= 100:
        raise BadRequest("limit must be a whole number between 1 and 100")
    start = _open(purpose, cursor, listing) if cursor else None
    size = int(limit)
    results = index.query(hash_key, limit=size, last_evaluated_key=start, page_size=size, **options)
    items = list(results)
    next_key = getattr(results, "last_evaluated_key", None)
    return items, _seal(purpose, listing, next_key) if next_key else None


def _seal(purpose: str, listing: str, key: dict[str, Any]) -> str:
    payload = json.dumps({"listing": listing, "key": key}, sort_keys=True, separators=(",", ":")).encode()
    return signing.seal(config.link_signing_key(), purpose, payload)


def _open(purpose: str, cursor: str, listing: str) -> dict[str, Any]:
    payload = signing.unseal(config.link_signing_key(), purpose, cursor)
    if payload is None:
        raise BadRequest("cursor is not one this API returned: pass next_cursor back unchanged")
    opened = json.loads(payload)
    if opened["listing"] != listing:
        raise BadRequest("cursor belongs to another listing: use it with the same filters")
    key: dict[str, Any] = opened["key"]
    return key
