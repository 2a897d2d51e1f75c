"""In-process moto with the resources of template.yaml, for unit tests (tables cannot drift from it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())

# The environment unit tests run with; set before anything imports rendergate.
UNIT_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "rendergate",
    "RENDERGATE_MEDIA_BUCKET": "media-bucket",
    "RENDERGATE_LIBRARY_BUCKET": "library-bucket",
    "RENDERGATE_RUNS_TABLE": "RunsTable",
    "RENDERGATE_ASSETS_TABLE": "AssetsTable",
    "RENDERGATE_REVIEWS_TABLE": "ReviewsTable",
    "RENDERGATE_AUDIT_TABLE": "PublisherAuditTable",
    "RENDERGATE_IDEMPOTENCY_TABLE": "IdempotencyTable",
    "RENDERGATE_HASH_INDEX_TABLE": "HashIndexTable",
    "RENDERGATE_COLLECTIONS_TABLE": "CollectionsTable",
    "RENDERGATE_EVENT_BUS": "rendergate-events",
    "RENDERGATE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:rendergate-pipeline",
    "RENDERGATE_API_KEY": "unit-test-api-key",
    "RENDERGATE_LINK_SIGNING_KEY": "unit-test-link-key",
    "RENDERGATE_PUBLIC_BASE_URL": "https://api.example.test",
    "RENDERGATE_MAX_UPLOAD_BYTES": "1048576",
    "RENDERGATE_RENDER_EVENTS_TABLE": "RenderEventsTable",
    "RENDERGATE_RENDER_BACKEND": "comfyui",
    "RENDERGATE_COMFYUI_URL": "http://127.0.0.1:9",  # nothing listens: tests that need one start a renderer
    "RENDERGATE_RUNPOD_API_KEY": "unit-test-runpod-key",
    "RENDERGATE_WEBHOOK_SECRET": "unit-test-webhook-secret",
    "RENDERGATE_ENTITIES_TABLE": "EntitiesTable",
    "RENDERGATE_ACTORS_TABLE": "ActorsTable",
    "RENDERGATE_PROVIDER_CACHE_TABLE": "ProviderCacheTable",
    "RENDERGATE_TMDB_API_BASE": "http://127.0.0.1:9/3",  # nothing listens: tests that need one start the stand-in
    "RENDERGATE_FANART_API_BASE": "http://127.0.0.1:9/v3",
    "RENDERGATE_TMDB_TOKEN": "unit.test.token",
    "RENDERGATE_FANART_API_KEY": "unit-test-fanart-key",
    "RENDERGATE_INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/IngestQueue",
    "RENDERGATE_MINIO_TOKEN": "unit-test-minio-token",
    "RENDERGATE_COMFY_WEBHOOK_SECRET": "whsec_dW5pdC10ZXN0LWNvbWZ5LXdlYmhvb2stc2VjcmV0",
    "RENDERGATE_DELIVERIES_TABLE": "DeliveriesTable",
    "RENDERGATE_DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/deliveries",
    "RENDERGATE_REVIEWERS_TABLE": "ReviewersTable",
    "RENDERGATE_SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    "RENDERGATE_REVIEW_FUNCTION": "rendergate-review",
    "RENDERGATE_REVIEW_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:rendergate-review",
    "RENDERGATE_REVIEW_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/review-scheduler",
    "RENDERGATE_KEYS_TABLE": "KeysTable",
    "RENDERGATE_ACCOUNTS_TABLE": "AccountsTable",
    "RENDERGATE_LEDGER_TABLE": "LedgerTable",
    "POWERTOOLS_METRICS_NAMESPACE": "rendergate",
}


def apply_unit_env() -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(UNIT_ENV)


def create_resources() -> None:
    """Create the tables (named by logical id) and buckets the unit tests use, from the template."""
    create_tables()
    s3 = boto3.client("s3")
    for logical_id, name in (("MediaBucket", "MEDIA"), ("LibraryBucket", "LIBRARY")):
        bucket = UNIT_ENV[f"RENDERGATE_{name}_BUCKET"]
        s3.create_bucket(Bucket=bucket)
        versioning = TEMPLATE["Resources"][logical_id]["Properties"].get("VersioningConfiguration")
        if versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning["Status"]})
    boto3.client("events").create_event_bus(Name=UNIT_ENV["RENDERGATE_EVENT_BUS"])
    boto3.client("sqs").create_queue(QueueName=UNIT_ENV["RENDERGATE_INGEST_QUEUE_URL"].rsplit("/", 1)[-1])
    boto3.client("sqs").create_queue(QueueName=UNIT_ENV["RENDERGATE_DELIVERY_QUEUE_URL"].rsplit("/", 1)[-1])
    from workflows.seed import seed

    seed(s3, UNIT_ENV["RENDERGATE_MEDIA_BUCKET"])
    create_state_machine((ROOT / "statemachines" / "pipeline.asl.json").read_text())


def create_tables(*only: str) -> None:
    """The DynamoDB tables of the template (every one, or those named), each named by its logical id."""
    dynamodb = boto3.client("dynamodb")
    for logical_id, resource in TEMPLATE["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table" or (only and logical_id not in only):
            continue
        props = resource["Properties"]
        spec: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props["BillingMode"],
        }
        for indexes in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if indexes in props:
                spec[indexes] = props[indexes]
        dynamodb.create_table(**spec)


def create_state_machine(definition: str) -> str:
    """The pipeline's state machine (named as RENDERGATE_STATE_MACHINE_ARN says) with `definition`; its ARN."""
    role = boto3.client("iam").create_role(
        RoleName="pipeline",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    name = UNIT_ENV["RENDERGATE_STATE_MACHINE_ARN"].rsplit(":", 1)[-1]
    created = boto3.client("stepfunctions").create_state_machine(name=name, definition=definition, roleArn=role)
    return str(created["stateMachineArn"])
