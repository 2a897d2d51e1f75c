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


def photo(seed: int = 1, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture with structure at several scales (so hashes mean something), different per seed."""
    import random

    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        w, h = rng.randrange(20, size[0] // 2), rng.randrange(20, size[1] // 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    return image


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
