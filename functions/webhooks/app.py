from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import render
from rendergate.api import http_app, json_body
from rendergate.observability import logger

app = http_app(require_api_key=False)  # the URL's HMAC token is the credential


@app.post("/webhooks/runpod/<run_id>/<token>")
def runpod_webhook(run_id: str, token: str) -> dict[str, Any]:
    return render.receive(run_id, token, json_body(app))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
