"""An entity's enrichment on moto against the provider stand-in: candidates, analysis, selection, actors,
the cache, provider failures, locks and republish detection."""

from __future__ import annotations

import pytest

from support.media import artwork, chosen, enrich_again, entity_row, publish
from support.owners import ADMIN


def test_every_provider_image_is_a_candidate_analysed_and_selected_within_its_limits(enriched, providers_server):
    view = enriched(imdb_id="tt0133093")
    assert view["status"] == "enriched" and view["folder"] == "The Matrix (1999)"
    every = {
        c["source_url"].rsplit("/", 1)[-1]: c
        for group in view["artwork"].values()
        for c in group["selected"] + group["alternatives"]
    }
    liar = every["matrix-poster-liar.jpg"]  # TMDB claims 2000x3000; the file is 400x600
    assert (liar["claimed_width"], liar["width"]) == (2000, 400) and liar["selected"] is False
    assert liar["selection_reason"].startswith("below_minimum")
    assert every["matrix-poster-broken.jpg"]["rejection"]["code"] == "undecodable"
    assert every["matrix-poster-gone.jpg"]["rejection"]["code"] == "missing"
    assert every["matrix-hdlogo-flat.png"]["selection_reason"].startswith("needs_alpha")
    assert every["matrix-poster-fanart.jpg"]["selection_reason"].startswith("near_duplicate")
    background = every["matrix-background-1.jpg"]
    assert (background["provider"], background["language"], background["votes"]["count"]) == ("fanart.tv", None, 25)
    assert "matrix-poster-de.jpg" not in every  # asked for the preferred and fallback languages and textless only
    counts = {group: len(entry["selected"]) for group, entry in view["artwork"].items()}
    assert counts == {
        "banner": 1,
        "clearart": 1,
        "clearlogo": 1,
        "discart": 1,
        "fanart": 5,
        "landscape": 1,
        "poster": 3,
    }
    assert [c["rank"] for c in view["artwork"]["poster"]["selected"]] == [1, 2, 3]
    # fanart: textless first, whatever the votes
    assert view["artwork"]["fanart"]["selected"][0]["language"] is None
    assert [a["name"] for a in view["actors"]] == [
        "Keanu Reeves",
        "Laurence Fishburne",
        "Carrie-Anne Moss",
        "Hugo Weaving",
        "Joe Pantoliano",
    ]
    assert view["actors"][0]["thumb_url"] and view["actors"][3]["image_problem"]
    assert view["enrichment"]["providers"] == {"tmdb": "cached", "fanart.tv": "ok"}  # TMDB answered at registration


def test_a_second_entity_sharing_an_actor_reuses_the_cached_image(enriched, providers_server):
    enriched(tmdb_id=603)
    enriched(tmdb_id=604)
    assert providers_server.requests("/t/p/original/keanu.jpg") == ["/t/p/original/keanu.jpg"]
    assert providers_server.requests("/t/p/original/pinkett.jpg") == ["/t/p/original/pinkett.jpg"]


def test_enriching_again_within_the_ttl_asks_no_provider_and_downloads_nothing(enriched, providers_server):
    view = enriched(tmdb_id=603)
    before = len(providers_server.requests())
    again = enrich_again(view["entity_id"])
    # only the two images that were refused are tried again; nothing analysed or cached is fetched twice
    assert sorted(providers_server.requests()[before:]) == [
        "/t/p/original/matrix-poster-broken.jpg",
        "/t/p/original/matrix-poster-gone.jpg",
    ]
    assert again["enrichment"]["providers"] == {"tmdb": "cached", "fanart.tv": "cached"}
    assert chosen(again) == chosen(view)


def test_one_provider_down_does_not_fail_the_entity(enriched, providers_server):
    providers_server.fail("/v3/movies/603", 503, times=10)
    view = enriched(tmdb_id=603)
    assert view["status"] == "enriched"
    assert view["enrichment"]["providers"]["fanart.tv"].startswith("failed")
    assert {c["provider"] for g in view["artwork"].values() for c in g["selected"]} == {"tmdb"}


def test_both_providers_down_is_a_transient_failure(providers_server):
    from rendergate.enrich import enrich_run
    from rendergate.errors import ProviderUnavailable
    from rendergate.media import entities

    view, _ = entities.register({"kind": "movie", "tmdb_id": 603}, ADMIN)
    providers_server.fail("/3/", 500, times=100)
    providers_server.fail("/v3/", 500, times=100)
    from rendergate.tables import ProviderAnswer

    for row in ProviderAnswer.scan():
        row.delete()
    with pytest.raises(ProviderUnavailable, match="no provider answered"):
        enrich_run({"run_id": view["enrichment"]["run_id"], "objects": []})


def test_a_locked_type_keeps_the_approved_selection_when_enriched_again(enriched):
    view = enriched(tmdb_id=603)
    posters = [c["asset_id"] for c in view["artwork"]["poster"]["selected"]]
    swapped = posters[::-1]  # the reviewer reversed the order, and locked posters
    others = [i for i in view["result"]["selected_ids"] if i not in posters]
    publish(view, swapped + others, locked_types=["poster"])
    again = enrich_again(view["entity_id"])
    kept = again["artwork"]["poster"]["selected"]
    assert [c["sha256"] for c in kept] == [artwork(view, i)["sha256"] for i in swapped]
    assert all(c["selection_reason"].startswith("type_locked") for c in kept)
    assert again["status"] == "published"  # the same as what was published


def test_enriched_again_after_a_publish_with_another_result_is_stale(enriched):
    view = enriched(tmdb_id=603)
    posters = [c["asset_id"] for c in view["artwork"]["poster"]["selected"]]
    others = [i for i in view["result"]["selected_ids"] if i not in posters]
    publish(view, posters[::-1] + others)  # the reviewer's order, not locked
    assert entity_row(view).status == "published"
    assert enrich_again(view["entity_id"])["status"] == "stale"


def test_an_enrichment_that_runs_out_of_time_goes_on_where_it_stopped(providers_server):
    from rendergate.enrich import enrich_run
    from rendergate.media import entities
    from rendergate.tables import Asset

    view, _ = entities.register({"kind": "movie", "tmdb_id": 603}, ADMIN)
    run_id = view["enrichment"]["run_id"]
    assert enrich_run({"run_id": run_id, "objects": []}, lambda: 1_000)["more"] is True
    done = enrich_run({"run_id": run_id, "objects": []}, lambda: 600_000)
    assert done["more"] is False and done["selected_ids"]
    urls = [a.source_url for a in Asset.by_run.query(run_id)]
    assert len(urls) == len(set(urls))  # every candidate once


def test_a_candidate_the_provider_refuses_to_serve_is_rejected_as_a_failed_download(enriched, providers_server):
    providers_server.fail("/t/p/original/matrix-poster-liar.jpg", 403, times=5)
    view = enriched(tmdb_id=603)
    every = {
        c["source_url"].rsplit("/", 1)[-1]: c
        for group in view["artwork"].values()
        for c in group["selected"] + group["alternatives"]
    }
    refused = every["matrix-poster-liar.jpg"]["rejection"]
    assert refused["code"] == "download_failed" and "403" in refused["reason"]
    assert every["matrix-poster-gone.jpg"]["rejection"]["code"] == "missing"
