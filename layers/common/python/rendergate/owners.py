"""Owners and their API keys. A key belongs to an owner (a user or a service) and carries scopes; only its
sha256 is stored. The HttpApi's Lambda authoriser (`authorise`) checks the key once per cache period and hands
the owner, the key and its scopes to the functions (`requestContext.authorizer.lambda`); each route declares
the scope it needs (`ROUTE_SCOPES`), checked by `rendergate.api` before the handler runs.

The first admin key is the one whose sha256 the stack's SSM parameter holds (as the single key always was):
it belongs to the owner `admin` and carries every scope. Keys made here look like `rgk_<key id>_<secret>`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from rendergate import accounts, config, listing, signing
from rendergate.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, unknown_fields
from rendergate.tables import ApiKey, Write, now_iso, transact, update_if

SCOPES = ("uploads", "runs", "entities", "review", "read", "admin")
BOOTSTRAP_KEY_ID = "bootstrap"
KEY = re.compile(r"^rgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
CURSOR_PURPOSE = "keys-cursor"
KEY_FIELDS = frozenset({"owner", "owner_kind", "scopes", "name"})
MAX_GRACE_SECONDS = 7 * 24 * 3600

# The scope each route of the API needs, by API Gateway's route key. A route the authoriser guards that is not
# here is refused (403), so a new route cannot be reached by mistake before it declares one.
ROUTE_SCOPES = {
    "POST /uploads": "uploads",
    "POST /runs": "runs",
    "POST /runs/estimate": "runs",
    "GET /runs": "read",
    "GET /runs/{id}": "read",
    "POST /runs/{id}/cancel": "runs",
    "POST /runs/{id}/assets": "uploads",
    "POST /runs/{id}/complete": "uploads",
    "GET /collections/{namespace}/{slug}": "read",
    "PUT /collections/{namespace}/{slug}/locks": "entities",
    "GET /libraries/{namespace}": "read",
    "PUT /libraries/{namespace}": "admin",
    "POST /entities": "entities",
    "GET /entities": "read",
    "GET /entities/{id}": "read",
    "POST /entities/{id}/enrich": "entities",
    "POST /entities/{id}/publish": "review",
    "GET /deliveries": "read",
    "POST /deliveries/{delivery_id}/retry": "admin",
    "GET /audit": "read",
    "GET /audit/{publish_event_id}": "read",
    "POST /audit/{publish_event_id}/replay": "admin",
    "POST /reviewers": "admin",
    "GET /reviewers": "read",
    "GET /reviewers/{reviewer_id}": "read",
    "DELETE /reviewers/{reviewer_id}": "admin",
    "POST /reviewers/{reviewer_id}/link": "admin",
    "GET /review-policies/{namespace}": "read",
    "PUT /review-policies/{namespace}": "admin",
    "GET /credits": "read",
    "GET /credits/export": "admin",
    "POST /admin/keys": "admin",
    "GET /admin/keys": "admin",
    "DELETE /admin/keys/{id}": "admin",
    "POST /admin/keys/{id}/rotate": "admin",
    "GET /admin/owners/{owner}": "admin",
    "PUT /admin/owners/{owner}": "admin",
    "POST /admin/credits/{owner}": "admin",
    "GET /admin/credits/approvals": "admin",
    "POST /admin/credits/approvals/{id}": "admin",
}


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the owner of the key, the key and its scopes, and its request rate limit."""

    owner: str
    key_id: str
    scopes: frozenset[str]
    requests_per_minute: int = 0

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def sees(self, owner: str | None) -> bool:
        """Whether this caller may see (and act on) what `owner` asked for: its own, or anything as an admin."""
        return self.is_admin or owner == self.owner


def caller_of(event: dict[str, Any]) -> Caller:
    """The caller the authoriser let through, from the request's `requestContext.authorizer.lambda`."""
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    owner, key_id, scopes = context.get("owner"), context.get("key_id"), context.get("scopes")
    if not (isinstance(owner, str) and isinstance(key_id, str) and isinstance(scopes, list)):
        raise Unauthorized("this route is not behind the API's authoriser: no caller came with the request")
    return Caller(owner, key_id, frozenset(map(str, scopes)), int(context.get("requests_per_minute") or 0))


def require(caller: Caller, route_key: str) -> None:
    """Forbidden, naming the scope, unless the caller's key carries the scope the route needs."""
    scope = ROUTE_SCOPES.get(route_key)
    if scope is None:
        raise Forbidden(f"{route_key} declares no scope, so no key may call it")
    if scope not in caller.scopes:
        raise Forbidden(f"this key lacks the scope '{scope}', which {route_key} needs", scope=scope)


def authorise(authorization: str | None) -> dict[str, Any]:
    """The authoriser's simple response for an `Authorization` header: `{isAuthorized, context}` with the
    owner, key id, scopes and request rate of a valid key. API Gateway caches it per header value."""
    presented = signing.bearer(authorization)
    if presented is None:
        return {"isAuthorized": False}
    match = KEY.match(presented)
    if match is None:
        if not hmac.compare_digest(_digest(presented).encode(), config.api_key_hash().encode()):
            return {"isAuthorized": False}
        return _allow(accounts.BOOTSTRAP_OWNER, BOOTSTRAP_KEY_ID, SCOPES)
    key = _find(match.group(1))
    if key is None or not hmac.compare_digest(_digest(presented).encode(), key.key_hash.encode()):
        return {"isAuthorized": False}
    if not usable(key, now_iso()):
        return {"isAuthorized": False}
    return _allow(key.owner, key.key_id, key.scopes or [])


def usable(key: ApiKey, now: str) -> bool:
    """Active, and not past the end of its grace period if it was rotated."""
    return key.status == "active" and (key.expires_at is None or key.expires_at > now)


