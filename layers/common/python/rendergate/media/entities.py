"""Entities: movies and TV shows in library folders. Registering one identifies it at TMDB (by its TMDB, IMDb
or TVDB id), claims its folder and starts its enrichment, a run through the pipeline; the views say where it
stands: identified → enriching → enriched → published, or stale when enriched again after a publish and the
result differs."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist

from rendergate import executions, listing, runs, storage
from rendergate.config import settings
from rendergate.errors import BadRequest, Conflict, NotFound, unknown_fields
from rendergate.media import naming, providers
from rendergate.publish import slugify
from rendergate.tables import Actor, Asset, Collection, Entity, FolderClaim, Run, now_iso, save_if_absent, update_if

if TYPE_CHECKING:
    from rendergate.owners import Caller

ENTITY_NAMESPACE = uuid.UUID("9a3e5c71-0b2d-4f6e-8a1c-5d7b9e2f4a60")
KINDS = ("movie", "tvshow")
FIELDS = frozenset(
    {"kind", "tmdb_id", "imdb_id", "tvdb_id", "namespace", "folder", "media_key", "auto_publish", "streamdetails"}
)
IMDB_ID = re.compile(r"^tt[0-9]{7,10}$")
CURSOR_PURPOSE = "entities-cursor"
BUSY = frozenset({"queued", "enriching", "publishing"})
STREAM_FIELDS: dict[str, dict[str, type]] = {
    "video": {"codec": str, "aspect": float, "width": int, "height": int, "durationinseconds": int},
    "audio": {"codec": str, "language": str, "channels": int},
    "subtitle": {"language": str},
}


def register(body: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], int]:
    """Identify a movie or show at TMDB, claim its folder and start its enrichment: 201 with the entity, the
    caller recorded as its owner. The same item registered again in the same library answers 200 with the
    entity it already is."""
    request = _registration(body)
    kind, namespace = request["kind"], request["namespace"]
    tmdb_id = request["tmdb_id"] or _find(kind, request)
    entity_id = uuid.uuid5(ENTITY_NAMESPACE, f"{namespace}/{kind}/tmdb:{tmdb_id}").hex
    existing = find(entity_id)
    if existing is not None:
        if request["folder"] and request["folder"] != existing.folder:
            raise Conflict(f"this {kind} is registered already, in folder {existing.folder!r}")
        return view(existing), 200
    details, _ = providers.tmdb(*_details_request(kind, tmdb_id))
    from rendergate.media import catalogue

    metadata = catalogue.tmdb_metadata(kind, details)
    folder = request["folder"] or naming.default_folder(str(metadata["title"] or tmdb_id), metadata["year"])
    external = details.get("external_ids") or {}
    entity = Entity(
        entity_id,
        kind=kind,
        status="identified",
        owner=caller.owner,
        namespace=namespace,
        folder=folder,
        media_key=request["media_key"],
        auto_publish=request["auto_publish"],
        tmdb_id=tmdb_id,
        imdb_id=details.get("imdb_id") or external.get("imdb_id") or request["imdb_id"],
        tvdb_id=external.get("tvdb_id") or request["tvdb_id"],
        metadata=metadata,
        streamdetails=request["streamdetails"],
        streamdetails_source="request" if request["streamdetails"] else None,
    )
    _check_media_key(entity)
    _claim_folder(entity)
    if not save_if_absent(entity, Entity.entity_id.does_not_exist()):
        return view(get(entity_id)), 200  # registered by a request running alongside
    start_enrichment(entity, caller.owner)
    return view(get(entity_id)), 201


def publish_now(entity_id: str, caller: Caller) -> dict[str, Any]:
    """Approve the entity's current selection, as a reviewer would (auto-publish off): its run goes on to
    publish. Refused with the reason when it is not enriched, nothing is selected, or nothing waits."""
    from rendergate import review
    from rendergate.tables import Review

    entity = get(entity_id)
    run = runs.find(str(entity.run_id)) if entity.run_id else None
    if run is None or run.status in ("queued", "enriching"):
        raise Conflict("the entity is not enriched yet: publish once its enrichment waits for review")
    if run.status != "awaiting_review" or not run.review_id:
        if run.status in ("publishing", "completed"):
            raise Conflict(f"its latest enrichment is {run.status}: enrich it again to publish anything new")
        raise Conflict(f"its latest enrichment ended {run.status}: enrich it again")
    selected = sorted((a for a in Asset.by_run.query(run.run_id) if a.selected), key=_rank_order)
    if not selected:
        raise Conflict("nothing is selected: no candidate passed selection; choose images on the review page")
    decision = Review.get(run.review_id)
    approved = [a.asset_id for a in selected]
    rejected = [i for i in decision.asset_ids if i not in set(approved)]
    notes = "approved through POST /entities/{id}/publish"
    outcome = review.record_decision(decision, run, approved, rejected, "api", notes, decided_by=caller.owner)
    if outcome == "closed":
        raise Conflict("the enrichment stopped waiting for a decision meanwhile")
    return {**view(get(entity_id)), "publish": "started" if outcome == "delivered" else "pending"}


def _rank_order(asset: Asset) -> tuple[str, int, int, str]:
    return (str(asset.asset_type), int(asset.season or 0), int(asset.rank or 1000), asset.asset_id)


def get(entity_id: str) -> Entity:
    entity = find(entity_id)
    if entity is None:
        raise NotFound(f"entity {entity_id} does not exist")
    return entity


def find(entity_id: str) -> Entity | None:
    if entity_id.startswith("folder#"):
        return None
    try:
        return Entity.get(entity_id)
    except DoesNotExist:
        return None


def enrich_again(entity_id: str, caller: Caller) -> dict[str, Any]:
    """Start a new enrichment. One waiting for review is cancelled (it is replaced); one under way is a 409."""
    entity = get(entity_id)
    current = runs.find(str(entity.run_id)) if entity.run_id else None
    if current is not None and current.status in BUSY:
        raise Conflict(f"an enrichment is under way (run {current.run_id} is {current.status}); try when it ends")
    if current is not None and current.status == "awaiting_review":
        runs.advance(current, "cancelled", error_name="Superseded", error_cause="a newer enrichment replaced it")
        executions.stop(current.run_id, "a newer enrichment replaced it")
    start_enrichment(entity, caller.owner)
    return view(get(entity_id))


def start_enrichment(entity: Entity, owner: str) -> Run:
    """A new run for the entity's next enrichment (asked for by `owner`), started through the state machine."""
    number = int(entity.enrichments or 0) + 1
    run_id = uuid.uuid5(ENTITY_NAMESPACE, f"{entity.entity_id}/enrichment/{number}").hex
    claimed = update_if(
        entity,
        [Entity.enrichments.set(number), Entity.run_id.set(run_id), Entity.updated_at.set(now_iso())],
        Entity.enrichments == int(entity.enrichments or 0),
    )
    if not claimed:
        raise Conflict("another enrichment of this entity was started just now")
    title = (entity.metadata or {}).get("title") or entity.folder
    run = Run(
        run_id,
        status="queued",
        source="entity",
        owner=owner,
        namespace=entity.namespace,
        title=str(title)[:200],
        entity_id=entity.entity_id,
        auto_approve=auto_publish(entity),
    )
    runs.create(run)
    payload = runs.pipeline_input(run, [])
    payload["auto_approve"] = auto_publish(entity)  # entities follow their own setting, not AutoApprove
    executions.start(run_id, payload)
    return run


