"""PUBLISH for an entity: the approved selection becomes a folder Kodi and Jellyfin can scan.

Prerequisites checked, missing cache files fetched again (only when their bytes are the analysed ones);
artwork copied from the cache under Kodi's ranked names (and Jellyfin's where they differ); `.actors/`;
the NFO; then the entity records what it published, the unselected cached candidates go, the audit and
the bus hear of it. Every file carries the entity's id in its metadata: a file that lacks it was not
written here and is never touched, and a file of the entity's that is no longer part of the selection is
removed. Replacing one of its own files is conditional on the version it read (If-Match)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import events, formats, runs, storage
from rendergate.config import settings
from rendergate.errors import ChangedAfterReview, NotFound
from rendergate.media import entities, naming, nfo, providers
from rendergate.observability import logger
from rendergate.publish import EVENT_NAMESPACE, audit_row
from rendergate.tables import Actor, Asset, Collection, Entity, Run, now_iso

LIBRARY_CACHE_CONTROL = "no-cache"  # the same name gets new bytes when the selection changes
NFO_TYPE = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class Planned:
    """One file the entity's folder should hold."""

    body: bytes
    content_type: str
    role: str  # artwork | actor | nfo
    asset_id: str | None = None


def publish_entity(run: Run, decision: dict[str, Any]) -> dict[str, Any]:
    """Write the approved selection into the entity's folder; `completed`, or `rejected` when nothing was
    approved. Files that could not be written are listed in `publish_failures`."""
    entity = entities.get(str(run.entity_id))
    runs.advance(run, "publishing")
    if decision.get("locked_types") is not None:
        _lock(entity, list(decision["locked_types"]))
    rows = {a.asset_id: a for a in Asset.by_run.query(run.run_id)}
    approved = [rows[i] for i in decision.get("approved", []) if i in rows and rows[i].status != "rejected"]
    if not approved:
        runs.advance(runs.get(run.run_id), "rejected", published=[], publish_failures=[])
        return {"status": "rejected", "published": [], "publish_failures": []}
    failures: list[dict[str, str]] = []
    ranked = _ranked(approved)
    present = []
    for asset, rank in ranked:
        try:
            present.append((asset, rank, _cached_bytes(asset)))
        except ChangedAfterReview as change:
            failures.append({"asset_id": asset.asset_id, "code": change.code, "reason": str(change)})
    plan = _plan(entity, present)
    folder = f"{entity.namespace}/{entity.folder}"
    written: dict[str, dict[str, Any]] = {}
    for name, planned in plan.items():
        outcome = _place(entity, run, f"{folder}/{name}", planned)
        if outcome is None:
            written[f"{folder}/{name}"] = {"sha256": _sha(planned.body), "role": planned.role}
        else:
            failures.append({"asset_id": planned.asset_id or "", "code": outcome[0], "reason": outcome[1]})
    removed = _remove_stale(entity, set(written) | {f"{folder}/{name}" for name in plan})
    _clean_unselected(rows.values(), {a.asset_id for a, _, _ in present})
    nfo_name = naming.nfo_file(str(entity.kind), naming.basename(str(entity.folder), entity.media_key))
    published_assets = [
        {"asset_id": a.asset_id, "asset_type": a.asset_type, "season": a.season, "rank": rank, "sha256": a.sha256}
        for a, rank, _ in present
    ]
    for asset, rank, _ in present:
        asset.update(actions=[Asset.rank.set(rank), Asset.status.set("published"), Asset.updated_at.set(now_iso())])
        asset.rank = rank
    fingerprint = entities.result_fingerprint(
        entity.metadata, entity.streamdetails, entity.actors or [], [a for a, _, _ in present]
    )
    published_at = now_iso()
    entity.update(
        actions=[
            Entity.status.set("published"),
            Entity.last_published_at.set(published_at),
            Entity.published_fingerprint.set(fingerprint),
            Entity.published_nfo_hash.set(_sha(plan[nfo_name].body)),
            Entity.published_files.set(written),
            Entity.published_assets.set(published_assets),
            Entity.updated_at.set(published_at),
        ]
    )
    item = _announce(entity, run, decision, written, removed, failures, nfo_name, present)
    runs.advance(runs.get(run.run_id), "completed", published=[item], publish_failures=failures)
    return {"status": "completed", "published": [item], "publish_failures": failures}


