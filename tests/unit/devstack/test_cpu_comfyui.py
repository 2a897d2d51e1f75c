"""The CPU renderer answers in ComfyUI's shapes: /prompt, its 400 bodies, /history, /view, /ws messages;
it keeps ComfyUI's awkward parts (one socket per client id, the reconnect greeting, partly valid prompts);
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
from support.comfyui import BROKEN_OUTPUT, BROKEN_SAMPLER, Halfway, partly_valid
from support.waiting import eventually

GRAPH = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())


@pytest.fixture
def comfy(renderer: CpuComfyUI) -> CpuComfyUI:
    return renderer


def connect(comfy: CpuComfyUI, client_id: str) -> Any:
    return websocket.create_connection(f"{comfy.url.replace('http', 'ws')}/ws?clientId={client_id}", timeout=5)


def queue(comfy: CpuComfyUI, made: dict[str, Any], client_id: str) -> str:
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": made, "client_id": client_id}, timeout=5)
    return str(answer.json()["prompt_id"])


def messages_until(socket: Any, last: str) -> list[dict[str, Any]]:
    """Messages up to and including `executing` with no node (a prompt's end) or `last`."""
    seen = []
    while True:
        message = json.loads(socket.recv())
        seen.append(message)
        data = message["data"]
        if message["type"] == last or (message["type"] == "executing" and data.get("node") is None):
            return seen


def drain(socket: Any) -> list[dict[str, Any]]:
    """The messages that arrive until the socket has been quiet for a moment."""
    socket.settimeout(0.3)
    seen = []
    try:
        while True:
            seen.append(json.loads(socket.recv()))
    except websocket.WebSocketTimeoutException:
        return seen


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


def test_an_unknown_node_type_is_an_invalid_prompt_as_in_comfyui_0_8(comfy: CpuComfyUI) -> None:
    made = prompt()
    made["3"]["class_type"] = "MagicSampler"
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": made}, timeout=5)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because node MagicSampler does not exist.",
            "details": "Node ID '#3'",
            "extra_info": {},
        },
        "node_errors": {},
    }
    del made["3"]["class_type"]
    body = requests.post(f"{comfy.url}/prompt", json={"prompt": made}, timeout=5).json()
    assert (body["error"]["type"], body["error"]["message"]) == (
        "invalid_prompt",
        "Cannot execute because a node is missing the class_type property.",
    )


def test_a_partly_valid_prompt_is_queued_with_its_valid_outputs_alone(comfy: CpuComfyUI) -> None:
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": partly_valid(prompt())}, timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    node = body["node_errors"][BROKEN_SAMPLER]
    assert (node["class_type"], node["dependent_outputs"]) == ("KSampler", [BROKEN_OUTPUT])
    assert node["errors"][0]["details"].startswith("sampler_name: 'warp' not in [")
    entry = finished(comfy, body["prompt_id"])
    assert entry["prompt"][4] == ["9"]  # the outputs it executes
    assert list(entry["outputs"]) == ["9"] and entry["status"]["status_str"] == "success"


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


def test_a_client_reconnecting_mid_prompt_is_told_the_node_running_now(comfy: CpuComfyUI, halfway: Halfway) -> None:
    prompt_id = queue(comfy, prompt(), "painter")
    halfway.wait_until_reached(prompt_id)
    again, other = connect(comfy, "painter"), connect(comfy, "bystander")
    greeting = json.loads(again.recv())
    assert (greeting["type"], greeting["data"]["sid"]) == ("status", "painter")
    assert json.loads(again.recv()) == {"type": "executing", "data": {"node": "3"}}  # no prompt id: not the end
    assert json.loads(other.recv())["data"]["sid"] == "bystander"
    halfway.release(prompt_id)
    heard = messages_until(again, "never")
    assert heard[-1]["data"] == {"node": None, "prompt_id": prompt_id}
    assert any(m["type"] == "progress" for m in heard)
    assert {m["type"] for m in drain(other)} <= {"status"}  # another client hears only the queue's status
    for socket in (again, other):
        socket.close()


def test_one_socket_per_client_id_and_closing_the_replaced_one_drops_the_id(comfy: CpuComfyUI) -> None:
    first, second = connect(comfy, "shared"), connect(comfy, "shared")
    first.recv(), second.recv()  # the greetings
    one = queue(comfy, prompt("one"), "shared")
    heard = messages_until(second, "never")
    assert any(m["type"] == "progress" and m["data"]["prompt_id"] == one for m in heard)
    assert drain(first) == []  # replaced: ComfyUI sends it nothing more, not even the queue's status
    first.close()  # websocket_handler's finally drops the id, though the second socket holds it now
    eventually(lambda: _not_registered(comfy, "shared"))
    two = queue(comfy, prompt("two"), "shared")
    finished(comfy, two)
    assert drain(second) == []
    second.close()


def test_the_end_of_a_prompt_is_announced_once_the_history_has_it(comfy: CpuComfyUI) -> None:
    socket = connect(comfy, "reader")
    socket.recv()
    prompt_id = queue(comfy, prompt(), "reader")
    messages_until(socket, "never")
    history = requests.get(f"{comfy.url}/history/{prompt_id}", timeout=5).json()
    queued = requests.get(f"{comfy.url}/queue", timeout=5).json()
    socket.close()
    assert prompt_id in history and prompt_id not in json.dumps(queued)


def _not_registered(comfy: CpuComfyUI, client_id: str) -> None:
    assert client_id not in comfy.sockets
