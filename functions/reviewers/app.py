from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import reviewers
from rendergate.api import http_app, json_body
from rendergate.observability import logger

app = http_app()


@app.post("/reviewers")
def create_reviewer() -> tuple[dict[str, Any], int]:
    return reviewers.create(json_body(app))


@app.get("/reviewers")
def list_reviewers() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return reviewers.list_reviewers(query.get("limit", "50"), query.get("cursor"))


@app.get("/reviewers/<reviewer_id>")
def get_reviewer(reviewer_id: str) -> dict[str, Any]:
    return reviewers.view(reviewers.get(reviewer_id))


@app.delete("/reviewers/<reviewer_id>")
def delete_reviewer(reviewer_id: str) -> Response[str]:
    reviewers.delete(reviewer_id)
    return Response(status_code=204, body="")


@app.post("/reviewers/<reviewer_id>/link")
def send_link(reviewer_id: str) -> tuple[dict[str, Any], int]:
    return reviewers.send_sign_in_link(reviewer_id), 202


@app.get("/review-policies/<namespace>")
def get_policy(namespace: str) -> dict[str, Any]:
    return reviewers.policy(namespace)


@app.put("/review-policies/<namespace>")
def put_policy(namespace: str) -> dict[str, Any]:
    return reviewers.set_policy(namespace, json_body(app))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
