"""template.yaml, the ASL and the handlers agree with each other, and SAM accepts and builds the template."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.aws import ROOT, TEMPLATE
from support.functions import load_function

ASL_PATH = ROOT / "statemachines" / "pipeline.asl.json"
ASL_TEXT = ASL_PATH.read_text()
AWS_ERROR_PREFIXES = ("States.", "Lambda.", "DynamoDB.", "SQS.")
FUNCTIONS = {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
STATE_MACHINES = {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::StateMachine"}
BUDGET_BYTES = 80 * 1024 * 1024


def sam(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    beside_python = Path(sys.executable).parent / "sam"  # the venv's own sam, whatever PATH says
    executable = str(beside_python) if beside_python.exists() else shutil.which("sam") or "sam"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)  # noqa: S603


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_imports_and_its_handler_exists(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]["Properties"]
    folder = Path(props["CodeUri"]).name
    module_name, attribute = props["Handler"].rsplit(".", 1)
    assert module_name == "app"
    module = load_function(folder)
    assert callable(getattr(module, attribute))


def test_every_asl_placeholder_has_a_substitution_and_none_is_unused() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_TEXT))
    for resource in STATE_MACHINES.values():
        substitutions = set(resource["Properties"]["DefinitionSubstitutions"])
        assert placeholders == substitutions
        assert resource["Properties"]["DefinitionUri"] == "statemachines/pipeline.asl.json"


def _raised_names() -> set[str]:
    names = set()
    for path in (ROOT / "layers/common/python/rendergate").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name):
                    names.add(target.id)
                elif isinstance(target, ast.Attribute):
                    names.add(target.attr)
    return names


def _subclasses(name: str) -> set[str]:
    """`name` and every class of the layer that derives from it (raising a subclass raises the name)."""
    found = {name}
    for module_path in (ROOT / "layers/common/python/rendergate").rglob("*.py"):
        for node in ast.walk(ast.parse(module_path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) in found for b in node.bases):
                found.add(node.name)
    return found


def test_error_names_in_retry_and_catch_are_raised_somewhere() -> None:
    asl = json.loads(ASL_TEXT)
    names = set()
    for state in asl["States"].values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            names.update(rule["ErrorEquals"])
    ours = {n for n in names if not n.startswith(AWS_ERROR_PREFIXES)}
    assert ours, "the ASL should retry our own transient error"
    raised = _raised_names()
    for name in ours:
        assert raised & _subclasses(name), f"{name} is matched in the ASL but never raised"


def test_every_task_retries_and_catches_and_the_review_has_a_timeout() -> None:
    asl = json.loads(ASL_TEXT)
    for name, state in asl["States"].items():
        if state["Type"] == "Task":
            assert state.get("Retry"), name
            assert state.get("Catch"), name
    review = asl["States"]["Review"]
    assert review["Resource"].endswith(".waitForTaskToken")
    assert "TimeoutSeconds" in review or "TimeoutSecondsPath" in review


def test_no_policy_grants_every_action() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert not re.search(r"Action:\s*['\"]?\*", text)
    assert not re.search(r"Action:\s*\[[^\]]*['\"]\*['\"]", text)


def test_sam_validate_lint() -> None:
    result = sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def python312_works() -> bool:
    """pyenv's shim answers to `python3.12` even when that version is not selected; ask it to run."""
    try:
        return subprocess.run(["python3.12", "--version"], capture_output=True, check=False).returncode == 0  # noqa: S607
    except FileNotFoundError:
        return False


