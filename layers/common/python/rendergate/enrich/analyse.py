"""Decode an image safely, once, and measure it: format, mode, size, alpha, frames, sha256, phash and
dhash, and a WebP preview. Every refusal is a Rejection with a stable code, recorded on the asset."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, ImageStat

from rendergate import formats
from rendergate.enrich.hashes import dhash, phash
from rendergate.errors import ImageRejected

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is refused, never padded with grey

MAX_PIXELS = 40_000_000
MAX_FRAMES = 1000
PREVIEW_SIDE = 512
DRAFT_ABOVE_PIXELS = 8_000_000  # JPEGs above this are decoded at 1/2..1/8 scale (DCT scaling)
BACKGROUND = (255, 255, 255)  # transparent pixels are hashed as if over white
BLANK_SPREAD = 3.0  # a greyscale standard deviation under 3 levels (of 255): blank or near-blank
ALLOWED = ("PNG", "JPEG", "WEBP", "GIF")
DECLARED_TYPES = {
    "image/png": "PNG",
    "image/apng": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
EXTENSIONS = {".png": "PNG", ".apng": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}
# Formats we recognise only to name them in the refusal.
OTHER_MAGIC = {
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"8BPS": "PSD",
    b"BM": "BMP",
    b"%PDF": "PDF",
    b"\x00\x00\x01\x00": "ICO",
}


# Leaf work that overlaps the decode and the hashing where a second core exists: hashlib and Pillow's
# encoders release the GIL. The tasks never wait on anything, so workers sharing this pool cannot deadlock.
_overlap = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analyse")


class Rejection(ImageRejected):
    """An image refused for a reason with a stable code (recorded on the asset)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Analysis:
    format: str
    mode: str
    width: int
    height: int
    has_alpha: bool
    frames: int
    byte_count: int
    sha256: str
    phash: str
    dhash: str
    blank: bool
    preview: bytes
    preview_width: int
    preview_height: int

    @property
    def animated(self) -> bool:
        return self.frames > 1


def declared_format(content_type: str | None, filename: str) -> str | None:
    """The format a file claims: its declared content type, else its extension."""
    if content_type:
        return DECLARED_TYPES.get(content_type.lower(), content_type)
    suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
    return EXTENSIONS.get(suffix)


def analyse(
    data: bytes, declared: str | None = None, max_pixels: int = MAX_PIXELS, max_frames: int = MAX_FRAMES
) -> Analysis:
    """Analyse image bytes; raise a Rejection when they are not an acceptable image."""
    fmt = sniff(data)
    if declared and declared != fmt:
        raise Rejection("type_mismatch", f"the file is {fmt} but was declared as {declared}")
    digest = _overlap.submit(hashlib.sha256, data)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise Rejection("too_many_pixels", f"{width}x{height} is over the {max_pixels} pixel limit")
            frames = _count_frames(image, max_frames)
            mode = image.mode
            has_alpha = _has_alpha(image)
            if fmt == "JPEG" and width * height > DRAFT_ABOVE_PIXELS:
                image.draft("RGB", _preview_box(width, height))
            image.load()
            oriented = _oriented(image)
            shrunk = _shrunk(oriented)
            encoding = _overlap.submit(_webp, shrunk)
            hashable, small = (_flattened(oriented), _flattened(shrunk)) if has_alpha else (oriented, shrunk)
            perceptual, difference = phash(hashable), dhash(small)
            preview, preview_size = encoding.result()
            shown_width, shown_height = (height, width) if oriented is not image and _swaps(image) else (width, height)
            return Analysis(
                format=fmt,
                mode=mode,
                width=shown_width,
                height=shown_height,
                has_alpha=has_alpha,
                frames=frames,
                byte_count=len(data),
                sha256=digest.result().hexdigest(),
                phash=perceptual,
                dhash=difference,  # from the preview-size image
                blank=ImageStat.Stat(small.convert("L")).stddev[0] < BLANK_SPREAD,
                preview=preview,
                preview_width=preview_size[0],
                preview_height=preview_size[1],
            )
    except Image.DecompressionBombError as error:
        raise Rejection("too_many_pixels", str(error)) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise Rejection("undecodable", f"the {fmt} data could not be decoded: {error}") from error


def sniff(data: bytes) -> str:
    """The format the magic bytes announce, if it is one we accept."""
    fmt = formats.sniff(data)
    if fmt in ALLOWED:
        return fmt
    other = next((name for magic, name in OTHER_MAGIC.items() if data.startswith(magic)), None)
    if other:
        raise Rejection("unsupported_type", f"{other} is not allowed: send a PNG, JPEG, WebP or GIF image")
    raise Rejection("unsupported_type", "not a PNG, JPEG, WebP or GIF image")


def _count_frames(image: Image.Image, max_frames: int) -> int:
    """Frames of an animation, refusing past the cap without walking every frame of a huge GIF."""
    if not getattr(image, "is_animated", False):
        return 1
    if image.format == "GIF":  # n_frames would decode every frame; probe just past the cap instead
        try:
            image.seek(max_frames)
        except EOFError:
            frames = int(getattr(image, "n_frames", 1))
        else:
            raise Rejection("too_many_frames", f"more than {max_frames} frames")
        image.seek(0)
    else:
        frames = int(getattr(image, "n_frames", 1))
        if frames > max_frames:
            raise Rejection("too_many_frames", f"{frames} frames is over the limit of {max_frames}")
    return frames


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def _swaps(image: Image.Image) -> bool:
    return image.getexif().get(0x0112, 1) in (5, 6, 7, 8)


def _oriented(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen (EXIF orientation applied); the same object when upright."""
    if image.getexif().get(0x0112, 1) in (1, None):
        return image
    transposed = ImageOps.exif_transpose(image)
    assert transposed is not None
    return transposed


def _flattened(image: Image.Image) -> Image.Image:
    """Transparent images over a fixed background, so hidden colour under alpha does not move the hash."""
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba).convert("RGB")


def _preview_box(width: int, height: int) -> tuple[int, int]:
    scale = PREVIEW_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrunk(image: Image.Image) -> Image.Image:
    """The image at longest side PREVIEW_SIDE (never enlarged): a box reduce by a whole factor, which is
    cheap, then Lanczos over the few pixels left."""
    image = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if _has_alpha(image) else "RGB")
    target = _preview_box(*image.size)
    if max(image.size) <= PREVIEW_SIDE:
        return image
    factor = max(1, min(image.width // target[0], image.height // target[1]))
    reduced = image.reduce(factor) if factor > 1 else image
    return reduced if reduced.size == target else reduced.resize(target, Image.Resampling.LANCZOS)


def _webp(image: Image.Image) -> tuple[bytes, tuple[int, int]]:
    """The review page's preview, alpha kept; method 0 is libwebp's fastest."""
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=80, method=0)
    return buffer.getvalue(), image.size
