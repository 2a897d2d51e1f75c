"""The media library on the local stack: a movie registered, enriched from the provider stand-in, reviewed
(a swap, a lock), published as a Kodi/Jellyfin folder and announced; a show auto-published; providers that
answer 429, 404 or 5xx."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import requests

from support.devstack import DevStack, Entities
from support.waiting import eventually


def folder(devstack: DevStack, prefix: str) -> dict[str, bytes]:
    s3 = devstack.aws("s3")
    keys = devstack.library_keys(prefix + "/")
    return {
        k.removeprefix(prefix + "/"): s3.get_object(Bucket=devstack.state["library_bucket"], Key=k)["Body"].read()
        for k in keys
    }


def test_a_movie_is_reviewed_with_a_swap_and_a_lock_and_published_as_a_folder(
    devstack: DevStack, bus_events: Any
) -> None:
    media = Entities(devstack)
    answer = media.register(kind="movie", imdb_id="tt0133093", namespace="films")
    assert answer.status_code == 201, answer.text
    entity = media.wait_for(answer.json()["entity_id"], "enriched", review=True)
    assert entity["status"] == "enriched", entity["enrichment"]
    link = entity["enrichment"]["review"]["url"]

    page = requests.get(link, timeout=10).text
    assert "Keanu Reeves" in page and 'data-type="poster"' in page and "The Matrix" in page
    assert media.get(entity["entity_id"])["status"] == "enriched"  # GET changed nothing
    posters = entity["artwork"]["poster"]["selected"]
    form = dict(re.findall(r'name=(exp|sig) value="([^"]*)"', page))
    for group in entity["artwork"].values():
        for candidate in group["selected"]:
            form[f"rank-{candidate['asset_id']}"] = str(candidate["rank"])
    form[f"rank-{posters[0]['asset_id']}"], form[f"rank-{posters[1]['asset_id']}"] = "2", "1"  # swap the first two
    form["lock-poster"] = "on"
    decided = requests.post(link.split("?")[0], data={**form, "decision": "approve", "reviewer": "Ada"}, timeout=10)
    assert decided.status_code == 200, decided.text

    published = media.wait_for(entity["entity_id"], "published")
    assert published["status"] == "published"
    files = folder(devstack, "films/The Matrix (1999)")
    assert files["The Matrix (1999)-poster.jpg"] != files["The Matrix (1999)-poster1.jpg"]
    import hashlib

    assert hashlib.sha256(files["The Matrix (1999)-poster.jpg"]).hexdigest() == posters[1]["sha256"]
    assert {".actors/Keanu_Reeves.jpg", "The Matrix (1999)-fanart-1.jpg", "The Matrix (1999)-clearlogo.png"} <= set(
        files
    )
    nfo = ET.fromstring(files["The Matrix (1999).nfo"])  # noqa: S314 (our own output)
    assert nfo.findtext("title") == "The Matrix" and nfo.findtext("lockdata") == "true"
    assert [a.findtext("name") for a in nfo.findall("actor")][:2] == ["Keanu Reeves", "Laurence Fishburne"]
    locks = requests.get(f"{devstack.api_url}/collections/films/the-matrix-1999", headers=devstack.auth, timeout=10)
    assert locks.json()["locked_types"] == ["poster"]

    def announced() -> dict[str, Any]:
        found = [
            e
            for e in bus_events()
            if e["detail-type"] == "content.published.v1" and e["detail"]["subject"] == entity["entity_id"]
        ]
        assert found
        return found[0]["detail"]["data"]

    data = eventually(announced)
    assert (data["namespace"], data["folder"]) == ("films", "The Matrix (1999)")


def test_a_show_with_auto_publish_skips_the_review(devstack: DevStack) -> None:
    media = Entities(devstack)
    answer = media.register(kind="tvshow", tvdb_id=7001, namespace="shows", auto_publish=True)
    assert answer.status_code == 201, answer.text
    entity = media.wait_for(answer.json()["entity_id"], "published")
    assert entity["status"] == "published" and entity["enrichment"]["review"] is None
    files = folder(devstack, "shows/Signal Hill (2019)")
    assert {"tvshow.nfo", "poster.jpg", "season01-poster.jpg", "season02-poster.jpg", ".actors/Mara_Lind.jpg"} <= set(
        files
    )


def test_providers_that_answer_429_404_and_5xx(devstack: DevStack) -> None:
    media = Entities(devstack)
    media.fail("/3/movie/604", 429, times=1, retry_after=1)
    answer = media.register(kind="movie", tmdb_id=604, namespace="quirks")
    assert answer.status_code == 201, answer.text  # waited out the 429
    entity = media.wait_for(answer.json()["entity_id"], "enriched", review=True)
    assert entity["enrichment"]["providers"]["fanart.tv"] == "not_found"  # fanart.tv has no such movie
    assert media.provider_requests("/3/movie/604").count("/3/movie/604") == 2
    media.fail("/3/movie/900001", 503, times=4)  # every attempt the client makes
    refused = media.register(kind="movie", tmdb_id=900001, namespace="quirks")
    assert refused.status_code == 503 and refused.json()["error"] == "ProviderUnavailable"
    assert media.register(kind="movie", tmdb_id=424242, namespace="quirks").status_code == 404