def auto_publish(entity: Entity) -> bool:
    """The entity's own setting, else its library's; off by default (stop for review)."""
    if entity.auto_publish is not None:
        return bool(entity.auto_publish)
    return library_auto_publish(str(entity.namespace))


def library_auto_publish(namespace: str) -> bool:
    try:
        return bool(Collection.get(namespace).auto_publish)
    except DoesNotExist:
        return False


def collection_id(entity: Entity) -> str:
    """The library item whose locked types the entity's enrichments respect (PUT /collections/…/locks)."""
    return f"{entity.namespace}/{slugify(str(entity.folder))[:63].strip('-') or 'untitled'}"


def tmdb_request(entity: Entity) -> tuple[str, dict[str, str]]:
    """The one TMDB request an enrichment makes: details with credits, images and external ids appended."""
    return _details_request(str(entity.kind), int(entity.tmdb_id))


def _details_request(kind: str, tmdb_id: int) -> tuple[str, dict[str, str]]:
    enrich = settings().enrich
    languages = list(dict.fromkeys([enrich.preferred_language, enrich.fallback_language, "null", "xx"]))[:5]
    return (
        f"/{'movie' if kind == 'movie' else 'tv'}/{tmdb_id}",
        {
            "append_to_response": "credits,images,external_ids",
            "include_image_language": ",".join(languages),
            "language": enrich.preferred_language,
        },
    )


