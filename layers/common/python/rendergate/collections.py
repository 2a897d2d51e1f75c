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
    """A library's settings: whether its entities publish without review (auto_publish, off by default), and
    the share of a discarded image's cost given back (discard_refund, 0 by default: none)."""
    _id(namespace, "library")
    found = _library(namespace)
    return {
        "namespace": namespace,
        "auto_publish": bool(found and found.auto_publish),
        "discard_refund": discard_refund(namespace),
    }


def configure_library(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Set a library's auto_publish (an entity's own setting, where it has one, still wins) and its
    discard_refund, a fraction from 0 (none) to 1 (the whole per-image cost) for each discarded image."""
    _id(namespace, "library")
    if not body or set(body) - {"auto_publish", "discard_refund"}:
        raise BadRequest('send {"auto_publish": true|false} and/or {"discard_refund": 0 ... 1}')
    if "auto_publish" in body and not isinstance(body["auto_publish"], bool):
        raise BadRequest("auto_publish must be true or false")
    fraction = body.get("discard_refund")
    if "discard_refund" in body and (
        isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1
    ):
        raise BadRequest("discard_refund must be a number from 0 (no refund) to 1 (the whole per-image cost)")
    found = _library(namespace) or Collection(namespace)
    if "auto_publish" in body:
        found.auto_publish = body["auto_publish"]
    if "discard_refund" in body:
        found.discard_refund = fraction
    found.updated_at = now_iso()
    found.save()
    return library(namespace)


def discard_refund(namespace: str) -> float:
    """The namespace's refund per discarded image, as a fraction of the image's share of the base cost."""
    found = _library(namespace)
    return float(found.discard_refund) if found and found.discard_refund is not None else 0.0


def _library(namespace: str) -> Collection | None:
    try:
        return Collection.get(namespace)
    except DoesNotExist:
        return None


def _id(namespace: str, slug: str) -> str:
    if not NAMESPACE.match(namespace) or not NAMESPACE.match(slug):
        raise BadRequest("namespace and slug must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
    return f"{namespace}/{slug}"
