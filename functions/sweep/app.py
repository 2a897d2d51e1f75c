from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import sweep
from rendergate.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sweep.sweep(context.get_remaining_time_in_millis)
