"""Our RunPod worker against the CPU renderer: it renders the graph, PUTs each image to its presigned URL
(S3 here is a moto server on loopback), reports progress, and returns errors as text."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from workflows.seed import ROOT

from devstack.comfyui import CpuComfyUI
from support.devstack import free_port
from support.images import png
from support.runpod import load_worker

BUCKET = "worker-outputs"
TXT2IMG = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())
IMG2IMG = json.loads((ROOT / "img2img/1.0.0/workflow.json").read_text())
worker = load_worker()


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


@pytest.fixture(scope="module")
def comfy() -> Iterator[CpuComfyUI]:
    renderer = CpuComfyUI(port=0, step_seconds=0.01).start()
    yield renderer
    renderer.stop()


def urls(s3: Any, run: str, count: int) -> list[str]:
    return [
        s3.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": f"renders/{run}/{i}.png"}, ExpiresIn=300
        )
        for i in range(count)
    ]


def txt2img(count: int = 1, steps: int = 5, **changes: Any) -> dict[str, Any]:
    graph = copy.deepcopy(TXT2IMG)
    graph["6"]["inputs"]["text"] = "a harbour at dusk"
    graph["3"]["inputs"]["steps"] = steps
    graph["5"]["inputs"].update(width=96, height=64, batch_size=count)
    graph["4"]["inputs"].update(changes)
    return graph


def test_the_worker_renders_uploads_and_reports(s3: Any, comfy: CpuComfyUI) -> None:
    progress: list[dict[str, Any]] = []
    result = worker.run_job(
        {"workflow": txt2img(2), "outputs": urls(s3, "ok", 2)}, comfy.url, progress.append, job_id="job-ok"
    )

    assert "error" not in result, result
    assert [(image["type"], image["index"]) for image in result["images"]] == [("uploaded", 0), ("uploaded", 1)]
    for image in result["images"]:
        stored = s3.get_object(Bucket=BUCKET, Key=f"renders/ok/{image['index']}.png")["Body"].read()
        assert stored.startswith(b"\x89PNG")
        assert (image["bytes"], image["sha256"]) == (len(stored), hashlib.sha256(stored).hexdigest())
        assert image["key"] == f"{BUCKET}/renders/ok/{image['index']}.png"
    assert {"render_ms", "upload_ms", "total_ms", "comfyui_execution_ms"} <= set(result["timings"])
    percents = [update["percent"] for update in progress]
    assert percents == sorted(percents) and percents[-1] == 100


def test_a_retried_job_is_not_queued_on_comfyui_twice(s3: Any, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(), "outputs": urls(s3, "again", 1)}
    worker.run_job(job, comfy.url, lambda _: None, job_id="job-again")
    before = len(comfy.history)
    assert "error" not in worker.run_job(job, comfy.url, lambda _: None, job_id="job-again")
    assert len(comfy.history) == before


def test_img2img_uploads_its_source_image_first(s3: Any, comfy: CpuComfyUI) -> None:
    graph = copy.deepcopy(IMG2IMG)
    graph["10"]["inputs"]["image"] = "source-1.png"
    graph["12"]["inputs"]["amount"] = 2
    graph["3"]["inputs"]["steps"] = 2
    images = [{"name": "source-1.png", "image": base64.b64encode(png(4, (80, 48))).decode()}]
    result = worker.run_job(
        {"workflow": graph, "images": images, "outputs": urls(s3, "i2i", 2)}, comfy.url, print, job_id="job-i2i"
    )
    assert len(result["images"]) == 2, result


@pytest.mark.parametrize(
    ("job", "words"),
    [
        (None, "input must be an object"),
        ({"workflow": {}, "outputs": ["https://x/y"]}, "input.workflow must be"),
        ({"workflow": TXT2IMG}, "input.outputs must list"),
        ({"workflow": TXT2IMG, "outputs": ["ftp://x/y"]}, "input.outputs must list"),
        (
            {"workflow": TXT2IMG, "outputs": ["https://x/y"], "images": [{"name": "a/b.png", "image": ""}]},
            "input.images[0]",
        ),
        (
            {"workflow": TXT2IMG, "outputs": ["https://x/y"], "images": [{"name": "a.png", "image": "%%%"}]},
            "not base64",
        ),
    ],
)
def test_bad_input_is_an_error_naming_the_field(comfy: CpuComfyUI, job: Any, words: str) -> None:
    assert words in worker.run_job(job, comfy.url, print, job_id="job-bad")["error"]


def test_comfyuis_refusal_comes_back_as_the_error(s3: Any, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(ckpt_name="missing.safetensors"), "outputs": urls(s3, "refused", 1)}
    error = worker.run_job(job, comfy.url, print, job_id="job-refused")["error"]
    assert error.startswith("ComfyUI refused the workflow:")
    assert "ckpt_name: 'missing.safetensors' not in" in error


def test_an_execution_error_comes_back_as_the_error(s3: Any, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(ckpt_name="corrupt.safetensors"), "outputs": urls(s3, "corrupt", 1)}
    error = worker.run_job(job, comfy.url, print, job_id="job-corrupt")["error"]
    assert "SafetensorError: Error while deserializing header: HeaderTooLarge" in error


def test_more_images_than_upload_urls_is_an_error(s3: Any, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(3), "outputs": urls(s3, "short", 2)}
    assert worker.run_job(job, comfy.url, print, job_id="job-short")["error"] == (
        "the workflow saved 3 images but 2 upload URLs were given"
    )


def test_a_refused_upload_is_an_error(s3: Any, comfy: CpuComfyUI) -> None:
    [url] = urls(s3, "refused", 1)
    job = {"workflow": txt2img(), "outputs": [url.replace(f"/{BUCKET}/", "/no-such-bucket/")]}
    error = worker.run_job(job, comfy.url, print, job_id="job-refused-upload")["error"]
    assert error.startswith("uploading image 1 failed: HTTP 404")


def test_a_comfyui_that_never_comes_up_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "READY_SECONDS", 0.2)
    job = {"workflow": TXT2IMG, "outputs": ["https://x/y"]}
    assert (
        "did not come up" in worker.run_job(job, f"http://127.0.0.1:{free_port()}", print, job_id="job-down")["error"]
    )


def test_the_runpod_handler_sends_progress_through_the_sdk(
    s3: Any, comfy: CpuComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    serverless = types.SimpleNamespace(progress_update=lambda job, update: sent.append((job["id"], update)))
    monkeypatch.setitem(sys.modules, "runpod", types.SimpleNamespace(serverless=serverless))
    monkeypatch.setattr(worker, "COMFY_URL", comfy.url)
    result = worker.handler({"id": "rp-1", "input": {"workflow": txt2img(), "outputs": urls(s3, "sdk", 1)}})
    assert len(result["images"]) == 1
    assert sent and all(job_id == "rp-1" for job_id, _ in sent)
