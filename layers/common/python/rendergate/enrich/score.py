"""Scoring 0-100 per asset type: resolution against a target, aspect-ratio fit, language, community
votes and provider priority. Profiles and weights are documented in docs/enrichment.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rendergate.profiles import PROFILES, Profile

WEIGHTS = {"resolution": 30, "aspect": 20, "language": 20, "votes": 20, "provider": 10}
ASPECT_TOLERANCE = 0.25  # a ratio 25% off the ideal earns no aspect points
VOTE_PRIOR_COUNT = 5  # votes are shrunk towards a neutral 5/10 as if 5 neutral votes were cast
NEUTRAL_VOTE = 5.0
PROVIDER_PRIORITY = {"render": 10, "upload": 10, "comfy": 10, "external": 10, "tmdb": 10, "fanart.tv": 9, "tvdb": 8}
DEFAULT_PROVIDER_PRIORITY = 5


@dataclass(frozen=True)
class Candidate:
    """What scoring and selection need to know about one analysed asset."""

    asset_id: str
    asset_type: str
    width: int
    height: int
    has_alpha: bool
    phash: str | None
    dhash: str | None
    language: str | None = None
    vote_average: float | None = None
    vote_count: int = 0
    provider: str = "upload"
    group: str | None = None  # selection limits count per group (a season's artwork); None: per asset type


@dataclass(frozen=True)
class Score:
    total: float
    parts: dict[str, float]
    excluded: str | None  # why the asset may not be selected at all, or None


def score(candidate: Candidate, preferred_language: str, fallback_language: str = "en") -> Score:
    """Score one candidate against its type's profile; below-minimum or alpha-less images are excluded."""
    profile = PROFILES[candidate.asset_type]
    parts = {
        "resolution": _resolution(candidate, profile),
        "aspect": _aspect(candidate, profile),
        "language": _language(candidate.language, profile.language, preferred_language, fallback_language),
        "votes": _votes(candidate.vote_average, candidate.vote_count),
        "provider": PROVIDER_PRIORITY.get(candidate.provider, DEFAULT_PROVIDER_PRIORITY) * WEIGHTS["provider"] / 10,
    }
    excluded = None
    min_width, min_height = profile.min_size
    if candidate.width < min_width or candidate.height < min_height:
        excluded = (
            f"below_minimum: {candidate.width}x{candidate.height} is under {min_width}x{min_height} for {profile.name}"
        )
    elif profile.needs_alpha and not candidate.has_alpha:
        excluded = f"needs_alpha: a {profile.name} must have a transparent background"
    return Score(round(sum(parts.values()), 2), {k: round(v, 2) for k, v in parts.items()}, excluded)


def _resolution(candidate: Candidate, profile: Profile) -> float:
    target = profile.target_size[0] * profile.target_size[1]
    return WEIGHTS["resolution"] * min(1.0, math.sqrt(candidate.width * candidate.height / target))


def _aspect(candidate: Candidate, profile: Profile) -> float:
    if profile.ratio is None:
        return float(WEIGHTS["aspect"])
    deviation = abs(candidate.width / candidate.height - profile.ratio) / profile.ratio
    return WEIGHTS["aspect"] * max(0.0, 1 - deviation / ASPECT_TOLERANCE)


# Language points as fractions of the weight, per policy: the order each profile's `language` names.
LANGUAGE_ORDER = {
    "text": ("preferred", "textless", "fallback"),
    "textless": ("textless", "preferred", "fallback"),
    "titled": ("preferred", "fallback"),
}
LANGUAGE_STEPS = (1.0, 0.8, 0.6)
OTHER_LANGUAGE = 0.2


def _language(language: str | None, policy: str, preferred: str, fallback: str) -> float:
    if policy not in LANGUAGE_ORDER:  # renders and uploads: neither preferred nor penalised when unknown
        if not language:
            return WEIGHTS["language"] / 2
        return float(WEIGHTS["language"]) if language.lower() == preferred.lower() else 0.0
    if policy == "titled" and not language:  # a logo without a language is read as the fallback's
        language = fallback
    kind = "textless" if not language else "preferred" if language.lower() == preferred.lower() else None
    if kind is None and language and language.lower() == fallback.lower():
        kind = "fallback"
    order = LANGUAGE_ORDER[policy]
    fraction = LANGUAGE_STEPS[order.index(kind)] if kind in order else OTHER_LANGUAGE
    return WEIGHTS["language"] * fraction


def _votes(average: float | None, count: int) -> float:
    count = max(0, count) if average is not None else 0
    shrunk = ((average or 0.0) * count + NEUTRAL_VOTE * VOTE_PRIOR_COUNT) / (count + VOTE_PRIOR_COUNT)
    return WEIGHTS["votes"] * min(10.0, max(0.0, shrunk)) / 10
