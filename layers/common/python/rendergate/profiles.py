"""Asset types and what a good image of each looks like (docs/enrichment.md has the table).

Plain data with no imports, so the API functions can validate an asset type without the imaging layer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """What a good image of one asset type looks like."""

    name: str
    ratio: float | None  # width / height; None: any shape is fine
    min_size: tuple[int, int]
    target_size: tuple[int, int]
    needs_alpha: bool = False
    limit: int = 1
    # How languages rank (docs/enrichment.md): "text" preferred, textless, fallback; "textless" textless first
    # (backgrounds); "titled" a missing language counts as the fallback (logos); "any" preferred or neutral.
    language: str = "any"


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("poster", 2 / 3, (500, 750), (2000, 3000), limit=3, language="text"),
        Profile("keyart", 2 / 3, (500, 750), (2000, 3000), limit=1, language="textless"),
        Profile("fanart", 16 / 9, (1280, 720), (3840, 2160), limit=5, language="textless"),
        Profile("landscape", 16 / 9, (500, 281), (1920, 1080), limit=1, language="text"),
        Profile("clearlogo", 800 / 310, (400, 155), (800, 310), needs_alpha=True, limit=1, language="titled"),
        Profile("clearart", 1000 / 562, (500, 281), (1000, 562), needs_alpha=True, limit=1, language="titled"),
        Profile("discart", 1.0, (500, 500), (1000, 1000), needs_alpha=True, limit=1, language="text"),
        Profile("banner", 1000 / 185, (758, 140), (1000, 185), limit=1, language="titled"),
        Profile("thumb", 16 / 9, (400, 225), (1920, 1080), limit=1, language="text"),
        # a TV show's season artwork: one of each per season
        Profile("seasonposter", 2 / 3, (400, 600), (1000, 1500), limit=1, language="text"),
        Profile("seasonbanner", 1000 / 185, (758, 140), (1000, 185), limit=1, language="titled"),
        Profile("seasonlandscape", 16 / 9, (500, 281), (1920, 1080), limit=1, language="text"),
        Profile("render", None, (64, 64), (1024, 1024), limit=8),  # the size was asked for: only junk is refused
        Profile("generic", None, (64, 64), (1024, 1024), limit=10),
    )
}
