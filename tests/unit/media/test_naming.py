"""Kodi's and Jellyfin's names: ranked artwork, Jellyfin's extra backdrops, season artwork, `.actors`."""

from __future__ import annotations

import pytest

from rendergate.errors import BadRequest
from rendergate.media import naming


def names(kind: str, asset_type: str, rank: int, season: int | None = None, fmt: str = "JPEG") -> list[str]:
    return [p.name for p in naming.artwork(kind, "The Matrix (1999)", asset_type, rank, season, fmt)]


def test_movie_artwork_is_named_after_the_video_with_kodi_ranks() -> None:
    assert names("movie", "poster", 1) == ["The Matrix (1999)-poster.jpg"]
    assert names("movie", "poster", 2) == ["The Matrix (1999)-poster1.jpg"]
    assert names("movie", "poster", 3) == ["The Matrix (1999)-poster2.jpg"]
    assert names("movie", "clearlogo", 1, fmt="PNG") == ["The Matrix (1999)-clearlogo.png"]


def test_extra_backdrops_also_get_the_names_jellyfin_reads_and_keyart_is_kodis_alone() -> None:
    assert names("movie", "fanart", 1) == ["The Matrix (1999)-fanart.jpg"]
    assert names("movie", "fanart", 2) == ["The Matrix (1999)-fanart1.jpg", "The Matrix (1999)-fanart-1.jpg"]
    readers = [p.reader for p in naming.artwork("movie", "M", "fanart", 3, None, "JPEG")]
    assert readers == ["kodi", "jellyfin"]
    assert [p.reader for p in naming.artwork("movie", "M", "keyart", 1, None, "JPEG")] == ["kodi"]


def test_a_shows_artwork_sits_unprefixed_in_its_folder_and_season_art_by_season() -> None:
    assert names("tvshow", "poster", 1) == ["poster.jpg"]
    assert names("tvshow", "fanart", 2) == ["fanart1.jpg", "fanart-1.jpg"]
    assert names("tvshow", "seasonposter", 1, season=1) == ["season01-poster.jpg"]
    assert names("tvshow", "seasonbanner", 1, season=0) == ["season-specials-banner.jpg"]
    assert names("tvshow", "seasonlandscape", 1, season=-1) == ["season-all-landscape.jpg"]


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("Keanu Reeves", "JPEG", ".actors/Keanu_Reeves.jpg"),
        ("Carrie-Anne Moss", "PNG", ".actors/Carrie-Anne_Moss.png"),
        ('Joe "Joey" P: Jr.', "JPEG", ".actors/Joe__Joey__P__Jr.jpg"),  # Kodi: illegal → "_", trailing dot trimmed
        ("Zoë Kravitz", "JPEG", ".actors/Zoë_Kravitz.jpg"),  # case and letters kept
        ("Someone", "WEBP", None),  # Kodi reads .jpg, .png and .tbn there
    ],
)
def test_actor_files_follow_kodis_rule(name: str, fmt: str, expected: str | None) -> None:
    assert naming.actor_file(name, fmt) == expected


def test_the_basename_is_the_videos_else_the_folders_and_the_nfo_follows_it() -> None:
    assert naming.basename("The Matrix (1999)", "lib/The Matrix (1999)/The.Matrix.1999.mkv") == "The.Matrix.1999"
    assert naming.basename("Movies/The Matrix (1999)", None) == "The Matrix (1999)"
    assert naming.nfo_file("movie", "The.Matrix.1999") == "The.Matrix.1999.nfo"
    assert naming.nfo_file("tvshow", "ignored") == "tvshow.nfo"


def test_default_folders_are_legal_and_bad_folders_are_refused() -> None:
    assert naming.default_folder("Face/Off: Redux?", 1997) == "Face_Off_ Redux_ (1997)"
    assert naming.check_folder("Movies/The Matrix (1999)") == "Movies/The Matrix (1999)"
    for bad in ("", "../x", "a//b", ".hidden", "a/b/c/d/e", "x:y", "tab\there", 42):
        with pytest.raises(BadRequest):
            naming.check_folder(bad)
