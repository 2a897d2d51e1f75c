"""Library-wide dedupe through the HashIndex table (created from template.yaml in moto)."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from rendergate.enrich.analyse import analyse
from rendergate.enrich.hashes import hamming
from support.images import photo, save


def hashes(image: Image.Image, fmt: str = "PNG", **options: object) -> tuple[str, str, bool]:
    result = analyse(save(image, fmt, **options))
    return result.phash, result.dhash, result.blank


def test_a_resized_reencoded_copy_is_found_and_a_different_image_is_not(aws: None) -> None:
    from rendergate.enrich import dedupe

    original = photo(21, (800, 600))
    p, d, _ = hashes(original)
    dedupe.index("render", "original", "run-1", p, d, selected=True)

    copy_p, copy_d, _ = hashes(original.resize((400, 300)), "JPEG", quality=70)
    found = dedupe.find_near("render", "copy", copy_p, copy_d)
    assert found is not None and found.asset_id == "original" and found.kind == "near"
    assert found.distance == hamming(p, copy_p) <= dedupe.PHASH_NEAR
    assert found.selected

    other_p, other_d, _ = hashes(photo(22, (800, 600)))
    assert dedupe.find_near("render", "other", other_p, other_d) is None
    assert dedupe.find_near("poster", "copy", copy_p, copy_d) is None  # other asset types are not compared


def test_a_lookup_costs_four_queries_whatever_the_library_size(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from rendergate.enrich import dedupe
    from rendergate.tables import HashIndex

    rng = random.Random(5)
    for i in range(150):
        value = f"{rng.getrandbits(64):016x}"
        dedupe.index("render", f"asset-{i}", "run", value, value, selected=False)
    calls = []
    original_query = HashIndex.query
    monkeypatch.setattr(HashIndex, "query", lambda *a, **k: calls.append(a) or original_query(*a, **k))
    dedupe.find_near("render", "probe", f"{rng.getrandbits(64):016x}", "0" * 16)
    assert len(calls) == 4


def test_blank_images_stay_out_of_the_index() -> None:
    from rendergate.enrich import dedupe

    flat_p, _, flat_blank = hashes(Image.new("RGB", (200, 200), (90, 90, 90)))
    assert flat_blank and not dedupe.indexable(flat_p, flat_blank)
    assert not dedupe.indexable("8000000000000000", blank=False)
    assert dedupe.indexable(hashes(photo(3))[0], blank=False)


def test_the_first_claim_on_a_content_owns_it(aws: None) -> None:
    from rendergate.enrich import dedupe

    assert dedupe.claim_content("render", "ab" * 32, "first", "run-1", "cache/x") == "first"
    assert dedupe.claim_content("render", "ab" * 32, "second", "run-2", "cache/x") == "first"
    assert dedupe.claim_content("render", "ab" * 32, "first", "run-1", "cache/x") == "first"  # a retry


def test_near_rule_uses_dhash_between_8_and_12_bits() -> None:
    from rendergate.enrich.dedupe import is_near

    base = "0" * 16
    nine_bits = f"{(1 << 9) - 1:016x}"
    assert is_near(base, base, nine_bits, base)
    assert not is_near(base, base, nine_bits, "f" * 16)
    assert not is_near(base, base, f"{(1 << 13) - 1:016x}", base)
