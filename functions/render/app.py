from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import render
from rendergate.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return render.start(event["task_token"], event["run_id"])
