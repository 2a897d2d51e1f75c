"""A 64-bit perceptual hash equal to imagehash.phash, computed without numpy or scipy.

Only the 8x8 lowest frequencies of a 32x32 DCT are needed: about 10,000 multiply-adds, which plain
Python does in a couple of milliseconds, so the Lambda package needs Pillow alone.
"""

from __future__ import annotations

import math
import statistics
from functools import cache

from PIL import Image

HASH_SIZE = 8
HIGHFREQ_FACTOR = 4


def phash(image: Image.Image) -> str:
    """imagehash's phash: 32x32 greyscale (Lanczos), 2-D DCT-II, low 8x8 against their median, as hex."""
    size = HASH_SIZE * HIGHFREQ_FACTOR
    grey = image.convert("L").resize((size, size), Image.Resampling.LANCZOS)
    pixels = list(grey.tobytes())  # mode L: one byte a pixel, row by row
    rows = [pixels[i * size : (i + 1) * size] for i in range(size)]
    basis = _dct_basis(size)
    # (B · X) for the first 8 rows of B, then (B · X) · Bᵀ for the first 8 columns.
    partial = [[math.fsum(b[i] * rows[i][j] for i in range(size)) for j in range(size)] for b in basis]
    low = [[math.fsum(p[j] * b[j] for j in range(size)) for b in basis] for p in partial]
    flat = [value for row in low for value in row]
    median = statistics.median(flat)
    bits = "".join("1" if value > median else "0" for value in flat)
    return f"{int(bits, 2):016x}"


@cache
def _dct_basis(n: int) -> tuple[tuple[float, ...], ...]:
    """The first HASH_SIZE rows of scipy.fftpack's unnormalised DCT-II: 2·cos(π·k·(2i+1)/2n)."""
    return tuple(tuple(2.0 * math.cos(math.pi * k * (2 * i + 1) / (2 * n)) for i in range(n)) for k in range(HASH_SIZE))
