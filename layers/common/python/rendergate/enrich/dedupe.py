"""Dedupe across the whole library. Exact: the first asset to claim a sha256 (a conditional write) owns
the stored copy. Near: multi-index hashing, the 64-bit phash cut into four 16-bit bands, each band a
partition of the HashIndex table; a lookup reads the four partitions and checks Hamming distance.

Two hashes within distance 3 always share a band (four bands, at most three differing bits), so the
four queries find every such pair whatever the library size; pairs further apart are found when one
band is intact, which resized and re-encoded copies nearly always keep.
"""

from __future__ import annotations

from dataclasses import dataclass

from rendergate.enrich.hashes import bands, hamming
from rendergate.tables import HashIndex, save_if_absent

PHASH_NEAR = 8  # near-duplicate: phash within 8 bits,
PHASH_LOOSE, DHASH_LOOSE = 12, 10  # or within 12 when the dhash agrees within 10
BLANK_BITS = 2  # a phash with at most 2 bits set (or unset) says nothing about the picture


@dataclass(frozen=True)
class Duplicate:
    asset_id: str
    kind: str  # exact | near
    distance: int
    selected: bool


def is_near(phash_a: str, dhash_a: str, phash_b: str, dhash_b: str) -> bool:
    distance = hamming(phash_a, phash_b)
    return distance <= PHASH_NEAR or (distance <= PHASH_LOOSE and hamming(dhash_a, dhash_b) <= DHASH_LOOSE)


def indexable(phash: str | None, blank: bool) -> bool:
    """Blank and near-blank images would match each other everywhere; they stay out of the index."""
    if phash is None or blank:
        return False
    ones = int(phash, 16).bit_count()
    return BLANK_BITS < ones < 64 - BLANK_BITS


def claim_content(asset_type: str, sha256: str, asset_id: str, run_id: str, cache_key: str) -> str:
    """Claim these bytes for `asset_id`; return the id of the asset that owns them (maybe this one)."""
    claim = HashIndex(f"sha256#{asset_type}#{sha256}", "content", run_id=run_id, cache_key=cache_key, owner=asset_id)
    if save_if_absent(claim, HashIndex.hash_key.does_not_exist()):
        return asset_id
    return str(HashIndex.get(claim.hash_key, "content").owner)


def find_near(asset_type: str, asset_id: str, phash: str, dhash: str) -> Duplicate | None:
    """The closest indexed near-duplicate of this hash in the same asset type, in at most 4 queries."""
    best: Duplicate | None = None
    seen: set[str] = {asset_id}
    for index, band in enumerate(bands(phash)):
        for entry in HashIndex.query(_band_key(asset_type, index, band)):
            if entry.asset_id in seen or entry.phash is None or entry.dhash is None:
                continue
            seen.add(entry.asset_id)
            if not is_near(phash, dhash, entry.phash, entry.dhash):
                continue
            distance = hamming(phash, entry.phash)
            if best is None or distance < best.distance:
                best = Duplicate(entry.asset_id, "near", distance, bool(entry.selected))
    return best


def index(asset_type: str, asset_id: str, run_id: str, phash: str, dhash: str, selected: bool) -> None:
    """Add (or refresh) the asset's four band entries; writing them again changes nothing."""
    with HashIndex.batch_write() as batch:
        for position, band in enumerate(bands(phash)):
            batch.save(
                HashIndex(
                    _band_key(asset_type, position, band),
                    asset_id,
                    run_id=run_id,
                    phash=phash,
                    dhash=dhash,
                    selected=selected,
                )
            )


def _band_key(asset_type: str, position: int, band: str) -> str:
    return f"phash#{asset_type}#{position}#{band}"
