from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate.enrich import enrich_run
from rendergate.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return enrich_run(event, context.get_remaining_time_in_millis)
