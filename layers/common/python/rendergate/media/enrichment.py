"""ENRICH for an entity: its run's assets are provider candidates.

1. Ask TMDB and fanart.tv (answers cached in the ProviderAnswer table); each provider's outcome is recorded,
   and one provider down does not fail the entity while the other answered.
2. Every image becomes a candidate asset of the run. One analysed before (the same URL, in any run) reuses
   that analysis, and its bytes are not fetched again when their sha256 is in the cache.
3. The rest are downloaded and analysed concurrently (bounded), with enrich's safe decoding: the real size
   replaces the provider's claim. Rows are checkpoints: when the invocation's time runs short, what is done
   stays and the run answers `more`, so the state machine calls again and the work goes on.
4. Score and select per type (a show's season artwork per season), respecting locks (a locked type keeps
   what was approved for it), near-duplicates skipped; only the selected are cached.
5. The top credited actors, one shared row each, with their profile images analysed and cached once.
6. Stream details probed from the video (unless the client gave them), then the entity's status:
   enriched, or for an entity published before, stale when the result differs from what was published.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from rendergate import formats, runs, storage
from rendergate.collections import locked_types
from rendergate.config import settings
from rendergate.enrich import asset_id_for, cache_key_of, near, record_analysis, reject_for, write_once
from rendergate.enrich.analyse import analyse
from rendergate.enrich.score import PROFILES, Candidate, score
from rendergate.enrich.select import select
from rendergate.errors import ImageRejected, NotFound, ProviderUnavailable, RendergateError
from rendergate.media import catalogue, entities, providers, streams
from rendergate.media.catalogue import Offer
from rendergate.media.providers import FANART, TMDB, Deadline
from rendergate.observability import logger
from rendergate.tables import Actor, Asset, Entity, HashIndex, Run, now_iso, update_if

MARGIN_SECONDS = 15  # left for selection, caching and the actors when the analysis stops early
ACTOR_PREFIX = "tmdb-"


def enrich_entity(run: Run, remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Gather, analyse, score and select the entity's candidates; `more` when time ran out first."""
    entity = entities.get(str(run.entity_id))
    deadline = Deadline.within(remaining_ms() / 1000 - MARGIN_SECONDS)
    runs.advance(run, "enriching")
    if entity.status not in ("enriching",) and entity.run_id == run.run_id:
        update_if(entity, [Entity.status.set("enriching")], Entity.run_id == run.run_id)
    gathered = _gather(entity, deadline)
    spool = Path(tempfile.mkdtemp(prefix="rendergate-candidates-"))
    try:
        assets = _candidates(run, entity, gathered["offers"], spool, deadline)
        if any(asset is None for asset in assets):
            logger.info("enrichment continues in the next invocation", extra={"run_id": run.run_id})
            return {"asset_ids": [], "selected_ids": [], "rejected_ids": [], "more": True}
        rows = [asset for asset in assets if asset is not None]
        accepted = [a for a in rows if a.status != "rejected"]
        if any(a.selected is None for a in accepted):
            _select(run, entity, accepted, spool, deadline)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    actors = _actors(gathered["credits"], gathered["image_base"], deadline) if gathered["credits"] is not None else None
    _finish(run, entity, gathered, actors, accepted)
    ordered = sorted((a for a in accepted if a.selected), key=_rank_order)
    return {
        "asset_ids": [a.asset_id for a in sorted(accepted, key=_rank_order)],
        "selected_ids": [a.asset_id for a in ordered],
        "rejected_ids": [a.asset_id for a in rows if a.status == "rejected"],
        "more": False,
    }


