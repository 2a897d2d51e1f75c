"""Selection: top N per type in score order, near-duplicates of the selected skipped, locks respected."""

from __future__ import annotations

from rendergate.enrich.score import Candidate, score
from rendergate.enrich.select import select


def poster(asset_id: str, width: int, twin_of: str | None = None) -> Candidate:
    return Candidate(asset_id, "poster", width, width * 3 // 2, False, twin_of or asset_id, None)


def near(a: Candidate, b: Candidate) -> bool:
    return a.phash == b.phash  # the test marks twins by giving them the same "hash"


def run(candidates: list[Candidate], limits: dict[str, int] | None = None, locked: set[str] | None = None, **kw):
    scored = [(c, score(c, "en")) for c in candidates]
    return select(scored, limits or {"poster": 3, "fanart": 5}, locked or set(), near, **kw)


def test_the_top_n_by_score_are_selected_and_the_rest_deselected() -> None:
    candidates = [poster(f"p{w}", w) for w in (600, 900, 1200, 1500, 1800)]
    choices = run(candidates)
    assert {i for i, c in choices.items() if c.selected} == {"p1800", "p1500", "p1200"}
    assert choices["p900"].reason.startswith("over_limit") and not choices["p600"].selected


def test_a_near_duplicate_of_a_selected_image_is_skipped_for_the_next_best() -> None:
    candidates = [poster("best", 1800), poster("twin", 1700, twin_of="best"), poster("other", 900)]
    choices = run(candidates, {"poster": 2})
    assert choices["best"].selected and choices["other"].selected
    assert not choices["twin"].selected
    assert choices["twin"].reason == "near_duplicate: of selected best"


def test_a_locked_type_is_never_changed() -> None:
    fanart = Candidate("f1", "fanart", 3840, 2160, False, "x", None)
    choices = run([poster("p1", 1800), fanart], locked={"poster"})
    assert not choices["p1"].selected and choices["p1"].reason.startswith("type_locked")
    assert choices["f1"].selected


def test_excluded_and_library_duplicates_are_not_selected() -> None:
    choices = run([poster("small", 300), poster("copy", 1800)], already_selected={"copy": "published-one"})
    assert choices["small"].reason.startswith("below_minimum")
    assert choices["copy"].reason == "near_duplicate: of selected published-one"


def test_limits_are_per_type() -> None:
    fanarts = [Candidate(f"f{i}", "fanart", 1920 + i, 1080, False, f"h{i}", None) for i in range(7)]
    choices = run([*fanarts, poster("p", 1800)])
    assert sum(c.selected for c in choices.values()) == 5 + 1


def test_limits_count_per_group_so_each_season_gets_its_own_poster() -> None:
    def season_poster(asset_id: str, season: int) -> Candidate:
        return Candidate(asset_id, "seasonposter", 1000, 1500, False, asset_id, None, group=f"seasonposter#{season}")

    choices = select(
        [(c, score(c, "en")) for c in (season_poster("s1a", 1), season_poster("s1b", 1), season_poster("s2", 2))],
        {"seasonposter": 1},
        set(),
        near,
    )
    assert {i for i, c in choices.items() if c.selected} in ({"s1a", "s2"}, {"s1b", "s2"})
