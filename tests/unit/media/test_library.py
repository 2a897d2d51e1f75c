"""The library publisher on moto: Kodi/Jellyfin folders, `.actors`, the NFO, files it did not write left
alone, a republish that replaces what changed and removes what is no longer selected."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import boto3

from support.media import enrich_again, entity_row, publish

LIBRARY = "library-bucket"
FOLDER = "library/The Matrix (1999)"


def library(prefix: str = "") -> dict[str, bytes]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=LIBRARY, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=LIBRARY, Key=o["Key"])["Body"].read() for o in listing}


def names(prefix: str) -> set[str]:
    return {key.removeprefix(prefix + "/") for key in library(prefix)}


def test_a_movie_is_published_as_a_folder_kodi_and_jellyfin_read(enriched) -> None:
    view = enriched(tmdb_id=603)
    result = publish(view)
    assert result["status"] == "completed" and result["publish_failures"] == []
    files = names(FOLDER)
    assert {"The Matrix (1999)-poster.jpg", "The Matrix (1999)-poster1.jpg", "The Matrix (1999)-poster2.jpg"} <= files
    assert {"The Matrix (1999)-fanart.jpg", "The Matrix (1999)-fanart4.jpg", "The Matrix (1999)-fanart-4.jpg"} <= files
    assert {"The Matrix (1999)-clearlogo.png", "The Matrix (1999)-discart.png", "The Matrix (1999).nfo"} <= files
    assert {".actors/Keanu_Reeves.jpg", ".actors/Carrie-Anne_Moss.jpg"} <= files
    assert not any("Hugo" in name for name in files)  # no profile image: no file
    stored = library(FOLDER)
    poster = stored[f"{FOLDER}/The Matrix (1999)-poster.jpg"]
    first = view["artwork"]["poster"]["selected"][0]
    import hashlib

    assert hashlib.sha256(poster).hexdigest() == first["sha256"]
    root = ET.fromstring(stored[f"{FOLDER}/The Matrix (1999).nfo"])  # noqa: S314 (our own output)
    assert root.findtext("title") == "The Matrix" and root.findtext("lockdata") == "true"
    assert root.find("actor/thumb").text.startswith("http")  # type: ignore[union-attr]
    row = entity_row(view)
    assert row.status == "published" and row.last_published_at and row.published_nfo_hash
    assert hashlib.sha256(stored[f"{FOLDER}/The Matrix (1999).nfo"]).hexdigest() == row.published_nfo_hash
    assert result["published"][0]["folder"] == "The Matrix (1999)"


def test_a_publish_never_touches_files_it_did_not_write(enriched) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=LIBRARY, Key=f"{FOLDER}/The Matrix (1999)-poster.jpg", Body=b"the user's own poster")
    s3.put_object(Bucket=LIBRARY, Key=f"{FOLDER}/notes.txt", Body=b"mine")
    view = enriched(tmdb_id=603)
    result = publish(view)
    [failure] = result["publish_failures"]
    assert failure["code"] == "not_ours" and "poster.jpg" in failure["reason"]
    stored = library(FOLDER)
    assert stored[f"{FOLDER}/The Matrix (1999)-poster.jpg"] == b"the user's own poster"
    assert stored[f"{FOLDER}/notes.txt"] == b"mine"
    again = enrich_again(view["entity_id"])
    publish(again, again["result"]["selected_ids"][1:])  # drop one image: its files go, nothing else does
    assert library(FOLDER)[f"{FOLDER}/notes.txt"] == b"mine"
    assert library(FOLDER)[f"{FOLDER}/The Matrix (1999)-poster.jpg"] == b"the user's own poster"


def test_a_republish_replaces_what_changed_and_removes_what_is_no_longer_selected(enriched) -> None:
    view = enriched(tmdb_id=603)
    publish(view)
    before = library(FOLDER)
    again = enrich_again(view["entity_id"])
    fanart = [c["asset_id"] for c in again["artwork"]["fanart"]["selected"]]
    kept = [i for i in again["result"]["selected_ids"] if i not in fanart[1:]]  # one fanart instead of five
    result = publish(again, kept)
    after = library(FOLDER)
    gone = {f"{FOLDER}/The Matrix (1999)-fanart{n}.jpg" for n in range(1, 5)} | {
        f"{FOLDER}/The Matrix (1999)-fanart-{n}.jpg" for n in range(1, 5)
    }
    assert gone <= set(before) and not gone & set(after)
    assert sorted(result["published"][0]["removed"]) == sorted(gone)
    unchanged = set(after) & set(before)
    assert all(after[key] == before[key] for key in unchanged)


def test_a_missing_cache_file_is_fetched_again_at_publish(enriched, providers_server) -> None:
    view = enriched(tmdb_id=603)
    poster = view["artwork"]["poster"]["selected"][0]
    boto3.client("s3").delete_object(Bucket="media-bucket", Key=poster["cache_key"])
    asked = len(providers_server.requests("/t/p/"))
    assert publish(view)["publish_failures"] == []
    assert len(providers_server.requests("/t/p/")) == asked + 1
    assert f"{FOLDER}/The Matrix (1999)-poster.jpg" in library(FOLDER)


def test_unselected_cached_candidates_leave_the_cache_at_publish(enriched) -> None:
    view = enriched(tmdb_id=603)
    posters = [c for c in view["artwork"]["poster"]["selected"]]
    publish(view, [i for i in view["result"]["selected_ids"] if i != posters[2]["asset_id"]])
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="media-bucket", Prefix="cache/")["Contents"]}
    assert posters[2]["cache_key"] not in keys and posters[0]["cache_key"] in keys


def test_a_show_is_published_with_tvshow_nfo_and_season_artwork(enriched) -> None:
    view = enriched(kind="tvshow", tvdb_id=7001)
    assert view["folder"] == "Signal Hill (2019)"
    publish(view)
    files = names("library/Signal Hill (2019)")
    assert {"tvshow.nfo", "poster.jpg", "fanart.jpg", "clearlogo.png", "banner.jpg"} <= files
    assert {"season01-poster.jpg", "season02-poster.jpg", "season01-banner.jpg", "season-all-banner.jpg"} <= files
    assert "season02-landscape.jpg" in files
    root = ET.fromstring(library("library/Signal Hill (2019)")["library/Signal Hill (2019)/tvshow.nfo"])  # noqa: S314
    assert root.tag == "tvshow" and [u.get("type") for u in root.findall("uniqueid")] == ["tmdb", "imdb", "tvdb"]


def test_stream_details_come_from_the_video_or_from_the_request(enriched) -> None:
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "fixtures" / "sample-720p.mkv"
    key = "library/The Matrix (1999)/The.Matrix.1999.mkv"
    boto3.client("s3").put_object(Bucket=LIBRARY, Key=key, Body=sample.read_bytes())
    probed = enriched(tmdb_id=603, media_key=key)
    assert probed["streamdetails_source"] == "probe" and probed["streamdetails"]["video"][0]["width"] == 1280
    publish(probed)
    root = ET.fromstring(library(FOLDER)[f"{FOLDER}/The.Matrix.1999.nfo"])  # noqa: S314 (our own output)
    assert root.findtext("fileinfo/streamdetails/video/codec") == "h264"
    assert root.findtext("fileinfo/streamdetails/audio/channels") == "6"
    assert f"{FOLDER}/The.Matrix.1999-poster.jpg" in library(FOLDER)  # named after the video

    given = {"video": [{"codec": "hevc", "width": 3840, "height": 2160, "aspect": 1.78}], "audio": [], "subtitle": []}
    supplied = enriched(tmdb_id=604, streamdetails=given)
    assert supplied["streamdetails_source"] == "request" and supplied["streamdetails"]["video"][0]["codec"] == "hevc"
