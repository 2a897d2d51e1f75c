"""What work costs, in credits. A render's base cost scales with its pixels, its sampling steps, its image
count and its workflow's factor; priority `high` adds the boost. Uploads cost `UploadImageCost` per file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rendergate import workflows
from rendergate.config import settings

REFERENCE_PIXELS = 1_000_000  # CreditBaseCost prices one image of one megapixel ...
REFERENCE_STEPS = 20  # ... sampled in 20 steps, with a workflow factor of 1


@dataclass(frozen=True)
class Price:
    """A job's cost: `base` for the images, `boost` for priority, `images` it makes or takes."""

    base: int
    boost: int
    images: int

    @property
    def total(self) -> int:
        return self.base + self.boost

    def view(self) -> dict[str, int]:
        """As answers show it (`estimated_cost`)."""
        return {"credits": self.total, "base": self.base, "boost": self.boost, "images": self.images}

    @classmethod
    def of(cls, recorded: dict[str, Any] | None) -> Price:
        """A price as a run records it (`Run.price`)."""
        recorded = recorded or {}
        return cls(int(recorded.get("base", 0)), int(recorded.get("boost", 0)), int(recorded.get("images", 0)))


def render(workflow: workflows.Workflow, prepared: workflows.Prepared, priority: str) -> Price:
    """The price of rendering `prepared`: per image max(1, ceil(CreditBaseCost x megapixels x steps / 20 x
    the workflow's factor)), times the count; `high` priority adds HighPriorityBoostPercent of that."""
    current = settings()
    pricing = workflow.manifest.get("pricing") or {}
    width, height = _input(workflow, prepared, "width"), _input(workflow, prepared, "height")
    if width and height:
        megapixels = Fraction(int(width) * int(height), REFERENCE_PIXELS)
    else:  # a workflow whose size comes from its source image (img2img) says what it prices one image at
        megapixels = Fraction(str(pricing.get("megapixels", 1)))
    steps = Fraction(int(_input(workflow, prepared, "steps") or REFERENCE_STEPS), REFERENCE_STEPS)
    factor = Fraction(str(pricing.get("factor", 1)))
    per_image = max(1, math.ceil(current.credits.base_cost * megapixels * steps * factor))
    base = per_image * prepared.count
    boost = math.ceil(Fraction(base * current.credits.high_priority_boost_percent, 100)) if priority == "high" else 0
    return Price(base=base, boost=boost, images=prepared.count)


def upload(files: int) -> Price:
    """The price of taking in `files` uploaded images (UploadImageCost each; 0 by default)."""
    return Price(base=settings().credits.upload_image_cost * files, boost=0, images=files)


def _input(workflow: workflows.Workflow, prepared: workflows.Prepared, name: str) -> Any:
    """The value the rendered graph holds for a manifest parameter (the request's, else the graph's default)."""
    spec = workflow.manifest["params"].get(name)
    if spec is None or "input" not in spec:
        return None
    return prepared.graph[workflows.node_for(prepared.graph, spec)]["inputs"].get(spec["input"])
