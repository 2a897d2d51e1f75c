from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import render
from rendergate.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    follow = event.get("follow", []) if isinstance(event, dict) else []  # else the schedule's event
    return render.reconcile(list(follow), context.get_remaining_time_in_millis)
