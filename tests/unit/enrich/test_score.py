"""Scores 0-100 per asset-type profile; images under the minimum or lacking needed alpha are excluded."""

from __future__ import annotations

import pytest

from rendergate.enrich.score import PROFILES, WEIGHTS, Candidate, score


def candidate(asset_type: str = "poster", width: int = 2000, height: int = 3000, **kw: object) -> Candidate:
    fields: dict = {"asset_id": "a", "has_alpha": False, "phash": None, "dhash": None, **kw}
    return Candidate(asset_type=asset_type, width=width, height=height, **fields)


def test_weights_add_up_to_100_and_a_perfect_poster_scores_100() -> None:
    assert sum(WEIGHTS.values()) == 100
    perfect = score(candidate(language="en", vote_average=10.0, vote_count=10_000, provider="tmdb"), "en")
    assert perfect.total == pytest.approx(100, abs=0.1)
    assert perfect.excluded is None


def test_missing_votes_and_language_count_as_neutral_for_renders_and_uploads() -> None:
    parts = score(candidate("generic", 1024, 1024), "en").parts
    assert parts["votes"] == WEIGHTS["votes"] / 2
    assert parts["language"] == WEIGHTS["language"] / 2


def language_points(asset_type: str, language: str | None) -> float:
    return score(candidate(asset_type, language=language), "de", "en").parts["language"]


def test_posters_rank_the_preferred_language_then_textless_then_the_fallback_then_others() -> None:
    assert language_points("poster", "de") > language_points("poster", None) > language_points("poster", "en")
    assert language_points("poster", "en") > language_points("poster", "fr")


def test_backgrounds_rank_textless_first() -> None:
    assert language_points("fanart", None) > language_points("fanart", "de") > language_points("fanart", "en")
    assert language_points("fanart", "en") > language_points("fanart", "fr")


def test_a_logo_without_a_language_counts_as_the_fallbacks() -> None:
    assert language_points("clearlogo", None) == language_points("clearlogo", "en") < language_points("clearlogo", "de")


def test_each_part_moves_the_score_the_right_way() -> None:
    base = score(candidate(), "en").total
    assert score(candidate(width=1000, height=1500), "en").total < base  # lower resolution
    assert score(candidate(width=2000, height=2000), "en").total < base  # square, not 2:3
    assert score(candidate(language="en"), "en").total > base > score(candidate(language="de"), "en").total
    assert score(candidate(vote_average=9.0, vote_count=500), "en").total > base
    assert score(candidate(vote_average=2.0, vote_count=500), "en").total < base
    assert score(candidate(provider="tvdb"), "en").total < score(candidate(provider="tmdb"), "en").total


def test_below_minimum_is_excluded_with_a_reason() -> None:
    result = score(candidate(width=400, height=600), "en")
    assert result.excluded and result.excluded.startswith("below_minimum")


def test_alpha_types_need_transparency() -> None:
    logo = {"asset_type": "clearlogo", "width": 800, "height": 310}
    assert score(candidate(**logo), "en").excluded.startswith("needs_alpha")  # type: ignore[union-attr]
    assert score(candidate(**logo, has_alpha=True), "en").excluded is None
    assert PROFILES["discart"].ratio == 1.0 and PROFILES["discart"].needs_alpha


def test_creator_content_takes_any_shape() -> None:
    wide, square = score(candidate("render", 1536, 640), "en"), score(candidate("render", 1024, 1024), "en")
    assert wide.parts["aspect"] == square.parts["aspect"] == WEIGHTS["aspect"]
