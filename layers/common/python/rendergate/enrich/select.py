"""Selection: the top N per asset type, greedily in score order, skipping near-duplicates of what is
already selected, and never touching a type the user locked."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rendergate.enrich.score import Candidate, Score


@dataclass(frozen=True)
class Choice:
    asset_id: str
    selected: bool
    reason: str  # why it was, or was not, selected


def select(
    scored: Iterable[tuple[Candidate, Score]],
    limits: dict[str, int],
    locked_types: set[str],
    near_duplicate: Callable[[Candidate, Candidate], bool],
    already_selected: dict[str, str] | None = None,
) -> dict[str, Choice]:
    """Choose per type. `already_selected` maps an asset id to the id of a selected library asset it
    nearly duplicates; such an asset is not selected again."""
    already_selected = already_selected or {}
    by_type: dict[str, list[tuple[Candidate, Score]]] = {}
    for candidate, score in scored:
        by_type.setdefault(candidate.group or candidate.asset_type, []).append((candidate, score))
    choices: dict[str, Choice] = {}
    for entries in by_type.values():
        asset_type = entries[0][0].asset_type
        if asset_type in locked_types:
            for candidate, _ in entries:
                choices[candidate.asset_id] = Choice(candidate.asset_id, False, f"type_locked: {asset_type} is locked")
            continue
        limit = limits.get(asset_type, 1)
        picked: list[Candidate] = []
        for candidate, score in sorted(entries, key=lambda e: (-e[1].total, e[0].asset_id)):
            choices[candidate.asset_id] = _choose(candidate, score, picked, limit, near_duplicate, already_selected)
            if choices[candidate.asset_id].selected:
                picked.append(candidate)
    return choices


def _choose(
    candidate: Candidate,
    score: Score,
    picked: list[Candidate],
    limit: int,
    near_duplicate: Callable[[Candidate, Candidate], bool],
    already_selected: dict[str, str],
) -> Choice:
    if score.excluded:
        return Choice(candidate.asset_id, False, score.excluded)
    if candidate.asset_id in already_selected:
        return Choice(candidate.asset_id, False, f"near_duplicate: of selected {already_selected[candidate.asset_id]}")
    twin = next((p for p in picked if near_duplicate(candidate, p)), None)
    if twin is not None:
        return Choice(candidate.asset_id, False, f"near_duplicate: of selected {twin.asset_id}")
    if len(picked) >= limit:
        return Choice(candidate.asset_id, False, f"over_limit: the top {limit} {candidate.asset_type} are selected")
    return Choice(candidate.asset_id, True, f"top_{limit}: score {score.total}")
