from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import ingest, render, runs
from rendergate.api import caller, http_app, json_body
from rendergate.observability import logger

app = http_app()


@app.get("/runs")
def list_runs() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return runs.list_runs(
        caller(app), query.get("status"), query.get("owner"), query.get("limit", "20"), query.get("cursor")
    )


@app.get("/runs/<run_id>")
def get_run(run_id: str) -> dict[str, Any]:
    return runs.view(runs.get_for(run_id, caller(app)))


@app.post("/runs")
def create_run() -> tuple[dict[str, Any], int]:
    body, idempotency_key = json_body(app), app.current_event.headers.get("idempotency-key")
    if body.get("source") == "external":  # an outside generator's run: nothing is rendered
        return ingest.register_external(body, caller(app), idempotency_key), 201
    return render.request_run(body, caller(app), idempotency_key), 202


@app.post("/runs/estimate")
def estimate_run() -> dict[str, Any]:
    return render.estimate_run(json_body(app), caller(app))


@app.post("/runs/<run_id>/assets")
def append_assets(run_id: str) -> tuple[dict[str, Any], int]:
    return ingest.append_assets(run_id, json_body(app), caller(app)), 201


@app.post("/runs/<run_id>/complete")
def complete_run(run_id: str) -> tuple[dict[str, Any], int]:
    return ingest.complete_run(run_id, caller(app)), 202


@app.post("/runs/<run_id>/cancel")
def cancel_run(run_id: str) -> dict[str, Any]:
    return render.cancel_run(run_id, caller(app))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
