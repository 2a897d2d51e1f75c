"""The local stack as a user runs it: `python -m devstack` in its own process, reached over loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]
LINK_SIGNING_KEY = "integration-link-signing-key"  # known to the tests, to sign links they craft
TERMINAL = {"completed", "rejected", "failed", "cancelled", "expired"}


def devstack_command(
    module: str, state_dir: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`python -m devstack.<module>` as the Makefile runs it (make demo, make replay), in a clean environment."""
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", f"devstack.{module}", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PYTHONPATH": f"{ROOT / 'infra'}:{ROOT / 'layers/common/python'}", "PATH": "/usr/bin:/bin"},
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_devstack(
    state_dir: Path, parameters: dict[str, str] | None = None, env: dict[str, str] | None = None
) -> Iterator[DevStack]:
    """Start the devstack on free ports (its CPU renderer too) and stop it afterwards."""
    args = [sys.executable, "-m", "devstack", "--moto-port", str(free_port()), "--api-port", str(free_port())]
    args += ["--comfyui-port", "0", "--providers-port", "0"]
    args += ["--state-dir", str(state_dir)]
    for key, value in (parameters or {}).items():
        args += ["--parameter", f"{key}={value}"]
    # The stack's own settings come from the template, as in AWS; nothing leaks in from the test process.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RENDERGATE_", "AWS_", "POWERTOOLS_"))}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/common/python"), str(ROOT / "infra")])
    environment["RENDERGATE_LINK_SIGNING_KEY"] = LINK_SIGNING_KEY
    environment.update(env or {})
    log = (state_dir / "devstack.log").open("w")
    process = subprocess.Popen(args, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    state_file = state_dir / "stack.json"
    try:
        deadline = time.monotonic() + 90
        while not state_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the devstack did not start:\n{(state_dir / 'devstack.log').read_text()[-4000:]}")
            time.sleep(0.2)
        yield DevStack(json.loads(state_file.read_text()))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class DevStack:
    """A client of the running stack: its HTTP API, and moto for looking at what landed where."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.api_url: str = state["api_url"]
        self.auth = {"Authorization": f"Bearer {state['api_key']}"}

    def aws(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.state["moto_url"],
            region_name=self.state["region"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def presign(self, filename: str, size: int, content_type: str = "image/png", **fields: Any) -> dict[str, Any]:
        body = {"filename": filename, "content_type": content_type, "size": size, **fields}
        answer = requests.post(f"{self.api_url}/uploads", json=body, headers=self.auth, timeout=10)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def upload(self, data: bytes, filename: str = "image.png", content_type: str = "image/png", **fields: Any) -> str:
        """Presign and upload like a browser form would; return the run id."""
        presigned = self.presign(filename, len(data), content_type, **fields)
        if presigned["method"] == "PUT":
            sent = requests.put(presigned["url"], data=data, headers=presigned["headers"], timeout=10)
        else:
            files = {"file": (filename, data, content_type)}
            sent = requests.post(presigned["url"], data=presigned["fields"], files=files, timeout=10)
        assert sent.status_code in (200, 204), sent.text
        return str(presigned["run_id"])

    def render(self, **body: Any) -> dict[str, Any]:
        """POST /runs; the 202 answer (run id, ETA, links)."""
        answer = requests.post(f"{self.api_url}/runs", json=body, headers=self.auth, timeout=30)
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def cancel(self, run_id: str) -> requests.Response:
        return requests.post(f"{self.api_url}/runs/{run_id}/cancel", headers=self.auth, timeout=30)

    def reconcile(self, *follow: str) -> dict[str, str]:
        """Run the reconciler now, as its schedule would (or following `follow`), through Lambda's Invoke."""
        payload = json.dumps({"follow": list(follow)} if follow else {"source": "aws.events"})
        answer = self.aws("lambda").invoke(FunctionName=self.state["reconcile_function"], Payload=payload.encode())
        result: dict[str, str] = json.loads(answer["Payload"].read())
        assert "FunctionError" not in answer, result
        return result

    def run(self, run_id: str) -> dict[str, Any]:
        answer = requests.get(f"{self.api_url}/runs/{run_id}", headers=self.auth, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_for(self, run_id: str, *statuses: str, timeout: float = 45) -> dict[str, Any]:
        """Poll the run until it reaches one of `statuses` (or any final status); fail on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in statuses or run["status"] in TERMINAL:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} stayed {run['status']}: {run}")
            time.sleep(0.25)

    def review_form(self, link: str) -> dict[str, str]:
        """The hidden fields of the review page's form (the signed expiry)."""
        page = requests.get(link, timeout=10)
        assert page.status_code == 200, page.text
        return dict(re.findall(r'name=(exp|sig) value="([^"]*)"', page.text))

    def decide(self, link: str, **form: str) -> requests.Response:
        return requests.post(link.split("?")[0], data={**self.review_form(link), **form}, timeout=10)

    def ingest_idle(self, timeout: float = 15) -> None:
        """Wait until every S3 notification queued for ingest has been handled."""
        sqs, url = self.aws("sqs"), self.state["ingest_queue_url"]
        deadline = time.monotonic() + timeout
        while True:
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            if counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the ingest queue did not drain: {counts}")
            time.sleep(0.2)

    def library_keys(self, prefix: str = "") -> list[str]:
        listing = self.aws("s3").list_objects_v2(Bucket=self.state["library_bucket"], Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def audit_rows(self, run_id: str) -> list[dict[str, Any]]:
        """The publisher's audit rows of one run."""
        from boto3.dynamodb.types import TypeDeserializer

        rows = self.aws("dynamodb").scan(TableName=self.state["tables"]["audit"])["Items"]
        decoded = [{k: TypeDeserializer().deserialize(v) for k, v in row.items()} for row in rows]
        return [row for row in decoded if row.get("correlation_id") == run_id]

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.aws("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.state["state_machine_arn"])["executions"])


class Entities:
    """The entities API of a running stack, and its provider stand-in."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack

    def register(self, **body: Any) -> requests.Response:
        return requests.post(f"{self.stack.api_url}/entities", json=body, headers=self.stack.auth, timeout=30)

    def get(self, entity_id: str) -> dict[str, Any]:
        answer = requests.get(f"{self.stack.api_url}/entities/{entity_id}", headers=self.stack.auth, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_for(self, entity_id: str, *statuses: str, review: bool = False, timeout: float = 90) -> dict[str, Any]:
        """Poll the entity until it reaches one of `statuses` (and, with `review`, its review link exists)."""
        deadline = time.monotonic() + timeout
        while True:
            entity = self.get(entity_id)
            ready = entity["status"] in statuses and (not review or (entity["enrichment"]["review"] or {}).get("url"))
            if ready or entity["status"] == "failed":
                return entity
            if time.monotonic() > deadline:
                raise AssertionError(f"entity {entity_id} stayed {entity['status']}: {entity['enrichment']}")
            time.sleep(0.3)

    def fail(self, path_prefix: str, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Make the provider stand-in answer `status` to the next `times` requests under `path_prefix`."""
        fault: dict[str, Any] = {"path_prefix": path_prefix, "status": status, "times": times}
        if retry_after is not None:
            fault["retry_after"] = retry_after
        requests.post(f"{self.stack.state['providers_url']}/__standin/faults", json=fault, timeout=5).raise_for_status()

    def provider_requests(self, prefix: str = "") -> list[str]:
        log = requests.get(f"{self.stack.state['providers_url']}/__standin/requests", timeout=5).json()["requests"]
        return [r["path"] for r in log if r["path"].startswith(prefix)]