def test_sam_build_succeeds_within_the_size_budget(tmp_path: Path) -> None:
    if not python312_works():
        if os.environ.get("CI"):
            pytest.fail("sam build needs python3.12 on PATH (the Makefile adds pyenv's)")
        pytest.skip("no python3.12 on PATH for sam build")
    build_dir = tmp_path / "build"
    result = sam("build", "--build-dir", str(build_dir), "--template-file", str(ROOT / "template.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    layer_ids = [k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::LayerVersion"]
    layers = {logical_id: size(build_dir / logical_id) for logical_id in layer_ids}
    assert not (build_dir / "CommonLayer/python/botocore").exists(), "botocore comes with the runtime"
    sizes: dict[str, int] = {}
    for logical_id, resource in FUNCTIONS.items():
        attached = ["CommonLayer"] + [layer["Ref"] for layer in resource["Properties"].get("Layers", [])]
        total = size(build_dir / logical_id) + sum(layers[name] for name in attached)
        assert total <= BUDGET_BYTES, f"{logical_id}: {total / 1e6:.1f} MB with its layers"
        sizes[logical_id] = total
    print({name: f"{total / 1e6:.1f} MB" for name, total in sizes.items()})


def test_render_runs_go_through_a_render_task_that_waits_for_its_token() -> None:
    asl = json.loads(ASL_TEXT)
    route = asl["States"][asl["StartAt"]]
    assert route["Type"] == "Choice" and route["Default"] == "Enrich"
    choices = [(c["Variable"], c["StringEquals"], c["Next"]) for c in route["Choices"]]
    assert choices == [("$.source", "render", "Render")]
    render = asl["States"]["Render"]
    assert render["Resource"].endswith(".waitForTaskToken")
    assert {"HeartbeatSeconds", "HeartbeatSecondsPath"} & set(render)
    assert {"TimeoutSeconds", "TimeoutSecondsPath"} & set(render)
    use = asl["States"][render["Next"]]  # the rendered images become the objects Enrich reads
    assert (use["ResultPath"], use["Next"]) == ("$.objects", "Enrich")
    assert use["InputPath"].startswith(render["ResultPath"])
    parked = asl["States"][render["Catch"][-1]["Next"]]
    assert parked["Resource"].endswith("sqs:sendMessage") and parked["Next"] == "RecordFailure"


def test_every_rendergate_variable_of_the_template_is_a_setting() -> None:
    from rendergate.config import variables

    read = set(variables())
    for name in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]:
        if name.startswith("RENDERGATE_"):
            assert name in read, name


def test_the_worker_image_copies_files_that_exist() -> None:
    dockerfile = (ROOT / "infra/runpod-worker/Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


# What only the imaging layer carries, and what no Lambda function may import at all.
IMAGING_ONLY = ("PIL", "numpy")
MEDIA_ONLY = ("pymediainfo",)
NEVER_IN_LAMBDA = ("runpod", "scipy", "imagehash")
BLOCKED_IMPORT = """
import importlib.abc, importlib.util, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not in this function's layers")
        return None
sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.{attribute})
"""


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_imports_with_only_its_own_layers(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]["Properties"]
    layers = [layer["Ref"] for layer in props.get("Layers", [])]
    blocked = set(NEVER_IN_LAMBDA) | (set() if "ImagingLayer" in layers else set(IMAGING_ONLY))
    blocked |= set() if "MediaLayer" in layers else set(MEDIA_ONLY)
    module_name, attribute = props["Handler"].rsplit(".", 1)
    code = BLOCKED_IMPORT.format(
        blocked=blocked, path=str(ROOT / props["CodeUri"] / f"{module_name}.py"), attribute=attribute
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers/common/python")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_media_bucket_keeps_versions_longer_than_a_review_may_wait() -> None:
    bucket = TEMPLATE["Resources"]["MediaBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    [expiry] = [rule for rule in bucket["LifecycleConfiguration"]["Rules"] if "NoncurrentVersionExpiration" in rule]
    assert expiry["Status"] == "Enabled" and "TagFilters" not in expiry and "Prefix" not in expiry
    review_timeout = int(TEMPLATE["Parameters"]["ReviewTimeoutSeconds"]["Default"])
    assert expiry["NoncurrentVersionExpiration"]["NoncurrentDays"] * 86400 > review_timeout


def test_every_event_on_the_bus_reaches_the_delivery_queue_whose_retries_outlive_the_notify_function() -> None:
    resources = TEMPLATE["Resources"]
    [rule] = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]]
    props = rule["Properties"]
    assert props["EventBusName"] == {"Fn::GetAtt": ["EventBus", "Name"]}
    assert props["EventPattern"] == {"source": ["rendergate"]}
    [target] = props["Targets"]
    assert target["Arn"] == {
        "Fn::GetAtt": ["DeliveryQueue", "Arn"]
    }  # a queue, never a Lambda the bus would retry blindly
    notify = FUNCTIONS["NotifyFunction"]["Properties"]
    [source] = notify["Events"].values()
    assert source["Type"] == "SQS" and source["Properties"]["Queue"] == target["Arn"]
    assert "ReportBatchItemFailures" in source["Properties"]["FunctionResponseTypes"]
    queue = resources["DeliveryQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * notify["Timeout"]  # Lambda's advice for SQS event sources
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeliveryDeadLetterQueue", "Arn"]}
