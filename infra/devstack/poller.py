"""The SQS event source: poll each queue the template maps to a function, hand batches to the handler,
and delete what succeeded, honouring ReportBatchItemFailures, as Lambda's event source mapping does."""

from __future__ import annotations

import threading
import time
from typing import Any

from devstack.cloud import REGION, Stack, client
from devstack.lambdas import FunctionError, LocalLambda


class QueuePoller:
    def __init__(self, stack: Stack, local: LocalLambda) -> None:
        self.stack = stack
        self.local = local
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lambda_client = client("lambda", stack.endpoint_url)
        self.sqs = client("sqs", stack.endpoint_url)

    def start(self) -> None:
        for mapping in self.lambda_client.list_event_source_mappings()["EventSourceMappings"]:
            if ":sqs:" not in mapping["EventSourceArn"]:
                continue
            # moto would deliver to the function itself, one message at a time; we poll instead.
            self.lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            thread = threading.Thread(target=self._poll, args=(mapping,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def _poll(self, mapping: dict[str, Any]) -> None:
        function = self.stack.function_by_name(mapping["FunctionArn"])
        assert function is not None, mapping
        queue_arn = mapping["EventSourceArn"]
        queue_url = self.sqs.get_queue_url(QueueName=queue_arn.split(":")[-1])["QueueUrl"]
        partial = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=min(int(mapping.get("BatchSize", 10)), 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # the server is stopping
                if self._stop.is_set():
                    return
                time.sleep(0.5)
                continue
            if messages:
                self._deliver(function, queue_arn, queue_url, messages, partial)

    def _deliver(
        self, function: Any, queue_arn: str, queue_url: str, messages: list[dict[str, Any]], partial: bool
    ) -> None:
        event = {"Records": [_record(m, queue_arn) for m in messages]}
        try:
            result = self.local.invoke(function, event)
        except FunctionError:
            return  # the whole batch becomes visible again after the visibility timeout
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])} if partial else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
