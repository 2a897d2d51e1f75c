"""rendergate • Completion Webhook: what it sends is a Standard Webhooks message the reference library accepts;
it completes the run the Upload Image node made; 5xx answers and timeouts are retried with backoff under the
same webhook-id, so rendergate acts once; a refusal is a readable node error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from standardwebhooks.webhooks import Webhook

from support.aws import UNIT_ENV
from support.faults import FlakyFront
from support.local_api import local_api
from support.stages import started

SECRET = UNIT_ENV["RENDERGATE_COMFY_WEBHOOK_SECRET"]
GRAPH = {"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20}}}


@pytest.fixture
def client(nodes: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The node package's HTTP client, with backoff and timeouts short enough for a test."""
    module: ModuleType = __import__(f"{nodes.__name__}.client", fromlist=["BACKOFF_SECONDS"])
    monkeypatch.setattr(module, "BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr(module, "TIMEOUT", (2, 1))
    yield module


def run_node(nodes: ModuleType, name: str, **inputs: Any) -> tuple[Any, ...]:
    node = nodes.NODE_CLASS_MAPPINGS[name]()
    output: dict[str, Any] = getattr(node, node.FUNCTION)(**inputs)
    return tuple(output["result"])


def uploaded(nodes: ModuleType, api_url: str) -> tuple[str, str, str]:
    images = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    return run_node(nodes, "RendergateUploadImage", images=images, api_url=api_url, filename_prefix="neon")  # type: ignore[return-value]


def complete(nodes: ModuleType, api_url: str, s3_uri: str, presigned_get: str, **inputs: Any) -> tuple[Any, ...]:
    fields = {"title": "Neon city", "namespace": "pmoves", "author": "DARKXSIDE", "tags": "neon, city ,"}
    return run_node(
        nodes,
        "RendergateCompletionWebhook",
        s3_uri=s3_uri,
        presigned_get=presigned_get,
        api_url=api_url,
        **{**fields, **inputs},
    )


def test_the_nodes_signature_is_one_the_reference_library_verifies(nodes: ModuleType) -> None:
    client = __import__(f"{nodes.__name__}.client", fromlist=["signature"])
    body = json.dumps({"s3_uri": "s3://b/k", "title": "ünïcode"})
    now = int(datetime.now(UTC).timestamp())
    headers = {"webhook-id": "msg_x", "webhook-timestamp": str(now)}
    headers["webhook-signature"] = client.signature(SECRET, "msg_x", now, body)
    Webhook(SECRET).verify(body, headers)  # raises unless valid
    assert headers["webhook-signature"] == Webhook(SECRET).sign("msg_x", datetime.fromtimestamp(now, UTC), body)


def test_upload_then_completion_makes_one_comfy_run(aws: None, nodes: ModuleType, node_env: None) -> None:
    with local_api() as api_url:
        run_id, uris, gets = uploaded(nodes, api_url)
        assert complete(nodes, api_url, uris, gets, positive_prompt="neon city", seed=42, prompt=GRAPH) == (
            run_id,
            "enriching",
        )
    execution = started()[run_id]
    assert (execution["source"], execution["title"], execution["tags"]) == ("comfy", "Neon city", ["neon", "city"])
    assert [f"s3://media-bucket/{o['key']}" for o in execution["objects"]] == uris.splitlines()
    from rendergate.tables import Run

    run = Run.get(run_id)
    canonical = json.dumps(GRAPH, sort_keys=True, separators=(",", ":"))
    assert (run.prompt, int(run.seed), run.author) == ("neon city", 42, "DARKXSIDE")
    assert run.workflow_sha256 == __import__("hashlib").sha256(canonical.encode()).hexdigest()


def test_5xx_answers_are_retried_under_the_same_webhook_id(
    aws: None, nodes: ModuleType, node_env: None, client: ModuleType
) -> None:
    with local_api() as api_url, FlakyFront(api_url, 503, 502) as front:
        run_id, uris, gets = uploaded(nodes, api_url)
        assert complete(nodes, front.url, uris, gets) == (run_id, "enriching")
    assert len(front.seen) == 3
    assert len({attempt["webhook-id"] for attempt in front.seen}) == 1
    assert list(started()) == [run_id]


def test_a_timeout_is_retried_and_the_late_first_attempt_changes_nothing(
    aws: None, nodes: ModuleType, node_env: None, client: ModuleType
) -> None:
    with local_api() as api_url, FlakyFront(api_url, 1.5) as front:  # the client waits 1 s for an answer
        run_id, uris, gets = uploaded(nodes, api_url)
        assert complete(nodes, front.url, uris, gets) == (run_id, "enriching")
        assert front.idle.acquire(timeout=10) and front.idle.acquire(timeout=10)  # the retry, then the late one
    ids = [attempt["webhook-id"] for attempt in front.seen]
    assert len(ids) == 2 and len(set(ids)) == 1
    assert front.answered == [202, 200]  # the late first attempt came as a replay
    assert list(started()) == [run_id]


def test_a_refusal_is_not_retried_and_reads_as_a_node_error(
    aws: None, nodes: ModuleType, node_env: None, client: ModuleType
) -> None:
    with local_api() as api_url, FlakyFront(api_url) as front:
        _, uris, gets = uploaded(nodes, api_url)
        elsewhere = uris.replace("s3://media-bucket/", "s3://outputs/")
        with pytest.raises(RuntimeError, match="rendergate refused sending the completion: 400 BadRequest: s3_uri"):
            complete(nodes, front.url, elsewhere, gets)
    assert len(front.seen) == 1


def test_a_wrong_secret_is_refused_as_a_401(aws: None, nodes: ModuleType, node_env: None, monkeypatch: Any) -> None:
    monkeypatch.setenv("STUDIO_SECRET", "whsec_" + "c29tZW9uZSBlbHNlJ3M=")
    with local_api() as api_url:
        _, uris, gets = uploaded(nodes, api_url)
        with pytest.raises(RuntimeError, match="401 Unauthorized"):
            complete(nodes, api_url, uris, gets, secret_env="STUDIO_SECRET")
    assert started() == {}
