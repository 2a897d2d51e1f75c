"""Where things go in a library folder, by the names Kodi and Jellyfin read: ranked artwork, season artwork,
the `.actors` folder and the NFO. Plain code (no Pillow), so the API functions can validate folders too."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rendergate.errors import BadRequest

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
ACTOR_EXTENSIONS = ("jpg", "png")  # Kodi reads .jpg, .png and .tbn in .actors, never .webp
# Kodi's CUtil::MakeLegalFileName with LEGAL_WIN32_COMPAT: each of these becomes "_", trailing dots and
# spaces go; the form every file system a library is shared from accepts.
ILLEGAL = re.compile(r'[/\\?:*"<>|]')
VIDEO_EXTENSIONS = (".mkv", ".mp4", ".m4v", ".avi", ".mov", ".ts", ".m2ts", ".webm", ".wmv", ".mpg", ".mpeg")
MAX_SEGMENT_BYTES = 255
MAX_SEGMENTS = 4
SEASON_TYPES = {"seasonposter": "poster", "seasonbanner": "banner", "seasonlandscape": "landscape"}
JELLYFIN_EXTRA_BACKDROPS = 20  # Jellyfin reads fanart-1 … fanart-20; Kodi reads fanart1 … fanart19


@dataclass(frozen=True)
class Placement:
    """One library file of an entity: its name in the folder and who reads it (kodi, jellyfin or both)."""

    name: str
    reader: str


def legal_name(text: str) -> str:
    """`text` as Kodi makes a file name legal (LEGAL_WIN32_COMPAT), control characters dropped too."""
    cleaned = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf"})
    return ILLEGAL.sub("_", cleaned).rstrip(". ")


def default_folder(title: str, year: int | None) -> str:
    """`<Title> (<Year>)`, legal on every file system, as the library folder of a new entity."""
    name = legal_name(unicodedata.normalize("NFC", title)).strip() or "Untitled"
    return f"{name} ({year})" if year else name


def check_folder(folder: object) -> str:
    """A namespace-relative folder path: 1-4 segments, each a legal, non-hidden name of at most 255 bytes."""
    if not isinstance(folder, str) or not folder.strip():
        raise BadRequest("folder must be a non-empty path such as 'The Matrix (1999)'")
    folder = unicodedata.normalize("NFC", folder)
    segments = folder.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise BadRequest(f"folder may have at most {MAX_SEGMENTS} segments")
    for segment in segments:
        if not segment or segment in {".", ".."} or segment.startswith("."):
            raise BadRequest("folder segments must be names: no empty, '.', '..' or hidden segments")
        if legal_name(segment) != segment or segment != segment.strip():
            raise BadRequest(f"folder segment {segment[:60]!r} has characters a library file system refuses")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise BadRequest(f"folder segments must be at most {MAX_SEGMENT_BYTES} bytes")
    return folder


def basename(folder: str, media_key: str | None) -> str:
    """The prefix of a movie's files: the video's name without its extension, else the folder's name."""
    if media_key:
        name = media_key.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0]
    return folder.rsplit("/", 1)[-1]


def artwork(kind: str, base: str, asset_type: str, rank: int, season: int | None, fmt: str) -> list[Placement]:
    """The files one selected image becomes: Kodi's ranked name (`-poster.jpg`, `-poster1.jpg` …) and, where
    Jellyfin reads another name (extra backdrops `-fanart-1.jpg` …), that one too. Movies prefix the video's
    basename; a TV show's artwork sits in its folder unprefixed, season artwork as `season01-poster.jpg`."""
    extension = EXTENSIONS.get(fmt, "jpg")
    if asset_type in SEASON_TYPES:
        return [Placement(f"{_season(season)}-{SEASON_TYPES[asset_type]}.{extension}", "both")]
    prefix = f"{base}-" if kind == "movie" else ""
    suffix = "" if rank == 1 else str(rank - 1)
    placements = [Placement(f"{prefix}{asset_type}{suffix}.{extension}", "kodi" if rank > 1 else "both")]
    if asset_type == "keyart":
        placements = [Placement(placements[0].name, "kodi")]  # Jellyfin has no keyart
    if asset_type == "fanart" and 1 < rank <= JELLYFIN_EXTRA_BACKDROPS + 1:
        placements.append(Placement(f"{prefix}fanart-{rank - 1}.{extension}", "jellyfin"))
    return placements


def actor_file(name: str, fmt: str) -> str | None:
    """`.actors/First_Last.jpg`: spaces become `_`, then Kodi's legal-name rule; case kept. None for a format
    Kodi does not read there."""
    extension = EXTENSIONS.get(fmt)
    if extension not in ACTOR_EXTENSIONS:
        return None
    stem = legal_name(name.replace(" ", "_"))
    return f".actors/{stem}.{extension}" if stem else None


def nfo_file(kind: str, base: str) -> str:
    """`<basename>.nfo` for a movie, `tvshow.nfo` for a show."""
    return f"{base}.nfo" if kind == "movie" else "tvshow.nfo"


def _season(season: int | None) -> str:
    if season is None or season < 0:
        return "season-all"
    return "season-specials" if season == 0 else f"season{season:02d}"
