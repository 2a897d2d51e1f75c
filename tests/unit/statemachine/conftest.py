"""One fixture for every state machine test: the real ASL executing in moto, its functions scripted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rendergate import config
from support.aws import create_tables
from support.pipeline import MOTO_CONFIG, Pipeline, RetryWaits, ScriptedFunctions, install

OBJECTS = [{"bucket": "media-bucket", "key": "incoming/run/one.png"}]


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """statemachines/pipeline.asl.json in moto's executing Step Functions, with the template's runs table."""
    functions, retry_waits = ScriptedFunctions(), RetryWaits()
    install(functions, retry_waits, monkeypatch)
    with mock_aws(config=MOTO_CONFIG):
        config.reset()
        create_tables("RunsTable")  # the only table the state machine writes
        deployed = Pipeline.deploy(functions, retry_waits)
        yield deployed
        sfn = boto3.client("stepfunctions")
        for execution in sfn.list_executions(stateMachineArn=deployed.state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]:
            sfn.stop_execution(executionArn=execution["executionArn"])  # nothing runs on once moto is gone
        config.reset()


@pytest.fixture
def run_input() -> Callable[..., dict[str, Any]]:
    """A run saved in the runs table and its execution input, built as ingest and POST /runs build it."""
    from rendergate import runs
    from rendergate.render.request import render_settings
    from rendergate.tables import Run

    def make(source: str = "upload", *, auto_approve: bool = False, **overrides: Any) -> dict[str, Any]:
        run = Run(f"run-{source}", status="queued", source=source, namespace="library", auto_approve=auto_approve)
        run.save()
        render = render_settings() if source == "render" else None
        payload = runs.pipeline_input(run, [] if source == "render" else OBJECTS, render)
        return {**payload, **overrides}

    return make
