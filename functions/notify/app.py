from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import notify
from rendergate.observability import logger

processor = AsyncBatchProcessor(event_type=EventType.SQS)


async def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    await notify.handle_message(record.body, lambda_context.get_remaining_time_in_millis)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not event.get("Records"):  # Powertools refuses an empty batch; there is nothing to do
        return {"batchItemFailures": []}
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
