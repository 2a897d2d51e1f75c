"""statemachines/pipeline.asl.json executed by moto's ASL interpreter, with every Lambda task scripted.

A test scripts what each function does on each invocation: return a result, raise a named error (Lambda's
FunctionError payload, as the runtime writes it), or be refused by Lambda itself (a throttle, a service
error) before any handler runs. `.waitForTaskToken` tasks are resumed or failed through
`rendergate.executions`, as the webhook, the reconciler and the review page do. The DynamoDB and SQS tasks
talk to moto; the table comes from template.yaml.
"""

from __future__ import annotations

import json
import threading
import time
import types
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.core.exceptions import JsonRESTError

from rendergate import executions
from support.aws import ROOT, TEMPLATE, create_state_machine

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
ACCOUNT, REGION = "123456789012", "us-east-1"
WAIT_SECONDS = 60  # the longest a test waits for an invocation or an ending; never reached when all is well


@dataclass(frozen=True)
class Returns:
    """The handler returns `value`."""

    value: Any = field(default_factory=dict)


@dataclass(frozen=True)
class Raises:
    """The handler raises an exception of class `error_type` (Lambda answers with FunctionError: Unhandled)."""

    error_type: str
    message: str = "scripted failure"


@dataclass(frozen=True)
class Refused:
    """Lambda refuses the invocation with a service error before any handler runs."""

    code: str
    status: int
    message: str


@dataclass(frozen=True)
class AnswersItsToken:
    """The handler settles its own task's token before it returns (as the webhook of a job that failed at once
    can), with `error` through SendTaskFailure or else `output` through SendTaskSuccess."""

    error: Exception | None = None
    output: Any = field(default_factory=dict)


THROTTLED = Refused("TooManyRequestsException", 429, "Rate Exceeded.")
SERVICE_ERROR = Refused("ServiceException", 500, "Lambda was unable to run the function.")
Outcome = Returns | Raises | Refused | AnswersItsToken

# What each function answers when nothing else is scripted (the token tasks then wait for the test).
ASSETS = ["asset-1", "asset-2"]
# What resumes a Render token (a job's images) and a Review token (a reviewer's decision).
RENDERED = {"objects": [{"bucket": "media-bucket", "key": "renders/run-render/txt2img-7-00.png"}], "job_id": "job-1"}
DECISION = {"approved": ASSETS[:1], "rejected": ASSETS[1:], "reviewer": "ada", "notes": "", "reviewed_at": "now"}
DEFAULTS: dict[str, Outcome] = {
    "EnrichFunction": Returns({"asset_ids": ASSETS, "selected_ids": ASSETS[:1]}),
    "PublishFunction": Returns({"published": ASSETS[:1]}),
    "RenderFunction": Returns({"submitted": True}),
    "ReviewFunction": Returns({"review_id": "review-1"}),
}


class ScriptedFunctions:
    """Stands in for the pipeline's Lambda functions: each invocation takes the next scripted outcome."""

    def __init__(self) -> None:
        self._scripts: dict[str, deque[Outcome]] = defaultdict(deque)
        self._payloads: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._arrived = threading.Condition()

    def script(self, function: str, *outcomes: Outcome) -> None:
        """The next invocations of `function` (a logical id) meet these outcomes, then its default."""
        assert function in DEFAULTS, function
        self._scripts[function].extend(outcomes)

    def payloads(self, function: str) -> list[dict[str, Any]]:
        """What each invocation of `function` carried, in order (those Lambda refused included)."""
        with self._arrived:
            return list(self._payloads[function])

    def wait_for(self, function: str, invocation: int = 1) -> dict[str, Any]:
        """The payload of the `invocation`-th invocation of `function`, once it has happened."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self._payloads[function]) >= invocation, WAIT_SECONDS)
            assert arrived, f"{function} was invoked {len(self._payloads[function])} times, not {invocation}"
            return self._payloads[function][invocation - 1]

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        """LambdaSimpleBackend.invoke's work: record the payload, answer with the next outcome."""
        function = function_name.split(":function:")[-1].split(":")[0]
        with self._arrived:
            self._payloads[function].append(json.loads(body) if body else {})
            outcome = self._scripts[function].popleft() if self._scripts[function] else DEFAULTS[function]
            self._arrived.notify_all()
        if isinstance(outcome, Refused):
            error = JsonRESTError(outcome.code, outcome.message)
            error.code = outcome.status
            raise error
        if isinstance(outcome, AnswersItsToken):
            token = json.loads(body)["task_token"]
            if outcome.error is not None:
                assert executions.fail(token, outcome.error), "the task should be waiting for this token"
            else:
                assert executions.succeed(token, outcome.output), "the task should be waiting for this token"
            return json.dumps({}).encode()
        if isinstance(outcome, Raises):
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = {"errorType": outcome.error_type, "errorMessage": outcome.message, "stackTrace": []}
            return json.dumps(payload).encode()
        return json.dumps(outcome.value).encode()


