"""Enrich: analyse every object of a run (concurrently, in one invocation), dedupe against the whole
library, score and select per asset type, and store previews and the selected copies.

Each asset's row is its checkpoint: a retried or duplicated invocation reuses rows already analysed and
selected, so it adds no second row, object or index entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import formats, publish, runs, storage
from rendergate.collections import locked_types
from rendergate.config import settings
from rendergate.enrich import dedupe
from rendergate.enrich.analyse import Analysis, analyse, declared_format
from rendergate.enrich.score import PROFILES, Candidate, score
from rendergate.enrich.select import select
from rendergate.errors import ImageRejected, NotFound, RendergateError
from rendergate.observability import logger
from rendergate.tables import Asset, Run, now_iso

ASSET_NAMESPACE = uuid.UUID("0b7d6c1e-2f3a-4b5c-9d8e-7f6a5b4c3d2e")
GENERATED = frozenset({"render", "comfy", "external"})  # sources whose images were made to order: `render` type


def enrich_run(payload: dict[str, Any], remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
    """Enrich the run's objects; return the accepted and selected asset ids. ImageRejected if none is accepted.
    An entity's enrichment gathers its provider candidates instead (rendergate.media.enrichment)."""
    run = runs.get(payload["run_id"])
    if run.source == "entity":
        from rendergate.media.enrichment import enrich_entity

        return enrich_entity(run, remaining_ms or (lambda: 600_000))
    sources = list(enumerate(payload["objects"]))
    workers = max(1, min(settings().enrich.concurrency, len(sources)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        assets = list(pool.map(lambda item: _analysed(run, item[0], item[1]), sources))
    accepted = [a for a in assets if a.status != "rejected"]
    pending = [a for a in accepted if a.selected is None]  # rows a previous attempt did not finish
    if pending:
        _dedupe(pending)
        _select(run, pending)
    runs.advance(run, "enriching")
    if not accepted:
        reasons = "; ".join(f"{a.filename}: {a.rejection_reason}" for a in assets)
        raise ImageRejected(f"no acceptable image in this run ({reasons})")
    return {
        "asset_ids": [a.asset_id for a in accepted],
        "selected_ids": [a.asset_id for a in accepted if a.selected],
        "rejected_ids": [a.asset_id for a in assets if a.status == "rejected"],
        "more": False,
    }


def asset_id_for(run_id: str, key: str) -> str:
    """Deterministic, so a retried enrich updates the same row instead of adding one."""
    return uuid.uuid5(ASSET_NAMESPACE, f"{run_id}/{key}").hex


def collection_id(run: Run, filename: str) -> str:
    """The library item an asset belongs to: where publish puts it, `{namespace}/{slug}`."""
    return "/".join(publish.library_path(run.namespace, run.title, filename).split("/")[:2])


def _analysed(run: Run, ordinal: int, source: dict[str, str]) -> Asset:
    """The asset row of one object; the version ingest checked is read when the source names one."""
    bucket, key = source["bucket"], source["key"]
    asset_id = asset_id_for(run.run_id, key)
    try:
        return Asset.get(asset_id)  # analysed by an earlier attempt: rows are saved only once analysed
    except DoesNotExist:
        pass
    filename = key.rsplit("/", 1)[-1]
    asset = Asset(
        asset_id,
        run_id=run.run_id,
        ordinal=ordinal,
        bucket=bucket,
        key=key,
        filename=filename,
        status="analysing",
        asset_type=run.asset_type or ("render" if run.source in GENERATED else "generic"),
        provider=run.source,
        language=run.language,
    )
    config = settings()
    declared = declared_format(runs.files_of(run).get(key, {}).get("content_type"), filename)
    try:
        stored = storage.read_object(bucket, key, source.get("version_id"))
        asset.version_id, asset.etag = stored.version_id, stored.etag  # of exactly the bytes analysed
        analysis = analyse(stored.body, declared, config.enrich.max_pixels, config.enrich.max_frames)
    except (ImageRejected, NotFound) as refusal:
        reject_for(asset, refusal)
    else:
        record_analysis(asset, analysis)
    asset.updated_at = now_iso()
    asset.save()
    return asset


def reject(asset: Asset, code: str, reason: str) -> None:
    """Record why an asset is refused (its code and reason), for the reviewer and GET /runs."""
    asset.status = "rejected"
    asset.rejection_code = code
    asset.rejection_reason = reason
    logger.info("asset rejected", extra={"asset_id": asset.asset_id, "code": code, "reason": reason})


def reject_for(asset: Asset, error: RendergateError) -> None:
    """Reject an asset for the error that stopped its analysis: `missing` when its bytes are gone, the
    image's own code when they are not an acceptable image, `download_failed` when they could not be had."""
    if isinstance(error, NotFound):
        code = "missing"
    elif isinstance(error, ImageRejected):
        code = getattr(error, "code", "rejected")
    else:
        code = "download_failed"
    reject(asset, code, str(error))


def record_analysis(asset: Asset, analysis: Analysis) -> None:
    """Store the preview once and copy what the analysis measured onto the asset."""
    thumb_key = f"thumbs/{analysis.sha256[:2]}/{analysis.sha256}.webp"
    write_once(asset.bucket, thumb_key, analysis.preview, "image/webp")
    asset.status = "enriched"
    asset.thumb_key = thumb_key
    for name in ("format", "mode", "width", "height", "has_alpha", "frames", "sha256", "phash", "dhash", "blank"):
        setattr(asset, name, getattr(analysis, name))
    asset.bytes = analysis.byte_count


def _dedupe(assets: list[Asset]) -> None:
    """Flag exact copies (a conditional claim on the sha256) and near-duplicates (the band index)."""
    for asset in sorted(assets, key=lambda a: a.ordinal):
        owner = dedupe.claim_content(asset.asset_type, asset.sha256, asset.asset_id, asset.run_id, cache_key_of(asset))
        if owner != asset.asset_id:
            asset.duplicate_of, asset.duplicate_kind, asset.duplicate_distance = owner, "exact", 0
        elif dedupe.indexable(asset.phash, bool(asset.blank)):
            twin = dedupe.find_near(asset.asset_type, asset.asset_id, asset.phash, asset.dhash)
            if twin is not None:
                asset.duplicate_of, asset.duplicate_kind, asset.duplicate_distance = (
                    twin.asset_id,
                    "near",
                    twin.distance,
                )
            # indexed now (unselected), so the next asset of this run sees it; refreshed after selection
            dedupe.index(asset.asset_type, asset.asset_id, asset.run_id, asset.phash, asset.dhash, selected=False)


def _select(run: Run, assets: list[Asset]) -> None:
    """Score and select per type; store the selected copies content-addressed; save every row."""
    config = settings()
    limits = {name: profile.limit for name, profile in PROFILES.items()} | config.enrich.selection_limits
    locked = locked_types(collection_id(run, assets[0].filename))
    candidates = {a.asset_id: _candidate(a) for a in assets}
    language = config.enrich.preferred_language
    scored = {asset_id: score(candidate, language) for asset_id, candidate in candidates.items()}
    choices = select(
        [(candidates[i], scored[i]) for i in candidates],
        limits,
        locked,
        near_duplicate=near,
        already_selected=_duplicates_of_selected(assets),
    )
    for asset in assets:
        choice = choices[asset.asset_id]
        asset.score = scored[asset.asset_id].total
        asset.score_parts = scored[asset.asset_id].parts
        asset.selected = choice.selected
        asset.selection_reason = choice.reason
        if choice.selected:
            asset.cache_key = cache_key_of(asset)
            if not storage.exists(asset.bucket, asset.cache_key):  # named by the sha256: the analysed version
                storage.copy(
                    asset.bucket,
                    asset.key,
                    asset.bucket,
                    asset.cache_key,
                    {"sha256": str(asset.sha256)},
                    source_version_id=asset.version_id,
                    source_etag=asset.etag,
                )
        if asset.duplicate_kind != "exact" and dedupe.indexable(asset.phash, bool(asset.blank)):
            dedupe.index(asset.asset_type, asset.asset_id, asset.run_id, asset.phash, asset.dhash, choice.selected)
        asset.updated_at = now_iso()
        asset.save()


def near(a: Candidate, b: Candidate) -> bool:
    """Whether two candidates are near-duplicates by their perceptual hashes."""
    if a.phash is None or a.dhash is None or b.phash is None or b.dhash is None:
        return False
    return dedupe.is_near(a.phash, a.dhash, b.phash, b.dhash)


def _candidate(asset: Asset) -> Candidate:
    return Candidate(
        asset_id=asset.asset_id,
        asset_type=asset.asset_type if asset.asset_type in PROFILES else "generic",
        width=int(asset.width or 0),
        height=int(asset.height or 0),
        has_alpha=bool(asset.has_alpha),
        phash=asset.phash,
        dhash=asset.dhash,
        language=asset.language,
        provider=asset.provider,
    )


def _duplicates_of_selected(assets: list[Asset]) -> dict[str, str]:
    """Assets that duplicate a library asset which is already selected: they are not selected again."""
    duplicates = {}
    for asset in assets:
        if asset.duplicate_of is None:
            continue
        try:
            if Asset.get(asset.duplicate_of).selected:
                duplicates[asset.asset_id] = asset.duplicate_of
        except DoesNotExist:
            continue
    return duplicates


def cache_key_of(asset: Asset) -> str:
    """Where the selected copy of an asset's bytes lives: content-addressed, per type."""
    return formats.cache_key(str(asset.asset_type), str(asset.sha256), str(asset.format))


def write_once(bucket: str, key: str, body: bytes, content_type: str) -> None:
    if not storage.exists(bucket, key):
        storage.write(bucket, key, body, content_type)
