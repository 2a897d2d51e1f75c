from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import ingest
from rendergate.api import caller, http_app, json_body
from rendergate.observability import logger

app = http_app()


@app.post("/uploads")
def create_upload() -> tuple[dict[str, Any], int]:
    return ingest.presign_upload(json_body(app), caller(app)), 201


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
