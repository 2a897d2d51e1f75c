from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate.api import caller, http_app, json_body
from rendergate.media import entities
from rendergate.observability import logger

app = http_app()


@app.post("/entities")
def register() -> tuple[dict[str, Any], int]:
    return entities.register(json_body(app), caller(app))


@app.get("/entities")
def list_entities() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return entities.list_entities(query.get("limit", "20"), query.get("cursor"))


@app.get("/entities/<entity_id>")
def get_entity(entity_id: str) -> dict[str, Any]:
    return entities.view(entities.get(entity_id))


@app.post("/entities/<entity_id>/enrich")
def enrich(entity_id: str) -> tuple[dict[str, Any], int]:
    return entities.enrich_again(entity_id, caller(app)), 202


@app.post("/entities/<entity_id>/publish")
def publish(entity_id: str) -> tuple[dict[str, Any], int]:
    return entities.publish_now(entity_id, caller(app)), 202


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
