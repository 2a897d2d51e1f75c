"""Images made in the tests."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def png(seed: int = 1, size: tuple[int, int] = (128, 96), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (seed * 37 % 255, 90, 160) if mode == "RGB" else 0)
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x = (seed * 17 + i * 23) % size[0]
        draw.rectangle((x, i * 12, x + 30, i * 12 + 25), fill=(255 - i * 30, i * 40, 80) if mode == "RGB" else 200)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def encoded(data: bytes, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, fmt, **options)
    return buffer.getvalue()
