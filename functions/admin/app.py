from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from rendergate import accounts, owners
from rendergate.api import caller, http_app, json_body
from rendergate.credits import grants, statements
from rendergate.observability import logger

app = http_app()


@app.post("/admin/keys")
def create_key() -> tuple[dict[str, Any], int]:
    return owners.create_key(json_body(app), caller(app)), 201


@app.get("/admin/keys")
def list_keys() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return owners.list_keys(query.get("owner"), query.get("limit", "50"), query.get("cursor"))


@app.delete("/admin/keys/<key_id>")
def revoke_key(key_id: str) -> dict[str, Any]:
    return owners.revoke_key(key_id, caller(app))


@app.post("/admin/keys/<key_id>/rotate")
def rotate_key(key_id: str) -> tuple[dict[str, Any], int]:
    return owners.rotate_key(key_id, json_body(app) if app.current_event.body else {}, caller(app)), 201


@app.get("/admin/owners/<owner>")
def get_owner(owner: str) -> dict[str, Any]:
    return accounts.view(accounts.owner_name(owner))


@app.put("/admin/owners/<owner>")
def configure_owner(owner: str) -> dict[str, Any]:
    return accounts.configure(owner, json_body(app))


@app.post("/admin/credits/<owner>")
def grant(owner: str) -> tuple[dict[str, Any], int]:
    return grants.request(owner, json_body(app), caller(app), app.current_event.headers.get("idempotency-key"))


@app.get("/admin/credits/approvals")
def list_approvals() -> dict[str, Any]:
    return grants.list_approvals((app.current_event.query_string_parameters or {}).get("status"))


@app.post("/admin/credits/approvals/<approval_id>")
def decide(approval_id: str) -> dict[str, Any]:
    return grants.decide(approval_id, json_body(app), caller(app))


@app.get("/credits")
def statement() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return statements.statement(caller(app), query.get("owner"), query.get("limit", "50"), query.get("cursor"))


@app.get("/credits/export")
def export() -> Response[str]:
    query = app.current_event.query_string_parameters or {}
    csv = statements.export(query.get("from"), query.get("to"), query.get("owner"))
    headers = {"Content-Disposition": f'attachment; filename="ledger-{query["from"]}-{query["to"]}.csv"'}
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=csv, headers=headers)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
