"""64-bit perceptual hashes equal to imagehash's phash and dhash, computed without numpy or scipy.

Only the 8x8 lowest frequencies of a 32x32 DCT are needed for phash: about 10,000 multiply-adds, which
plain Python does in about a millisecond, so the Lambda package needs Pillow alone.
"""

from __future__ import annotations

import math
import statistics
from functools import cache
from operator import mul

from PIL import Image

HASH_SIZE = 8
HIGHFREQ_FACTOR = 4


def phash(image: Image.Image) -> str:
    """imagehash's phash: 32x32 greyscale (Lanczos), 2-D DCT-II, low 8x8 against their median, as hex."""
    size = HASH_SIZE * HIGHFREQ_FACTOR
    pixels = image.convert("L").resize((size, size), Image.Resampling.LANCZOS).tobytes()
    columns = [pixels[j::size] for j in range(size)]
    basis = _dct_basis(size)
    # (B · X) for the first 8 rows of B, then (B · X) · Bᵀ for the first 8 columns.
    partial = [[sum(map(mul, b, column)) for column in columns] for b in basis]
    low = [sum(map(mul, p, b)) for p in partial for b in basis]
    median = statistics.median(low)
    return _hex(value > median for value in low)


def dhash(image: Image.Image) -> str:
    """imagehash's dhash: 9x8 greyscale (Lanczos), each pixel brighter than its left neighbour, as hex."""
    pixels = image.convert("L").resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.LANCZOS).tobytes()
    width = HASH_SIZE + 1
    return _hex(pixels[r * width + c + 1] > pixels[r * width + c] for r in range(HASH_SIZE) for c in range(HASH_SIZE))


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def bands(hash_hex: str, count: int = 4) -> list[str]:
    """The hash split into `count` equal bands, as hex (for multi-index hashing)."""
    width = len(hash_hex) // count
    return [hash_hex[i * width : (i + 1) * width] for i in range(count)]


def _hex(bits: object) -> str:
    value = 0
    for bit in bits:  # type: ignore[attr-defined]
        value = (value << 1) | bool(bit)
    return f"{value:016x}"


@cache
def _dct_basis(n: int) -> tuple[tuple[float, ...], ...]:
    """The first HASH_SIZE rows of scipy.fftpack's unnormalised DCT-II: 2·cos(π·k·(2i+1)/2n)."""
    return tuple(tuple(2.0 * math.cos(math.pi * k * (2 * i + 1) / (2 * n)) for i in range(n)) for k in range(HASH_SIZE))
