"""POST/GET /entities through the entities function's handler: validation, idempotent registration, folder
claims, and the publish refusals the seed names."""

from __future__ import annotations

import pytest

from support.handlers import AUTH, call
from support.owners import key_for


def register(**body):
    return call("entities", "POST", "/entities", {"kind": "movie", **body}, AUTH)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "book", "tmdb_id": 1}, "kind must be movie or tvshow"),
        ({}, "send tmdb_id, imdb_id or tvdb_id"),
        ({"tmdb_id": "603"}, "tmdb_id must be a positive whole number"),
        ({"imdb_id": "0133093"}, "imdb_id must look like"),
        ({"tmdb_id": 603, "folder": "../escape"}, "folder segments"),
        ({"tmdb_id": 603, "media_key": "other/x/movie.mkv"}, "media_key must lie in the library's namespace"),
        ({"tmdb_id": 603, "media_key": "library/x/movie.exe"}, "media_key must be the key of a video"),
        ({"tmdb_id": 603, "auto_publish": "yes"}, "auto_publish must be"),
        ({"tmdb_id": 603, "streamdetails": {"video": [{"width": "wide"}]}}, "streamdetails.video.width"),
        ({"tmdb_id": 603, "colour": "red"}, "unknown field: colour"),
    ],
)
def test_bad_registrations_are_400_with_the_reason(providers_server, body, message) -> None:
    status, answer = call("entities", "POST", "/entities", body if "kind" in body else {"kind": "movie", **body}, AUTH)
    assert status == 400 and message in answer["message"], answer


def test_an_unknown_title_is_404_and_no_api_key_is_401(providers_server) -> None:
    assert register(imdb_id="tt0000001")[0] == 404
    assert call("entities", "POST", "/entities", {"kind": "movie", "tmdb_id": 603})[0] == 401


def test_registering_twice_is_the_same_entity_and_a_taken_folder_is_409(providers_server) -> None:
    status, first = register(tmdb_id=603, media_key="library/The Matrix (1999)/The Matrix (1999).mkv")
    assert status == 201 and first["status"] == "identified" and first["folder"] == "The Matrix (1999)"
    status, again = register(imdb_id="tt0133093")
    assert (status, again["entity_id"]) == (200, first["entity_id"])
    status, answer = register(tmdb_id=604, folder="the matrix (1999)")
    assert status == 409 and "belongs to entity" in answer["message"]
    listing = call("entities", "GET", "/entities", None, AUTH)[1]
    assert [e["entity_id"] for e in listing["entities"]] == [first["entity_id"]]


def test_publish_is_refused_with_the_reason_until_something_can_be_published(providers_server) -> None:
    _, entity = register(tmdb_id=603)
    status, answer = call("entities", "POST", f"/entities/{entity['entity_id']}/publish", None, AUTH)
    assert status == 409 and "not enriched yet" in answer["message"]
    assert call("entities", "POST", "/entities/nope/publish", None, AUTH)[0] == 404
    status, answer = call("entities", "POST", f"/entities/{entity['entity_id']}/enrich", None, AUTH)
    assert status == 409 and "under way" in answer["message"]


def test_auto_publish_is_off_by_default_and_set_per_library_and_per_entity(providers_server) -> None:
    _, entity = register(tmdb_id=603)
    assert entity["auto_publish"] == {"entity": None, "library": False, "effective": False}
    assert call("collections", "PUT", "/libraries/library", {"auto_publish": True}, AUTH)[0] == 200
    assert register(tmdb_id=604)[1]["auto_publish"] == {"entity": None, "library": True, "effective": True}
    _, show = register(kind="tvshow", tvdb_id=7001, auto_publish=False)
    assert show["auto_publish"]["effective"] is False
    assert call("collections", "PUT", "/libraries/library", {"auto_publish": "on"}, AUTH)[0] == 400


def test_publish_approves_the_current_selection_or_says_nothing_is_selected(enriched) -> None:
    from rendergate import review
    from rendergate.tables import Asset, Review

    view = enriched(tmdb_id=603)
    review.open_review("token-of-603", view["enrichment"]["run_id"], view["result"]["asset_ids"], 3600)
    path = f"/entities/{view['entity_id']}/publish"
    selected = [a for a in Asset.by_run.query(view["enrichment"]["run_id"]) if a.selected]
    for asset in selected:
        asset.update(actions=[Asset.selected.set(False)])
    status, answer = call("entities", "POST", path, None, AUTH)
    assert status == 409 and "nothing is selected" in answer["message"]
    for asset in selected:
        asset.update(actions=[Asset.selected.set(True)])
    ada = key_for("ada", "review")
    call("entities", "POST", path, None, ada)  # the task token is not a live one: recorded, then not delivered
    [decision] = list(Review.scan())
    assert (decision.reviewer, decision.approved) == ("api", view["result"]["selected_ids"])
    assert decision.decided_by == "ada"  # the owner of the key that decided


def test_an_entity_records_the_owner_that_registered_it(providers_server) -> None:
    from rendergate.tables import Entity, Run

    status, entity = call(
        "entities", "POST", "/entities", {"kind": "movie", "tmdb_id": 603}, key_for("ada", "entities")
    )
    assert status == 201
    assert Entity.get(entity["entity_id"]).owner == "ada"
    assert Run.get(entity["enrichment"]["run_id"]).owner == "ada"
