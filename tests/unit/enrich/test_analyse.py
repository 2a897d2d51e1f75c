"""Safe decoding and analysis: what is measured, and what is refused with which code."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from rendergate.enrich.analyse import Rejection, analyse, declared_format
from support.images import photo, save

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def refused(data: bytes, **kw: object) -> Rejection:
    with pytest.raises(Rejection) as caught:
        analyse(data, **kw)  # type: ignore[arg-type]
    assert str(caught.value)
    return caught.value


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_allowed_formats_are_measured(fmt: str) -> None:
    data = save(photo(3, (120, 80)), fmt)
    result = analyse(data, declared=fmt)
    assert (result.format, result.width, result.height, result.frames) == (fmt, 120, 80, 1)
    assert (result.byte_count, result.has_alpha, result.mode) == (len(data), False, "RGB")
    assert result.phash == str(imagehash.phash(Image.open(io.BytesIO(data))))
    assert len(result.dhash) == 16 and len(result.sha256) == 64


def test_html_renamed_png_is_refused() -> None:
    assert refused(b"<!doctype html><html><script>x()</script></html>", declared="PNG").code == "unsupported_type"


@pytest.mark.parametrize(
    ("data", "named"),
    [(save(photo(1), "TIFF"), "TIFF"), ((FIXTURES / "tiny.psd").read_bytes(), "PSD"), (save(photo(1), "BMP"), "BMP")],
)
def test_other_formats_are_refused_by_name(data: bytes, named: str) -> None:
    rejection = refused(data)
    assert rejection.code == "unsupported_type"
    assert named in str(rejection)


def test_magic_bytes_must_match_the_declared_type() -> None:
    rejection = refused(save(photo(1), "PNG"), declared=declared_format("image/jpeg", "x.jpg"))
    assert rejection.code == "type_mismatch"
    assert declared_format(None, "shot.JPEG") == "JPEG"
    assert declared_format(None, "noextension") is None


def test_a_bomb_sized_header_is_refused_before_decoding() -> None:
    assert refused((FIXTURES / "bomb-100000x100000.png").read_bytes()).code == "too_many_pixels"
    # under Pillow's own bomb limit but over ours: refused from the header alone
    assert refused((FIXTURES / "header-7000x7000.png").read_bytes()).code == "too_many_pixels"
    assert refused(save(photo(1, (300, 200)), "PNG"), max_pixels=50_000).code == "too_many_pixels"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt: str) -> None:
    data = save(photo(2, (400, 300)), fmt)
    assert refused(data[: len(data) // 2]).code == "undecodable"


def test_a_gif_with_thousands_of_frames_is_refused() -> None:
    frames = [Image.new("L", (4, 4), (i * 7) % 256) for i in range(3000)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=10)
    assert refused(buffer.getvalue()).code == "too_many_frames"


def test_animations_count_frames_and_hash_the_first() -> None:
    first, second = photo(5, (64, 48)), photo(6, (64, 48))
    buffer = io.BytesIO()
    first.save(buffer, "PNG", save_all=True, append_images=[second], duration=100)  # APNG
    apng = analyse(buffer.getvalue())
    assert (apng.format, apng.frames, apng.animated) == ("PNG", 2, True)
    assert apng.phash == str(imagehash.phash(first))
    buffer = io.BytesIO()
    first.save(buffer, "GIF", save_all=True, append_images=[second], duration=100)
    gif = analyse(buffer.getvalue())
    assert (gif.format, gif.frames) == ("GIF", 2)


def test_an_exif_rotated_jpeg_hashes_like_its_upright_twin() -> None:
    upright = photo(9, (320, 240))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 270° (i.e. 90° clockwise), which restores `upright`
    rotated = analyse(save(stored, "JPEG", quality=95, exif=exif.tobytes()))
    plain = analyse(save(upright, "JPEG", quality=95))
    assert (rotated.width, rotated.height) == (320, 240)
    assert rotated.phash == plain.phash
    assert rotated.dhash == plain.dhash


def test_transparent_pixels_are_hashed_over_a_fixed_background() -> None:
    shape = photo(11, (200, 200)).convert("RGBA")
    alpha = Image.new("L", shape.size, 0)
    alpha.paste(255, (50, 50, 150, 150))
    hidden_red, hidden_blue = shape.copy(), shape.copy()
    for image, colour in ((hidden_red, (255, 0, 0)), (hidden_blue, (0, 0, 255))):
        backdrop = Image.new("RGBA", shape.size, (*colour, 255))
        backdrop.paste(shape, (0, 0), alpha)
        backdrop.putalpha(alpha)
        image.paste(backdrop)
    red, blue = analyse(save(hidden_red, "PNG")), analyse(save(hidden_blue, "PNG"))
    assert red.has_alpha and red.mode == "RGBA"
    assert red.phash == blue.phash  # what hides under alpha 0 does not move the hash
    over_white = Image.alpha_composite(Image.new("RGBA", shape.size, (255, 255, 255, 255)), hidden_red)
    assert red.phash == str(imagehash.phash(over_white.convert("RGB")))


def test_previews_are_webp_of_at_most_512_px() -> None:
    large = analyse(save(photo(4, (1600, 900)), "PNG"))
    assert Image.open(io.BytesIO(large.preview)).format == "WEBP"
    assert (large.preview_width, large.preview_height) == (512, 288)
    small = analyse(save(photo(4, (200, 100)), "PNG"))
    assert (small.preview_width, small.preview_height) == (200, 100)
    assert Image.open(io.BytesIO(small.preview)).size == (200, 100)


def test_large_jpegs_are_draft_decoded_but_report_their_full_size() -> None:
    data = save(photo(12, (6000, 4000)), "JPEG", quality=85)
    result = analyse(data)
    assert (result.width, result.height) == (6000, 4000)
    assert (result.preview_width, result.preview_height) == (512, 341)


def test_blank_images_are_flagged() -> None:
    assert analyse(save(Image.new("RGB", (300, 200), (40, 40, 40)), "PNG")).blank
    assert not analyse(save(photo(13), "PNG")).blank
