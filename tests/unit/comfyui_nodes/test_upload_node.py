"""rendergate • Upload Image, run as ComfyUI runs it, with numpy arrays standing in for the IMAGE tensor: a batch
becomes PNGs carrying the prompt and workflow in text chunks, uploaded through `POST /uploads` to one held run;
failures are node errors a user can act on."""

from __future__ import annotations

import io
import json
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest
from PIL import Image

from support.local_api import local_api

PROMPT = {"3": {"class_type": "KSampler", "inputs": {"seed": 7}}}
WORKFLOW = {"workflow": {"nodes": [{"id": 3, "type": "KSampler"}]}}


def batch(count: int = 2, channels: int = 3) -> np.ndarray:
    """A BxHxWxC float batch in 0-1, as VAE Decode outputs it."""
    rng = np.random.default_rng(5)
    return rng.random((count, 48, 64, channels), dtype=np.float32)


def upload(nodes: ModuleType, images: Any, api_url: str, **inputs: Any) -> dict[str, Any]:
    node = nodes.NODE_CLASS_MAPPINGS["RendergateUploadImage"]()
    result: dict[str, Any] = getattr(node, node.FUNCTION)(
        images=images, api_url=api_url, filename_prefix="comfy", prompt=PROMPT, extra_pnginfo=WORKFLOW, **inputs
    )
    return result


def test_a_batch_is_uploaded_as_pngs_with_the_generation_metadata(aws: None, nodes: ModuleType, node_env: None) -> None:
    images = batch()
    with local_api() as api_url:
        output = upload(nodes, images, api_url)
    run_id, uris, gets = output["result"]
    uris, gets = uris.splitlines(), gets.splitlines()
    assert uris == [f"s3://media-bucket/incoming/{run_id}/comfy_{i:05}.png" for i in range(2)]
    assert len(gets) == 2 and all(g.startswith("https://") for g in gets)
    for index, uri in enumerate(uris):
        stored = boto3.client("s3").get_object(Bucket="media-bucket", Key=uri.removeprefix("s3://media-bucket/"))
        assert stored["ContentType"] == "image/png"
        picture = Image.open(io.BytesIO(stored["Body"].read()))
        assert (picture.size, picture.mode) == ((64, 48), "RGB")
        assert np.array_equal(np.asarray(picture), np.clip(255.0 * images[index], 0, 255).astype(np.uint8))
        assert json.loads(picture.text["prompt"]) == PROMPT
        assert json.loads(picture.text["workflow"]) == WORKFLOW["workflow"]

    from rendergate.tables import Run

    run = Run.get(run_id)
    assert (run.status, run.hold) == ("queued", True)  # it waits for the Completion Webhook


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (4, "RGBA")])
def test_grey_and_transparent_batches_keep_their_channels(nodes: ModuleType, channels: int, mode: str) -> None:
    from_batch = __import__(f"{nodes.__name__}.images", fromlist=["png_batch"]).png_batch
    [png] = from_batch(batch(1, channels), None, None)
    assert Image.open(io.BytesIO(png)).mode == mode


def test_a_missing_api_key_is_a_readable_node_error(nodes: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENDERGATE_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="set the environment variable RENDERGATE_API_KEY"):
        upload(nodes, batch(), "http://127.0.0.1:9")


def test_a_key_pasted_into_the_node_is_refused(nodes: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="names an environment variable"):
        upload(nodes, batch(), "http://127.0.0.1:9", api_key_env="sk-live-1234 5678")


def test_a_wrong_key_is_reported_with_the_apis_message(aws: None, nodes: ModuleType, monkeypatch: Any) -> None:
    monkeypatch.setenv("STUDIO_KEY", "not-the-key")  # the node reads the variable it names
    with local_api() as api_url, pytest.raises(RuntimeError, match="403 Forbidden"):
        upload(nodes, batch(), api_url, api_key_env="STUDIO_KEY")


def test_a_server_that_is_down_is_reported_not_hung_on(nodes: ModuleType, node_env: None, monkeypatch: Any) -> None:
    client = __import__(f"{nodes.__name__}.client", fromlist=["BACKOFF_SECONDS"])
    monkeypatch.setattr(client, "BACKOFF_SECONDS", 0.01)
    with pytest.raises(RuntimeError, match=r"127\.0\.0\.1:9/uploads is not reachable"):
        upload(nodes, batch(), "http://127.0.0.1:9")


def test_what_is_not_an_image_batch_is_a_node_error(nodes: ModuleType, node_env: None) -> None:
    with pytest.raises(RuntimeError, match="expected an IMAGE batch"):
        upload(nodes, np.zeros((48, 64, 3), dtype=np.float32), "http://127.0.0.1:9")
