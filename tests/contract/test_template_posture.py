"""The template's security posture: what checkov checks and the decisions it cannot see.

`make checkov` fails the build on any check that fails; these tests keep the skips honest (each one names a
check that really fails without it, with a one-line reason) and pin the decisions recorded in
docs/architecture.md ("The template's security posture").
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.aws import ROOT, TEMPLATE

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
# The functions that submit, settle and poll render jobs; RunsFunction's /health and cancel calls reserve nothing.
BACKEND_CALLERS = {"RenderFunction", "WebhooksFunction", "ReconcileFunction"}


def skips(resource: dict[str, Any]) -> dict[str, str]:
    """The checkov checks a resource skips, with their reasons."""
    entries = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    return {entry["id"]: entry.get("comment", "") for entry in entries}


def failures_without_skips(tmp_path: Path) -> set[tuple[str, str]]:
    """(check id, logical id) of every checkov check that fails once the template's skips are removed."""
    if not CHECKOV.exists():
        if os.environ.get("CI"):
            pytest.fail("checkov is missing: `make checkov` creates .venv-checkov")
        pytest.skip("no .venv-checkov (make checkov creates it)")
    bare = copy.deepcopy(TEMPLATE)
    for resource in bare["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(bare))
    result = subprocess.run(  # noqa: S603
        [str(CHECKOV), "--file", str(path), "--framework", "cloudformation", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    return {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["failed_checks"]}


def test_every_checkov_skip_names_a_check_that_fails_without_it_and_says_why(tmp_path: Path) -> None:
    failing = failures_without_skips(tmp_path)
    skipped = {(check, logical_id) for logical_id, r in RESOURCES.items() for check in skips(r)}
    assert failing - skipped == set(), "fix these, or skip them in the resource's Metadata with a reason"
    assert skipped - failing == set(), "these checks pass now: remove their skips"
    for logical_id, resource in RESOURCES.items():
        for check, reason in skips(resource).items():
            assert len(reason) > 20 and "\n" not in reason, f"{logical_id} {check}: say why, in one line"


def test_tables_of_runs_assets_audit_hashes_collections_and_deliveries_can_be_restored_to_a_point_in_time() -> None:
    for name in (
        "RunsTable",
        "AssetsTable",
        "PublisherAuditTable",
        "HashIndexTable",
        "CollectionsTable",
        "DeliveriesTable",
    ):
        assert RESOURCES[name]["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_library_bucket_is_private_and_keeps_overwritten_objects_for_a_while() -> None:
    props = RESOURCES["LibraryBucket"]["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "LibraryNoncurrentVersionDays"}}
    assert "BucketPolicy" not in {r["Type"].split("::")[-1] for r in RESOURCES.values()}, "nothing opens it"


def test_every_queue_declares_its_encryption() -> None:
    queues = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"}
    assert queues
    for name, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name


def log_group_of(logical_id: str) -> dict[str, Any]:
    """The properties of the log group a function's LoggingConfig names."""
    logging_config = FUNCTIONS[logical_id]["Properties"].get("LoggingConfig", {})
    assert "LogGroup" in logging_config, f"{logical_id} needs a log group of its own ({logical_id}Logs)"
    reference = logging_config["LogGroup"]
    group = RESOURCES[reference["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    return group["Properties"]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_logs_to_a_group_of_its_own_that_lambda_never_creates(logical_id: str) -> None:
    group = log_group_of(logical_id)
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    folder = Path(FUNCTIONS[logical_id]["Properties"]["CodeUri"]).name
    # Lambda's own group is /aws/lambda/<function name>, and a function name has no "/": no clash, no cycle.
    assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{folder}"}


def test_no_two_functions_share_a_log_group() -> None:
    groups = [json.dumps(log_group_of(logical_id)["LogGroupName"]) for logical_id in FUNCTIONS]
    assert len(groups) == len(set(groups))


def test_api_access_logs_record_the_route_never_the_path_that_carries_a_webhook_token() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogs", "Arn"]}
    assert RESOURCES["HttpApiAccessLogs"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    fields = json.loads(settings["Format"])
    assert "$context.routeKey" in fields.values()
    assert not any("$context.path" in value or "querystring" in value.lower() for value in fields.values())
    webhook_paths = [
        event["Properties"]["Path"]
        for function in FUNCTIONS.values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    ]
    assert any("{token}" in path for path in webhook_paths), "the reason for the rule above is gone; revisit it"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_functions_that_call_the_render_backend_reserve_the_concurrency_parameter(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]["Properties"]
    if logical_id in BACKEND_CALLERS:
        assert props["ReservedConcurrentExecutions"] == {
            "Fn::If": ["ReserveBackendConcurrency", {"Ref": "RenderBackendConcurrency"}, {"Ref": "AWS::NoValue"}]
        }
    else:
        assert "ReservedConcurrentExecutions" not in props
        assert "CKV_AWS_115" in skips(FUNCTIONS[logical_id]), "say why it reserves none"


def test_a_concurrency_of_zero_reserves_none() -> None:
    parameter = TEMPLATE["Parameters"]["RenderBackendConcurrency"]
    assert parameter["MinValue"] == 0
    assert TEMPLATE["Conditions"]["ReserveBackendConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RenderBackendConcurrency"}, "0"]}]
    }
