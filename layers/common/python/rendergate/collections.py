"""Collections: library items (`{namespace}/{slug}`) and the asset types their owner locked, which
enrichment's auto-selection then never changes."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate.errors import BadRequest
from rendergate.profiles import PROFILES
from rendergate.runs import NAMESPACE
from rendergate.tables import Collection, now_iso


def describe(namespace: str, slug: str) -> dict[str, Any]:
    collection_id = _id(namespace, slug)
    try:
        locked = sorted(Collection.get(collection_id).locked_types or [])
    except DoesNotExist:
        locked = []
    return {"collection_id": collection_id, "locked_types": locked}


def locked_types(collection: str) -> set[str]:
    """The asset types the owner of a library item locked against auto-selection."""
    try:
        return set(Collection.get(collection).locked_types or [])
    except DoesNotExist:
        return set()


def lock(namespace: str, slug: str, locked_types: Any) -> dict[str, Any]:
    """Replace the set of locked asset types."""
    if not isinstance(locked_types, list) or not all(isinstance(t, str) for t in locked_types):
        raise BadRequest("locked_types must be a list of asset types")
    unknown = sorted(set(locked_types) - set(PROFILES))
    if unknown:
        raise BadRequest(f"unknown asset type(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}")
    Collection(_id(namespace, slug), locked_types=sorted(set(locked_types)), updated_at=now_iso()).save()
    return describe(namespace, slug)


def library(namespace: str) -> dict[str, Any]:
    """A library's settings: whether its entities publish without review (auto_publish, off by default)."""
    _id(namespace, "library")
    try:
        auto_publish = bool(Collection.get(namespace).auto_publish)
    except DoesNotExist:
        auto_publish = False
    return {"namespace": namespace, "auto_publish": auto_publish}


def configure_library(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Set a library's auto_publish; an entity's own setting, where it has one, still wins."""
    _id(namespace, "library")
    if set(body) != {"auto_publish"} or not isinstance(body["auto_publish"], bool):
        raise BadRequest('send {"auto_publish": true} or {"auto_publish": false}')
    Collection(namespace, auto_publish=body["auto_publish"], updated_at=now_iso()).save()
    return library(namespace)


def _id(namespace: str, slug: str) -> str:
    if not NAMESPACE.match(namespace) or not NAMESPACE.match(slug):
        raise BadRequest("namespace and slug must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
    return f"{namespace}/{slug}"
