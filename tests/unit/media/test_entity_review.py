"""An entity's review page and decision: per-type rank boxes and lock checkboxes, ranks recorded in order."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from support.handlers import respond


def opened(view) -> str:
    """The entity's enrichment waiting for review, as the Review task opens it; the review link."""
    from rendergate import review

    return review.open_review("a-task-token", view["enrichment"]["run_id"], view["result"]["asset_ids"], 3600)["url"]


def send(method: str, link: str, **form: str) -> dict:
    url = urlsplit(link)
    signed = {k: v[0] for k, v in parse_qs(url.query).items()}
    if method == "GET":
        return respond("review", "GET", url.path, query=signed)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return respond("review", "POST", url.path, urlencode({**signed, **form}).encode(), headers)


def test_the_page_shows_types_actors_and_ticks_the_locks_already_set(enriched) -> None:
    from rendergate import collections

    view = enriched(tmdb_id=603)
    collections.lock("library", "the-matrix-1999", ["poster"])
    page = send("GET", opened(view))["body"]
    assert 'data-type="poster"' in page and 'data-type="fanart"' in page and "Keanu Reeves" in page
    assert 'name="lock-poster" value=on checked' in page and 'name="lock-fanart" value=on>' in page
    first = view["artwork"]["poster"]["selected"][0]
    assert f'name="rank-{first["asset_id"]}" value="1"' in page


def test_ranks_that_collide_are_refused_and_a_decision_keeps_the_reviewers_order(enriched) -> None:
    from rendergate.tables import Review

    view = enriched(tmdb_id=603)
    link = opened(view)
    posters = [c["asset_id"] for c in view["artwork"]["poster"]["selected"]]
    clash = send("POST", link, **{f"rank-{posters[0]}": "1", f"rank-{posters[1]}": "1"})
    assert clash["statusCode"] == 400 and "rank 1" in clash["body"]
    form = {f"rank-{posters[0]}": "2", f"rank-{posters[1]}": "1", "lock-poster": "on", "decision": "approve"}
    send("POST", link, **form)  # the token is not a live task's: the decision is recorded, its delivery fails
    [row] = list(Review.scan())
    assert row.approved == [posters[1], posters[0]] and row.locked_types == ["poster"]
