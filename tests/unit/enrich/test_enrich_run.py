"""The enrich stage on moto: one invocation per run, previews and cache objects stored once, duplicates
flagged (never dropped), selection per type with locks, and retries that change nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest

from support.images import photo, save
from support.stages import MEDIA, enrich, new_run, put


def objects(prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=MEDIA, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def assets(run_id: str) -> dict[str, Any]:
    from rendergate.tables import Asset

    return {a.filename: a for a in Asset.by_run.query(run_id)}


def test_a_run_is_enriched_in_one_call_with_duplicates_flagged_and_top_n_selected(aws: None) -> None:
    run_id = new_run(asset_type="generic")
    base = photo(31, (900, 600))
    sources = [
        put(f"renders/{run_id}/a.png", save(base, "PNG")),
        put(f"renders/{run_id}/b.jpg", save(base.resize((450, 300)), "JPEG", quality=75)),  # near twin of a
        put(f"renders/{run_id}/c.png", save(photo(32, (900, 600)), "PNG")),
        put(f"renders/{run_id}/d.png", b"<html>not an image</html>"),
    ]
    result = enrich(run_id, sources)

    rows = assets(run_id)
    assert len(rows) == 4
    assert rows["d.png"].status == "rejected" and rows["d.png"].rejection_code == "unsupported_type"
    assert sorted(result["asset_ids"]) == sorted(rows[n].asset_id for n in ("a.png", "b.jpg", "c.png"))
    assert rows["b.jpg"].duplicate_of == rows["a.png"].asset_id and rows["b.jpg"].duplicate_kind == "near"
    assert rows["b.jpg"].asset_id in result["asset_ids"]  # flagged, never dropped
    assert set(result["selected_ids"]) == {rows["a.png"].asset_id, rows["c.png"].asset_id}
    assert rows["b.jpg"].selection_reason == f"near_duplicate: of selected {rows['a.png'].asset_id}"
    for name in ("a.png", "b.jpg", "c.png"):
        row = rows[name]
        assert row.thumb_key == f"thumbs/{row.sha256[:2]}/{row.sha256}.webp"
        assert 0 < row.score <= 100
    selected_cache = sorted(rows[n].cache_key for n in ("a.png", "c.png"))
    assert objects("cache/") == selected_cache
    assert selected_cache[0].startswith("cache/generic/")
    assert len(objects("thumbs/")) == 3


def test_a_retry_adds_no_row_object_or_index_entry(aws: None) -> None:
    from rendergate.tables import HashIndex

    run_id = new_run()
    sources = [put(f"renders/{run_id}/{i}.png", save(photo(40 + i), "PNG")) for i in range(3)]
    first = enrich(run_id, sources)
    before = (objects(""), sorted(a.asset_id for a in assets(run_id).values()), len(list(HashIndex.scan())))
    again = enrich(run_id, sources)
    assert again == first
    assert (objects(""), sorted(a.asset_id for a in assets(run_id).values()), len(list(HashIndex.scan()))) == before


def test_the_same_bytes_in_two_runs_point_at_one_stored_copy(aws: None) -> None:
    data = save(photo(50, (700, 500)), "PNG")
    first_run, second_run = new_run("One"), new_run("Two")
    enrich(first_run, [put(f"renders/{first_run}/same.png", data)])
    enrich(second_run, [put(f"renders/{second_run}/same.png", data)])
    first, second = assets(first_run)["same.png"], assets(second_run)["same.png"]
    assert (second.duplicate_of, second.duplicate_kind) == (first.asset_id, "exact")
    assert not second.selected
    assert objects("cache/") == [first.cache_key]


def test_a_near_duplicate_in_a_later_run_is_flagged_across_the_library(aws: None) -> None:
    image = photo(60, (800, 800))
    first_run, later_run = new_run("First"), new_run("Later")
    enrich(first_run, [put(f"incoming/{first_run}/x.png", save(image, "PNG"))])
    enrich(later_run, [put(f"incoming/{later_run}/x.webp", save(image.resize((512, 512)), "WEBP", quality=60))])
    later = assets(later_run)["x.webp"]
    assert later.duplicate_of == assets(first_run)["x.png"].asset_id
    assert later.duplicate_kind == "near" and not later.selected


def test_locked_types_are_left_alone(aws: None) -> None:
    from rendergate import collections

    collections.lock("library", "locked-posters", ["poster"])
    run_id = new_run("Locked posters", asset_type="poster")
    result = enrich(run_id, [put(f"incoming/{run_id}/p.png", save(photo(70, (1000, 1500)), "PNG"))])
    row = assets(run_id)["p.png"]
    assert result["selected_ids"] == [] and row.selection_reason == "type_locked: poster is locked"
    assert objects("cache/") == []


def test_a_run_with_only_bad_files_fails_with_every_reason(aws: None) -> None:
    from rendergate.errors import ImageRejected

    run_id = new_run()
    sources = [put(f"incoming/{run_id}/a.png", b"GIF89a-not-really"), put(f"incoming/{run_id}/b.png", b"")]
    with pytest.raises(ImageRejected, match=r"a\.png: .*; b\.png: "):
        enrich(run_id, sources)
    assert {a.status for a in assets(run_id).values()} == {"rejected"}


def test_the_version_and_etag_of_the_analysed_bytes_are_recorded(aws: None) -> None:
    run_id = new_run()
    data = save(photo(80), "PNG")
    stored = boto3.client("s3").put_object(Bucket=MEDIA, Key=f"incoming/{run_id}/x.png", Body=data)
    put(f"incoming/{run_id}/x.png", save(photo(81), "PNG"))  # a later write: the source names the first
    enrich(run_id, [{"bucket": MEDIA, "key": f"incoming/{run_id}/x.png", "version_id": stored["VersionId"]}])

    row = assets(run_id)["x.png"]
    assert (row.version_id, row.etag) == (stored["VersionId"], stored["ETag"])
    assert row.sha256 == hashlib.sha256(data).hexdigest()


def test_a_retry_stores_the_analysed_version_in_the_cache_even_after_an_overwrite(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rendergate.enrich as stage

    run_id = new_run()
    data = save(photo(82), "PNG")
    source = put(f"renders/{run_id}/a.png", data)

    def hash_index_times_out(rows: list[Any]) -> None:
        raise TimeoutError("the hash index did not answer")

    with monkeypatch.context() as patch:
        patch.setattr(stage, "_dedupe", hash_index_times_out)
        with pytest.raises(TimeoutError):
            enrich(run_id, [source])  # analysed and saved, then the invocation died before selection
    put(source["key"], save(photo(83), "PNG"))
    enrich(run_id, [source])

    row = assets(run_id)["a.png"]
    assert row.selected and row.cache_key.endswith(f"{hashlib.sha256(data).hexdigest()}.png")
    cached = boto3.client("s3").get_object(Bucket=MEDIA, Key=row.cache_key)["Body"].read()
    assert cached == data
