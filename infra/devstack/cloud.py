"""Deploy template.yaml into a moto server, the way `sam package && sam deploy` would.

The SAM template is translated to plain CloudFormation by aws-sam-translator, code folders are zipped
and uploaded as `sam package` does, and moto's CloudFormation creates the stack. What moto's
CloudFormation does not apply is filled in through the service APIs from the same translated
template: bucket notifications and versioning, and the state machine (created in the executing Step Functions
backend with its DefinitionSubstitutions resolved). Nothing is listed a second time by hand.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from devstack.authorizer import AuthorizerConfig

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
ARTIFACT_BUCKET = "rendergate-devstack-artifacts"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass
class Route:
    method: str
    path: str
    function_logical_id: str
    authorizer: str | None = None  # the name of the authoriser that guards it, None for Authorizer: NONE

    def pattern(self) -> re.Pattern[str]:
        """A regex for the route path; `{name}` captures one path segment, `{name+}` the rest."""
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", self.path)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


@dataclass
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int = 3


@dataclass
class Schedule:
    """A function EventBridge (or EventBridge Scheduler) invokes on a schedule, as deployed."""

    rule_arn: str
    expression: str
    function_logical_id: str
    payload: dict[str, Any] | None = None


@dataclass
class Stack:
    """What the deploy produced: physical names and the pieces the devstack wires up itself."""

    name: str
    endpoint_url: str
    resources: dict[str, str]
    functions: dict[str, Function]
    routes: list[Route]
    state_machine_arn: str
    parameters: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    authorizers: dict[str, AuthorizerConfig] = field(default_factory=dict)

    def function_by_name(self, name_or_arn: str) -> Function | None:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        return next((f for f in self.functions.values() if f.name == name), None)


def start_moto(port: int, host: str = "127.0.0.1") -> ThreadedMotoServer:
    """Start moto's server in this process, with Step Functions execution and docker-free Lambda."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    os.environ["MOTO_PORT"] = str(port)  # moto's ASL interpreter calls services back on this port
    patch_moto()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    requests.post(f"http://{host}:{port}/moto-api/config", json=MOTO_CONFIG, timeout=10).raise_for_status()
    return server


@cache
def patch_moto() -> None:
    """Close the gaps between moto 5.2's Step Functions and AWS that the pipeline meets (once per process)."""
    _forward_task_failure_cause()
    _stop_executions_at_once()
    _name_lambda_service_errors()
    _keep_answers_that_come_before_the_wait()
    _name_heartbeat_timeouts()
    _list_models_without_docker()
    _isolate_dynamodb_writes()


