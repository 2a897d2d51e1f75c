"""Entity enrichment on the local stack against a plain decode of the same images in one process.

    python bench/entity.py

Starts a local stack (`python -m devstack` on free ports), registers the provider stand-in's 200-candidate
movie (TMDB 900001), and times its enrichment: from the run's creation to the entity's `enriched_at` (asking
the providers, downloading and analysing every candidate, selecting, caching, the actors). The other side
downloads the same 200 images once and times `Image.open(...).load()` of each in one process. The last line
is the ratio of candidates analysed per second to images decoded per second.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "infra"), str(ROOT / "layers/common/python")]

from PIL import Image  # noqa: E402

from support.devstack import Entities, running_devstack  # noqa: E402

MOVIE = 900001


def seconds(start: str, end: str) -> float:
    def parse(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def main() -> None:
    with tempfile.TemporaryDirectory() as state_dir, running_devstack(Path(state_dir)) as stack:
        media = Entities(stack)
        answer = media.register(kind="movie", tmdb_id=MOVIE, namespace="bench")
        answer.raise_for_status()
        entity = media.wait_for(answer.json()["entity_id"], "enriched", review=True, timeout=900)
        run = stack.run(entity["enrichment"]["run_id"])
        candidates = [c for g in entity["artwork"].values() for c in g["selected"] + g["alternatives"]]
        elapsed = seconds(run["created_at"], entity["enriched_at"])
        images = [requests.get(c["source_url"], timeout=30).content for c in candidates]
    start = time.perf_counter()
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    decode = time.perf_counter() - start
    ours, theirs = len(candidates) / elapsed, len(images) / decode
    print(f"{len(candidates)} candidates ({sum(map(len, images)) / 1e6:.0f} MB) enriched in {elapsed:.1f} s")
    print(f"plain decode of the same images in one process: {decode:.1f} s")
    print(f"entity enrichment: {ours:.1f} candidates/s, decode {theirs:.1f} images/s, ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
