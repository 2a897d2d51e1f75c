"""Our numpy-free phash is imagehash's phash, bit for bit; dhash likewise on the same image."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from rendergate.enrich.hashes import bands, dhash, hamming, phash
from support.images import photo


def images() -> list[Image.Image]:
    rng = np.random.default_rng(2024)
    made = [photo(seed, (int(rng.integers(40, 700)), int(rng.integers(40, 700)))) for seed in range(40)]
    made += [Image.fromarray((rng.random((90, 130, 3)) * 255).astype("uint8")) for _ in range(10)]
    made += [Image.fromarray(np.kron(rng.integers(0, 255, (6, 6, 3)), np.ones((10, 10, 1))).astype("uint8"))]
    made += [photo(99).convert("L"), photo(98).convert("P"), photo(97).convert("CMYK")]
    return made


@pytest.mark.parametrize("index", range(54))
def test_phash_and_dhash_equal_imagehash(index: int) -> None:
    image = images()[index]
    assert phash(image) == str(imagehash.phash(image))
    assert dhash(image) == str(imagehash.dhash(image))


def test_hamming_and_bands() -> None:
    assert hamming("ffff000000000000", "fff0000000000001") == 5
    assert bands("0123456789abcdef") == ["0123", "4567", "89ab", "cdef"]
