"""Image formats told by their magic bytes. Plain code, so functions without Pillow can use it too."""

from __future__ import annotations

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


def sniff(data: bytes) -> str | None:
    """PNG, JPEG, WEBP or GIF as the magic bytes announce it; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def content_type(data: bytes) -> str:
    """The Content-Type to store image bytes with."""
    return CONTENT_TYPES.get(sniff(data) or "", "application/octet-stream")


EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}


def cache_key(asset_type: str, sha256: str, fmt: str) -> str:
    """Where the selected copy of an image's bytes lives in the media bucket: content-addressed, per type."""
    return f"cache/{asset_type}/{sha256[:2]}/{sha256}.{EXTENSIONS.get(fmt, 'bin')}"
