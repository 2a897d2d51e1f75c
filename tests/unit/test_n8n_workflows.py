"""The example n8n workflows (docs/n8n): the Code node that checks signatures is the one in
verify-signature.js, and run under Node.js as n8n runs it (a Code node body: `$input`, `this.helpers`,
`$getWorkflowStaticData`, `require`) it accepts what our webhook target sends, recognises a retry, and
refuses a forged, altered or stale request. The workflows answer 204 or 401 and act only on new events."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from support.aws import ROOT
from support.deliveries import SECRET, published

N8N = ROOT / "docs" / "n8n"
WORKFLOWS = sorted(N8N.glob("*.json"))
CODE = (N8N / "verify-signature.js").read_text()
# Runs a Code node body the way n8n does: an async function with n8n's names in scope, `this.helpers`
# giving the raw body the Webhook node kept (its "Raw Body" option), static data kept between calls.
HARNESS = r"""
const fs = require('fs');
const [code, requests] = [fs.readFileSync(process.argv[2], 'utf8'), JSON.parse(fs.readFileSync(0, 'utf8'))];
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const node = new AsyncFunction('$input', '$getWorkflowStaticData', 'require', code);
const staticData = {};
(async () => {
  const out = [];
  for (const request of requests) {
    const item = { json: { headers: request.headers, body: JSON.parse(request.body) } };
    const helpers = { getBinaryDataBuffer: async () => Buffer.from(request.body, 'utf8') };
    const result = await node.call({ helpers }, { first: () => item, all: () => [item] }, () => staticData, require);
    out.push(result[0].json);
  }
  console.log(JSON.stringify(out));
})();
"""


def run_code_node(tmp_path: Path, code: str, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    (tmp_path / "node.js").write_text(code.replace("whsec_PASTE_THE_TARGETS_SECRET_HERE", SECRET))
    (tmp_path / "harness.js").write_text(HARNESS)
    result = subprocess.run(  # noqa: S603
        ["node", str(tmp_path / "harness.js"), str(tmp_path / "node.js")],  # noqa: S607
        input=json.dumps(list(requests)),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return list(json.loads(result.stdout))


def sent(event: dict[str, Any], at: int | None = None) -> dict[str, Any]:
    """The request our webhook target makes for `event` (headers and the exact body)."""
    from rendergate.targets import parse

    [target] = parse(json.dumps([{"name": "n8n", "kind": "webhook", "url": "https://n8n.test/x", "secret": SECRET}]))
    outgoing = target.adapter.request(target, event)
    headers = dict(outgoing.headers)
    if at is not None:
        from rendergate.signing import standard_webhook_headers

        headers |= standard_webhook_headers(SECRET, event["id"], at, outgoing.body.decode())
    return {"headers": headers, "body": outgoing.body.decode()}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.stem)
def test_each_workflow_embeds_the_verifying_code_and_answers_before_it_acts(workflow: Path) -> None:
    flow = json.loads(workflow.read_text())
    nodes = {node["name"]: node for node in flow["nodes"]}
    [trigger] = [n for n in nodes.values() if n["type"] == "n8n-nodes-base.webhook"]
    assert trigger["parameters"]["options"]["rawBody"] is True
    assert trigger["parameters"]["responseMode"] == "responseNode"
    [code] = [n for n in nodes.values() if n["type"] == "n8n-nodes-base.code"]
    assert code["parameters"]["jsCode"] == CODE
    for source, outputs in flow["connections"].items():
        assert source in nodes
        assert all(link["node"] in nodes for output in outputs["main"] for link in output)
    answers = sorted(
        n["parameters"]["options"]["responseCode"] for n in nodes.values() if "respondToWebhook" in n["type"]
    )
    assert answers == [204, 401]


def test_the_code_node_accepts_our_signature_recognises_a_retry_and_refuses_the_rest(tmp_path: Path) -> None:
    event = published(title='Ünïcode ✓ "quoted"')
    good = sent(event)
    altered = {**good, "body": good["body"].replace("Alice", "Mallory")}
    assert altered["body"] != good["body"]
    forged = {**good, "headers": {**good["headers"], "webhook-signature": "v1,AAAA"}}
    stale = sent(event, at=int(time.time()) - 600)
    missing = {**good, "headers": {k: v for k, v in good["headers"].items() if k != "webhook-signature"}}

    results = run_code_node(tmp_path, CODE, good, good, altered, forged, stale, missing)

    first, retry, *refused = results
    assert (first["verified"], first["duplicate"], first["event"]) == (True, False, event)
    assert (retry["verified"], retry["duplicate"]) == (True, True)
    assert [r["verified"] for r in refused] == [False] * 4
