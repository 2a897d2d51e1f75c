"""What the providers' documents say, in our terms: an entity's metadata (the NFO's fields), its credited
actors, and every image as a candidate (type, provider, URL, language, votes, the claimed size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rendergate.media.providers import FANART, TMDB

ACTORS = 15  # the top credited actors an entity keeps
NO_LANGUAGE = {"", "00", "xx", "null", "none"}  # textless: fanart.tv's "00", TMDB's null (lately "xx")
# fanart.tv's keys and the asset type each holds (season items carry `season`)
FANART_MOVIE = {
    "hdmovielogo": "clearlogo",
    "movielogo": "clearlogo",
    "hdmovieclearart": "clearart",
    "movieart": "clearart",
    "moviedisc": "discart",
    "movieposter": "poster",
    "moviebackground": "fanart",
    "moviebanner": "banner",
    "moviethumb": "landscape",
}
FANART_TV = {
    "hdtvlogo": "clearlogo",
    "clearlogo": "clearlogo",
    "hdclearart": "clearart",
    "clearart": "clearart",
    "tvposter": "poster",
    "showbackground": "fanart",
    "tvbanner": "banner",
    "tvthumb": "landscape",
    "seasonposter": "seasonposter",
    "seasonbanner": "seasonbanner",
    "seasonthumb": "seasonlandscape",
}
TMDB_IMAGES = {"posters": "poster", "backdrops": "fanart", "logos": "clearlogo"}
LIKES_RATING = (5.25, 5.0)  # fanart.tv likes on a 10-point scale: 5.25 + likes / 5 (as Artwork Beef reads them)


@dataclass(frozen=True)
class Offer:
    """One provider image: a candidate before anything is downloaded."""

    url: str
    asset_type: str
    provider: str
    language: str | None
    vote_average: float | None
    vote_count: int
    claimed_width: int | None = None
    claimed_height: int | None = None
    season: int | None = None


def language(code: Any) -> str | None:
    """A provider's language code, None when the image is textless."""
    if code is None or str(code).strip().lower() in NO_LANGUAGE:
        return None
    return str(code).strip().lower()


def tmdb_metadata(kind: str, details: dict[str, Any]) -> dict[str, Any]:
    """The NFO's fields from TMDB's movie or TV details (with external_ids appended)."""
    external = details.get("external_ids") or {}
    premiered = details.get("release_date") if kind == "movie" else details.get("first_air_date")
    year = int(premiered[:4]) if premiered and premiered[:4].isdigit() else None
    runtime = details.get("runtime") if kind == "movie" else next(iter(details.get("episode_run_time") or []), None)
    uniqueids = [{"type": "tmdb", "value": str(details["id"])}]
    imdb = details.get("imdb_id") or external.get("imdb_id")
    if imdb:
        uniqueids.append({"type": "imdb", "value": imdb})
    if external.get("tvdb_id"):
        uniqueids.append({"type": "tvdb", "value": str(external["tvdb_id"])})
    studios = details.get("production_companies") or details.get("networks") or []
    metadata: dict[str, Any] = {
        "title": details.get("title") or details.get("name"),
        "originaltitle": details.get("original_title") or details.get("original_name"),
        "plot": details.get("overview") or None,
        "tagline": details.get("tagline") or None,
        "runtime": runtime,
        "premiered": premiered or None,
        "year": year,
        "ratings": [
            {"name": "themoviedb", "value": details.get("vote_average") or 0, "votes": details.get("vote_count") or 0}
        ]
        if details.get("vote_count")
        else [],
        "uniqueids": uniqueids,
        "genres": [genre["name"] for genre in details.get("genres") or []],
        "studios": [studio["name"] for studio in studios],
    }
    if kind == "tvshow":
        metadata["seasons"] = [
            {"season_number": s["season_number"], "name": s.get("name")} for s in details.get("seasons") or []
        ]
    return metadata


def tmdb_credits(details: dict[str, Any]) -> list[dict[str, Any]]:
    """The top credited actors in credit order: provider id, name, role, order, profile path."""
    cast = sorted((details.get("credits") or {}).get("cast") or [], key=lambda c: c.get("order", 0))
    return [
        {
            "tmdb_id": int(member["id"]),
            "name": str(member["name"]),
            "role": member.get("character") or None,
            "order": index,
            "profile_path": member.get("profile_path"),
        }
        for index, member in enumerate(cast[:ACTORS])
        if member.get("name")
    ]


def tmdb_offers(kind: str, details: dict[str, Any], image_base: str) -> list[Offer]:
    """Every image TMDB lists (posters, backdrops, logos; a show's season posters), at the original size."""
    offers = []
    for key, asset_type in TMDB_IMAGES.items():
        for image in (details.get("images") or {}).get(key) or []:
            offers.append(
                Offer(
                    url=f"{image_base}original{image['file_path']}",
                    asset_type=asset_type,
                    provider=TMDB,
                    language=language(image.get("iso_639_1")),
                    vote_average=float(image.get("vote_average") or 0),
                    vote_count=int(image.get("vote_count") or 0),
                    claimed_width=image.get("width"),
                    claimed_height=image.get("height"),
                )
            )
    if kind == "tvshow":
        for season in details.get("seasons") or []:
            if season.get("poster_path"):
                offers.append(
                    Offer(
                        url=f"{image_base}original{season['poster_path']}",
                        asset_type="seasonposter",
                        provider=TMDB,
                        language=None,
                        vote_average=None,
                        vote_count=0,
                        season=int(season["season_number"]),
                    )
                )
    return offers


def fanart_offers(kind: str, document: dict[str, Any]) -> list[Offer]:
    """Every image fanart.tv lists, with its language and likes; fanart.tv states no sizes."""
    offers = []
    for key, asset_type in (FANART_MOVIE if kind == "movie" else FANART_TV).items():
        for image in document.get(key) or []:
            likes = int(image.get("likes") or 0) if str(image.get("likes") or "0").isdigit() else 0
            season = str(image.get("season", ""))
            offers.append(
                Offer(
                    url=str(image["url"]),
                    asset_type=asset_type,
                    provider=FANART,
                    language=language(image.get("lang")),
                    vote_average=min(10.0, LIKES_RATING[0] + likes / LIKES_RATING[1]),
                    vote_count=likes,
                    season=_season(season) if asset_type.startswith("season") else None,
                )
            )
    return offers


def _season(value: str) -> int | None:
    """fanart.tv's season: a number, "all" (-1: artwork for every season), or missing."""
    if value == "all":
        return -1
    return int(value) if value.isdigit() else None
