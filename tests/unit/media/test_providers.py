"""The provider client against the stand-in on loopback: auth, rate limits, 5xx, 404 and the answer cache."""

from __future__ import annotations

import boto3
import pytest

from rendergate.errors import NotFound, ProviderUnavailable
from rendergate.media import providers


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits, recorded instead of slept."""
    seen: list[float] = []
    monkeypatch.setattr(providers, "_pause", seen.append)
    return seen


def test_a_429_waits_its_retry_after_and_then_succeeds(providers_server, waits) -> None:
    providers_server.fail("/3/movie/603", 429, times=2, retry_after=3)
    answer, cached = providers.tmdb("/movie/603")
    assert answer["title"] == "The Matrix" and not cached
    assert waits == [3.0, 3.0]
    assert providers_server.requests("/3/movie/603") == ["/3/movie/603"] * 3


def test_a_retry_after_past_the_deadline_gives_up_without_waiting(providers_server, waits) -> None:
    providers_server.fail("/3/movie/603", 429, retry_after=30)
    with pytest.raises(ProviderUnavailable, match=r"429.*deadline"):
        providers.tmdb("/movie/603", deadline=providers.Deadline.within(5))
    assert waits == []


def test_5xx_is_retried_with_backoff_then_reported(providers_server, waits) -> None:
    providers_server.fail("/v3/movies/603", 503, times=2)
    document, _ = providers.fanart("/movies/603")
    assert document["name"] == "The Matrix" and len(waits) == 2
    providers_server.fail("/3/movie/604", 500, times=10)
    with pytest.raises(ProviderUnavailable, match="500 after 4 attempts"):
        providers.tmdb("/movie/604")


def test_a_404_is_not_found_and_remembered(providers_server) -> None:
    for _ in range(2):
        with pytest.raises(NotFound):
            providers.fanart("/movies/604")
    assert providers_server.requests("/v3/") == ["/v3/movies/604"]


def test_answers_are_kept_for_the_ttl_and_asked_again_after_it(providers_server, settings) -> None:
    first, cached = providers.tmdb("/movie/603", {"append_to_response": "credits"})
    again, cached_again = providers.tmdb("/movie/603", {"append_to_response": "credits"})
    assert (cached, cached_again) == (False, True) and again == first
    assert len(first["credits"]["cast"]) == 5 and "images" not in first
    assert providers_server.requests("/3/movie/603") == ["/3/movie/603"]
    settings(PROVIDER_CACHE_TTL_SECONDS="0", TMDB_API_BASE=f"{providers_server.url}/3")
    for _ in range(2):
        assert providers.tmdb("/movie/604")[1] is False  # kept 0 s: expired at once
    assert providers_server.requests("/3/movie/604") == ["/3/movie/604"] * 2


def test_a_bad_key_is_refused_by_the_stand_in_as_by_tmdb(providers_server, settings) -> None:
    boto3.client("ssm").put_parameter(Name="/rendergate/test/tmdb-token", Value=" ", Type="SecureString")
    settings(TMDB_TOKEN="", TMDB_TOKEN_PARAM="/rendergate/test/tmdb-token")  # a blank token, from SSM
    with pytest.raises(providers.ProviderError, match="401"):
        providers.tmdb("/movie/603")
