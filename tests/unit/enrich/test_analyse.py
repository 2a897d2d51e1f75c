"""Basic analysis: dimensions, hashes, and reasons for what is refused."""

from __future__ import annotations

import hashlib
import io

import imagehash
import pytest
from PIL import Image

from rendergate.enrich.analyse import Rejection, analyse
from support.images import encoded, png


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_allowed_formats_are_measured(fmt: str) -> None:
    data = png(3, (120, 80)) if fmt == "PNG" else encoded(png(3, (120, 80)), fmt)
    result = analyse(data)
    assert (result.format, result.width, result.height) == (fmt, 120, 80)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.phash == str(imagehash.phash(Image.open(io.BytesIO(data))))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<html><body>not an image</body></html>", "unsupported_type"),
        (b"", "unsupported_type"),
        (encoded(png(1), "GIF"), "unsupported_type"),
        (encoded(png(1), "TIFF"), "unsupported_type"),
        (png(1)[:200], "undecodable"),
        (encoded(png(1), "JPEG")[:300], "undecodable"),
    ],
)
def test_refusals_carry_a_code_and_reason(data: bytes, code: str) -> None:
    with pytest.raises(Rejection) as refused:
        analyse(data)
    assert refused.value.code == code
    assert str(refused.value)


def test_pixel_limit_is_enforced_from_the_header() -> None:
    with pytest.raises(Rejection) as refused:
        analyse(png(1, (300, 200)), max_pixels=50_000)
    assert refused.value.code == "too_many_pixels"
