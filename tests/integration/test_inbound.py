"""More ways in, on the local stack through real HTTP: a batch upload with one file missing, reviewed with
what arrived; an outside generator's run filled with appended images and closed, reviewed on one page with any
subset approved."""

from __future__ import annotations

from typing import Any

import requests

from support.devstack import DevStack
from support.images import png


def post(devstack: DevStack, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(f"{devstack.api_url}{path}", json=body, headers=devstack.auth, timeout=30)


def send(target: dict[str, Any], data: bytes) -> None:
    """Upload one file to its presigned target, POST form or PUT, as a client would."""
    if "headers" in target:
        sent = requests.put(target["url"], data=data, headers=target["headers"], timeout=10)
    else:
        files = {"file": (target["filename"], data, "image/png")}
        sent = requests.post(target["url"], data=target["fields"], files=files, timeout=10)
    assert sent.status_code in (200, 204), sent.text


def test_a_batch_with_one_file_missing_is_reviewed_with_what_arrived(devstack: DevStack) -> None:
    images = {name: png(seed, (96, 64)) for seed, name in enumerate(["a.png", "b.png", "never.png"], start=40)}
    files = [{"filename": name, "content_type": "image/png", "size": len(data)} for name, data in images.items()]
    answer = post(devstack, "/uploads", {"files": files, "title": "Batch of three"})
    assert answer.status_code == 201, answer.text
    batch = answer.json()
    for target in batch["files"][:2]:
        send(target, images[target["filename"]])

    completed = post(devstack, f"/runs/{batch['run_id']}/complete")
    assert completed.status_code == 202, completed.text
    run = devstack.wait_for(batch["run_id"], "awaiting_review")
    assert run["status"] == "awaiting_review", run
    assert sorted(a["key"].rsplit("/", 1)[1] for a in run["assets"]) == ["a.png", "b.png"]
    assert {f["filename"]: f["status"] for f in run["files"]} == {
        "a.png": "arrived",
        "b.png": "arrived",
        "never.png": "missing",
    }

    assert devstack.decide(run["review"]["url"], all="approve").status_code == 200
    done = devstack.wait_for(batch["run_id"], "completed")
    assert sorted(item["library_key"] for item in done["published"]) == [
        "library/batch-of-three/a.png",
        "library/batch-of-three/b.png",
    ]


def test_an_external_run_is_reviewed_on_one_page_and_any_subset_is_published(devstack: DevStack) -> None:
    registered = post(
        devstack,
        "/runs",
        {"source": "external", "title": "Foxes", "prompt": "a red fox", "params": {"count": 3}, "author": "n8n"},
    )
    assert registered.status_code == 201, registered.text
    run_id = registered.json()["run_id"]
    direct = f"incoming/{run_id}/fox-0.png"  # the generator's own upload, with its own storage credentials
    devstack.aws("s3").put_object(
        Bucket=devstack.state["media_bucket"], Key=direct, Body=png(50), ContentType="image/png"
    )
    appended = post(
        devstack,
        f"/runs/{run_id}/assets",
        {
            "keys": [direct],
            "method": "PUT",
            "files": [
                {"filename": f"fox-{i}.png", "content_type": "image/png", "size": len(png(50 + i))} for i in (1, 2)
            ],
        },
    )
    assert appended.status_code == 201, appended.text
    for target in appended.json()["uploads"]:
        send(target, png(50 + int(target["filename"][4])))

    assert post(devstack, f"/runs/{run_id}/complete").status_code == 202
    run = devstack.wait_for(run_id, "awaiting_review")
    assert run["status"] == "awaiting_review", run
    by_name = {a["key"].rsplit("/", 1)[1]: a["asset_id"] for a in run["assets"]}
    assert sorted(by_name) == ["fox-0.png", "fox-1.png", "fox-2.png"]
    page = requests.get(run["review"]["url"], timeout=10).text
    assert all(f'name="asset-{asset_id}"' in page for asset_id in by_name.values())  # one page, every image

    late = post(
        devstack,
        f"/runs/{run_id}/assets",
        {"files": [{"filename": "fox-3.png", "content_type": "image/png", "size": 10}]},
    )
    assert (late.status_code, late.json()["error"]) == (409, "Conflict")

    choices = {
        f"asset-{by_name['fox-0.png']}": "reject",
        f"asset-{by_name['fox-1.png']}": "approve",
        f"asset-{by_name['fox-2.png']}": "reject",
    }
    assert devstack.decide(run["review"]["url"], **choices).status_code == 200
    done = devstack.wait_for(run_id, "completed")
    assert [item["library_key"] for item in done["published"]] == ["library/foxes/fox-1.png"]
    assert done["generation"]["prompt"] == "a red fox" and done["author"] == "n8n"
    assert devstack.library_keys("library/foxes/") == ["library/foxes/fox-1.png"]
