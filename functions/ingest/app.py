from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import ingest
from rendergate.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> list[str]:
    return ingest.ingest_message(record.body)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not event.get("Records"):  # Powertools refuses an empty batch; there is nothing to do
        return {"batchItemFailures": []}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
