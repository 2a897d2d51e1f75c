"""Render runs on the local stack, where the backend is a self-hosted ComfyUI: the CPU renderer.
Render → enrich → review → publish, with the recipe (workflow, sha256, seed) on every asset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from support.devstack import DevStack
from support.images import png
from support.waiting import eventually

SMALL = {"width": 128, "height": 128, "steps": 4}
MANIFEST = Path(__file__).resolve().parents[2] / "infra/workflows/txt2img/1.0.0/manifest.json"


def rendered(devstack: DevStack, *statuses: str, **body: Any) -> dict[str, Any]:
    body.setdefault("workflow", "txt2img")
    if body["workflow"] == "txt2img":
        body["params"] = {**SMALL, **body.get("params", {})}
    run_id = devstack.render(**body)["run_id"]
    return devstack.wait_for(run_id, *statuses)


def test_a_render_is_enriched_reviewed_and_published_with_its_recipe(devstack: DevStack, bus_events: Any) -> None:
    answer = devstack.render(
        workflow="txt2img",
        params={"prompt": "a red fox in snow", "seed": 1234, **SMALL},
        count=2,
        title="Red fox",
        namespace="renders",
        tags=["fox"],
    )
    sha256 = json.loads(MANIFEST.read_text())["sha256"]
    assert (answer["status"], answer["seed"], answer["workflow"]["sha256"]) == ("queued", 1234, sha256)
    assert answer["eta_seconds"] > 0
    assert answer["links"]["self"] == f"{devstack.api_url}/runs/{answer['run_id']}"

    run = devstack.wait_for(answer["run_id"], "awaiting_review")
    assert run["status"] == "awaiting_review"
    recipe = run["render"]
    assert (recipe["workflow"], recipe["version"], recipe["sha256"], recipe["seed"]) == (
        "txt2img",
        "1.0.0",
        sha256,
        1234,
    )
    assert (recipe["job_status"], recipe["progress"], recipe["backend"]) == ("COMPLETED", 100, "comfyui")
    assert recipe["params"] == {"prompt": "a red fox in snow", "seed": 1234, **SMALL}
    assert recipe["graph"]["3"]["inputs"]["seed"] == 1234
    assert recipe["graph"]["6"]["inputs"]["text"] == "a red fox in snow"
    assert recipe["graph"]["5"]["inputs"]["batch_size"] == 2
    assert len(run["assets"]) == 2
    for index, asset in enumerate(sorted(run["assets"], key=lambda a: a["key"])):
        assert asset["render"] == {
            "workflow": "txt2img",
            "version": "1.0.0",
            "sha256": sha256,
            "seed": 1234,
            "index": index,
        }
        assert (asset["width"], asset["height"], asset["status"]) == (128, 128, "enriched")

    assert devstack.decide(run["review"]["url"], all="approve", reviewer="Fox fan").status_code == 200
    done = devstack.wait_for(run["run_id"], "completed")
    assert sorted(item["library_key"] for item in done["published"]) == [
        f"renders/red-fox/txt2img-1234-0{i}.png" for i in (1, 2)
    ]

    def completed_event() -> dict[str, Any]:
        found = [
            e["detail"]
            for e in bus_events()
            if e["detail-type"] == "render.completed.v1" and e["detail"]["correlationid"] == run["run_id"]
        ]
        assert found
        return found[0]

    event = eventually(completed_event)
    assert (event["data"]["seed"], event["data"]["sha256"]) == (1234, sha256)


def test_the_recorded_recipe_renders_the_same_images_again(devstack: DevStack) -> None:
    first = rendered(devstack, "awaiting_review", params={"prompt": "a blue heron", "seed": 77})
    again = rendered(devstack, "awaiting_review", params=first["render"]["params"])
    other = rendered(devstack, "awaiting_review", params={"prompt": "a blue heron", "seed": 78})
    assert [a["sha256"] for a in again["assets"]] == [a["sha256"] for a in first["assets"]]
    assert again["render"]["graph"] == first["render"]["graph"]
    assert other["assets"][0]["sha256"] != first["assets"][0]["sha256"]


def test_a_missing_seed_is_chosen_at_random_and_recorded(devstack: DevStack) -> None:
    run = rendered(devstack, "awaiting_review", params={"prompt": "no seed given"})
    seed = run["render"]["seed"]
    assert isinstance(seed, int) and run["render"]["params"]["seed"] == seed
    assert run["render"]["graph"]["3"]["inputs"]["seed"] == seed


def test_an_unknown_checkpoint_fails_the_run_with_comfyuis_node_errors(devstack: DevStack) -> None:
    run = rendered(devstack, "failed", params={"prompt": "x", "model": "missing-model.safetensors"})
    assert (run["status"], run["error"]["name"]) == ("failed", "RenderFailed")
    assert "node 4 (CheckpointLoaderSimple)" in run["error"]["message"]
    assert "ckpt_name: 'missing-model.safetensors' not in" in run["error"]["message"]


def test_an_execution_error_fails_the_run_with_the_exception(devstack: DevStack) -> None:
    run = rendered(devstack, "failed", params={"prompt": "x", "model": "corrupt.safetensors"})
    assert (run["status"], run["error"]["name"]) == ("failed", "RenderFailed")
    assert (
        "safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge" in run["error"]["message"]
    )
    assert "CheckpointLoaderSimple (node 4)" in run["error"]["message"]


def test_loras_are_chained_between_the_checkpoint_and_its_users(devstack: DevStack) -> None:
    loras = [{"name": "detail-tweaker.safetensors", "strength": 0.7}, {"name": "film-grain.safetensors"}]
    run = rendered(devstack, "awaiting_review", params={"prompt": "with loras", "seed": 5, "loras": loras})
    graph = run["render"]["graph"]
    first_id, last_id = sorted((n for n in graph if graph[n]["class_type"] == "LoraLoader"), key=int)
    assert graph[first_id]["inputs"]["model"] == ["4", 0] and graph[first_id]["inputs"]["strength_model"] == 0.7
    assert graph[last_id]["inputs"]["model"] == [first_id, 0]
    assert graph["3"]["inputs"]["model"] == [last_id, 0]
    assert graph["6"]["inputs"]["clip"] == graph["7"]["inputs"]["clip"] == [last_id, 1]

    unknown = rendered(devstack, "failed", params={"prompt": "x", "loras": ["no-such-lora.safetensors"]})
    assert "lora_name: 'no-such-lora.safetensors' not in" in unknown["error"]["message"]


def test_img2img_renders_from_an_uploaded_image(devstack: DevStack) -> None:
    upload_id = devstack.upload(png(9, (160, 120)), "source.png")
    source = devstack.wait_for(upload_id, "awaiting_review")["assets"][0]["key"]
    run = rendered(
        devstack,
        "awaiting_review",
        workflow="img2img",
        params={"prompt": "as a watercolour", "image": source, "denoise": 0.5, "steps": 3},
        count=2,
    )
    assert run["status"] == "awaiting_review"
    assert [(a["width"], a["height"]) for a in run["assets"]] == [(160, 120), (160, 120)]
    assert run["render"]["params"]["image"] == source


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workflow": "no-such-flow", "params": {"prompt": "x"}}, "workflow 'no-such-flow'"),
        ({"workflow": "txt2img", "version": "9.9.9", "params": {"prompt": "x"}}, "version '9.9.9'"),
        ({"workflow": "txt2img", "params": {"prompt": "x", "sharpness": 3}}, "params.sharpness"),
        ({"workflow": "txt2img", "params": {"prompt": "x", "steps": "20"}}, "params.steps"),
        ({"workflow": "txt2img", "params": {"prompt": "x", "width": 4096}}, "params.width"),
        ({"workflow": "txt2img", "params": {"prompt": "x"}, "count": 99}, "count"),
        ({"workflow": "txt2img", "params": {}}, "params.prompt"),
        ({"workflow": "txt2img", "params": {"prompt": "x"}, "priority": "urgent"}, "priority"),
        ({"workflow": "img2img", "params": {"prompt": "x", "image": "incoming/none/missing.png"}}, "params.image"),
        ({"workflow": "txt2img", "params": {"prompt": "x"}, "callback": "http://x"}, "callback"),
    ],
)
def test_bad_render_requests_are_refused_naming_the_field(devstack: DevStack, body: dict[str, Any], field: str) -> None:
    answer = requests.post(f"{devstack.api_url}/runs", json=body, headers=devstack.auth, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "BadRequest"
    assert field in answer.json()["message"]


def test_cancelling_a_render_stops_it_and_a_finished_run_cannot_be_cancelled(devstack: DevStack) -> None:
    busy = {"prompt": "slow", "width": 512, "height": 512, "steps": 150}
    run_id = devstack.render(workflow="txt2img", params=busy, count=8)["run_id"]

    def submitted() -> str:
        job_id = devstack.run(run_id)["render"]["job_id"]
        assert job_id
        return str(job_id)

    job_id = eventually(submitted)
    answer = devstack.cancel(run_id)
    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")
    assert devstack.run(run_id)["status"] == "cancelled"

    def stopped_everywhere() -> None:
        [execution] = [e for e in devstack.executions() if e["name"] == run_id]
        assert execution["status"] == "ABORTED"
        queue = requests.get(f"{devstack.state['comfyui_url']}/queue", timeout=10).json()
        assert job_id not in json.dumps(queue)

    eventually(stopped_everywhere)
    assert devstack.cancel(run_id).status_code == 409
    assert devstack.run(run_id)["status"] == "cancelled"

    published = rendered(devstack, "completed", params={"prompt": "done already"}, auto_approve=True)
    conflict = devstack.cancel(published["run_id"])
    assert conflict.status_code == 409
    assert "completed" in conflict.json()["message"]
    assert devstack.cancel("no-such-run").status_code == 404


def test_failed_renders_are_listed_and_dead_lettered(devstack: DevStack) -> None:
    run = rendered(devstack, "failed", params={"prompt": "x", "model": "missing-model.safetensors"})
    listed = requests.get(f"{devstack.api_url}/runs?status=failed&limit=50", headers=devstack.auth, timeout=10).json()
    [entry] = [r for r in listed["runs"] if r["run_id"] == run["run_id"]]
    assert entry["error"]["name"] == "RenderFailed"
    sqs = devstack.aws("sqs")
    bodies = []
    for _ in range(5):
        messages = sqs.receive_message(
            QueueUrl=devstack.state["render_dlq_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        bodies += [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert run["run_id"] in {b["run_id"] for b in bodies}


def test_the_reconciler_is_scheduled_from_the_template(devstack: DevStack) -> None:
    assert {"function": "ReconcileFunction", "expression": "rate(1 minute)"} in devstack.state["schedules"]
