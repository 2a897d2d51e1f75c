"""Decode an image safely and measure it: format, size, sha256 and a perceptual hash."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from rendergate.errors import ImageRejected

MAX_PIXELS = 40_000_000
MAGIC = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "WEBP": (b"RIFF",),
}


class Rejection(ImageRejected):
    """An image refused for a reason with a stable code (recorded on the asset)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Analysis:
    format: str
    width: int
    height: int
    sha256: str
    phash: str


def analyse(data: bytes, max_pixels: int = MAX_PIXELS) -> Analysis:
    """Analyse image bytes; raise a Rejection with a code when they are not an acceptable image."""
    from PIL import Image

    declared = sniff(data)
    try:
        with Image.open(io.BytesIO(data), formats=[declared]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise Rejection("too_many_pixels", f"{width}x{height} is over the {max_pixels} pixel limit")
            image.load()
            from rendergate.enrich.phash import phash

            digest = phash(image)
    except Image.DecompressionBombError as error:
        raise Rejection("too_many_pixels", str(error)) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise Rejection("undecodable", f"the {declared} data could not be decoded: {error}") from error
    return Analysis(declared, width, height, hashlib.sha256(data).hexdigest(), digest)


def sniff(data: bytes) -> str:
    """The format the magic bytes announce, if it is one we accept."""
    for name, prefixes in MAGIC.items():
        if any(data.startswith(prefix) for prefix in prefixes):
            if name == "WEBP" and data[8:12] != b"WEBP":
                continue
            return name
    raise Rejection("unsupported_type", "not a PNG, JPEG or WebP image")
