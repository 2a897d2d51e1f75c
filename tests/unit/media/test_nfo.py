"""The NFO parsed back with an XML parser, field by field."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rendergate.media import nfo

METADATA = {
    "title": "The <Matrix> & Co",
    "originaltitle": "The Matrix",
    "plot": "Line one\x0b with a control character",
    "runtime": 136,
    "premiered": "1999-03-31",
    "year": 1999,
    "ratings": [{"name": "themoviedb", "value": 8.216, "votes": 26000}, {"name": "imdb", "value": 8.7, "votes": 2}],
    "uniqueids": [{"type": "tmdb", "value": "603"}, {"type": "imdb", "value": "tt0133093"}],
    "genres": ["Action", "Science Fiction"],
    "studios": ["Village Roadshow Pictures"],
}
ACTORS = [
    {"name": "Keanu Reeves", "role": "Neo", "order": 0, "thumb": "https://image.example/keanu.jpg"},
    {"name": "Hugo Weaving", "role": None, "order": 1, "thumb": None},
]
STREAMS = {
    "video": [{"codec": "h264", "aspect": 1.78, "width": 1280, "height": 720, "durationinseconds": 30}],
    "audio": [{"codec": "aac", "language": "eng", "channels": 6}],
    "subtitle": [{"language": "fra"}],
}


def test_a_movie_nfo_reads_back_field_by_field() -> None:
    document = nfo.movie(METADATA, ACTORS, STREAMS)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"')
    root = ET.fromstring(document)  # noqa: S314 (our own output)
    assert root.tag == "movie"
    assert root.findtext("title") == "The <Matrix> & Co"
    assert root.findtext("originaltitle") == "The Matrix"
    assert root.findtext("plot") == "Line one with a control character"
    assert (root.findtext("runtime"), root.findtext("premiered"), root.findtext("year")) == (
        "136",
        "1999-03-31",
        "1999",
    )
    ratings = root.findall("ratings/rating")
    assert [(r.get("name"), r.get("max"), r.get("default")) for r in ratings] == [
        ("themoviedb", "10", "true"),
        ("imdb", "10", None),
    ]
    assert (ratings[0].findtext("value"), ratings[0].findtext("votes")) == ("8.2", "26000")
    assert [(u.get("type"), u.get("default"), u.text) for u in root.findall("uniqueid")] == [
        ("tmdb", "true", "603"),
        ("imdb", None, "tt0133093"),
    ]
    assert [g.text for g in root.findall("genre")] == ["Action", "Science Fiction"]
    assert [s.text for s in root.findall("studio")] == ["Village Roadshow Pictures"]
    assert root.findtext("lockdata") == "true"
    actors = root.findall("actor")
    assert [(a.findtext("name"), a.findtext("role"), a.findtext("order"), a.findtext("thumb")) for a in actors] == [
        ("Keanu Reeves", "Neo", "0", "https://image.example/keanu.jpg"),
        ("Hugo Weaving", None, "1", None),
    ]
    video = root.find("fileinfo/streamdetails/video")
    assert video is not None
    assert [video.findtext(f) for f in ("codec", "aspect", "width", "height", "durationinseconds")] == [
        "h264",
        "1.78",
        "1280",
        "720",
        "30",
    ]
    audio = root.find("fileinfo/streamdetails/audio")
    assert audio is not None and [audio.findtext(f) for f in ("codec", "language", "channels")] == ["aac", "eng", "6"]
    assert root.findtext("fileinfo/streamdetails/subtitle/language") == "fra"
    # Kodi finds the artwork in the folder: no artwork URLs
    assert root.find("thumb") is None and root.find("fanart") is None


def test_the_same_inputs_make_the_same_bytes() -> None:
    assert nfo.movie(METADATA, ACTORS, STREAMS) == nfo.movie(METADATA, ACTORS, STREAMS)


def test_a_tvshow_nfo_names_its_seasons_and_has_no_fileinfo() -> None:
    document = nfo.tvshow({**METADATA, "seasons": [{"season_number": 2, "name": "The Storm"}]}, [])
    root = ET.fromstring(document)  # noqa: S314 (our own output)
    assert root.tag == "tvshow" and root.find("fileinfo") is None
    assert [(s.get("number"), s.text) for s in root.findall("namedseason")] == [("2", "The Storm")]
    assert root.findtext("lockdata") == "true"
