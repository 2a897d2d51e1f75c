from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import collections
from rendergate.api import http_app, json_body
from rendergate.observability import logger

app = http_app()


@app.get("/collections/<namespace>/<slug>")
def get_collection(namespace: str, slug: str) -> dict[str, Any]:
    return collections.describe(namespace, slug)


@app.put("/collections/<namespace>/<slug>/locks")
def put_locks(namespace: str, slug: str) -> dict[str, Any]:
    return collections.lock(namespace, slug, json_body(app).get("locked_types"))


@app.get("/libraries/<namespace>")
def get_library(namespace: str) -> dict[str, Any]:
    return collections.library(namespace)


@app.put("/libraries/<namespace>")
def put_library(namespace: str) -> dict[str, Any]:
    return collections.configure_library(namespace, json_body(app))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
