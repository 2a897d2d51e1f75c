"""The provider stand-in's documents: a handful of movies and one TV show, written for this project, in
TMDB v3's and fanart.tv v3's response shapes. Every image named here is generated on request (see
`devstack.providers`) at the size its document states, with alpha where its type needs it; a few are
listed but broken, missing (404) or lie about their size, as real catalogues sometimes do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Picture:
    """How to draw one served image."""

    width: int
    height: int
    fmt: str  # JPEG | PNG
    seed: int
    alpha: bool = False
    broken: bool = False  # the bytes stop half-way
    missing: bool = False  # listed, but the server answers 404


PICTURES: dict[str, Picture] = {}  # by the path the image is served at (after /t/p/<size> or /fanart)


def _tmdb_image(name: str, width: int, height: int, lang: str | None, votes: tuple[float, int], **draw: Any) -> dict:
    seed = draw.pop("seed", sum(map(ord, name)))
    fmt = "PNG" if name.endswith(".png") else "JPEG"
    claimed = draw.pop("claimed", (width, height))
    PICTURES[f"/{name}"] = Picture(width, height, fmt, seed, **draw)
    return {
        "aspect_ratio": round(claimed[0] / claimed[1], 3),
        "height": claimed[1],
        "iso_639_1": lang,
        "file_path": f"/{name}",
        "vote_average": votes[0],
        "vote_count": votes[1],
        "width": claimed[0],
        **({"file_type": ".png" if fmt == "PNG" else ".jpg"} if name.startswith("logo") else {}),
    }


def _fanart_image(image_id: int, name: str, width: int, height: int, lang: str, likes: int, **draw: Any) -> dict:
    seed = draw.pop("seed", image_id)
    fmt = "PNG" if name.endswith(".png") else "JPEG"
    season = draw.pop("season", None)
    PICTURES[f"/{name}"] = Picture(width, height, fmt, seed, **draw)
    return {
        "id": str(image_id),
        "url": f"{{fanart}}/{name}",
        "lang": lang,
        "likes": str(likes),
        **({"season": season} if season is not None else {}),
    }


def _cast(*people: tuple[int, str, str, str | None]) -> list[dict]:
    cast = []
    for order, (person_id, name, character, profile) in enumerate(people):
        if profile:
            PICTURES[f"/{profile}"] = Picture(600, 900, "JPEG", person_id)
        cast.append(
            {
                "adult": False,
                "gender": 0,
                "id": person_id,
                "known_for_department": "Acting",
                "name": name,
                "original_name": name,
                "popularity": 10.0,
                "profile_path": f"/{profile}" if profile else None,
                "cast_id": order + 1,
                "character": character,
                "credit_id": f"credit{person_id:020d}",
                "order": order,
            }
        )
    return cast


def _movie(tmdb_id: int, imdb_id: str, title: str, date: str, **rest: Any) -> dict:
    return {
        "adult": False,
        "backdrop_path": None,
        "belongs_to_collection": None,
        "budget": 0,
        "genres": rest.pop("genres", []),
        "homepage": "",
        "id": tmdb_id,
        "imdb_id": imdb_id,
        "original_language": "en",
        "original_title": rest.pop("original_title", title),
        "overview": rest.pop("overview", ""),
        "popularity": 50.0,
        "poster_path": None,
        "production_companies": rest.pop("studios", []),
        "release_date": date,
        "revenue": 0,
        "runtime": rest.pop("runtime", 100),
        "status": "Released",
        "tagline": rest.pop("tagline", ""),
        "title": title,
        "video": False,
        "vote_average": rest.pop("vote_average", 7.0),
        "vote_count": rest.pop("vote_count", 1000),
        "images": rest.pop("images"),
        "credits": {"cast": rest.pop("cast", []), "crew": []},
        "external_ids": {"imdb_id": imdb_id, "wikidata_id": None, "facebook_id": None},
    }


KEANU = (6384, "Keanu Reeves", "Neo", "keanu.jpg")

MOVIES: dict[int, dict] = {
    603: _movie(
        603,
        "tt0133093",
        "The Matrix",
        "1999-03-31",
        overview='A hacker learns the "truth" about his reality & joins the <resistance>.\x0b',
        tagline="Welcome to the Real World.",
        runtime=136,
        vote_average=8.2,
        vote_count=26000,
        genres=[{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}],
        studios=[{"id": 79, "name": "Village Roadshow Pictures", "logo_path": None, "origin_country": "US"}],
        images={
            "posters": [
                _tmdb_image("matrix-poster-en.jpg", 1000, 1500, "en", (5.6, 12), seed=11),
                _tmdb_image("matrix-poster-en-small.jpg", 500, 750, "en", (5.2, 4), seed=12),
                _tmdb_image("matrix-poster-textless.jpg", 1000, 1500, None, (5.4, 8), seed=13),
                _tmdb_image("matrix-poster-de.jpg", 1000, 1500, "de", (5.9, 20), seed=14),
                _tmdb_image("matrix-poster-broken.jpg", 1000, 1500, "en", (5.0, 1), seed=15, broken=True),
                _tmdb_image("matrix-poster-gone.jpg", 1000, 1500, "en", (5.0, 1), seed=16, missing=True),
                _tmdb_image("matrix-poster-liar.jpg", 400, 600, "en", (6.0, 30), seed=17, claimed=(2000, 3000)),
            ],
            "backdrops": [
                _tmdb_image("matrix-backdrop-textless.jpg", 1920, 1080, None, (5.5, 10), seed=21),
                _tmdb_image("matrix-backdrop-en.jpg", 1920, 1080, "en", (5.7, 14), seed=22),
                _tmdb_image("matrix-backdrop-2.jpg", 1920, 1080, None, (5.3, 6), seed=23),
                _tmdb_image("matrix-backdrop-small.jpg", 1000, 562, None, (5.1, 3), seed=24),
            ],
            "logos": [_tmdb_image("logo-matrix-en.png", 800, 310, "en", (5.3, 3), seed=31, alpha=True)],
        },
        cast=_cast(
            KEANU,
            (2975, "Laurence Fishburne", "Morpheus", "fishburne.jpg"),
            (530, "Carrie-Anne Moss", "Trinity", "moss.jpg"),
            (1331, "Hugo Weaving", "Agent Smith", None),
            (9364, "Joe Pantoliano", 'Cypher: "the traitor"', "pantoliano.jpg"),
        ),
    ),
    604: _movie(
        604,
        "tt0234215",
        "The Matrix Reloaded",
        "2003-05-15",
        overview="Neo and the rebels fight on.",
        runtime=138,
        images={
            "posters": [_tmdb_image("reloaded-poster.jpg", 1000, 1500, "en", (5.5, 9), seed=41)],
            "backdrops": [_tmdb_image("reloaded-backdrop.jpg", 1920, 1080, None, (5.5, 9), seed=42)],
            "logos": [],
        },
        cast=_cast(KEANU, (99999, "Jada Pinkett Smith", "Niobe", "pinkett.jpg")),
    ),
}


def _many() -> dict:
    """A movie with 200 candidates (150 at TMDB, 50 at fanart.tv), for the enrichment's timing."""
    posters = [
        _tmdb_image(f"many-poster-{i}.jpg", 1000, 1500, ("en", None)[i % 2], (5 + i % 5 / 10, i % 9), seed=1000 + i)
        for i in range(60)
    ]
    backdrops = [
        _tmdb_image(f"many-backdrop-{i}.jpg", 1920, 1080, (None, "en")[i % 2], (5 + i % 7 / 10, i % 11), seed=2000 + i)
        for i in range(80)
    ]
    logos = [_tmdb_image(f"logo-many-{i}.png", 800, 310, "en", (5.0, i), seed=3000 + i, alpha=True) for i in range(10)]
    return _movie(
        900001,
        "tt9000001",
        "Many Candidates",
        "2020-01-01",
        overview="A film with a great deal of artwork.",
        images={"posters": posters, "backdrops": backdrops, "logos": logos},
        cast=_cast((500001, "Ann Example", "Lead", "ann.jpg"), (500002, "Bo Example", "Support", "bo.jpg")),
    )