def _gather(entity: Entity, deadline: Deadline) -> dict[str, Any]:
    """Ask both providers; record each one's outcome. ProviderUnavailable when neither answered."""
    kind, status = str(entity.kind), {}
    offers: list[Offer] = []
    details, credits, image_base = None, None, ""
    try:
        image_base = providers.tmdb_image_base(deadline)
        details, cached = providers.tmdb(*entities.tmdb_request(entity), deadline=deadline)
        status[TMDB] = "cached" if cached else "ok"
        offers += catalogue.tmdb_offers(kind, details, image_base)
        credits = catalogue.tmdb_credits(details)
    except NotFound:
        status[TMDB] = "not_found"
    except RendergateError as error:
        status[TMDB] = f"failed: {error}"
    fanart_id = entity.tmdb_id if kind == "movie" else entity.tvdb_id
    if fanart_id is None:
        status[FANART] = "skipped: no TVDB id to ask fanart.tv with"
    else:
        try:
            document, cached = providers.fanart(f"/{'movies' if kind == 'movie' else 'tv'}/{fanart_id}", deadline)
            status[FANART] = "cached" if cached else "ok"
            offers += catalogue.fanart_offers(kind, document)
        except NotFound:
            status[FANART] = "not_found"
        except RendergateError as error:
            status[FANART] = f"failed: {error}"
    if all(str(outcome).startswith("failed") for outcome in status.values()):
        raise ProviderUnavailable("no provider answered: " + "; ".join(f"{k} {v}" for k, v in status.items()))
    unique = list({offer.url: offer for offer in offers}.values())  # the same URL listed twice is one candidate
    return {"details": details, "credits": credits, "offers": unique, "status": status, "image_base": image_base}


def _candidates(run: Run, entity: Entity, offers: list[Offer], spool: Path, deadline: Deadline) -> list[Asset | None]:
    """A row per offer (plus the kept images of locked types); None for offers left for the next invocation."""
    kept = _kept_for_locked_types(entity, {offer.url for offer in offers})
    work = [(index, offer) for index, offer in enumerate(offers)]
    with ThreadPoolExecutor(max_workers=settings().providers.concurrency) as pool:
        assets = list(pool.map(lambda item: _candidate(run, item[0], item[1], spool, deadline), work))
    return assets + [_carried(run, old, len(offers) + index) for index, old in enumerate(kept)]


def _candidate(run: Run, ordinal: int, offer: Offer, spool: Path, deadline: Deadline) -> Asset | None:
    asset_id = asset_id_for(run.run_id, offer.url)
    try:
        return Asset.get(asset_id)  # done by an earlier invocation
    except DoesNotExist:
        pass
    config = settings()
    asset = Asset(
        asset_id,
        run_id=run.run_id,
        ordinal=ordinal,
        bucket=config.storage.media_bucket,
        key=offer.url,
        filename=offer.url.rsplit("/", 1)[-1][:200] or "image",
        status="analysing",
        asset_type=offer.asset_type,
        provider=offer.provider,
        language=offer.language,
        source_url=offer.url,
        season=offer.season,
        vote_average=offer.vote_average,
        vote_count=offer.vote_count,
        claimed_width=offer.claimed_width,
        claimed_height=offer.claimed_height,
    )
    earlier = _earlier_analysis(offer.url)
    if earlier is not None:
        _copy_analysis(earlier, asset)
    else:
        if deadline.left() <= 0:
            return None
        try:
            data = providers.download(offer.url, config.uploads.max_bytes, deadline)
            analysis = analyse(data, None, config.enrich.max_pixels, config.enrich.max_frames)
        except RendergateError as error:
            reject_for(asset, error)
        else:
            record_analysis(asset, analysis)
            (spool / asset_id).write_bytes(data)
            HashIndex(_url_key(offer.url), "analysis", owner=asset_id, run_id=run.run_id).save()
    asset.updated_at = now_iso()
    asset.save()
    return asset


def _earlier_analysis(url: str) -> Asset | None:
    """The asset that analysed this URL before, in any run: its measurements stand (provider URLs name
    immutable files), so the image is not downloaded again."""
    try:
        owner = HashIndex.get(_url_key(url), "analysis").owner
        earlier = Asset.get(str(owner))
    except DoesNotExist:
        return None
    return earlier if earlier.status != "rejected" and earlier.sha256 else None


MEASURED = ("format", "mode", "width", "height", "has_alpha", "frames", "bytes", "sha256", "phash", "dhash")


def _copy_analysis(earlier: Asset, asset: Asset) -> None:
    for name in (*MEASURED, "blank", "thumb_key"):
        setattr(asset, name, getattr(earlier, name))
    asset.status = "enriched"


def _url_key(url: str) -> str:
    return f"url#{hashlib.sha256(url.encode()).hexdigest()}"


def _kept_for_locked_types(entity: Entity, offered: set[str]) -> list[Asset]:
    """Approved images of locked types that the providers no longer offer: they stay candidates."""
    locked = locked_types(entities.collection_id(entity))
    kept = []
    for item in entity.published_assets or []:
        if item["asset_type"] not in locked:
            continue
        try:
            old = Asset.get(item["asset_id"])
        except DoesNotExist:
            continue
        if old.source_url and old.source_url not in offered:
            kept.append(old)
    return kept


