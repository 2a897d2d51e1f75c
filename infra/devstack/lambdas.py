"""In-process Lambda: every invocation moto makes (Step Functions tasks, lambda:Invoke) and every local
API or queue event runs the real handler from functions/<name>/app.py in this process."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from devstack.cloud import Function, Stack


@dataclass
class Context:
    """The parts of Lambda's context object handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    timeout_seconds: int = 30

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "devstack"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """A handler raised; carries Lambda's error payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage"))
        self.payload = payload


class LocalLambda:
    """Loads each function's handler once (a cold start) and invokes it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._handlers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def invoke(self, function: Function, event: Any) -> Any:
        """Run the handler; raise FunctionError with Lambda's error shape if it raises."""
        handler = self._handler(function)
        context = Context(function.name, function.arn, timeout_seconds=function.timeout)
        try:
            return handler(event, context)
        except Exception as error:  # the same boundary Lambda's runtime draws
            raise FunctionError(
                {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_exception(error)[-6:],
                }
            ) from error

    def _handler(self, function: Function) -> Any:
        with self._lock:
            if function.logical_id not in self._handlers:
                module_name, attribute = function.handler.rsplit(".", 1)
                self._handlers[function.logical_id] = getattr(self._load(function, module_name), attribute)
            return self._handlers[function.logical_id]

    @staticmethod
    def _load(function: Function, module_name: str) -> ModuleType:
        path = function.code_dir / f"{module_name.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"functions.{function.logical_id}.{module_name}", path)
        assert spec and spec.loader, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def install(self) -> None:
        """Route moto's docker-free Lambda invocations to our handlers."""
        local = self
        original = LambdaSimpleBackend.invoke

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            function = local.stack.function_by_name(function_name)
            if function is None:
                return original(backend, function_name, qualifier, body, headers, response_headers)
            event = json.loads(body) if body else {}
            if headers.get("X-Amz-Invocation-Type") == "Event":
                threading.Thread(target=local._invoke_quietly, args=(function, event), daemon=True).start()
                return b""
            try:
                result = local.invoke(function, event)
            except FunctionError as error:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(error.payload).encode()
            return json.dumps(result).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[assignment,method-assign]

    def _invoke_quietly(self, function: Function, event: Any) -> None:
        try:
            self.invoke(function, event)
        except FunctionError:
            traceback.print_exc()
