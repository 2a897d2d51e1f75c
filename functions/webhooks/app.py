from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import render
from rendergate.api import http_app, json_body
from rendergate.observability import logger

app = http_app(require_api_key=False)  # the URL's HMAC token is the credential


def url_token(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """The token is checked before the body is read, so a forged URL learns nothing about body parsing."""
    route = app.context["_route_args"]
    render.authenticate(route["run_id"], route["token"])
    return next_middleware(app)


@app.post("/webhooks/runpod/<run_id>/<token>", middlewares=[url_token])
def runpod_webhook(run_id: str, token: str) -> dict[str, Any]:
    return render.receive(run_id, token, json_body(app))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
