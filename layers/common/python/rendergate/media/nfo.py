"""The NFO a media server reads beside the video: Kodi's movie and tvshow formats (which Jellyfin parses too),
UTF-8, escaped by the XML writer, with `<lockdata>` so a server's refresh keeps the approved artwork. No
artwork URLs: Kodi finds the artwork in the folder. Deterministic, so its sha256 says whether it changed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

# Characters XML 1.0 does not allow at all; a provider's text carrying them would make the file unreadable.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def movie(metadata: dict[str, Any], actors: list[dict[str, Any]], streamdetails: dict[str, Any] | None) -> bytes:
    """A movie NFO (`<basename>.nfo`)."""
    root = ET.Element("movie")
    _common(root, metadata, actors)
    if streamdetails:
        _streamdetails(ET.SubElement(root, "fileinfo"), streamdetails)
    return _document(root)


def tvshow(metadata: dict[str, Any], actors: list[dict[str, Any]]) -> bytes:
    """A TV show NFO (`tvshow.nfo`); episodes have their own."""
    root = ET.Element("tvshow")
    _common(root, metadata, actors)
    for season in metadata.get("seasons") or []:
        if season.get("name"):
            _text(root, "namedseason", season["name"], number=str(season["season_number"]))
    return _document(root)


def _common(root: ET.Element, metadata: dict[str, Any], actors: list[dict[str, Any]]) -> None:
    for field in ("title", "originaltitle"):
        _text(root, field, metadata.get(field))
    ratings = metadata.get("ratings") or []
    if ratings:
        holder = ET.SubElement(root, "ratings")
        for index, rating in enumerate(ratings):
            attributes = {"name": rating["name"], "max": "10"}
            if index == 0:
                attributes["default"] = "true"
            element = ET.SubElement(holder, "rating", attributes)
            _text(element, "value", f"{float(rating['value']):.1f}")
            _text(element, "votes", str(int(rating.get("votes") or 0)))
    for field in ("plot", "tagline"):
        _text(root, field, metadata.get(field))
    if metadata.get("runtime"):
        _text(root, "runtime", str(int(metadata["runtime"])))
    for index, unique in enumerate(metadata.get("uniqueids") or []):
        attributes = {"type": unique["type"], **({"default": "true"} if index == 0 else {})}
        _text(root, "uniqueid", str(unique["value"]), **attributes)
    for genre in metadata.get("genres") or []:
        _text(root, "genre", genre)
    for studio in metadata.get("studios") or []:
        _text(root, "studio", studio)
    _text(root, "premiered", metadata.get("premiered"))
    if metadata.get("year"):
        _text(root, "year", str(metadata["year"]))
    _text(root, "lockdata", "true")
    for actor in actors:
        element = ET.SubElement(root, "actor")
        _text(element, "name", actor["name"])
        _text(element, "role", actor.get("role"))
        _text(element, "order", str(actor["order"]))
        _text(element, "thumb", actor.get("thumb"))


def _streamdetails(fileinfo: ET.Element, streams: dict[str, Any]) -> None:
    details = ET.SubElement(fileinfo, "streamdetails")
    for kind, fields in (
        ("video", ("codec", "aspect", "width", "height", "durationinseconds")),
        ("audio", ("codec", "language", "channels")),
        ("subtitle", ("language",)),
    ):
        for stream in streams.get(kind) or []:
            element = ET.SubElement(details, kind)
            for field in fields:
                value = stream.get(field)
                if value is not None and value != "":
                    _text(element, field, f"{value:.2f}" if isinstance(value, float) else str(value))


def _text(parent: ET.Element, tag: str, value: Any, **attributes: str) -> None:
    if value is None or value == "":
        return
    ET.SubElement(parent, tag, attributes).text = NOT_XML.sub("", str(value))


def _document(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        + ET.tostring(root, encoding="unicode").encode()
        + b"\n"
    )
