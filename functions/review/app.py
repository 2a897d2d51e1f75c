from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import pages, reminders, review, reviewers, slack_actions
from rendergate.api import body_bytes, capped, form_body, html, http_app, status_for
from rendergate.errors import RendergateError, Unauthorized
from rendergate.observability import logger

app = http_app(require_api_key=False)  # signed links, sessions with per-form tokens, and Slack's signature


@app.exception_handler(RendergateError)
def problem_page(error: RendergateError) -> Response[str]:
    status = status_for(error)
    return html(status, pages.problem(status, capped(str(error))))


@app.route("/reviews/<review_id>", method=["GET", "HEAD"])
def show(review_id: str) -> Response[str]:
    query = app.current_event.query_string_parameters or {}
    session = reviewers.session_from(app.current_event.cookies)
    return html(*review.review_page(review_id, query.get("exp"), query.get("sig"), session, query.get("after")))


@app.post("/reviews/<review_id>")
def decide(review_id: str) -> Response[str]:
    page = review.decide(review_id, form_body(app), reviewers.session_from(app.current_event.cookies))
    return html(page.status, page.body, page.location)


@app.route("/inbox", method=["GET", "HEAD"])
def inbox() -> Response[str]:
    session = reviewers.session_from(app.current_event.cookies)
    if session is None:
        raise Unauthorized("sign in first: ask for a sign-in link, and open it")
    return html(200, review.inbox(session))


@app.route("/signin", method=["GET", "HEAD"])
def sign_in_page() -> Response[str]:
    token = (app.current_event.query_string_parameters or {}).get("token")
    return html(200, pages.sign_in_offer(reviewers.sign_in_offer(token), token or ""))


@app.post("/signin")
def sign_in() -> Response[str]:
    _, session = reviewers.sign_in(form_body(app).get("token"))
    return html(303, "", "/inbox", [reviewers.cookie(session, reviewers.SESSION_SECONDS)])


@app.post("/signout")
def sign_out() -> Response[str]:
    session = reviewers.session_from(app.current_event.cookies)
    if session is not None and reviewers.check_form_token(session, "sign-out", form_body(app).get("csrf")):
        reviewers.sign_out(session)
    return html(200, pages.signed_out(), cookies=[reviewers.cookie("", 0)])


@app.post("/slack/actions")
def slack_action() -> Response[str]:
    slack_actions.receive(app.current_event.headers, body_bytes(app))
    return Response(status_code=200, body="")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if "task_token" in event:  # the state machine's Review task
        return review.open_review(event["task_token"], event["run_id"], event["asset_ids"], event["timeout_seconds"])
    if "expiry" in event:  # the state machine, when the review timed out
        return review.on_expiry(event["expiry"]["run_id"])
    if "reminder" in event:  # a one-time schedule of the review's reminders
        return reminders.fire(event["reminder"]["review_id"], event["reminder"]["kind"])
    if "slack_action" in event:  # a Slack button, handed on after its request was answered
        return slack_actions.act(event["slack_action"])
    return app.resolve(event, context)
