"""What the review page tells a reviewer before they decide: for a render its prompt, seed and workflow; per
image its score, the parts of the score and why it was or was not selected, a note field; and a near-duplicate
beside the image it duplicates."""

from __future__ import annotations

import re

from support.reviewing import awaiting, page, signed


def test_a_render_shows_its_recipe_and_each_image_why_it_was_chosen(aws: None) -> None:
    from rendergate.tables import Asset

    params = {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "width": 512}
    _, link = awaiting(
        source="render", assets=2, params=params, seed=4242, workflow_name="txt2img", workflow_version="3"
    )
    chosen = Asset.get("run-1-asset-0")
    chosen.update(
        actions=[
            Asset.score.set(0.82),
            Asset.score_parts.set({"sharpness": 0.9, "exposure": 0.7}),
            Asset.selection_reason.set("the best of its type"),
        ]
    )
    path, query = signed(link)

    body = page(path, **query)["body"]

    recipe = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", body.split("<dl class=recipe>")[1]))
    assert {k: recipe[k] for k in ("Prompt", "Negative prompt", "Seed", "Workflow")} == {
        "Prompt": "a lighthouse at dusk",
        "Negative prompt": "blurry",
        "Seed": "4242",
        "Workflow": "txt2img 3",
    }
    first = body.split('data-asset-id="run-1-asset-0"')[1].split("</figure>")[0]
    assert "score 0.82" in first and "exposure 0.7, sharpness 0.9" in first and "(the best of its type)" in first
    assert 'name="note-run-1-asset-0"' in first and 'name="note-run-1-asset-1"' in body


def test_a_near_duplicate_is_shown_beside_what_it_duplicates(aws: None) -> None:
    from rendergate.tables import Asset

    _, link = awaiting(assets=2)
    Asset(
        "library-asset",
        run_id="older",
        bucket="media-bucket",
        key="library/old.png",
        filename="old.png",
        status="published",
    ).save()
    Asset.get("run-1-asset-1").update(
        actions=[
            Asset.duplicate_of.set("library-asset"),
            Asset.duplicate_kind.set("near"),
            Asset.duplicate_distance.set(3),
        ]
    )
    path, query = signed(link)

    body = page(path, **query)["body"]

    duplicate = body.split('data-asset-id="run-1-asset-1"')[1].split("</figure>")[0]
    pair = duplicate.split("<div class=pair>")[1]
    [this, original] = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', pair)
    assert "incoming/run-1/1.png" in this[0] and this[1] == "1.png"
    assert "library/old.png" in original[0] and original[1] == "old.png, which it duplicates"
    assert "a near-duplicate (distance 3)" in duplicate
    assert "<div class=pair>" not in body.split('data-asset-id="run-1-asset-0"')[1].split("</figure>")[0]
