from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import publish
from rendergate.config import settings
from rendergate.observability import logger

persistence = DynamoDBPersistenceLayer(table_name=settings().tables.idempotency)
once_per_decision = IdempotencyConfig(event_key_jmespath="[run_id, review.review_id, review.approved]")


@logger.inject_lambda_context
@idempotent(persistence_store=persistence, config=once_per_decision)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return publish.publish_run(event)
