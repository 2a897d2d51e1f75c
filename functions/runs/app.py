from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import render, runs
from rendergate.api import http_app, json_body
from rendergate.observability import logger

app = http_app()


@app.get("/runs")
def list_runs() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return runs.list_runs(query.get("status"), query.get("limit", "20"), query.get("cursor"))


@app.get("/runs/<run_id>")
def get_run(run_id: str) -> dict[str, Any]:
    return runs.view(runs.get(run_id))


@app.post("/runs")
def create_run() -> tuple[dict[str, Any], int]:
    return render.request_run(json_body(app), app.current_event.headers.get("idempotency-key")), 202


@app.post("/runs/<run_id>/cancel")
def cancel_run(run_id: str) -> dict[str, Any]:
    return render.cancel_run(run_id)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
