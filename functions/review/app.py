from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import pages, review
from rendergate.api import capped, form_body, html, http_app, status_for
from rendergate.errors import RendergateError
from rendergate.observability import logger

app = http_app(require_api_key=False)


@app.exception_handler(RendergateError)
def problem_page(error: RendergateError) -> Response[str]:
    status = status_for(error)
    return html(status, pages.problem(status, capped(str(error))))


@app.route("/reviews/<review_id>", method=["GET", "HEAD"])
def show(review_id: str) -> Response[str]:
    query = app.current_event.query_string_parameters or {}
    return html(*review.review_page(review_id, query.get("exp"), query.get("sig")))


@app.post("/reviews/<review_id>")
def decide(review_id: str) -> Response[str]:
    return html(*review.decide(review_id, form_body(app)))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "task_token" in event:  # the state machine's Review task
        return review.open_review(event["task_token"], event["run_id"], event["asset_ids"], event["timeout_seconds"])
    return app.resolve(event, context)