def _carried(run: Run, old: Asset, ordinal: int) -> Asset:
    asset_id = asset_id_for(run.run_id, str(old.source_url))
    try:
        return Asset.get(asset_id)
    except DoesNotExist:
        pass
    asset = Asset(
        asset_id,
        run_id=run.run_id,
        ordinal=ordinal,
        bucket=old.bucket,
        key=old.key,
        filename=old.filename,
        status="analysing",
        asset_type=old.asset_type,
        provider=old.provider,
        language=old.language,
        source_url=old.source_url,
        season=old.season,
        vote_average=old.vote_average,
        vote_count=old.vote_count,
        claimed_width=old.claimed_width,
        claimed_height=old.claimed_height,
    )
    _copy_analysis(old, asset)
    asset.updated_at = now_iso()
    asset.save()
    return asset


def _select(run: Run, entity: Entity, assets: list[Asset], spool: Path, deadline: Deadline) -> None:
    """Score and select per type and season; keep what was approved for locked types; cache the selected."""
    config = settings()
    limits = {name: profile.limit for name, profile in PROFILES.items()} | config.enrich.selection_limits
    locked = locked_types(entities.collection_id(entity))
    candidates = {a.asset_id: _scoring_candidate(a) for a in assets}
    languages = config.enrich.preferred_language, config.enrich.fallback_language
    scored = {i: score(c, *languages) for i, c in candidates.items()}
    choices = select([(candidates[i], scored[i]) for i in candidates], limits, locked, near_duplicate=near)
    kept_ranks = {
        item["sha256"]: int(item["rank"]) for item in entity.published_assets or [] if item["asset_type"] in locked
    }
    groups: dict[str, list[Asset]] = {}
    for asset in assets:
        choice = choices[asset.asset_id]
        asset.score = scored[asset.asset_id].total
        asset.score_parts = scored[asset.asset_id].parts
        asset.selected, asset.selection_reason = choice.selected, choice.reason
        if asset.asset_type in locked and asset.sha256 in kept_ranks:
            asset.selected, asset.selection_reason = True, f"type_locked: kept as approved for {asset.asset_type}"
        if asset.selected:
            groups.setdefault(_group(asset), []).append(asset)
    for members in groups.values():
        members.sort(key=lambda a: (kept_ranks.get(str(a.sha256), 1000), -float(a.score or 0), a.asset_id))
        for rank, asset in enumerate(members, start=1):
            asset.rank = rank
            _cache(asset, spool, deadline)
    for asset in assets:
        if not asset.selected:
            asset.rank = None
        asset.updated_at = now_iso()
        asset.save()


def _scoring_candidate(asset: Asset) -> Candidate:
    return Candidate(
        asset_id=asset.asset_id,
        asset_type=asset.asset_type,
        width=int(asset.width or 0),
        height=int(asset.height or 0),
        has_alpha=bool(asset.has_alpha),
        phash=asset.phash,
        dhash=asset.dhash,
        language=asset.language,
        vote_average=float(asset.vote_average) if asset.vote_average is not None else None,
        vote_count=int(asset.vote_count or 0),
        provider=asset.provider,
        group=_group(asset),
    )


def _group(asset: Asset) -> str:
    return f"{asset.asset_type}#{int(asset.season)}" if asset.season is not None else str(asset.asset_type)


def _rank_order(asset: Asset) -> tuple[str, int, str]:
    return (_group(asset), int(asset.rank or 1000), asset.asset_id)


def _cache(asset: Asset, spool: Path, deadline: Deadline) -> None:
    """The selected image's analysed bytes at its content-addressed cache key, written once."""
    asset.cache_key = cache_key_of(asset)
    bucket = settings().storage.media_bucket
    if storage.exists(bucket, asset.cache_key):
        return  # matched by its sha256: nothing is downloaded again
    spooled = spool / asset.asset_id
    data = spooled.read_bytes() if spooled.exists() else providers.fetch_verified(asset, deadline)
    storage.write_if_absent(
        bucket, asset.cache_key, data, _content_type(asset), {"sha256": str(asset.sha256)}, storage.IMMUTABLE
    )


