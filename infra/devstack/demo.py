"""`python -m devstack.demo`: upload a sample image through the API (or, with --render, ask for a render
from the workflow registry; with --comfy, run the ComfyUI nodes' code on a generated batch; with --entity,
register a movie from the provider stand-in), print the review link, and with --approve (or --reject) post the
decision and print where the images were published (for a movie: its folder's listing and NFO) and where each
delivery went."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import requests

from devstack import custom_nodes
from devstack.cloud import ROOT, client


def sample_png(seed: int = 7, size: int = 256) -> bytes:
    """A small generated PNG, different for each seed."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (20 + seed * 13 % 200, 40, 90))
    draw = ImageDraw.Draw(image)
    for i in range(8):
        offset = (seed * 31 + i * 29) % size
        draw.ellipse((offset // 2, i * 24, offset // 2 + 80, i * 24 + 80), fill=((i * 40) % 255, 200 - i * 20, 120))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(state: dict[str, Any], data: bytes, filename: str, **fields: Any) -> dict[str, Any]:
    """Ask for a presigned POST, then post the file to it, as any client would."""
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    body = {"filename": filename, "content_type": "image/png", "size": len(data), **fields}
    answer = requests.post(f"{state['api_url']}/uploads", json=body, headers=headers, timeout=10)
    answer.raise_for_status()
    presigned = answer.json()
    files = {"file": (filename, data, "image/png")}
    requests.post(presigned["url"], data=presigned["fields"], files=files, timeout=10).raise_for_status()
    return dict(presigned)


def render(state: dict[str, Any], prompt: str, count: int, title: str) -> dict[str, Any]:
    """Ask for `count` images of `prompt` from the registry's txt2img workflow, as any client would."""
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    body = {
        "workflow": "txt2img",
        "params": {"prompt": prompt, "width": 512, "height": 512, "steps": 20},
        "count": count,
        "title": title,
        "tags": ["demo", "render"],
    }
    answer = requests.post(f"{state['api_url']}/runs", json=body, headers=headers, timeout=30)
    answer.raise_for_status()
    return dict(answer.json())


def comfy(state: dict[str, Any], title: str, count: int) -> str:
    """What a ComfyUI graph ending in the two rendergate nodes does, without ComfyUI: a generated batch (numpy,
    as VAE Decode would output it) through Upload Image, then Completion Webhook. Returns the run id."""
    import numpy as np

    nodes = custom_nodes.load().NODE_CLASS_MAPPINGS
    os.environ["RENDERGATE_API_KEY"] = state["api_key"]  # as a ComfyUI user exports them before starting it
    os.environ["RENDERGATE_COMFY_WEBHOOK_SECRET"] = state["comfy_webhook_secret"]
    height, width = np.mgrid[0:256, 0:256] / 255.0
    images = np.stack([np.dstack([height, width, np.full_like(height, i / max(count, 1))]) for i in range(count)])
    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 20}}}
    upload, webhook = nodes["RendergateUploadImage"](), nodes["RendergateCompletionWebhook"]()
    run_id, uris, gets = upload.upload(images.astype("float32"), state["api_url"], "demo", prompt=graph)["result"]
    print(f"uploaded run {run_id}: {len(uris.splitlines())} images through rendergate • Upload Image")
    completion = webhook.complete(
        uris, gets, state["api_url"], title, "library", "demo", "demo, comfy", "a gradient", 7, prompt=graph
    )
    print(f"completion sent through rendergate • Completion Webhook: {completion['result'][1]}")
    return str(run_id)


def wait_for(state: dict[str, Any], run_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = requests.get(f"{state['api_url']}/runs/{run_id}", headers=headers, timeout=10).json()
        if run.get("status") in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.3)


def entity_demo(state: dict[str, Any], approve: bool) -> int:
    """Register the stand-in's fixture movie, print its review link; with `approve`, publish its selection and
    print the folder's listing and the NFO."""
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    answer = requests.post(
        f"{state['api_url']}/entities", json={"kind": "movie", "imdb_id": "tt0133093"}, headers=headers, timeout=30
    )
    answer.raise_for_status()
    entity_id = answer.json()["entity_id"]
    print(f"entity {entity_id}: {answer.json()['folder']} ({'registered' if answer.status_code == 201 else 'known'})")
    deadline = time.monotonic() + 120
    while True:
        entity = requests.get(f"{state['api_url']}/entities/{entity_id}", headers=headers, timeout=10).json()
        review = entity["enrichment"]["review"] or {}
        if entity["status"] in ("published", "failed") or review.get("url") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if entity["status"] == "failed":
        print(json.dumps(entity["enrichment"], indent=2))
        return 1
    if review.get("url"):
        print(f"review link: {review['url']}")
    if not approve:
        return 0
    if entity["status"] != "published":
        published = requests.post(f"{state['api_url']}/entities/{entity_id}/publish", headers=headers, timeout=30)
        print(f"publish: {published.status_code}")
        while entity["status"] != "published" and time.monotonic() < deadline + 60:
            time.sleep(0.5)
            entity = requests.get(f"{state['api_url']}/entities/{entity_id}", headers=headers, timeout=10).json()
    return _print_folder(state, entity)