def create_key(body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`POST /admin/keys`: a new key for `owner` with `scopes`; the answer is the only place the key is shown."""
    if unknown := set(body) - KEY_FIELDS:
        raise unknown_fields(unknown)
    owner = accounts.owner_name(body.get("owner"))
    scopes = _scopes(body.get("scopes"))
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 100):
        raise BadRequest("name must be a string of 1-100 characters")
    kind = body.get("owner_kind", "user")
    if kind not in accounts.KINDS:
        raise BadRequest(f"owner_kind must be one of {', '.join(accounts.KINDS)}")
    accounts.ensure(owner, kind)
    key, secret = _new_key(owner, scopes, name, caller.owner)
    key.save(condition=ApiKey.key_id.does_not_exist())
    return {**key_view(key), "key": secret}


def list_keys(owner: str | None, limit: str, cursor: str | None) -> dict[str, Any]:
    """`GET /admin/keys?owner=`: keys newest first, never the key or its hash."""
    if owner is not None:
        accounts.owner_name(owner)
    condition = (ApiKey.owner == owner) if owner else None
    found, next_cursor = listing.page(
        ApiKey.by_created,
        "keys",
        CURSOR_PURPOSE,
        f"owner={owner}",
        limit,
        cursor,
        scan_index_forward=False,
        filter_condition=condition,
    )
    return {"keys": [key_view(key) for key in found], "next_cursor": next_cursor}


def revoke_key(key_id: str, caller: Caller) -> dict[str, Any]:
    """`DELETE /admin/keys/{id}`: the key stops working once the authoriser's cached answer for it expires."""
    key = _get(key_id)
    if key.status != "revoked":
        now = now_iso()
        actions: list[Action] = [
            ApiKey.status.set("revoked"),
            ApiKey.revoked_at.set(now),
            ApiKey.revoked_by.set(caller.owner),
        ]
        update_if(key, actions, ApiKey.status == "active")
        key.refresh(consistent_read=True)
    return key_view(key)


def rotate_key(key_id: str, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`POST /admin/keys/{id}/rotate`: a new key with the same owner and scopes; the old one keeps working for
    `grace_seconds` (KeyRotationGraceSeconds by default), then stops. A key is rotated once."""
    if unknown := set(body) - {"grace_seconds"}:
        raise unknown_fields(unknown)
    grace = body.get("grace_seconds", config.settings().owners.key_rotation_grace_seconds)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_SECONDS:
        raise BadRequest(f"grace_seconds must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}")
    old = _get(key_id)
    if not usable(old, now_iso()) or old.replaced_by:
        raise Conflict(
            f"key {key_id} is {'rotated' if old.replaced_by else old.status}: rotate the key that replaced it"
        )
    new, secret = _new_key(old.owner, list(old.scopes or []), old.name, caller.owner, replaces=old.key_id)
    ends = now_iso(grace)
    cancelled = transact(
        Write("new", new, ApiKey.key_id.does_not_exist()),
        Write(
            "old",
            old,
            (ApiKey.status == "active") & ApiKey.replaced_by.does_not_exist(),
            [ApiKey.replaced_by.set(new.key_id), ApiKey.expires_at.set(ends)],
            kind="update",
        ),
    )
    if cancelled is not None:
        raise Conflict(f"key {key_id} was rotated or revoked meanwhile")
    old.refresh(consistent_read=True)
    return {**key_view(new), "key": secret, "replaces": key_view(old)}


def key_view(key: ApiKey) -> dict[str, Any]:
    """A key as the admin routes show it: everything but the key and its hash."""
    now = now_iso()
    return {
        "key_id": key.key_id,
        "owner": key.owner,
        "name": key.name,
        "scopes": list(key.scopes or []),
        "status": "active" if usable(key, now) else ("expired" if key.status == "active" else str(key.status)),
        "created_at": key.created_at,
        "created_by": key.created_by,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "revoked_by": key.revoked_by,
        "replaced_by": key.replaced_by,
        "replaces": key.replaces,
    }


def _allow(owner: str, key_id: str, scopes: Any) -> dict[str, Any]:
    limits = accounts.limits_of(owner, accounts.find(owner))
    return {
        "isAuthorized": True,
        "context": {
            "owner": owner,
            "key_id": key_id,
            "scopes": sorted(scopes),
            "requests_per_minute": limits.requests_per_minute,
        },
    }


def _new_key(
    owner: str, scopes: list[str], name: str | None, by: str, replaces: str | None = None
) -> tuple[ApiKey, str]:
    key_id = secrets.token_hex(8)
    secret = f"rgk_{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        key_id, owner=owner, scopes=scopes, name=name, key_hash=_digest(secret), created_by=by, replaces=replaces
    )
    return key, secret


def _scopes(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise BadRequest(f"scopes must be a non-empty list of {', '.join(SCOPES)}")
    if unknown := sorted(set(value) - set(SCOPES)):
        raise BadRequest(f"unknown scope(s) {', '.join(unknown[:5])}; known: {', '.join(SCOPES)}")
    return sorted(set(value))


def _get(key_id: str) -> ApiKey:
    if key_id == BOOTSTRAP_KEY_ID:
        raise Conflict("the bootstrap key lives in SSM (ApiKeyHashParameterName): change that parameter to replace it")
    key = _find(key_id)
    if key is None:
        raise NotFound(f"key {key_id} does not exist")
    return key


def _find(key_id: str) -> ApiKey | None:
    if not re.fullmatch(r"[0-9a-f]{16}", key_id):
        return None
    try:
        return ApiKey.get(key_id)
    except DoesNotExist:
        return None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
