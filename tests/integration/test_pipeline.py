"""The walking skeleton on the local stack, through real HTTP: upload → enrich → review → publish."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import requests

from rendergate.signing import sign_link
from support.devstack import LINK_SIGNING_KEY, DevStack
from support.events import s3_put
from support.images import png
from support.waiting import eventually


def test_upload_approve_publish(devstack: DevStack, bus_events: Any) -> None:
    data = png(1, (160, 120))
    run_id = devstack.upload(data, "Sunset Över Sea (1).png", title="Sunset over sea", tags=["sky"], namespace="alice")
    run = devstack.wait_for(run_id, "awaiting_review")

    assert run["status"] == "awaiting_review"
    [asset] = run["assets"]
    assert (asset["format"], asset["width"], asset["height"], asset["bytes"]) == ("PNG", 160, 120, len(data))
    assert len(asset["sha256"]) == 64 and len(asset["phash"]) == 16
    assert requests.get(asset["original_url"], timeout=10).content == data
    assert requests.get(asset["preview_url"], timeout=10).content[8:12] == b"WEBP"
    assert asset["selected"] and asset["duplicate"] is None and 0 < asset["score"] <= 100
    assert run["review"]["status"] == "pending"
    outbox = [json.loads(line) for line in Path(devstack.state["outbox"]).read_text().splitlines()]
    assert run["review"]["url"] in [message["url"] for message in outbox]

    decided = devstack.decide(run["review"]["url"], **{f"asset-{asset['asset_id']}": "approve", "reviewer": "Alice"})
    assert decided.status_code == 200
    assert "your decision is recorded" in decided.text

    run = devstack.wait_for(run_id, "completed")
    assert run["status"] == "completed"
    [item] = run["published"]
    assert item["library_key"] == "alice/sunset-over-sea/Sunset Över Sea (1).png"
    copied = devstack.aws("s3").get_object(Bucket=item["library_bucket"], Key=item["library_key"])
    assert copied["Body"].read() == data
    assert copied["Metadata"]["run-id"] == run_id

    [audit] = devstack.audit_rows(run_id)
    assert audit["status"] == "published"
    assert audit["reviewer"] == "Alice"
    assert audit["artifact_uri"].endswith(f"incoming/{run_id}/Sunset Över Sea (1).png")
    assert audit["artifact_path"] == f"s3://{item['library_bucket']}/{item['library_key']}"
    assert audit["published_event_id"] == item["published_event_id"]
    for column in ("approval_event_ts", "reviewed_at", "published_at", "processed_at", "updated_at", "namespace"):
        assert audit[column], column

    def published_event() -> dict[str, Any]:
        found = [
            e
            for e in bus_events()
            if e["detail-type"] == "content.published.v1" and e["detail"]["correlationid"] == run_id
        ]
        assert found
        return found[0]

    envelope = eventually(published_event)["detail"]
    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == item["published_event_id"]
    assert envelope["data"]["library_key"] == item["library_key"]
    assert {"source", "type", "time", "subject"} <= set(envelope)


def test_reject_discards_and_publishes_nothing(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review(title="Not this one")
    assert devstack.decide(run["review"]["url"], all="reject", reviewer="Bob").status_code == 200

    run = devstack.wait_for(run["run_id"], "rejected")
    assert run["status"] == "rejected"
    assert run["published"] == []
    [asset] = run["assets"]
    assert asset["status"] == "discarded"
    tags = devstack.aws("s3").get_object_tagging(Bucket=devstack.state["media_bucket"], Key=asset["key"])["TagSet"]
    assert {"Key": "rendergate-discard", "Value": "true"} in tags
    assert devstack.library_keys("library/not-this-one/") == []


def test_auto_approve_skips_the_review(devstack: DevStack) -> None:
    run_id = devstack.upload(png(5), "auto.png", auto_approve=True, title="Auto")
    run = devstack.wait_for(run_id, "completed")
    assert run["status"] == "completed"
    assert run["review"] is None
    assert devstack.library_keys("library/auto/") == ["library/auto/auto.png"]


def test_a_duplicate_s3_event_makes_one_run(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review(title="Twice")
    notification = json.dumps(s3_put(devstack.state["media_bucket"], quote_plus(run["assets"][0]["key"], safe="/")))
    sqs = devstack.aws("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=devstack.state["ingest_queue_url"], MessageBody=notification)

    devstack.ingest_idle()
    assert [e["name"] for e in devstack.executions()].count(run["run_id"]) == 1
    again = devstack.run(run["run_id"])
    assert again["status"] == "awaiting_review"
    assert len(again["assets"]) == 1
    assert again["review"]["review_id"] == run["review"]["review_id"]


def test_a_file_that_is_not_an_image_fails_the_run_with_the_reason(devstack: DevStack) -> None:
    run_id = devstack.upload(b"<html><script>alert(1)</script></html>", "sneaky.png")
    run = devstack.wait_for(run_id, "failed")
    assert run["status"] == "failed"
    assert run["error"]["name"] == "ImageRejected"
    assert "not a PNG, JPEG, WebP or GIF image" in run["error"]["message"]
    [asset] = run["assets"]
    assert asset["status"] == "rejected"
    assert asset["rejection"]["code"] == "unsupported_type"
    [execution] = [e for e in devstack.executions() if e["name"] == run_id]
    assert execution["status"] == "FAILED"


def test_get_and_head_of_the_review_link_decide_nothing(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review()
    link = run["review"]["url"]
    for _ in range(2):
        assert requests.head(link, timeout=10).status_code == 200
        page = requests.get(link, timeout=10)
        assert page.status_code == 200
        assert "<form id=decision method=post" in page.text
    time.sleep(1)
    still = devstack.run(run["run_id"])
    assert (still["status"], still["review"]["status"]) == ("awaiting_review", "pending")
    assert devstack.decide(link, all="approve").status_code == 200
    assert devstack.wait_for(run["run_id"], "completed")["status"] == "completed"


def test_a_replayed_decision_has_no_second_effect(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review(title="Only once")
    link = run["review"]["url"]
    form = devstack.review_form(link)
    first = requests.post(link.split("?")[0], data={**form, "all": "approve", "reviewer": "Ann"}, timeout=10)
    assert first.status_code == 200
    devstack.wait_for(run["run_id"], "completed")

    replay = requests.post(link.split("?")[0], data={**form, "all": "approve", "reviewer": "Ann"}, timeout=10)
    change = requests.post(link.split("?")[0], data={**form, "all": "reject", "reviewer": "Eve"}, timeout=10)
    assert (replay.status_code, change.status_code) == (409, 409)
    assert "Already decided" in change.text

    time.sleep(1)
    after = devstack.run(run["run_id"])
    assert after["status"] == "completed"
    assert len(after["published"]) == 1
    assert len(devstack.audit_rows(run["run_id"])) == 1
    assert devstack.audit_rows(run["run_id"])[0]["reviewer"] == "Ann"
    assert devstack.library_keys("library/only-once/") == ["library/only-once/picture.png"]
    assert "This review was already decided" in requests.get(link, timeout=10).text


def test_tampered_unknown_and_expired_links_are_refused(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review()
    link = run["review"]["url"]
    review_id = run["review"]["review_id"]
    base = link.split("?")[0]
    form = devstack.review_form(link)
    key = LINK_SIGNING_KEY.encode()

    tampered_sig = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    longer = f"{base}?exp={form['exp']}9&sig={form['sig']}"
    past = int(time.time()) - 60
    expired = f"{base}?exp={past}&sig={sign_link(key, review_id, past)}"
    future = int(time.time()) + 600
    unknown = (
        f"{devstack.api_url}/reviews/nosuchreview0000?exp={future}&sig={sign_link(key, 'nosuchreview0000', future)}"
    )

    for url, status in ((tampered_sig, 403), (longer, 403), (expired, 410), (unknown, 404)):
        page = requests.get(url, timeout=10)
        assert page.status_code == status, url
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>" in page.text
    posts = [
        (base, {"exp": form["exp"], "sig": "forged"}, 403),
        (base, {"exp": str(past), "sig": sign_link(key, review_id, past)}, 410),
        (unknown.split("?")[0], {"exp": str(future), "sig": sign_link(key, "nosuchreview0000", future)}, 404),
    ]
    for url, fields, status in posts:
        assert requests.post(url, data={**fields, "all": "approve"}, timeout=10).status_code == status

    still = devstack.run(run["run_id"])
    assert (still["status"], still["review"]["status"]) == ("awaiting_review", "pending")


def test_an_incomplete_decision_is_refused_and_changes_nothing(devstack: DevStack, awaiting_review: Any) -> None:
    run = awaiting_review()
    answer = devstack.decide(run["review"]["url"], reviewer="Kim")  # no choice for the asset
    assert answer.status_code == 400
    assert devstack.run(run["run_id"])["review"]["status"] == "pending"


def test_the_api_refuses_without_the_key(devstack: DevStack) -> None:
    body = {"filename": "a.png", "content_type": "image/png", "size": 10}
    answer = requests.post(f"{devstack.api_url}/uploads", json=body, timeout=10)
    # API Gateway answers itself: no key is a 401, a key the authoriser refuses a 403
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthorized"})
    assert requests.get(f"{devstack.api_url}/runs", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    answer = requests.get(f"{devstack.api_url}/runs", headers=wrong, timeout=10)
    assert (answer.status_code, answer.json()) == (403, {"message": "Forbidden"})


def test_runs_are_listed_newest_first(devstack: DevStack) -> None:
    first = devstack.presign("one.png", 10)["run_id"]
    second = devstack.presign("two.png", 10)["run_id"]
    listing = requests.get(f"{devstack.api_url}/runs?limit=2", headers=devstack.auth, timeout=10).json()
    assert [r["run_id"] for r in listing["runs"]] == [second, first]
    assert listing["next_cursor"]