def _forward_task_failure_cause() -> None:
    """moto 5.2's SendTaskFailure handler drops `cause` (its backend takes it); AWS keeps it for Catch."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: StepFunctionResponse) -> EmptyResult:
        self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]


def _stop_executions_at_once() -> None:
    """moto 5.2 marks a stopped execution ABORTED only once its current state ends (a task waiting for a
    token wakes when its heartbeat or timeout passes), and that wake-up's error then turns it FAILED.
    On AWS, StopExecution stops it at once and nothing runs afterwards; so here too."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    set_error = Environment.set_error

    def set_error_unless_stopped(self: Environment, error: Any) -> None:
        if not isinstance(self.program_state(), ProgramStopped):
            set_error(self, error)

    stop = Execution.stop

    def stop_now(self: Execution, stop_date: Any, error: str | None, cause: str | None) -> None:
        stop(self, stop_date=stop_date, error=error, cause=cause)
        self.exec_status, self.stop_date = ExecutionStatus.ABORTED, stop_date
        if self.exec_worker is not None and self.exec_worker.env is not None:
            for endpoint in list(self.exec_worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()  # wake the waiting task, which now finds the program stopped

    Environment.set_error = set_error_unless_stopped  # type: ignore[method-assign]
    Execution.stop = stop_now  # type: ignore[method-assign]


def _name_lambda_service_errors() -> None:
    """moto 5.2 names a Lambda service error (a throttle, a 5xx) of a Task whose Resource is a function ARN
    "Exception"; AWS names it Lambda.<code>, as moto does for lambda:invoke, which is what Retry matches."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    from_error = StateTaskLambda._from_error

    def named(self: StateTaskLambda, env: Environment, ex: Exception) -> FailureEvent:
        failure = from_error(self, env, ex)
        if isinstance(ex, ClientError):
            error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
            failure.error_name = CustomErrorName(error)  # type: ignore[misc]
            details: dict[str, Any] = dict(failure.event_details or {})
            if "lambdaFunctionFailedEventDetails" in details:
                details["lambdaFunctionFailedEventDetails"] = {"error": error, "cause": cause}
            failure.event_details = details  # type: ignore[misc,assignment]
        return failure

    StateTaskLambda._from_error = named  # type: ignore[method-assign]


def _keep_answers_that_come_before_the_wait() -> None:
    """moto 5.2 starts a task's heartbeat clock only after the task's Lambda returns, and a token answered
    before that (a webhook for a job that failed at once) is lost: the task then fails with
    States.HeartbeatTimeout. On AWS the answer stands; here the clock starts already rung."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint

    setup = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_answered(self: CallbackEndpoint, heartbeat_seconds: int) -> HeartbeatEndpoint:
        endpoint = setup(self, heartbeat_seconds=heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    CallbackEndpoint.setup_heartbeat_endpoint = setup_answered  # type: ignore[method-assign]


def _name_heartbeat_timeouts() -> None:
    """moto 5.2 calls a task that missed its heartbeat States.Timeout; AWS calls it States.HeartbeatTimeout."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    from_error = StateTask._from_error

    def named(self: StateTask, env: Environment, ex: Exception) -> FailureEvent:
        failure = from_error(self, env, ex)
        if isinstance(ex, HeartbeatTimeoutError):
            name = StatesErrorNameType.StatesHeartbeatTimeout
            failure.error_name = StatesErrorName(typ=name)  # type: ignore[misc]
            failure.event_details = {"taskTimedOutEventDetails": {"error": name.to_name()}}  # type: ignore[misc,assignment]
        return failure

    StateTask._from_error = named  # type: ignore[method-assign]


def _list_models_without_docker() -> None:
    """moto's /moto-api/data.json (where the mail sent through SES is read) reads every attribute of every model,
    and Lambda's `docker_client` then asks for a docker daemon the devstack never uses: its DockerException ends
    the listing in a 500. Without a daemon the attribute is absent instead, which the listing skips."""
    from docker.errors import DockerException
    from moto.utilities.docker_utilities import DockerModel

    connect = DockerModel.__dict__["docker_client"].fget

    def docker_client(self: DockerModel) -> Any:
        try:
            return connect(self)
        except DockerException as error:
            raise AttributeError("no docker daemon: the devstack runs Lambda without docker") from error

    DockerModel.docker_client = property(docker_client)  # type: ignore[method-assign,assignment]


def _isolate_dynamodb_writes() -> None:
    """moto 5.2's server handles requests on threads with nothing between them: a TransactWriteItems checks each
    item's condition just before writing that item, so a concurrent write can land between its checks, and on a
    failed condition it puts back copies of whole tables taken when it began, undoing every write made meanwhile
    by other requests (a refused debit would give back the credits of the ones accepted beside it). DynamoDB
    checks every condition and writes every item as one isolated step, and each single-item write is atomic.
    Here the item operations take turns, and a transaction checks all its conditions before it writes."""
    import threading

    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    turn = threading.RLock()

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        targets: set[tuple[str, str]] = set()
        errors: list[tuple[str | None, str | None, Any]] = []
        writes = []
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            kind, op = next(iter(item.items()))
            table = self.get_table(op["TableName"])
            if kind == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (op["TableName"], str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            passed = condition is None or get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current)
            if passed:
                errors.append((None, None, None))
            else:
                failed = ConditionalCheckFailed()
                old = (
                    current.to_json()["Attributes"]
                    if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    else None
                )
                errors.append(("ConditionalCheckFailed", str(failed.message), old))
            writes.append((kind, op, key, current))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        done: list[tuple[str, dict[str, Any], Any]] = []
        try:
            for kind, op, key, current in writes:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                before = copy.deepcopy(current.to_json()["Attributes"]) if current else None  # updates change it
                if kind == "Put":
                    self.put_item(op["TableName"], op["Item"])
                elif kind == "Delete":
                    self.delete_item(op["TableName"], key)
                elif kind == "Update":
                    self.update_item(op["TableName"], key, op["UpdateExpression"], names, values)
                done.append((op["TableName"], key, before))
        except Exception:  # a write DynamoDB would have refused before writing anything: undo the ones made
            for table_name, key, before in reversed(done):
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in ("put_item", "get_item", "update_item", "delete_item", "query", "scan", "transact_write_items"):
        method = getattr(DynamoDBBackend, name)

        def taking_turns(self: DynamoDBBackend, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with turn:
                return _method(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, taking_turns)


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",  # noqa: S106 (moto accepts any credentials)
    )


def translate(sam_template: dict[str, Any], parameter_values: dict[str, str], iam: Any) -> dict[str, Any]:
    """SAM → plain CloudFormation, with the same translator CloudFormation runs."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(sam_template, parameter_values, ManagedPolicyLoader(iam))


def deploy(endpoint_url: str, stack_name: str = "rendergate", parameters: dict[str, str] | None = None) -> Stack:
    """Create every resource of template.yaml in the moto server at endpoint_url."""
    parameters = dict(parameters or {})
    s3 = client("s3", endpoint_url)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    sam_template = yaml_parse(TEMPLATE.read_text())
    code_dirs = package(sam_template, lambda key, data: s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=data))
    cfn_template = translate(sam_template, parameters, client("iam", endpoint_url))
    notifications = _detach_bucket_notifications(cfn_template)

    cfn = client("cloudformation", endpoint_url)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    summaries = cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
    description = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

    _apply_bucket_notifications(notifications, resources, endpoint_url)
    _apply_bucket_versioning(cfn_template, resources, endpoint_url)
    functions = _functions(cfn_template, resources, code_dirs, endpoint_url)
    state_machine_arn = _create_state_machine(cfn_template, resources, functions, endpoint_url)
    schedules = _schedules(cfn_template, resources, functions, endpoint_url)
    return Stack(
        name=stack_name,
        endpoint_url=endpoint_url,
        resources=resources,
        functions=functions,
        routes=routes(cfn_template),
        state_machine_arn=state_machine_arn,
        parameters=parameters,
        outputs=outputs,
        schedules=schedules,
        authorizers=authorizers(cfn_template, parameters),
    )


def package(sam_template: dict[str, Any], upload: Callable[[str, bytes], Any] | None) -> dict[str, Path]:
    """Zip code folders into the artifact bucket (`upload(key, zip)`; None names the URIs and stores nothing)
    and inline state machine files, as `sam package` does. Returns each function's and layer's folder."""
    code_dirs: dict[str, Path] = {}
    for logical_id, resource in sam_template["Resources"].items():
        props = resource.get("Properties", {})
        uri_key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(
            resource["Type"]
        )
        if uri_key and isinstance(props.get(uri_key), str) and not props[uri_key].startswith("s3://"):
            folder = ROOT / props[uri_key]
            key = f"{logical_id}.zip"
            if upload is not None:
                upload(key, _zip(folder))
            props[uri_key] = f"s3://{ARTIFACT_BUCKET}/{key}"
            code_dirs[logical_id] = folder
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
    return code_dirs


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _detach_bucket_notifications(cfn_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """moto's CloudFormation does not apply NotificationConfiguration; apply it through S3 later."""
    detached = {}
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] == "AWS::S3::Bucket":
            config = resource.get("Properties", {}).pop("NotificationConfiguration", None)
            if config:
                detached[logical_id] = config
    return detached


def _apply_bucket_notifications(
    notifications: dict[str, dict[str, Any]], resources: dict[str, str], endpoint_url: str
) -> None:
    s3 = client("s3", endpoint_url)
    sqs = client("sqs", endpoint_url)
    for bucket_logical_id, config in notifications.items():
        queue_configs = []
        for queue_config in config.get("QueueConfigurations", []):
            queue_logical_id = queue_config["Queue"]["Fn::GetAtt"][0]
            queue_url = resources[queue_logical_id]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            rules = queue_config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            entry: dict[str, Any] = {"QueueArn": queue_arn, "Events": [queue_config["Event"]]}
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": rules}}
            queue_configs.append(entry)
        s3.put_bucket_notification_configuration(
            Bucket=resources[bucket_logical_id],
            NotificationConfiguration={"QueueConfigurations": queue_configs},
        )


def _apply_bucket_versioning(cfn_template: dict[str, Any], resources: dict[str, str], endpoint_url: str) -> None:
    """moto's CloudFormation ignores VersioningConfiguration; publish depends on the versions it keeps."""
    s3 = client("s3", endpoint_url)
    for logical_id, resource in cfn_template["Resources"].items():
        versioning = resource.get("Properties", {}).get("VersioningConfiguration")
        if resource["Type"] == "AWS::S3::Bucket" and versioning:
            s3.put_bucket_versioning(
                Bucket=resources[logical_id], VersioningConfiguration={"Status": versioning["Status"]}
            )


def _functions(
    cfn_template: dict[str, Any], resources: dict[str, str], code_dirs: dict[str, Path], endpoint_url: str
) -> dict[str, Function]:
    lam = client("lambda", endpoint_url)
    functions = {}
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        config = lam.get_function_configuration(FunctionName=resources[logical_id])
        functions[logical_id] = Function(
            logical_id=logical_id,
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            code_dir=code_dirs[logical_id],
            handler=config["Handler"],
            environment=config.get("Environment", {}).get("Variables", {}),
            timeout=int(config.get("Timeout", 3)),
        )
    return functions


def _schedules(
    cfn_template: dict[str, Any], resources: dict[str, str], functions: dict[str, Function], endpoint_url: str
) -> list[Schedule]:
    """The template's Schedule events: EventBridge rules read back from the deployed stack (so parameters
    and intrinsics are resolved), and EventBridge Scheduler schedules from the translated template."""
    events = client("events", endpoint_url)
    by_arn = {f.arn: f.logical_id for f in functions.values()}
    found = []
    for logical_id, resource in cfn_template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in props:
            name = resources[logical_id].split("/")[-1]
            rule = events.describe_rule(Name=name)
            for target in events.list_targets_by_rule(Rule=name)["Targets"]:
                if target["Arn"] in by_arn:
                    payload = json.loads(target["Input"]) if target.get("Input") else None
                    found.append(Schedule(rule["Arn"], rule["ScheduleExpression"], by_arn[target["Arn"]], payload))
        elif resource["Type"] == "AWS::Scheduler::Schedule":
            target = props["Target"]
            arn = target["Arn"]
            function_logical_id = arn["Fn::GetAtt"][0] if isinstance(arn, dict) else by_arn.get(arn)
            if function_logical_id in functions:
                payload = json.loads(target["Input"]) if isinstance(target.get("Input"), str) else None
                found.append(Schedule(logical_id, str(props["ScheduleExpression"]), function_logical_id, payload))
    return found


def routes(cfn_template: dict[str, Any]) -> list[Route]:
    """The HttpApi routes, read from the OpenAPI body the translator generated, each with its authoriser."""
    found = []
    for body in _api_bodies(cfn_template):
        for path, methods in body["paths"].items():
            for method, operation in methods.items():
                uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
                function_logical_id = re.search(r"\$\{(\w+)\.Arn\}", uri)
                assert function_logical_id, uri
                http_method = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                schemes = [name for requirement in operation.get("security", []) for name in requirement]
                guard = next((name for name in schemes if name != "NONE"), None)
                found.append(Route(http_method, path, function_logical_id.group(1), guard))
    return found


def authorizers(cfn_template: dict[str, Any], parameters: dict[str, str]) -> dict[str, AuthorizerConfig]:
    """The HttpApi's Lambda authorisers (`x-amazon-apigateway-authorizer`), their parameters resolved."""
    found = {}
    for body in _api_bodies(cfn_template):
        for name, scheme in body.get("components", {}).get("securitySchemes", {}).items():
            declared = scheme.get("x-amazon-apigateway-authorizer")
            if not declared:
                continue
            function_arn = declared["authorizerUri"]["Fn::Sub"][1]["__FunctionArn__"]["Fn::GetAtt"][0]
            ttl = declared.get("authorizerResultTtlInSeconds", 300)  # API Gateway's default
            found[name] = AuthorizerConfig(
                name=name,
                function_logical_id=function_arn,
                identity_sources=tuple(declared.get("identitySource", [])),
                ttl_seconds=int(_parameter(ttl, cfn_template, parameters)),
                payload_format=str(declared.get("authorizerPayloadFormatVersion", "1.0")),
                simple_responses=bool(declared.get("enableSimpleResponses", False)),
            )
    return found


def _api_bodies(cfn_template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["Properties"]["Body"] for r in cfn_template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"
    ]


def _parameter(value: Any, cfn_template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """A literal, or a `Ref` to a template parameter: the deploy's value, else the parameter's default."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        return parameters.get(name, cfn_template["Parameters"][name].get("Default"))
    return value


def _create_state_machine(
    cfn_template: dict[str, Any], resources: dict[str, str], functions: dict[str, Function], endpoint_url: str
) -> str:
    """Create the state machine in the executing backend with its substitutions resolved."""
    sfn = client("stepfunctions", endpoint_url)
    iam = client("iam", endpoint_url)
    arn = ""
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        definition = _literal(props["DefinitionString"])
        for name, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + name + "}", _resolve(value, resources, functions))
        role_name = resources[props["RoleArn"]["Fn::GetAtt"][0]]
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
        # The stack's copy lives in the non-executing backend; this one has the same name and ARN.
        arn = sfn.create_state_machine(
            name=resources[logical_id].split(":")[-1],
            definition=definition,
            roleArn=role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
    return arn


def _literal(value: Any) -> str:
    """The translator writes an inline definition as Fn::Join of literal lines."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return str(separator).join(_literal(part) for part in parts)


def _resolve(value: Any, resources: dict[str, str], functions: dict[str, Function]) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return resources[value["Ref"]]
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if attribute == "Arn" and logical_id in functions:
            return functions[logical_id].arn
    raise ValueError(f"cannot resolve substitution {value!r}")
