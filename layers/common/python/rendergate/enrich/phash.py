"""A 64-bit perceptual hash equal to imagehash.phash, with a numpy DCT instead of scipy's."""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

HASH_SIZE = 8
HIGHFREQ_FACTOR = 4


def phash(image: Image.Image) -> str:
    """imagehash's phash: 32x32 greyscale, 2-D DCT-II, low 8x8 frequencies against their median."""
    size = HASH_SIZE * HIGHFREQ_FACTOR
    pixels = np.asarray(image.convert("L").resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    basis = _dct_basis(size)[:HASH_SIZE]
    low = basis @ pixels @ basis.T
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


@cache
def _dct_basis(n: int) -> np.ndarray:
    """scipy.fftpack's unnormalised DCT-II as a matrix: y[k] = 2 * sum x[i] cos(pi k (2i+1) / 2n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.asarray(2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n)))