def _content_type(asset: Asset) -> str:
    return formats.CONTENT_TYPES.get(str(asset.format), "application/octet-stream")


def _actors(credits: list[dict[str, Any]], image_base: str, deadline: Deadline) -> list[dict[str, Any]]:
    """One shared row per credited actor, their profile image analysed and cached once across entities."""
    with ThreadPoolExecutor(max_workers=settings().providers.concurrency) as pool:
        rows = list(pool.map(lambda credit: _actor(credit, image_base, deadline), credits))
    return [
        {"actor_id": row.actor_id, "name": credit["name"], "role": credit["role"], "order": credit["order"]}
        for row, credit in zip(rows, credits, strict=True)
    ]


def _actor(credit: dict[str, Any], image_base: str, deadline: Deadline) -> Actor:
    actor_id = f"{ACTOR_PREFIX}{credit['tmdb_id']}"
    try:
        actor = Actor.get(actor_id)
    except DoesNotExist:
        actor = Actor(actor_id, name=credit["name"], tmdb_id=credit["tmdb_id"])
    actor.name = credit["name"]
    path = credit.get("profile_path")
    url = f"{image_base}original{path}" if path else None
    bucket = settings().storage.media_bucket
    if url is None:
        actor.profile_path, actor.source_url, actor.image_problem = None, None, "the provider has no profile image"
    elif not (actor.source_url == url and actor.cache_key and storage.exists(bucket, actor.cache_key)):
        _cache_profile(actor, url, path, deadline)
    actor.updated_at = now_iso()
    actor.save()
    return actor


def _cache_profile(actor: Actor, url: str, path: str | None, deadline: Deadline) -> None:
    config = settings()
    try:
        data = providers.download(url, config.uploads.max_bytes, deadline)
        analysis = analyse(data, None, config.enrich.max_pixels, config.enrich.max_frames)
    except (ImageRejected, RendergateError) as problem:
        actor.image_problem = f"{getattr(problem, 'code', 'download_failed')}: {problem}"
        return
    sha = analysis.sha256
    actor.cache_key = formats.cache_key("actor", sha, analysis.format)
    actor.thumb_key = f"thumbs/{sha[:2]}/{sha}.webp"
    write_once(config.storage.media_bucket, actor.thumb_key, analysis.preview, "image/webp")
    content_type = formats.CONTENT_TYPES[analysis.format]
    storage.write_if_absent(
        config.storage.media_bucket, actor.cache_key, data, content_type, {"sha256": sha}, storage.IMMUTABLE
    )
    actor.profile_path, actor.source_url, actor.image_problem = path, url, None
    actor.sha256, actor.format, actor.width, actor.height = sha, analysis.format, analysis.width, analysis.height


def _finish(
    run: Run, entity: Entity, gathered: dict[str, Any], actors: list[dict[str, Any]] | None, assets: list[Asset]
) -> None:
    """Record what the enrichment found on the entity and move it to enriched (or stale, or published)."""
    status = dict(gathered["status"])
    details = gathered["details"]
    metadata = catalogue.tmdb_metadata(str(entity.kind), details) if details is not None else entity.metadata
    actors = actors if actors is not None else entity.actors or []
    streamdetails, source = entity.streamdetails, entity.streamdetails_source
    if entity.media_key and source != "request":
        try:
            streamdetails, source = streams.probe(settings().storage.library_bucket, str(entity.media_key)), "probe"
            status["mediainfo"] = "ok"
        except RendergateError as problem:
            status["mediainfo"] = f"failed: {problem}"
    selected = [a for a in assets if a.selected]
    fingerprint = entities.result_fingerprint(metadata, streamdetails, actors, selected)
    if entity.last_published_at:
        new_status = "published" if fingerprint == entity.published_fingerprint else "stale"
    else:
        new_status = "enriched"
    actions: list[Action] = [
        Entity.status.set(new_status),
        Entity.metadata.set(metadata),
        Entity.actors.set(actors),
        Entity.provider_status.set(status),
        Entity.fingerprint.set(fingerprint),
        Entity.enriched_at.set(now_iso()),
        Entity.updated_at.set(now_iso()),
    ]
    if streamdetails is not None:
        actions += [Entity.streamdetails.set(streamdetails), Entity.streamdetails_source.set(str(source))]
    update_if(entity, actions, Entity.run_id == run.run_id)  # a later enrichment's result is not overwritten