def _find(kind: str, request: dict[str, Any]) -> int:
    """The TMDB id for an IMDb or TVDB id, through TMDB's /find."""
    source, external_id = ("imdb_id", request["imdb_id"]) if request["imdb_id"] else ("tvdb_id", request["tvdb_id"])
    answer, _ = providers.tmdb(f"/find/{external_id}", {"external_source": source})
    results = answer.get("movie_results" if kind == "movie" else "tv_results") or []
    if not results:
        raise NotFound(f"TMDB knows no {kind} with {source} {external_id}")
    return int(results[0]["id"])


def _registration(body: dict[str, Any]) -> dict[str, Any]:
    if unknown := set(body) - FIELDS:
        raise unknown_fields(unknown)
    kind = body.get("kind")
    if kind not in KINDS:
        raise BadRequest("kind must be movie or tvshow")
    tmdb_id, tvdb_id, imdb_id = body.get("tmdb_id"), body.get("tvdb_id"), body.get("imdb_id")
    for name, value in (("tmdb_id", tmdb_id), ("tvdb_id", tvdb_id)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31):
            raise BadRequest(f"{name} must be a positive whole number")
    if imdb_id is not None and (not isinstance(imdb_id, str) or not IMDB_ID.match(imdb_id)):
        raise BadRequest("imdb_id must look like tt0133093")
    if tmdb_id is None and imdb_id is None and tvdb_id is None:
        raise BadRequest("send tmdb_id, imdb_id or tvdb_id to say which title this is")
    namespace = body.get("namespace", settings().pipeline.default_namespace)
    if not isinstance(namespace, str) or not runs.NAMESPACE.match(namespace):
        raise BadRequest("namespace must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
    auto = body.get("auto_publish")
    if auto is not None and not isinstance(auto, bool):
        raise BadRequest("auto_publish must be true, false or left out (the library's setting)")
    media_key = body.get("media_key")
    if media_key is not None:
        if not isinstance(media_key, str) or not media_key.lower().endswith(naming.VIDEO_EXTENSIONS):
            raise BadRequest(f"media_key must be the key of a video ({', '.join(naming.VIDEO_EXTENSIONS)})")
        if not media_key.startswith(f"{namespace}/"):
            raise BadRequest(f"media_key must lie in the library's namespace: {namespace}/<folder>/<video>")
    folder = naming.check_folder(body["folder"]) if body.get("folder") is not None else None
    if folder is None and media_key is not None:
        folder = naming.check_folder(media_key[len(namespace) + 1 :].rpartition("/")[0] or "")
    return {
        "kind": kind,
        "tmdb_id": tmdb_id,
        "imdb_id": imdb_id,
        "tvdb_id": tvdb_id,
        "namespace": namespace,
        "folder": folder,
        "media_key": media_key,
        "auto_publish": auto,
        "streamdetails": _streamdetails(body.get("streamdetails")),
    }


def _check_media_key(entity: Entity) -> None:
    if not entity.media_key:
        return
    folder, _, video = str(entity.media_key).rpartition("/")
    if folder != f"{entity.namespace}/{entity.folder}":
        raise BadRequest(f"media_key must be a file of the entity's folder: {entity.namespace}/{entity.folder}/…")
    naming.check_folder(video)


def _streamdetails(value: Any) -> dict[str, Any] | None:
    """Stream details a client supplies, in the NFO's shape; each field typed."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(STREAM_FIELDS):
        raise BadRequest("streamdetails must be {video: [...], audio: [...], subtitle: [...]}")
    checked: dict[str, Any] = {}
    for kind, fields in STREAM_FIELDS.items():
        streams = value.get(kind) or []
        if not isinstance(streams, list) or len(streams) > 32 or not all(isinstance(s, dict) for s in streams):
            raise BadRequest(f"streamdetails.{kind} must be a list of at most 32 objects")
        checked[kind] = [_stream(kind, stream, fields) for stream in streams]
    return checked


def _stream(kind: str, stream: dict[str, Any], fields: dict[str, type]) -> dict[str, Any]:
    if unknown := set(stream) - set(fields):
        raise unknown_fields(unknown, f"streamdetails.{kind} field")
    for name, wanted in fields.items():
        item = stream.get(name)
        if item is None:
            continue
        fits = isinstance(item, wanted) or (wanted is float and isinstance(item, int))
        if isinstance(item, bool) or not fits or (isinstance(item, str) and not 0 < len(item) <= 32):
            raise BadRequest(f"streamdetails.{kind}.{name} must be a {wanted.__name__}")
        if isinstance(item, int | float) and not 0 <= item < 10**7:
            raise BadRequest(f"streamdetails.{kind}.{name} is out of range")
    return dict(stream)


def _claim_folder(entity: Entity) -> None:
    """Claim `{namespace}/{folder}` (case-insensitively: libraries are shared from such file systems)."""
    claim = FolderClaim(f"folder#{entity.namespace}/{str(entity.folder).lower()}", owner=entity.entity_id)
    if save_if_absent(claim, FolderClaim.entity_id.does_not_exist()):
        return
    owner = FolderClaim.get(claim.entity_id).owner
    if owner != entity.entity_id:
        raise Conflict(f"the folder {entity.folder!r} belongs to entity {owner}")


def list_entities(limit: str, cursor: str | None) -> dict[str, Any]:
    """Entities newest first, with a signed cursor for the next page."""
    found, next_cursor = listing.page(
        Entity.by_created, "entities", CURSOR_PURPOSE, "entities", limit, cursor, scan_index_forward=False
    )
    return {"entities": [summary(entity) for entity in found], "next_cursor": next_cursor}


def summary(entity: Entity) -> dict[str, Any]:
    metadata = entity.metadata or {}
    run = runs.find(str(entity.run_id)) if entity.run_id else None
    return {
        "entity_id": entity.entity_id,
        "kind": entity.kind,
        "status": status_of(entity, run),
        "title": metadata.get("title"),
        "year": metadata.get("year"),
        "namespace": entity.namespace,
        "folder": entity.folder,
        "library_path": f"{entity.namespace}/{entity.folder}",
        "ids": {"tmdb": entity.tmdb_id, "imdb": entity.imdb_id, "tvdb": entity.tvdb_id},
        "created_at": entity.created_at,
        "updated_at": entity.updated_at,
        "enriched_at": entity.enriched_at,
        "last_published_at": entity.last_published_at,
    }


def status_of(entity: Entity, run: Run | None) -> str:
    """The entity's status; `failed` while its latest enrichment ended without a result (the run says why)."""
    if entity.status in ("identified", "enriching") and run is not None and run.status in runs.FINAL:
        return "failed" if run.status != "completed" else str(entity.status)
    return str(entity.status)


def view(entity: Entity) -> dict[str, Any]:
    """What `GET /entities/{id}` answers: metadata, actors, artwork per type (selected in rank order, then the
    alternatives), where its enrichment stands, and what was published."""
    run = runs.find(str(entity.run_id)) if entity.run_id else None
    assets = list(Asset.by_run.query(run.run_id)) if run is not None else []
    return {
        **summary(entity),
        "media_key": entity.media_key,
        "auto_publish": {
            "entity": entity.auto_publish,
            "library": library_auto_publish(str(entity.namespace)),
            "effective": auto_publish(entity),
        },
        "metadata": entity.metadata,
        "streamdetails": entity.streamdetails,
        "streamdetails_source": entity.streamdetails_source,
        "actors": actor_views(entity),
        "artwork": artwork_view(assets),
        "enrichment": {
            "run_id": entity.run_id,
            "status": run.status if run is not None else None,
            "providers": entity.provider_status or {},
            "review": runs.review_view(run) if run is not None else None,
            "error": runs.error_view(run) if run is not None else None,
        },
        "published": {
            "at": entity.last_published_at,
            "nfo_sha256": entity.published_nfo_hash,
            "files": sorted(entity.published_files or {}),
            "assets": entity.published_assets or [],
        },
    }


def actor_views(entity: Entity) -> list[dict[str, Any]]:
    """The entity's actors in credit order, each with a preview of their cached profile image."""
    from rendergate.tables import Actor

    credits = entity.actors or []
    rows = {a.actor_id: a for a in Actor.batch_get([c["actor_id"] for c in credits])} if credits else {}
    bucket = settings().storage.media_bucket
    answer = []
    for credit in credits:
        row = rows.get(credit["actor_id"])
        thumb = row.thumb_key if row is not None else None
        answer.append(
            {
                **credit,
                "thumb_url": storage.presign_get(bucket, thumb) if thumb else None,
                "image_url": row.source_url if row is not None else None,
                "image_problem": row.image_problem if row is not None else None,
            }
        )
    return answer


def artwork_view(assets: list[Asset]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per type (and season): the selected in rank order, then the alternatives by score."""
    groups: dict[str, list[Asset]] = {}
    for asset in assets:
        group = f"{asset.asset_type}#{int(asset.season)}" if asset.season is not None else str(asset.asset_type)
        groups.setdefault(group, []).append(asset)
    answer = {}
    for group, members in sorted(groups.items()):
        selected = sorted((a for a in members if a.selected), key=lambda a: int(a.rank or 1000))
        others = sorted((a for a in members if not a.selected), key=lambda a: -float(a.score or 0))
        answer[group] = {
            "selected": [candidate_view(a) for a in selected],
            "alternatives": [candidate_view(a) for a in others],
        }
    return answer


def candidate_view(asset: Asset) -> dict[str, Any]:
    bucket = settings().storage.media_bucket
    return {
        "asset_id": asset.asset_id,
        "asset_type": asset.asset_type,
        "season": asset.season,
        "rank": asset.rank,
        "status": asset.status,
        "selected": asset.selected,
        "selection_reason": asset.selection_reason,
        "score": asset.score,
        "width": asset.width,
        "height": asset.height,
        "claimed_width": asset.claimed_width,
        "claimed_height": asset.claimed_height,
        "format": asset.format,
        "language": asset.language,
        "provider": asset.provider,
        "votes": {"average": asset.vote_average, "count": asset.vote_count},
        "source_url": asset.source_url,
        "sha256": asset.sha256,
        "cache_key": asset.cache_key,
        "preview_url": storage.presign_get(bucket, asset.thumb_key) if asset.thumb_key else None,
        "rejection": {"code": asset.rejection_code, "reason": asset.rejection_reason}
        if asset.status == "rejected"
        else None,
    }


def result_fingerprint(
    metadata: dict[str, Any] | None,
    streamdetails: dict[str, Any] | None,
    actors: list[dict[str, Any]],
    artwork: list[Any],
) -> str:
    """What an enrichment (or a publish) amounts to: the NFO's inputs and the artwork chosen, by content."""
    shas: dict[str, str | None] = {}
    for actor in actors:
        try:
            shas[actor["actor_id"]] = Actor.get(actor["actor_id"]).sha256
        except DoesNotExist:
            shas[actor["actor_id"]] = None
    document = {
        "metadata": metadata,
        "streamdetails": streamdetails,
        "actors": [[a["name"], a.get("role"), a["order"], shas[a["actor_id"]]] for a in actors],
        "artwork": sorted(
            [a.asset_type, int(a.season) if a.season is not None else None, int(a.rank or 0), a.sha256] for a in artwork
        ),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
