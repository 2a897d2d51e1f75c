"""The CPU renderer answers in ComfyUI's shapes: /prompt, its 400 bodies, /history, /view, /ws messages;
and the same prompt, seed and size always paint the same picture."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
import requests
import websocket
from workflows.seed import ROOT

from devstack.comfyui import CpuComfyUI

GRAPH = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())


@pytest.fixture
def comfy() -> Any:
    renderer = CpuComfyUI(port=0, step_seconds=0.001).start()
    yield renderer
    renderer.stop()


def prompt(text: str = "a cat", seed: int = 1, size: int = 64, batch: int = 1) -> dict[str, Any]:
    made = copy.deepcopy(GRAPH)
    made["6"]["inputs"]["text"] = text
    made["3"]["inputs"].update(seed=seed, steps=3)
    made["5"]["inputs"].update(width=size, height=size, batch_size=batch)
    return made


def finished(comfy: CpuComfyUI, prompt_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        history = requests.get(f"{comfy.url}/history/{prompt_id}", timeout=5).json()
        if prompt_id in history or time.monotonic() > deadline:
            return dict(history[prompt_id])
        time.sleep(0.02)


def test_a_prompt_is_accepted_run_and_kept_in_history(comfy: CpuComfyUI) -> None:
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": prompt(batch=2), "client_id": "c"}, timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"prompt_id", "number", "node_errors"} and body["node_errors"] == {}
    entry = finished(comfy, body["prompt_id"])
    assert entry["prompt"][1] == body["prompt_id"] and entry["prompt"][3] == {"client_id": "c"}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    images = entry["outputs"]["9"]["images"]
    assert [sorted(i) for i in images] == [["filename", "subfolder", "type"]] * 2
    view = requests.get(f"{comfy.url}/view", params=images[0], timeout=5)
    assert view.status_code == 200 and view.content.startswith(b"\x89PNG")
    assert requests.get(f"{comfy.url}/api/history/{body['prompt_id']}", timeout=5).json() == {body["prompt_id"]: entry}


def test_the_same_prompt_paints_the_same_picture(comfy: CpuComfyUI) -> None:
    def picture(text: str, seed: int) -> bytes:
        prompt_id = requests.post(f"{comfy.url}/prompt", json={"prompt": prompt(text, seed)}, timeout=5).json()[
            "prompt_id"
        ]
        image = finished(comfy, prompt_id)["outputs"]["9"]["images"][0]
        return requests.get(f"{comfy.url}/view", params=image, timeout=5).content

    assert picture("a cat", 1) == picture("a cat", 1)
    assert picture("a cat", 1) != picture("a cat", 2)
    assert picture("a cat", 1) != picture("a dog", 1)


def test_an_unknown_checkpoint_is_refused_with_node_errors(comfy: CpuComfyUI) -> None:
    made = prompt()
    made["4"]["inputs"]["ckpt_name"] = "nope.safetensors"
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": made}, timeout=5)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    node = body["node_errors"]["4"]
    assert (node["class_type"], node["dependent_outputs"]) == ("CheckpointLoaderSimple", ["9"])
    [error] = node["errors"]
    assert (error["type"], error["message"]) == ("value_not_in_list", "Value not in list")
    assert error["details"].startswith("ckpt_name: 'nope.safetensors' not in [")
    assert error["extra_info"]["input_name"] == "ckpt_name"


def test_an_unknown_node_type_is_refused_before_validation(comfy: CpuComfyUI) -> None:
    made = prompt()
    made["3"]["class_type"] = "MagicSampler"
    body = requests.post(f"{comfy.url}/prompt", json={"prompt": made}, timeout=5).json()
    assert body["error"]["type"] == "missing_node_type"
    assert body["error"]["extra_info"] == {"node_id": "3", "class_type": "MagicSampler", "node_title": "KSampler"}
    assert body["node_errors"] == {}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"client_id": "x"}, "no_prompt"),
        ({"prompt": {"1": {"class_type": "CLIPTextEncode", "inputs": {}}}}, "prompt_no_outputs"),
    ],
)
def test_prompts_without_work_are_refused(comfy: CpuComfyUI, body: dict[str, Any], kind: str) -> None:
    answer = requests.post(f"{comfy.url}/prompt", json=body, timeout=5)
    assert (answer.status_code, answer.json()["error"]["type"]) == (400, kind)


def test_a_missing_input_image_fails_custom_validation(comfy: CpuComfyUI) -> None:
    made = json.loads((ROOT / "img2img/1.0.0/workflow.json").read_text())
    made["10"]["inputs"]["image"] = "not-uploaded.png"
    body = requests.post(f"{comfy.url}/prompt", json={"prompt": made}, timeout=5).json()
    assert body["node_errors"]["10"]["errors"][0]["type"] == "custom_validation_failed"


def test_the_websocket_reports_a_prompts_life(comfy: CpuComfyUI) -> None:
    socket = websocket.create_connection(f"{comfy.url.replace('http', 'ws')}/ws?clientId=watcher", timeout=5)
    first = json.loads(socket.recv())
    assert first["type"] == "status" and first["data"]["sid"] == "watcher"
    prompt_id = requests.post(
        f"{comfy.url}/prompt", json={"prompt": prompt(), "client_id": "watcher"}, timeout=5
    ).json()["prompt_id"]
    kinds = []
    while True:
        message = json.loads(socket.recv())
        kinds.append(message["type"])
        if message["type"] == "progress":
            assert message["data"]["prompt_id"] == prompt_id and message["data"]["max"] == 3
        if message["type"] == "executing" and message["data"]["node"] is None:
            break
    socket.close()
    assert (
        kinds.index("execution_start")
        < kinds.index("progress")
        < kinds.index("executed")
        < kinds.index("execution_success")
    )
    assert kinds.count("progress") == 3


def test_an_execution_error_is_reported_and_recorded(comfy: CpuComfyUI) -> None:
    made = prompt()
    made["4"]["inputs"]["ckpt_name"] = "corrupt.safetensors"
    socket = websocket.create_connection(f"{comfy.url.replace('http', 'ws')}/ws?clientId=err", timeout=5)
    socket.recv()
    prompt_id = requests.post(f"{comfy.url}/prompt", json={"prompt": made, "client_id": "err"}, timeout=5).json()[
        "prompt_id"
    ]
    messages = []
    while not messages or messages[-1]["type"] != "execution_error":
        messages.append(json.loads(socket.recv()))
    socket.close()
    error = messages[-1]["data"]
    assert (error["prompt_id"], error["node_id"], error["node_type"]) == (prompt_id, "4", "CheckpointLoaderSimple")
    assert error["exception_type"] == "safetensors_rust.SafetensorError"
    assert isinstance(error["traceback"], list)
    entry = finished(comfy, prompt_id)
    assert (entry["status"]["status_str"], entry["status"]["completed"], entry["outputs"]) == ("error", False, {})


def test_view_refuses_paths_outside_its_folders(comfy: CpuComfyUI) -> None:
    assert (
        requests.get(f"{comfy.url}/view", params={"filename": "../secret", "type": "output"}, timeout=5).status_code
        == 400
    )
    assert requests.get(f"{comfy.url}/view", params={"filename": "absent.png"}, timeout=5).status_code == 404


def test_uploaded_images_feed_load_image(comfy: CpuComfyUI) -> None:
    from support.images import png

    upload = requests.post(
        f"{comfy.url}/upload/image",
        files={"image": ("src.png", png(3), "image/png")},
        data={"type": "input"},
        timeout=5,
    )
    assert upload.json() == {"name": "src.png", "subfolder": "", "type": "input"}
    made = json.loads((ROOT / "img2img/1.0.0/workflow.json").read_text())
    made["10"]["inputs"]["image"] = "src.png"
    made["3"]["inputs"]["steps"] = 2
    prompt_id = requests.post(f"{comfy.url}/prompt", json={"prompt": made}, timeout=5).json()["prompt_id"]
    assert finished(comfy, prompt_id)["status"]["status_str"] == "success"
