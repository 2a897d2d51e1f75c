"""Enrich: analyse every object of a run once, record an Asset per object, reject what is not an image."""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import runs, storage
from rendergate.enrich.analyse import Analysis, analyse
from rendergate.errors import ImageRejected, NotFound
from rendergate.observability import logger
from rendergate.tables import Asset, now_iso

ASSET_NAMESPACE = uuid.UUID("0b7d6c1e-2f3a-4b5c-9d8e-7f6a5b4c3d2e")


def enrich_run(payload: dict[str, Any]) -> dict[str, Any]:
    """Analyse the run's objects; return the ids of accepted assets. Raises ImageRejected if none is."""
    run_id = payload["run_id"]
    run = runs.get(run_id)
    accepted: list[Asset] = []
    rejected: list[Asset] = []
    for ordinal, source in enumerate(payload["objects"]):
        asset = _enrich_object(run_id, ordinal, source["bucket"], source["key"])
        (accepted if asset.status != "rejected" else rejected).append(asset)
    runs.advance(run, "enriching")
    if not accepted:
        reasons = "; ".join(f"{a.filename}: {a.rejection_reason}" for a in rejected)
        raise ImageRejected(f"no acceptable image in this run ({reasons})")
    return {"asset_ids": [a.asset_id for a in accepted], "rejected_ids": [a.asset_id for a in rejected]}


def asset_id_for(run_id: str, key: str) -> str:
    """Deterministic, so a retried enrich updates the same row instead of adding one."""
    return uuid.uuid5(ASSET_NAMESPACE, f"{run_id}/{key}").hex


def _enrich_object(run_id: str, ordinal: int, bucket: str, key: str) -> Asset:
    asset_id = asset_id_for(run_id, key)
    try:
        return _existing(asset_id)
    except DoesNotExist:
        pass
    asset = Asset(asset_id, run_id=run_id, ordinal=ordinal, bucket=bucket, key=key, filename=key.rsplit("/", 1)[-1])
    try:
        data = storage.read(bucket, key)
        asset.bytes = len(data)
        _record(asset, analyse(data))
    except ImageRejected as rejection:
        asset.status = "rejected"
        asset.rejection_code = getattr(rejection, "code", "rejected")
        asset.rejection_reason = str(rejection)
        logger.info("asset rejected", extra={"asset_id": asset_id, "reason": str(rejection)})
    except NotFound as missing:
        asset.status = "rejected"
        asset.rejection_code = "missing"
        asset.rejection_reason = str(missing)
    asset.updated_at = now_iso()
    asset.save()
    return asset


def _existing(asset_id: str) -> Asset:
    asset = Asset.get(asset_id)
    if asset.status in {"enriched", "rejected"} or asset.sha256:
        return asset
    raise DoesNotExist()


def _record(asset: Asset, analysis: Analysis) -> None:
    asset.status = "enriched"
    asset.format = analysis.format
    asset.width = analysis.width
    asset.height = analysis.height
    asset.sha256 = analysis.sha256
    asset.phash = analysis.phash
