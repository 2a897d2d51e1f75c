from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import credits
from rendergate.credits import upkeep
from rendergate.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "settle" in event:  # the state machine, after recording a failure or an expiry
        return credits.settle(event["settle"])
    if event.get("job") == "refresh":
        return upkeep.refresh(context.get_remaining_time_in_millis)
    checked = upkeep.reconcile(context.get_remaining_time_in_millis)
    upkeep.metrics.flush_metrics()  # the drift metric; settling and refreshing emit none
    return checked