class RetryWaits:
    """Stands in for the `time` module of moto's retrier: records each wait instead of sleeping it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)
        time.sleep(0)  # still yield, as a sleep would


@dataclass
class Pipeline:
    """The deployed-in-moto state machine, its scripted functions and the resources its states write."""

    functions: ScriptedFunctions
    retry_waits: RetryWaits
    state_machine_arn: str
    dead_letter_queue_url: str

    @classmethod
    def deploy(cls, functions: ScriptedFunctions, retry_waits: RetryWaits) -> Pipeline:
        """Create the state machine with the template's substitutions; run tables must exist already."""
        substitutions = TEMPLATE["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
        values = {name: _physical(value) for name, value in substitutions.items()}
        definition = _definition()
        for name, value in values.items():
            definition = definition.replace("${" + name + "}", value)
        return cls(functions, retry_waits, create_state_machine(definition), values["RenderDeadLetterQueueUrl"])

    def start(self, payload: dict[str, Any]) -> str:
        """Start an execution named after the run (as ingest and POST /runs name it, plus a suffix); its ARN."""
        sfn = boto3.client("stepfunctions")
        name = f"{payload['run_id']}-{uuid.uuid4().hex[:8]}"
        response = sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload))
        return str(response["executionArn"])

    def ended(self, execution_arn: str) -> dict[str, Any]:
        """describe_execution once the execution has ended."""
        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return description
            time.sleep(0.02)
        raise AssertionError(f"{execution_arn} still runs after {WAIT_SECONDS} s")

    @staticmethod
    def wait_a_little() -> None:
        """A pause between heartbeats, short against any task's heartbeat interval."""
        time.sleep(0.2)

    def states_entered(self, execution_arn: str) -> list[str]:
        """The names of the states the execution entered, in order."""
        events = boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def dead_letters(self) -> list[dict[str, Any]]:
        """The bodies of the messages in the render dead-letter queue."""
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.dead_letter_queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def _definition() -> str:
    return (ROOT / TEMPLATE["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionUri"]).read_text()


def _physical(value: Any) -> str:
    """What a substitution resolves to here: functions by logical id, tables as support.aws names them."""
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        assert TEMPLATE["Resources"][logical_id]["Type"] == "AWS::Serverless::Function" and attribute == "Arn"
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
    logical_id = value["Ref"]
    kind = TEMPLATE["Resources"][logical_id]["Type"]
    if kind == "AWS::DynamoDB::Table":
        return str(logical_id)
    if kind == "AWS::SQS::Queue":
        return str(boto3.client("sqs").create_queue(QueueName=logical_id)["QueueUrl"])
    raise ValueError(f"no stand-in for {kind} {logical_id}")


def install(functions: ScriptedFunctions, retry_waits: RetryWaits, monkeypatch: Any) -> None:
    """Route moto's docker-free Lambda invocations to `functions`, and its retry waits to `retry_waits`."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    from devstack.cloud import patch_moto

    patch_moto()

    def invoke(
        backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        return functions.invoke(function_name, body, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=retry_waits.sleep))
