"""Our RunPod worker against the CPU renderer: it downloads its source images, renders the graph, PUTs
each image to its presigned URL (S3 here is a moto server on loopback), reports progress, and returns
errors as text without URLs' secrets."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import sys
import types
from typing import Any
from urllib.parse import urlsplit

import pytest
from workflows.seed import ROOT

from devstack.comfyui import CpuComfyUI
from support.devstack import free_port
from support.images import png
from support.runpod import Bucket, load_worker

TXT2IMG = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())
OUT = {"url": "https://x/y", "key": "renders/r/1.png"}
IMG2IMG = json.loads((ROOT / "img2img/1.0.0/workflow.json").read_text())
worker = load_worker()


def run_job(job: Any, comfy_url: str, progress: Any = print, job_id: str = "job") -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(worker.run_job(job, comfy_url, progress, job_id=job_id))
    return result


def txt2img(count: int = 1, steps: int = 5, **changes: Any) -> dict[str, Any]:
    graph = copy.deepcopy(TXT2IMG)
    graph["6"]["inputs"]["text"] = "a harbour at dusk"
    graph["3"]["inputs"]["steps"] = steps
    graph["5"]["inputs"].update(width=96, height=64, batch_size=count)
    graph["4"]["inputs"].update(changes)
    return graph


def test_the_worker_renders_uploads_and_reports(bucket: Bucket, comfy: CpuComfyUI) -> None:
    progress: list[dict[str, Any]] = []
    result = run_job({"workflow": txt2img(2), "outputs": bucket.uploads("ok", 2)}, comfy.url, progress.append, "job-ok")

    assert "error" not in result, result
    assert [(image["type"], image["index"]) for image in result["images"]] == [("uploaded", 0), ("uploaded", 1)]
    for image in result["images"]:
        stored = bucket.read(f"renders/ok/{image['index']}.png")
        assert stored.startswith(b"\x89PNG")
        assert (image["bytes"], image["sha256"]) == (len(stored), hashlib.sha256(stored).hexdigest())
        assert image["key"] == f"renders/ok/{image['index']}.png"  # the object's key, whatever the URL's style
    assert {"render_ms", "upload_ms", "total_ms", "comfyui_execution_ms"} <= set(result["timings"])
    percents = [update["percent"] for update in progress]
    assert percents == sorted(percents) and percents[-1] == 100


def test_a_retried_job_is_not_queued_on_comfyui_twice(bucket: Bucket, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(), "outputs": bucket.uploads("again", 1)}
    run_job(job, comfy.url, job_id="job-again")
    before = len(comfy.history)
    assert "error" not in run_job(job, comfy.url, job_id="job-again")
    assert len(comfy.history) == before


def img2img() -> dict[str, Any]:
    graph = copy.deepcopy(IMG2IMG)
    graph["10"]["inputs"]["image"] = "source-1.png"
    graph["12"]["inputs"]["amount"] = 2
    graph["3"]["inputs"]["steps"] = 2
    return graph


def test_img2img_downloads_its_source_image_and_uploads_it_to_comfyui(bucket: Bucket, comfy: CpuComfyUI) -> None:
    images = [bucket.source("incoming/i2i/source.png", png(4, (80, 48)))]
    result = run_job({"workflow": img2img(), "images": images, "outputs": bucket.uploads("i2i", 2)}, comfy.url)
    assert len(result["images"]) == 2, result
    assert (comfy.input_dir / "source-1.png").read_bytes() == png(4, (80, 48))


def test_a_source_image_larger_than_it_was_said_to_be_is_refused(bucket: Bucket, comfy: CpuComfyUI) -> None:
    image = {**bucket.source("incoming/i2i/big.png", png(5, (200, 200))), "bytes": 100}
    result = run_job({"workflow": img2img(), "images": [image], "outputs": bucket.uploads("big", 2)}, comfy.url)
    assert "source image source-1.png" in result["error"] and "100 bytes" in result["error"]
    assert "X-Amz-Signature" not in result["error"]


@pytest.mark.parametrize(
    ("job", "words"),
    [
        (None, "input must be an object"),
        ({"workflow": {}, "outputs": [OUT]}, "input.workflow must be"),
        ({"workflow": TXT2IMG}, "input.outputs must list"),
        ({"workflow": TXT2IMG, "outputs": ["https://x/y"]}, "input.outputs must list one {url, key}"),
        ({"workflow": TXT2IMG, "outputs": [{"url": "ftp://x/y", "key": "k"}]}, "input.outputs must list"),
        (
            {"workflow": TXT2IMG, "outputs": [OUT], "images": [{"name": "a/b.png", "url": "https://x/a"}]},
            "input.images[0]",
        ),
        (
            {"workflow": TXT2IMG, "outputs": [OUT], "images": [{"name": "a.png", "image": "aGk="}]},
            "needs a presigned GET 'url'",
        ),
    ],
)
def test_bad_input_is_an_error_naming_the_field(comfy: CpuComfyUI, job: Any, words: str) -> None:
    assert words in run_job(job, comfy.url, job_id="job-bad")["error"]


def test_comfyuis_refusal_comes_back_as_the_error(bucket: Bucket, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(ckpt_name="missing.safetensors"), "outputs": bucket.uploads("refused", 1)}
    error = run_job(job, comfy.url, job_id="job-refused")["error"]
    assert error.startswith("ComfyUI refused the workflow:")
    assert "ckpt_name: 'missing.safetensors' not in" in error


def test_an_execution_error_comes_back_as_the_error(bucket: Bucket, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(ckpt_name="corrupt.safetensors"), "outputs": bucket.uploads("corrupt", 1)}
    error = run_job(job, comfy.url, job_id="job-corrupt")["error"]
    assert "SafetensorError: Error while deserializing header: HeaderTooLarge" in error


def test_more_images_than_upload_urls_is_an_error(bucket: Bucket, comfy: CpuComfyUI) -> None:
    job = {"workflow": txt2img(3), "outputs": bucket.uploads("short", 2)}
    assert run_job(job, comfy.url, job_id="job-short")["error"] == (
        "the workflow saved 3 images but 2 upload URLs were given"
    )


def test_a_refused_upload_is_an_error(bucket: Bucket, comfy: CpuComfyUI) -> None:
    [output] = bucket.uploads("refused", 1)
    output["url"] = output["url"].replace(f"/{bucket.name}/", "/no-such-bucket/")
    job = {"workflow": txt2img(), "outputs": [output]}
    error = run_job(job, comfy.url, job_id="job-refused-upload")["error"]
    assert error.startswith("uploading image 1 failed: HTTP 404")


def test_an_upload_that_cannot_connect_is_an_error_without_the_urls_secrets(bucket: Bucket, comfy: CpuComfyUI) -> None:
    [output] = bucket.uploads("unreachable", 1)
    output["url"] = output["url"].replace(f":{urlsplit(output['url']).port}/", f":{free_port()}/")
    job = {"workflow": txt2img(), "outputs": [output]}
    error = run_job(job, comfy.url, job_id="job-unreachable")["error"]
    assert "ConnectionError" in error and f"/{bucket.name}/renders/unreachable/0.png?[redacted]" in error
    assert "X-Amz-Signature" not in error and "X-Amz-Credential" not in error


def test_a_comfyui_that_never_comes_up_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "READY_SECONDS", 0.2)
    job = {"workflow": TXT2IMG, "outputs": [OUT]}
    assert "did not come up" in run_job(job, f"http://127.0.0.1:{free_port()}", job_id="job-down")["error"]


def test_the_runpod_handler_sends_progress_through_the_sdk(
    bucket: Bucket, comfy: CpuComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    serverless = types.SimpleNamespace(progress_update=lambda job, update: sent.append((job["id"], update)))
    monkeypatch.setitem(sys.modules, "runpod", types.SimpleNamespace(serverless=serverless))
    monkeypatch.setattr(worker, "COMFY_URL", comfy.url)
    job = {"id": "rp-1", "input": {"workflow": txt2img(), "outputs": bucket.uploads("sdk", 1)}}
    result = asyncio.run(worker.handler(job))
    assert len(result["images"]) == 1
    assert sent and all(job_id == "rp-1" for job_id, _ in sent)
