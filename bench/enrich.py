"""Enrichment of one image against a plain Pillow decode of the same file, in the same run.

    python bench/enrich.py [--repeat 9] [--no-build]

Our side is rendergate.enrich.analyse.analyse: sniff, safe decode (JPEG draft above 8 MP), EXIF
orientation, sha256, phash, dhash and the 512 px WebP preview. The other side is
`Image.open(...).load()`. Goals (DESIGN §7): png1024 at most 1.3, jpeg24mp at most 0.5. Then
`sam build` and the unzipped size of the imaging layer and of each function with its layers
(budget 80 MB). The last line is the ratio line.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers/common/python"))

from PIL import Image  # noqa: E402

from rendergate.enrich.analyse import analyse  # noqa: E402


def render_like_png(side: int = 1024) -> bytes:
    """Smooth shapes plus fine grain, like a diffusion render: it compresses about as well as one."""
    import numpy as np

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([np.sin(x * 9 + y * 3), np.cos(y * 7 - x * 2), np.sin((x + y) * 5)], axis=2) * 100 + 128
    grain = rng.normal(0, 6, base.shape)
    buffer = io.BytesIO()
    Image.fromarray((base + grain).clip(0, 255).astype("uint8")).save(buffer, "PNG")
    return buffer.getvalue()


def photo_like_jpeg(width: int = 6000, height: int = 4000) -> bytes:
    """A 24 MP camera-like JPEG (texture at several scales, quality 90, 4:2:0)."""
    import numpy as np

    rng = np.random.default_rng(11)
    coarse = rng.integers(0, 255, (height // 40, width // 40, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 4, (height, width, 3))  # moderate sensor grain: about 5 MB at quality 90
    pixels = (np.asarray(image, dtype=np.float32) + noise).clip(0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def ratio(data: bytes, repeat: int) -> tuple[float, float, float]:
    ours, theirs = [], []
    for _ in range(repeat):  # interleaved, so machine noise hits both sides alike
        start = time.perf_counter()
        analyse(data)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        decode(data)
        theirs.append(time.perf_counter() - start)
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    return ours_median / theirs_median, ours_median, theirs_median


def sizes() -> None:
    build_dir = Path(tempfile.mkdtemp(prefix="rendergate-build-"))
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    sam = Path(sys.executable).parent / "sam"
    result = subprocess.run(
        [str(sam), "build", "--build-dir", str(build_dir)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        print(f"sam build failed; sizes not measured:\n{result.stderr[-1500:]}")
        return

    def megabytes(folder: Path) -> float:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6

    common, imaging = megabytes(build_dir / "CommonLayer"), megabytes(build_dir / "ImagingLayer")
    print(f"unzipped: imaging layer {imaging:.1f} MB, common layer {common:.1f} MB")
    enrich = megabytes(build_dir / "EnrichFunction") + common + imaging
    print(f"enrich function with its layers: {enrich:.1f} MB (budget 80)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-build", action="store_true", help="skip sam build and the size report")
    args = parser.parse_args()
    if not args.no_build:
        sizes()
    png, jpeg = render_like_png(), photo_like_jpeg()
    analyse(png), analyse(jpeg)  # warm imports and caches
    png_ratio, png_ours, png_decode = ratio(png, args.repeat)
    jpeg_ratio, jpeg_ours, jpeg_decode = ratio(jpeg, args.repeat)
    for name, data, ours, theirs in (
        ("png 1024x1024", png, png_ours, png_decode),
        ("jpeg 6000x4000", jpeg, jpeg_ours, jpeg_decode),
    ):
        print(f"{name} ({len(data) / 1e6:.1f} MB): enrich {ours * 1000:.1f} ms, decode {theirs * 1000:.1f} ms")
    print(f"enrich/decode: png1024={png_ratio:.2f} jpeg24mp={jpeg_ratio:.2f}")


if __name__ == "__main__":
    main()