MOVIES[900001] = _many()

TV_SHOWS: dict[int, dict] = {
    5001: {
        "adult": False,
        "backdrop_path": None,
        "episode_run_time": [42],
        "first_air_date": "2019-09-20",
        "genres": [{"id": 18, "name": "Drama"}],
        "id": 5001,
        "name": "Signal Hill",
        "networks": [{"id": 1, "name": "Northern Broadcasting", "logo_path": None, "origin_country": "GB"}],
        "number_of_episodes": 16,
        "number_of_seasons": 2,
        "original_name": "Signal Hill",
        "overview": "A lighthouse keeper hears voices on the radio.",
        "seasons": [
            {
                "air_date": "2019-09-20",
                "episode_count": 8,
                "id": 50011,
                "name": "Season 1",
                "overview": "",
                "poster_path": "/signal-season1.jpg",
                "season_number": 1,
                "vote_average": 7.0,
            },
            {
                "air_date": "2021-01-10",
                "episode_count": 8,
                "id": 50012,
                "name": "The Storm",
                "overview": "",
                "poster_path": "/signal-season2.jpg",
                "season_number": 2,
                "vote_average": 7.2,
            },
        ],
        "status": "Ended",
        "tagline": "",
        "vote_average": 7.4,
        "vote_count": 310,
        "images": {
            "posters": [_tmdb_image("signal-poster.jpg", 1000, 1500, "en", (5.5, 5), seed=61)],
            "backdrops": [_tmdb_image("signal-backdrop.jpg", 1920, 1080, None, (5.5, 5), seed=62)],
            "logos": [],
        },
        "credits": {"cast": _cast((700001, "Mara Lind", "Keeper", "lind.jpg")), "crew": []},
        "external_ids": {"imdb_id": "tt7000001", "tvdb_id": 7001},
    },
}
PICTURES["/signal-season1.jpg"] = Picture(1000, 1500, "JPEG", 63)
PICTURES["/signal-season2.jpg"] = Picture(1000, 1500, "JPEG", 64)

