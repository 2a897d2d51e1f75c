"""The workflow registry: committed graphs match their manifests, the registry refuses graphs that do not
match their sha256, and a run's parameters land in the node inputs the manifest names."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from workflows.seed import ROOT, bundles, seed

from rendergate.errors import BadRequest, RegistryError

BUCKET = "media-bucket"


def load(name: str = "txt2img", version: str | None = None) -> Any:
    from rendergate import workflows

    return workflows.load(name, version)


def prepare(params: dict[str, Any], count: int = 1, name: str = "txt2img") -> Any:
    from rendergate import workflows

    return workflows.prepare(load(name), params, count)


def test_every_committed_workflow_matches_its_manifest() -> None:
    found = {(b.name, b.version) for b in bundles()}
    assert {("txt2img", "1.0.0"), ("img2img", "1.0.0")} <= found
    for bundle in bundles():
        graph = json.loads(bundle.graph)
        assert any(node["class_type"] == "SaveImage" for node in graph.values())


def test_txt2img_is_the_standard_graph() -> None:
    graph = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())
    classes = sorted(node["class_type"] for node in graph.values())
    assert classes == sorted(
        [
            "CheckpointLoaderSimple",
            "CLIPTextEncode",
            "CLIPTextEncode",
            "EmptyLatentImage",
            "KSampler",
            "VAEDecode",
            "SaveImage",
        ]
    )


def test_a_seeded_workflow_loads_verified_and_latest_is_the_default(aws: None) -> None:
    workflow = load("txt2img")
    assert (workflow.name, workflow.version) == ("txt2img", "1.0.0")
    assert workflow.sha256 == json.loads((ROOT / "txt2img/1.0.0/manifest.json").read_text())["sha256"]
    index = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key="workflows/index.json")["Body"].read())
    assert index["workflows"]["txt2img"] == {"latest": "1.0.0", "versions": ["1.0.0"]}


def test_a_graph_that_does_not_match_its_sha256_is_refused(aws: None) -> None:
    s3 = boto3.client("s3")
    graph = json.loads(s3.get_object(Bucket=BUCKET, Key="workflows/txt2img/1.0.0.json")["Body"].read())
    graph["4"]["inputs"]["ckpt_name"] = "someone-elses.safetensors"
    s3.put_object(Bucket=BUCKET, Key="workflows/txt2img/1.0.0.json", Body=json.dumps(graph).encode())
    with pytest.raises(RegistryError, match="does not match its recorded sha256"):
        load("txt2img")


def test_seeding_never_replaces_a_stored_version(aws: None) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="workflows/img2img/1.0.0.json", Body=b'{"changed": true}')
    with pytest.raises(ValueError, match="versions are immutable"):
        seed(s3, BUCKET)


def test_an_unseeded_registry_says_how_to_seed_it(aws: None) -> None:
    boto3.client("s3").delete_object(Bucket=BUCKET, Key="workflows/index.json")
    with pytest.raises(RegistryError, match="seed-workflows"):
        load("txt2img")


@pytest.mark.parametrize(
    ("name", "version", "words"),
    [
        ("nope", None, "workflow 'nope' is not in the registry"),
        ("txt2img", "2.0.0", "no version '2.0.0'"),
        (None, None, "workflow is required"),
    ],
)
def test_unknown_workflows_and_versions_are_bad_requests(aws: None, name: Any, version: Any, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        load(name, version)


def test_params_land_in_nodes_named_by_id_and_by_title(aws: None) -> None:
    prepared = prepare(
        {"prompt": "a cat", "negative_prompt": "blurry", "seed": 42, "width": 640, "steps": 9, "cfg": 5.5}, 3
    )
    graph = prepared.graph
    assert graph["6"]["inputs"]["text"] == "a cat"  # by _meta.title "Positive prompt"
    assert graph["7"]["inputs"]["text"] == "blurry"  # by _meta.title "Negative prompt"
    assert (graph["3"]["inputs"]["seed"], graph["3"]["inputs"]["steps"], graph["3"]["inputs"]["cfg"]) == (42, 9, 5.5)
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"], graph["5"]["inputs"]["batch_size"]) == (
        640,
        1024,
        3,
    )
    assert (prepared.seed, prepared.count) == (42, 3)
    assert load().graph["3"]["inputs"]["seed"] == 0  # the registry's copy is untouched


def test_a_missing_seed_is_drawn_and_recorded(aws: None) -> None:
    first, second = prepare({"prompt": "x"}), prepare({"prompt": "x"})
    assert first.params["seed"] == first.seed == first.graph["3"]["inputs"]["seed"]
    assert first.seed != second.seed


def test_loras_are_chained_and_their_users_rewired(aws: None) -> None:
    graph = prepare({"prompt": "x", "loras": ["a.safetensors", {"name": "b.safetensors", "strength": 0.5}]}).graph
    assert graph["10"]["inputs"]["model"] == ["4", 0] and graph["10"]["inputs"]["clip"] == ["4", 1]
    assert graph["11"]["inputs"]["model"] == ["10", 0] and graph["11"]["inputs"]["strength_clip"] == 0.5
    assert graph["3"]["inputs"]["model"] == ["11", 0]
    assert graph["6"]["inputs"]["clip"] == graph["7"]["inputs"]["clip"] == ["11", 1]
    assert graph["8"]["inputs"]["vae"] == ["4", 2]  # the VAE does not go through LoRAs


def test_count_and_batch_must_agree(aws: None) -> None:
    assert prepare({"prompt": "x", "batch": 2}, 2).graph["5"]["inputs"]["batch_size"] == 2
    with pytest.raises(BadRequest, match=r"params.batch \(3\) must equal count \(2\)"):
        prepare({"prompt": "x", "batch": 3}, 2)


def test_img2img_takes_its_source_from_the_media_bucket(aws: None) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="incoming/run/source.png", Body=b"png")
    prepared = prepare({"prompt": "x", "image": "incoming/run/source.png"}, 2, name="img2img")
    [(name, key)] = prepared.images.items()
    assert key == "incoming/run/source.png"
    assert prepared.graph["10"]["inputs"]["image"] == name
    assert prepared.graph["12"]["inputs"]["amount"] == 2


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "params.prompt is required"),
        ({"prompt": "  "}, "params.prompt must not be empty"),
        ({"prompt": 3}, "params.prompt must be a string"),
        ({"prompt": "x" * 4001}, "params.prompt must be at most 4000"),
        ({"prompt": "x", "steps": "20"}, "params.steps must be an integer"),
        ({"prompt": "x", "steps": True}, "params.steps must be an integer"),
        ({"prompt": "x", "steps": 0}, "params.steps must be between 1 and 150"),
        ({"prompt": "x", "cfg": "high"}, "params.cfg must be a number"),
        ({"prompt": "x", "width": 1000.0}, "params.width must be an integer"),
        ({"prompt": "x", "width": 1001}, "params.width must be a multiple of 8"),
        ({"prompt": "x", "height": 8192}, "params.height must be between 64 and 2048"),
        ({"prompt": "x", "seed": -1}, "params.seed must be between 0"),
        ({"prompt": "x", "model": "../../etc/passwd"}, "params.model"),
        ({"prompt": "x", "loras": "a.safetensors"}, "params.loras must be a list"),
        ({"prompt": "x", "loras": [{"name": "a.safetensors", "weight": 1}]}, r"params.loras\[0\] must be"),
        ({"prompt": "x", "loras": [{"name": "a.safetensors", "strength": 9}]}, r"params.loras\[0\].strength"),
        ({"prompt": "x", "loras": ["a.exe"]}, r"params.loras\[0\].name"),
        ({"prompt": "x", "tiling": True}, "unknown parameter.*params.tiling"),
    ],
)
def test_bad_params_are_refused_naming_the_field(aws: None, params: dict[str, Any], words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        prepare(params)


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("library/x.png", "under incoming/ or renders/"),
        ("incoming/../x.png", "under incoming/"),
        ("incoming/none.png", "no object"),
    ],
)
def test_a_source_image_must_be_one_of_ours(aws: None, image: str, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        prepare({"prompt": "x", "image": image}, name="img2img")


@pytest.mark.parametrize(
    "name",
    [
        "SDXL/../../../etc/passwd.safetensors",
        "../v1-5-pruned-emaonly.safetensors",
        "SDXL/./model.safetensors",
        "SDXL//model.safetensors",
        "/etc/passwd",
        "C:\\Windows\\model.safetensors",
        "\\\\host\\share\\model.safetensors",
        "C:model.safetensors",
        "model\x00.safetensors",
    ],
)
def test_model_and_lora_names_stay_inside_their_folder(aws: None, name: str) -> None:
    """Given a workflow whose manifest sets no pattern for its model (any registry workflow may), a path
    that leaves ComfyUI's models folder is still refused, for the checkpoint and for every LoRA."""
    from rendergate import workflows

    workflow = load()
    lenient = {**workflow.manifest["params"]["model"]}
    lenient.pop("pattern")
    unpatterned = workflows.Workflow(
        workflow.name,
        workflow.version,
        workflow.sha256,
        {**workflow.manifest, "params": {**workflow.manifest["params"], "model": lenient}},
        workflow.graph,
    )
    with pytest.raises(BadRequest, match=r"params\.model must be a file name inside the models folder"):
        workflows.prepare(unpatterned, {"prompt": "x", "model": name}, 1)
    with pytest.raises(BadRequest, match=r"params.loras\[0\].name"):
        prepare({"prompt": "x", "loras": [name]})


def test_model_names_in_subfolders_are_allowed(aws: None) -> None:
    prepared = prepare({"prompt": "x", "model": "SDXL/base 1.0.safetensors", "loras": ["styles/detail.safetensors"]})
    assert prepared.graph["4"]["inputs"]["ckpt_name"] == "SDXL/base 1.0.safetensors"
    assert any(node["inputs"].get("lora_name") == "styles/detail.safetensors" for node in prepared.graph.values())
