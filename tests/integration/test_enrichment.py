"""Enrichment seen from outside: duplicates across the library flagged on the review page, previews,
selection pre-checked for the reviewer, and collection locks through the API."""

from __future__ import annotations

import json
import re

import requests

from support.devstack import DevStack
from support.images import photo, save
from support.waiting import eventually


def test_a_near_duplicate_upload_is_flagged_on_its_review_page(devstack: DevStack) -> None:
    picture = photo(101, (900, 700))
    first = devstack.wait_for(devstack.upload(save(picture, "PNG"), "original.png", title="Dup one"), "awaiting_review")
    copy = save(picture.resize((450, 350)), "JPEG", quality=70)
    second_id = devstack.upload(copy, "copy.jpg", content_type="image/jpeg", title="Dup two")
    second = devstack.wait_for(second_id, "awaiting_review")

    [asset] = second["assets"]
    assert asset["duplicate"]["of"] == first["assets"][0]["asset_id"]
    assert asset["duplicate"]["kind"] == "near"
    assert asset["selected"] is False

    page = requests.get(second["review"]["url"], timeout=10).text
    assert f"near-duplicate (distance {asset['duplicate']['distance']}) of asset" in page
    assert first["assets"][0]["asset_id"] in page
    checked = dict(re.findall(r'name="asset-(\w+)" value="(approve|reject)" checked', page))
    assert checked == {asset["asset_id"]: "reject"}  # not selected: the reviewer starts from reject


def test_the_same_bytes_uploaded_twice_share_one_cached_copy(devstack: DevStack) -> None:
    data = save(photo(102, (640, 480)), "PNG")
    first = devstack.wait_for(devstack.upload(data, "twice.png", title="Twice A"), "awaiting_review")
    second = devstack.wait_for(devstack.upload(data, "twice.png", title="Twice B"), "awaiting_review")
    assert second["assets"][0]["duplicate"] == {"of": first["assets"][0]["asset_id"], "kind": "exact", "distance": 0}
    sha = first["assets"][0]["sha256"]
    listing = devstack.aws("s3").list_objects_v2(Bucket=devstack.state["media_bucket"], Prefix="cache/")
    assert [o["Key"] for o in listing["Contents"] if sha in o["Key"]] == [first["assets"][0]["cache_key"]]


def test_locks_are_set_through_the_api_and_respected(devstack: DevStack) -> None:
    url = f"{devstack.api_url}/collections/library/locked-set/locks"
    assert requests.put(url, json={"locked_types": ["nonsense"]}, headers=devstack.auth, timeout=10).status_code == 400
    assert requests.put(url, json={"locked_types": ["poster"]}, timeout=10).status_code == 401
    answer = requests.put(url, json={"locked_types": ["poster"]}, headers=devstack.auth, timeout=10)
    assert answer.json() == {"collection_id": "library/locked-set", "locked_types": ["poster"]}

    run_id = devstack.upload(save(photo(103, (1000, 1500)), "PNG"), "p.png", title="Locked set", asset_type="poster")
    [asset] = devstack.wait_for(run_id, "awaiting_review")["assets"]
    assert asset["selected"] is False
    assert asset["selection_reason"] == "type_locked: poster is locked"


def test_auto_approve_publishes_only_the_selected(devstack: DevStack) -> None:
    picture = photo(104, (800, 600))
    devstack.wait_for(devstack.upload(save(picture, "PNG"), "seen.png", title="Seen before"), "awaiting_review")
    again = devstack.upload(
        save(picture, "WEBP", quality=70), "again.webp", content_type="image/webp", auto_approve=True
    )
    run = devstack.wait_for(again, "rejected")
    assert run["status"] == "rejected"  # its only asset duplicates a selected one, so nothing was approved
    assert run["assets"][0]["status"] == "discarded"


def test_state_transitions_do_not_grow_with_the_number_of_images(devstack: DevStack) -> None:
    s3, sfn = devstack.aws("s3"), devstack.aws("stepfunctions")
    histories = {}
    for count in (1, 6):
        run_id = devstack.presign(f"batch-{count}.png", 10, title=f"Batch of {count}")["run_id"]
        objects = []
        for i in range(count):
            key = f"renders/{run_id}/{i}.png"
            s3.put_object(Bucket=devstack.state["media_bucket"], Key=key, Body=save(photo(200 + 10 * count + i), "PNG"))
            objects.append({"bucket": devstack.state["media_bucket"], "key": key})
        execution = sfn.start_execution(
            stateMachineArn=devstack.state["state_machine_arn"],
            name=f"batch-{run_id}",
            input=json.dumps(
                {
                    "run_id": run_id,
                    "source": "upload",
                    "objects": objects,
                    "auto_approve": True,
                    "review_timeout_seconds": 60,
                }
            ),
        )["executionArn"]
        assert devstack.wait_for(run_id, "completed")["status"] == "completed"

        def ended(arn: str = execution) -> None:  # the run is completed inside Publish, before the execution ends
            assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"

        eventually(ended, timeout=30)
        histories[count] = [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]
        assert len(devstack.run(run_id)["published"]) == count
    assert histories[1] == histories[6]
