from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import audit, notify
from rendergate.api import http_app
from rendergate.observability import logger

app = http_app()


@app.get("/audit")
def list_audit() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return audit.list_rows(query.get("status"), query.get("namespace"), query.get("limit", "50"), query.get("cursor"))


@app.get("/audit/<publish_event_id>")
def get_audit(publish_event_id: str) -> dict[str, Any]:
    return audit.get(publish_event_id)


@app.post("/audit/<publish_event_id>/replay")
def replay(publish_event_id: str) -> dict[str, Any]:
    return audit.replay(publish_event_id)


@app.get("/deliveries")
def list_deliveries() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return notify.list_deliveries(
        query.get("event_id"), query.get("target"), query.get("state"), query.get("limit", "50"), query.get("cursor")
    )


@app.post("/deliveries/<delivery_id>/retry")
def retry_delivery(delivery_id: str) -> tuple[dict[str, Any], int]:
    return notify.retry(delivery_id), 202


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
