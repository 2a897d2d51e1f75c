"""Happy paths through statemachines/pipeline.asl.json: an upload reviewed by a person, a render auto-approved."""

from __future__ import annotations

import json

from rendergate import executions
from support.pipeline import ASSETS, DECISION, RENDERED


def test_an_upload_is_enriched_then_waits_for_its_review_then_publishes_the_decision(pipeline, run_input):
    # Given an upload that is not auto-approved
    execution = pipeline.start(run_input())

    # When the reviewer's decision resumes the Review task's token
    review = pipeline.functions.wait_for("ReviewFunction")
    assert executions.succeed(review["task_token"], DECISION)

    # Then the run is published with that decision, and nothing rendered
    assert pipeline.ended(execution)["status"] == "SUCCEEDED"
    assert review["run_id"] == "run-upload" and review["asset_ids"] == ASSETS
    assert review["timeout_seconds"] == run_input()["review_timeout_seconds"]
    (published,) = pipeline.functions.payloads("PublishFunction")
    assert published["review"] == DECISION and published["enrich"]["selected_ids"] == ASSETS[:1]
    assert pipeline.functions.payloads("RenderFunction") == []
    assert pipeline.states_entered(execution) == [
        "Route",
        "Enrich",
        "EnrichedAll",
        "NeedsReview",
        "Review",
        "Publish",
        "Done",
    ]


def test_a_render_waits_for_its_job_then_enriches_the_rendered_images_and_auto_approves_the_selection(
    pipeline, run_input
):
    # Given a render run with auto-approve
    execution = pipeline.start(run_input("render", auto_approve=True))

    # When the job's completion resumes the Render task's token (with more than the task keeps)
    render = pipeline.functions.wait_for("RenderFunction")
    assert executions.succeed(render["task_token"], {**RENDERED, "timings": {"seconds": 3}})

    # Then Enrich reads the rendered images, and Publish gets the selection approved by no one
    output = json.loads(pipeline.ended(execution)["output"])
    assert render["run_id"] == "run-render"
    (enriched,) = pipeline.functions.payloads("EnrichFunction")
    assert enriched["objects"] == RENDERED["objects"] and enriched["rendered"] == RENDERED
    (published,) = pipeline.functions.payloads("PublishFunction")
    assert published["review"]["approved"] == ASSETS[:1] and published["review"]["reviewer"] == "auto-approve"
    assert pipeline.functions.payloads("ReviewFunction") == []
    assert output["publish"] == {"published": ASSETS[:1]}


def test_an_enrichment_that_answers_more_is_called_again_until_it_is_done(pipeline, run_input):
    from support.pipeline import Returns

    # Given an enrichment whose candidates do not fit one invocation
    pipeline.functions.script(
        "EnrichFunction",
        Returns({"asset_ids": [], "selected_ids": [], "more": True}),
        Returns({"asset_ids": ASSETS, "selected_ids": ASSETS[:1], "more": False}),
    )

    # When the run is auto-approved
    execution = pipeline.start(run_input(auto_approve=True))

    # Then Enrich ran twice, and what reached Publish is the last invocation's selection
    assert pipeline.ended(execution)["status"] == "SUCCEEDED"
    assert len(pipeline.functions.payloads("EnrichFunction")) == 2
    (published,) = pipeline.functions.payloads("PublishFunction")
    assert published["review"]["approved"] == ASSETS[:1]
    entered = pipeline.states_entered(execution)
    assert entered == [
        "Route",
        "Enrich",
        "EnrichedAll",
        "Enrich",
        "EnrichedAll",
        "NeedsReview",
        "AutoApprove",
        "Publish",
        "Done",
    ]
