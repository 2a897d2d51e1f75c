from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import inbound
from rendergate.api import body_bytes, http_app, json_body
from rendergate.observability import logger

app = http_app(require_api_key=False)  # MinIO's bearer token and the comfy webhook's signature are the credentials


def minio_token(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """The token is checked before the body is read."""
    inbound.authenticate_minio(app.current_event.headers.get("authorization"))
    return next_middleware(app)


@app.post("/webhooks/minio", middlewares=[minio_token])
def minio_webhook() -> dict[str, Any]:
    return inbound.minio_notification(json_body(app))


@app.post("/webhooks/comfy")
def comfy_webhook() -> tuple[dict[str, Any], int]:
    return inbound.comfy_completion(app.current_event.headers, body_bytes(app))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