def _print_folder(state: dict[str, Any], entity: dict[str, Any]) -> int:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=state["moto_url"],
        region_name=state["region"],
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",  # noqa: S106 (moto accepts any credentials)
    )
    prefix = f"{entity['library_path']}/"
    listing = s3.list_objects_v2(Bucket=state["library_bucket"], Prefix=prefix).get("Contents", [])
    print(f"s3://{state['library_bucket']}/{prefix}")
    nfo = None
    for item in listing:
        print(f"  {item['Key'].removeprefix(prefix)}  {item['Size']} bytes")
        if item["Key"].endswith(".nfo"):
            nfo = item["Key"]
    if nfo is None:
        return 1
    print(s3.get_object(Bucket=state["library_bucket"], Key=nfo)["Body"].read().decode())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.demo", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".devstack")
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    parser.add_argument("--title", default="Demo render")
    parser.add_argument("--render", action="store_true", help="render images instead of uploading one")
    parser.add_argument("--comfy", action="store_true", help="run the ComfyUI nodes' code on a generated batch")
    parser.add_argument("--prompt", default="a lighthouse on a cliff at dawn, oil painting")
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--entity", action="store_true", help="register a fixture movie instead")
    args = parser.parse_args(argv)
    state_file = args.state_dir / "stack.json"
    if not state_file.exists():
        print("the devstack is not running: start it with `make run` in another terminal", file=sys.stderr)
        return 1
    state = json.loads(state_file.read_text())
    if args.entity:
        return entity_demo(state, args.approve)

    if args.comfy:
        run_id = comfy(state, args.title, args.count)
    elif args.render:
        asked = render(state, args.prompt, args.count, args.title)
        run_id = asked["run_id"]
        workflow = asked["workflow"]
        print(f"render run {run_id}: {workflow['name']} {workflow['version']} (sha256 {workflow['sha256'][:12]}…)")
        print(f"seed {asked['seed']}, eta {asked['eta_seconds']} s")
    else:
        presigned = upload(state, sample_png(int(time.time()) % 97), "demo.png", title=args.title, tags=["demo"])
        run_id = presigned["run_id"]
        print(f"uploaded run {run_id} to {presigned['key']}")
    run = wait_for(state, run_id, {"awaiting_review", "failed", "completed"}, timeout=120)
    if run["status"] != "awaiting_review":
        print(json.dumps(run, indent=2))
        return 1
    link = run["review"]["url"]
    for asset in run["assets"]:
        print(f"asset {asset['key']}: {asset['width']}x{asset['height']} sha256 {str(asset['sha256'])[:12]}…")
    print(f"review link: {link}")
    if not (args.approve or args.reject):
        return 0
    page = requests.get(link, timeout=10).text
    form = dict(re.findall(r'name=(exp|sig) value="([^"]*)"', page))
    choice = "approve" if args.approve else "reject"
    answer = requests.post(link.split("?")[0], data={**form, "all": choice, "reviewer": "demo"}, timeout=10)
    print(f"decision posted: {answer.status_code}")
    run = wait_for(state, run_id, {"completed", "rejected", "failed"})
    print(f"run {run['run_id']} is {run['status']}")
    for item in run["published"]:
        print(f"published: s3://{item['library_bucket']}/{item['library_key']}")
    for delivery in deliveries(state, run["namespace"], [item["published_event_id"] for item in run["published"]]):
        print(delivery_line(delivery))
    return 0 if run["status"] in {"completed", "rejected"} else 1


def deliveries(
    state: dict[str, Any], namespace: str, event_ids: list[str], timeout: float = 30
) -> list[dict[str, Any]]:
    """The deliveries of these events to the targets the stack has now, once each got an answer or was
    given up (or `timeout` passed)."""
    expected = len(wanting(state, "content.published.v1", namespace)) * len(event_ids)
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while expected:
        found = []
        for event_id in event_ids:
            query = {"event_id": event_id}
            answer = requests.get(f"{state['api_url']}/deliveries", params=query, headers=headers, timeout=10)
            found += answer.json()["deliveries"]
        answered = all((d["attempts"] > 0 and d["state"] != "sending") or d["state"] == "disabled" for d in found)
        if (len(found) >= expected and answered) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    return found


def wanting(state: dict[str, Any], event_type: str, namespace: str) -> list[str]:
    """The names of the stack's current targets (its SSM document, as the functions read it) that take
    `event_type` from `namespace`."""
    from rendergate.targets import parse

    ssm = client("ssm", state["moto_url"])
    document = ssm.get_parameter(Name=state["targets_param"], WithDecryption=True)["Parameter"]["Value"]
    return [target.name for target in parse(document) if target.wants(event_type, namespace)]


def delivery_line(delivery: dict[str, Any]) -> str:
    """Where one delivery went and how it stands: `delivery: studio (discord, https://discord.com) …`."""
    answer = f"HTTP {delivery['last_status']}" if delivery["last_status"] else delivery["last_outcome"] or "not sent"
    attempts = f"{delivery['attempts']} attempt{'s' if delivery['attempts'] != 1 else ''}"
    line = f"delivery: {delivery['target']} ({delivery['kind']}, {delivery['target_host']}) {delivery['event_type']}"
    line += f" -> {delivery['state']} ({answer}, {attempts})"
    if delivery["state"] == "pending":
        line += f", next attempt at {delivery['next_attempt_at']}"
    return line


if __name__ == "__main__":
    sys.exit(main())