def _ranked(approved: list[Asset]) -> list[tuple[Asset, int]]:
    """Ranks by the decision's order within each type (and season): the reviewer's order is the ranking."""
    counts: dict[tuple[str, Any], int] = {}
    ranked = []
    for asset in approved:
        group = (str(asset.asset_type), asset.season)
        counts[group] = counts.get(group, 0) + 1
        ranked.append((asset, counts[group]))
    return ranked


def _cached_bytes(asset: Asset) -> bytes:
    """The approved image's bytes from the cache; fetched from its provider again (and cached) when the
    cache lost them, only if they are still the analysed bytes."""
    bucket = settings().storage.media_bucket
    key = str(asset.cache_key or "")
    if key:
        try:
            stored = storage.read_object(bucket, key)
            if hashlib.sha256(stored.body).hexdigest() == asset.sha256:
                return stored.body
        except NotFound:
            pass
    if not asset.source_url:
        raise ChangedAfterReview(f"the cached copy of {asset.asset_id} is gone and it has no provider URL")
    data = providers.fetch_verified(asset)
    key = key or formats.cache_key(str(asset.asset_type), str(asset.sha256), str(asset.format))
    storage.write_if_absent(
        bucket,
        key,
        data,
        formats.CONTENT_TYPES.get(str(asset.format), ""),
        {"sha256": str(asset.sha256)},
        storage.IMMUTABLE,
    )
    if not asset.cache_key:
        asset.update(actions=[Asset.cache_key.set(key)])
    logger.info("re-fetched a missing cache file", extra={"asset_id": asset.asset_id})
    return data


def _plan(entity: Entity, present: list[tuple[Asset, int, bytes]]) -> dict[str, Planned]:
    """Every file the folder should hold for the entity, by name relative to the folder."""
    kind = str(entity.kind)
    base = naming.basename(str(entity.folder), entity.media_key)
    plan: dict[str, Planned] = {}
    for asset, rank, body in present:
        content_type = formats.CONTENT_TYPES.get(str(asset.format), "application/octet-stream")
        season = int(asset.season) if asset.season is not None else None
        for placement in naming.artwork(kind, base, str(asset.asset_type), rank, season, str(asset.format)):
            plan.setdefault(placement.name, Planned(body, content_type, "artwork", asset.asset_id))
    actors = []
    for credit in entity.actors or []:
        thumb, planned = _actor_file(credit)
        if planned is not None and thumb is not None:
            plan.setdefault(thumb, planned)
        actors.append({**credit, "thumb": _actor_thumb_url(entity, credit, thumb)})
    metadata = entity.metadata or {}
    body = nfo.movie(metadata, actors, entity.streamdetails) if kind == "movie" else nfo.tvshow(metadata, actors)
    plan[naming.nfo_file(kind, base)] = Planned(body, NFO_TYPE, "nfo")
    return plan


def _actor_file(credit: dict[str, Any]) -> tuple[str | None, Planned | None]:
    try:
        actor = Actor.get(credit["actor_id"])
    except DoesNotExist:
        return None, None
    if not actor.cache_key or not actor.format:
        return None, None
    name = naming.actor_file(str(credit["name"]), str(actor.format))
    if name is None:
        return None, None
    try:
        body = storage.read(settings().storage.media_bucket, str(actor.cache_key))
    except NotFound:
        return None, None
    return name, Planned(body, formats.CONTENT_TYPES[str(actor.format)], "actor")


def _actor_thumb_url(entity: Entity, credit: dict[str, Any], thumb: str | None) -> str | None:
    """An absolute URL (Jellyfin refuses relative paths): the library's own copy where the library has a
    public address, else the provider's."""
    base = settings().storage.library_public_base_url
    if base and thumb:
        return f"{base}/{entity.namespace}/{entity.folder}/{thumb}"
    try:
        return Actor.get(credit["actor_id"]).source_url
    except DoesNotExist:
        return None


def _place(entity: Entity, run: Run, key: str, planned: Planned) -> tuple[str, str] | None:
    """Write one file unless it is already there; None when the folder holds it, else (code, reason)."""
    library = settings().storage.library_bucket
    sha = _sha(planned.body)
    metadata = {"entity-id": entity.entity_id, "run-id": run.run_id, "sha256": sha, "role": planned.role}
    if storage.write_if_absent(library, key, planned.body, planned.content_type, metadata, LIBRARY_CACHE_CONTROL):
        return None
    try:
        current = storage.describe(library, key)
    except NotFound:
        return "changed_meanwhile", f"{key} vanished while it was written; publish again"
    if current.metadata.get("entity-id") != entity.entity_id:
        return "not_ours", f"{key} exists and was not written for this entity; it is left as it is"
    if current.metadata.get("sha256") == sha:
        return None
    if storage.replace_if_match(
        library, key, planned.body, planned.content_type, metadata, current.etag, LIBRARY_CACHE_CONTROL
    ):
        return None
    return "changed_meanwhile", f"{key} changed while it was replaced; publish again"


