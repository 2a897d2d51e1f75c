"""ComfyUI's IMAGE (a float batch BxHxWxC in 0-1, a torch tensor; numpy arrays work alike) to PNG files that
carry the generation metadata in text chunks, as ComfyUI's own Save Image writes them."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


def png_batch(images: Any, prompt: dict[str, Any] | None, extra_pnginfo: dict[str, Any] | None) -> list[bytes]:
    """One PNG per image of the batch, each with the `prompt` (the API graph) and every `extra_pnginfo` entry
    (the UI workflow) as JSON text chunks."""
    batch = _array(images)
    if batch.ndim != 4 or batch.shape[0] == 0 or batch.shape[3] not in CHANNELS:
        raise ValueError(f"expected an IMAGE batch BxHxWxC with C 1, 3 or 4; got shape {tuple(batch.shape)}")
    chunks = {"prompt": prompt} if prompt is not None else {}
    chunks |= dict(extra_pnginfo or {})
    return [_png(image, chunks) for image in batch]


def _png(image: np.ndarray, chunks: dict[str, Any]) -> bytes:
    pixels = np.clip(255.0 * image, 0, 255).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    info = PngInfo()
    for name, value in chunks.items():
        info.add_text(name, json.dumps(value))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", pnginfo=info, compress_level=4)  # L, RGB or RGBA by shape
    return buffer.getvalue()


def _array(images: Any) -> np.ndarray:
    """The batch as a float numpy array, from a torch tensor (on any device) or anything array-like."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    return np.asarray(images, dtype=np.float32)
