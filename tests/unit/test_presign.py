"""Presigned uploads: what the policy and the signature pin, and what is refused."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rendergate.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from support.owners import ADMIN


def presign(**body: Any) -> dict[str, Any]:
    from rendergate import ingest

    return ingest.presign_upload({"filename": "photo.png", "content_type": "image/png", "size": 2048, **body}, ADMIN)


def test_post_policy_pins_key_type_and_length_range(aws: None) -> None:
    answer = presign()
    policy = json.loads(base64.b64decode(answer["fields"]["policy"]))
    conditions = policy["conditions"]
    assert answer["key"] == f"incoming/{answer['run_id']}/photo.png"
    assert {"key": answer["key"]} in conditions
    assert {"bucket": "media-bucket"} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 2048] in conditions
    assert answer["fields"]["Content-Type"] == "image/png"
    assert answer["method"] == "POST"


def test_urls_expire_within_fifteen_minutes(aws: None) -> None:
    from datetime import UTC, datetime

    answer = presign()
    policy = json.loads(base64.b64decode(answer["fields"]["policy"]))
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 900
    put = presign(method="PUT")
    assert int(parse_qs(urlsplit(put["url"]).query)["X-Amz-Expires"][0]) <= 900


def test_put_signs_the_content_type_and_creates_the_object_only_once(aws: None) -> None:
    answer = presign(method="PUT", content_type="image/webp", filename="x.webp")
    query = parse_qs(urlsplit(answer["url"]).query)
    assert {"content-type", "if-none-match"} <= set(query["X-Amz-SignedHeaders"][0].split(";"))
    assert answer["headers"] == {"Content-Type": "image/webp", "If-None-Match": "*"}
    assert urlsplit(answer["url"]).path.endswith(f"incoming/{answer['run_id']}/x.webp")


def test_presign_creates_a_queued_run(aws: None) -> None:
    from rendergate.tables import Run

    answer = presign(title="Sunset", tags=["sky"], namespace="creators")
    run = Run.get(answer["run_id"])
    assert (run.status, run.title, run.tags, run.namespace) == ("queued", "Sunset", ["sky"], "creators")


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ({"content_type": "image/gif"}, UnsupportedMediaType, "content_type"),
        ({"content_type": "text/html"}, UnsupportedMediaType, "content_type"),
        ({"size": 2 * 1024 * 1024}, PayloadTooLarge, "over the limit"),
        ({"size": 0}, BadRequest, "size"),
        ({"size": "12"}, BadRequest, "size"),
        ({"filename": "../etc/passwd"}, BadRequest, "path parts"),
        ({"filename": "dir/photo.png"}, BadRequest, "path parts"),
        ({"filename": "dir\\photo.png"}, BadRequest, "path parts"),
        ({"filename": "bell\x07.png"}, BadRequest, "control characters"),
        ({"filename": "new\nline.png"}, BadRequest, "control characters"),
        ({"filename": "rtl\u202egnp.exe"}, BadRequest, "control characters"),
        ({"filename": ""}, BadRequest, "filename"),
        ({"filename": ".."}, BadRequest, "path parts"),
        ({"bucket": "other-bucket"}, BadRequest, "'bucket' cannot be chosen"),
        ({"key": "elsewhere/photo.png"}, BadRequest, "'key' cannot be chosen"),
        ({"prefix": "published/"}, BadRequest, "'prefix' cannot be chosen"),
        ({"namespace": "Not Valid!"}, BadRequest, "namespace"),
        ({"method": "GET"}, BadRequest, "method"),
        ({"surprise": 1}, BadRequest, "unknown field"),
        ({"filename": "photo.png.exe"}, BadRequest, "filename must end in .png for image/png"),
        ({"filename": "page.html"}, BadRequest, "filename must end in .png"),
        ({"filename": "vector.svg"}, BadRequest, "filename must end in .png"),
        ({"filename": "shell.php"}, BadRequest, "filename must end in .png"),
        ({"filename": ".htaccess"}, BadRequest, "filename must end in .png"),
        ({"filename": "noextension"}, BadRequest, "filename must end in .png"),
        ({"filename": "photo.jpg"}, BadRequest, "filename must end in .png"),
        (
            {"filename": "photo.png", "content_type": "image/jpeg"},
            BadRequest,
            "must end in .jpg or .jpeg for image/jpeg",
        ),
        ({"filename": "photo.png", "content_type": "image/webp"}, BadRequest, "must end in .webp for image/webp"),
    ],
)
def test_bad_requests_are_refused_with_a_message(aws: None, body: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        presign(**body)


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("a.png", "image/png"),
        ("A.PNG", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.JPEG", "image/jpeg"),
        ("a.WebP", "image/webp"),
    ],
)
def test_the_extension_matches_the_declared_type_in_any_case(aws: None, filename: str, content_type: str) -> None:
    assert presign(filename=filename, content_type=content_type)["key"].endswith(f"/{filename}")


def test_unusual_but_valid_filenames_are_kept(aws: None) -> None:
    answer = presign(filename="My Photo (1) + 100% — 写真.png")
    assert answer["key"].endswith("/My Photo (1) + 100% — 写真.png")