def _remove_stale(entity: Entity, keep: set[str]) -> list[str]:
    """The entity's own files that the selection no longer has; a file someone else wrote there stays."""
    library = settings().storage.library_bucket
    removed = []
    for key in sorted(set(entity.published_files or {}) - keep):
        try:
            current = storage.describe(library, key)
        except NotFound:
            continue
        if current.metadata.get("entity-id") == entity.entity_id:
            storage.delete(library, key)
            removed.append(key)
    return removed


def _clean_unselected(assets: Any, published: set[str]) -> None:
    """Cached candidates of this enrichment that were not published leave the cache (decided at publish:
    the reviewer has chosen; enriching again brings them back)."""
    bucket = settings().storage.media_bucket
    keep = {a.cache_key for a in assets if a.asset_id in published and a.cache_key}
    for asset in assets:
        if asset.asset_id in published or asset.status == "rejected":
            continue
        if asset.cache_key and asset.cache_key not in keep:
            storage.delete(bucket, str(asset.cache_key))
        asset.update(actions=[Asset.status.set("discarded"), Asset.updated_at.set(now_iso())])


def _lock(entity: Entity, locked_types: list[str]) -> None:
    collection = entities.collection_id(entity)
    try:
        row = Collection.get(collection)
    except DoesNotExist:
        row = Collection(collection)
    row.locked_types = sorted(set(locked_types))
    row.updated_at = now_iso()
    row.save()


def _announce(
    entity: Entity,
    run: Run,
    decision: dict[str, Any],
    written: dict[str, dict[str, Any]],
    removed: list[str],
    failures: list[dict[str, str]],
    nfo_name: str,
    present: list[tuple[Asset, int, bytes]],
) -> dict[str, Any]:
    """Audit rows (one per approved image, one for the publish as a whole) and content.published.v1."""
    config = settings()
    folder = f"{entity.namespace}/{entity.folder}"
    for asset, _, _ in present:
        row = audit_row(str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/approved")))
        row.approval_event_ts = row.approval_event_ts or decision.get("reviewed_at")
        row.correlation_id, row.namespace = run.run_id, entity.namespace
        row.artifact_uri, row.status = asset.source_url, "published"
        row.artifact_path = f"s3://{config.storage.library_bucket}/{folder}/"
        row.reviewer, row.reviewed_at = decision.get("reviewer"), decision.get("reviewed_at")
        row.published_at = row.published_at or now_iso()
        row.meta = {"entity_id": entity.entity_id, "asset_id": asset.asset_id, "sha256": asset.sha256}
        row.updated_at = now_iso()
        row.save()
    published_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/entity/published"))
    log = audit_row(str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/entity/publish")))
    log.correlation_id, log.namespace, log.status = run.run_id, entity.namespace, "published"
    log.artifact_uri = f"entity:{entity.entity_id}"
    log.artifact_path = f"s3://{config.storage.library_bucket}/{folder}/"
    log.reviewer, log.reviewed_at = decision.get("reviewer"), decision.get("reviewed_at")
    log.published_event_id, log.published_at = published_id, log.published_at or now_iso()
    log.meta = {
        "entity_id": entity.entity_id,
        "files": sorted(written),
        "removed": removed,
        "failures": failures,
        "nfo": f"{folder}/{nfo_name}",
        "nfo_sha256": written.get(f"{folder}/{nfo_name}", {}).get("sha256"),
    }
    log.updated_at = now_iso()
    log.save()
    item = {
        "entity_id": entity.entity_id,
        "kind": entity.kind,
        "namespace": entity.namespace,
        "folder": entity.folder,
        "library_bucket": config.storage.library_bucket,
        "library_key": f"{folder}/{nfo_name}",
        "files": sorted(written),
        "removed": removed,
        "published_event_id": published_id,
    }
    title = (entity.metadata or {}).get("title")
    events.emit(
        "content.published.v1",
        subject=entity.entity_id,
        data={**item, "run_id": run.run_id, "title": title},
        correlation_id=run.run_id,
        event_id=published_id,
    )
    return item


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
