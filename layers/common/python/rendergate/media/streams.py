"""Stream details of a video in the library bucket, read by MediaInfo (pymediainfo, in the media layer)
through ranged GETs: MediaInfo asks for the parts of the file it needs and seeks past the rest, so a large
video costs a few small reads, never a download."""

from __future__ import annotations

import io
from typing import Any

from rendergate import storage
from rendergate.errors import NotFound, RendergateError

BLOCK = 256 * 1024  # each ranged GET fetches this much, so MediaInfo's small reads are few requests
MAX_BLOCKS = 64  # at most 16 MB read, whatever the container asks for


class ProbeFailed(RendergateError):
    """The video could not be read or is not one MediaInfo understands."""


class RangedObject(io.RawIOBase):
    """A read-only, seekable view of an S3 object that fetches the blocks it is asked for with ranged GETs."""

    def __init__(self, bucket: str, key: str) -> None:
        self.bucket, self.key = bucket, key
        self.size = storage.describe(bucket, key).size
        self.position = 0
        self.blocks: dict[int, bytes] = {}
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, min(self.size, base + offset))
        return self.position

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        chunks = []
        while self.position < end:
            index = self.position // BLOCK
            block = self._block(index)
            start = self.position - index * BLOCK
            piece = block[start : start + end - self.position]
            if not piece:
                break
            chunks.append(piece)
            self.position += len(piece)
        return b"".join(chunks)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _block(self, index: int) -> bytes:
        if index not in self.blocks:
            if len(self.blocks) >= MAX_BLOCKS:
                raise ProbeFailed(f"reading s3://{self.bucket}/{self.key} needed more than {MAX_BLOCKS * BLOCK} bytes")
            start = index * BLOCK
            data = storage.read_range(self.bucket, self.key, start, min(self.size, start + BLOCK) - 1)
            self.blocks[index] = data
            self.bytes_read += len(data)
        return self.blocks[index]


def probe(bucket: str, key: str) -> dict[str, Any]:
    """The NFO's streamdetails of a video: video codec, size, aspect, duration; audio codec, language,
    channels; subtitle languages. ProbeFailed when the video is missing or unreadable."""
    try:
        source = RangedObject(bucket, key)
    except NotFound as missing:
        raise ProbeFailed(str(missing)) from missing
    return details(read_tracks(source))


def read_tracks(source: RangedObject) -> list[dict[str, Any]]:
    """MediaInfo's tracks of the object, as dictionaries."""
    from pymediainfo import MediaInfo

    try:
        info = MediaInfo.parse(source, parse_speed=0.0)
    except (OSError, RuntimeError) as error:
        raise ProbeFailed(f"MediaInfo could not read s3://{source.bucket}/{source.key}: {error}") from error
    tracks = [track.to_data() for track in info.tracks]
    if not any(t.get("track_type") in ("Video", "Audio") for t in tracks):
        raise ProbeFailed(f"s3://{source.bucket}/{source.key} has no video or audio stream MediaInfo recognises")
    return tracks


CODECS = {  # MediaInfo's format names → the codec names Kodi's NFO uses
    "avc": "h264",
    "hevc": "hevc",
    "av1": "av1",
    "vp9": "vp9",
    "vp8": "vp8",
    "mpeg-4 visual": "mpeg4",
    "mpeg video": "mpeg2video",
    "aac": "aac",
    "ac-3": "ac3",
    "e-ac-3": "eac3",
    "dts": "dts",
    "mlp fba": "truehd",
    "flac": "flac",
    "opus": "opus",
    "vorbis": "vorbis",
    "mpeg audio": "mp3",
    "pcm": "pcm",
}


def details(tracks: list[dict[str, Any]]) -> dict[str, Any]:
    """streamdetails from MediaInfo's tracks."""
    general = next((t for t in tracks if t.get("track_type") == "General"), {})
    answer: dict[str, list[dict[str, Any]]] = {"video": [], "audio": [], "subtitle": []}
    for track in tracks:
        kind = track.get("track_type")
        if kind == "Video":
            width, height = _int(track.get("width")), _int(track.get("height"))
            duration = _int(track.get("duration") or general.get("duration"))
            aspect = _float(track.get("display_aspect_ratio")) or (
                round(width / height, 2) if width and height else None
            )
            answer["video"].append(
                {
                    "codec": _codec(track.get("format")),
                    "aspect": round(aspect, 2) if aspect else None,
                    "width": width,
                    "height": height,
                    "durationinseconds": round(duration / 1000) if duration else None,
                }
            )
        elif kind == "Audio":
            answer["audio"].append(
                {
                    "codec": _codec(track.get("format")),
                    "language": _language(track),
                    "channels": _int(str(track.get("channel_s") or "").split(" ")[0] or None),
                }
            )
        elif kind == "Text":
            answer["subtitle"].append({"language": _language(track)})
    return answer


def _codec(name: Any) -> str | None:
    return CODECS.get(str(name).lower(), str(name).lower()) if name else None


def _language(track: dict[str, Any]) -> str | None:
    """ISO 639-2 (three letters) as Kodi writes it: MediaInfo's `other_language` lists it among the forms."""
    for form in track.get("other_language") or []:
        if len(form) == 3 and form.isalpha():
            return str(form).lower()
    language = track.get("language")
    return str(language).lower() if language else None


def _int(value: Any) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