FANART_MOVIES: dict[int, dict] = {
    603: {
        "name": "The Matrix",
        "tmdb_id": "603",
        "imdb_id": "tt0133093",
        "hdmovielogo": [
            _fanart_image(101, "matrix-hdlogo-en.png", 800, 310, "en", 12, alpha=True),
            _fanart_image(102, "matrix-hdlogo-flat.png", 800, 310, "en", 30, seed=102),  # no alpha: refused
        ],
        "hdmovieclearart": [_fanart_image(103, "matrix-clearart.png", 1000, 562, "en", 4, alpha=True)],
        "moviedisc": [
            {
                **_fanart_image(104, "matrix-disc.png", 1000, 1000, "en", 3, alpha=True),
                "disc": "1",
                "disc_type": "bluray",
            }
        ],
        # the same design as TMDB's English poster, resized: a near-duplicate
        "movieposter": [_fanart_image(105, "matrix-poster-fanart.jpg", 680, 1000, "en", 9, seed=11)],
        "moviebackground": [
            _fanart_image(106, "matrix-background-1.jpg", 1920, 1080, "00", 25, seed=107),
            _fanart_image(107, "matrix-background-2.jpg", 3840, 2160, "", 2, seed=108),
        ],
        "moviebanner": [_fanart_image(108, "matrix-banner.jpg", 1000, 185, "en", 1)],
        "moviethumb": [_fanart_image(109, "matrix-thumb.jpg", 1000, 562, "en", 5)],
    },
    900001: {
        "name": "Many Candidates",
        "tmdb_id": "900001",
        "imdb_id": "tt9000001",
        "movieposter": [_fanart_image(4000 + i, f"many-fposter-{i}.jpg", 1000, 1426, "en", i) for i in range(20)],
        "moviebackground": [_fanart_image(4100 + i, f"many-fbg-{i}.jpg", 1920, 1080, "00", i) for i in range(20)],
        "hdmovielogo": [
            _fanart_image(4200 + i, f"many-flogo-{i}.png", 800, 310, "en", i, alpha=True) for i in range(10)
        ],
    },
}
FANART_TV: dict[int, dict] = {
    7001: {
        "name": "Signal Hill",
        "thetvdb_id": "7001",
        "hdtvlogo": [_fanart_image(201, "signal-logo.png", 800, 310, "en", 3, alpha=True)],
        "tvposter": [_fanart_image(202, "signal-fposter.jpg", 1000, 1426, "en", 7)],
        "showbackground": [_fanart_image(203, "signal-background.jpg", 1920, 1080, "", 4)],
        "tvbanner": [_fanart_image(204, "signal-banner.jpg", 1000, 185, "en", 2)],
        "seasonposter": [_fanart_image(205, "signal-s1-poster.jpg", 1000, 1426, "en", 6, season="1")],
        "seasonbanner": [
            _fanart_image(206, "signal-s1-banner.jpg", 1000, 185, "en", 1, season="1"),
            _fanart_image(207, "signal-all-banner.jpg", 1000, 185, "en", 1, season="all"),
        ],
        "seasonthumb": [_fanart_image(208, "signal-s2-thumb.jpg", 1000, 562, "en", 1, season="2")],
    }
}
EXTERNAL_IDS = {
    ("imdb_id", "tt0133093"): ("movie", 603),
    ("imdb_id", "tt0234215"): ("movie", 604),
    ("tvdb_id", "7001"): ("tv", 5001),
    ("imdb_id", "tt7000001"): ("tv", 5001),
}
