"""What clients ask of renders: `POST /runs` (validate, price, refuse low-priority work when the queue is too
deep, estimate when it will be done, accept the run in the transaction that debits its owner, start the
pipeline), `POST /runs/estimate` (the same without accepting anything) and `POST /runs/{id}/cancel`."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rendergate import accounts, backends, config, credits, executions, runs, workflows
from rendergate.config import settings
from rendergate.credits import pricing
from rendergate.errors import BadRequest, Conflict, QueueFull, TransientError, unknown_fields
from rendergate.observability import logger
from rendergate.render import submit
from rendergate.render.job import RenderJob
from rendergate.tables import Run

if TYPE_CHECKING:
    from rendergate.owners import Caller

REQUEST_FIELDS = frozenset(
    {
        "workflow",
        "version",
        "params",
        "count",
        "priority",
        "namespace",
        "title",
        "tags",
        "auto_approve",
        "asset_type",
        "language",
        "author",
    }
)
PRIORITIES = ("low", "normal", "high")
COLD_START_SECONDS = 45  # a serverless worker booting before it takes the first job
HEALTH_MAX_AGE = 5.0
RUN_GRAPH_LIMIT = 300 * 1024  # a run keeps its graph in its DynamoDB item, which holds 400 KB in all

_health: dict[str, tuple[float, backends.Health | None]] = {}
config.on_reset(_health.clear)


@dataclass(frozen=True)
class Request:
    """A validated render request: its workflow filled in, its fields and its price."""

    workflow: workflows.Workflow
    prepared: workflows.Prepared
    priority: str
    fields: dict[str, Any]
    price: pricing.Price


def request_run(body: dict[str, Any], caller: Caller, idempotency_key: str | None = None) -> dict[str, Any]:
    """Validate a render request, price it, create the run (debiting its owner in the same transaction) and
    start its execution; answer with an ETA and the price.

    With an Idempotency-Key the run id derives from it: the same request again answers with the run it
    made (nothing is rendered or debited twice); the key with a different request is a 409."""
    fingerprint = runs.fingerprint(body)
    run_id = runs.run_id_for(idempotency_key)
    if idempotency_key and (earlier := runs.find(run_id)) is not None:
        return accepted(runs.same_request(earlier, fingerprint))
    request = checked(body)
    backend_name = settings().render.backend
    eta_seconds = estimate(backend_name, request.priority, caller.owner)
    run = Run(
        run_id,
        status="queued",
        source="render",
        owner=caller.owner,
        **request.fields,
        workflow_name=request.workflow.name,
        workflow_version=request.workflow.version,
        workflow_sha256=request.workflow.sha256,
        graph=request.prepared.graph,
        params=request.prepared.params,
        seed=request.prepared.seed,
        image_count=request.prepared.count,
        priority=request.priority,
        eta_seconds=eta_seconds,
        backend=backend_name,
        request_sha256=fingerprint,
    )
    if not credits.accept_paid_run(run, request.price, renders=True):  # the same key, sent twice at once
        return accepted(runs.same_request(runs.get(run_id), fingerprint))
    try:
        executions.start(run.run_id, runs.pipeline_input(run, [], render=render_settings()))
    except Exception as error:
        runs.advance(run, "failed", error_name="TransientError", error_cause=f"the pipeline did not start: {error}")
        credits.settle(run.run_id)
        raise TransientError("the render pipeline could not be started; try again") from error
    return accepted(run)


def estimate_run(body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`POST /runs/estimate`: what the render would cost the caller and its balance; nothing is accepted."""
    request = checked(body)
    account = accounts.find(caller.owner)
    metered = accounts.metered(caller.owner, account)
    return {
        "estimated_cost": request.price.view(),
        "metered": metered,
        "balance": int(account.balance) if account else 0,
        "covered": not metered or (int(account.balance) if account else 0) >= request.price.total,
    }


def checked(body: dict[str, Any]) -> Request:
    """The request validated against the registry and the backend's limits, and priced."""
    if unknown := set(body) - REQUEST_FIELDS:
        raise unknown_fields(unknown)
    workflow = workflows.load(body.get("workflow"), body.get("version"))
    count = _count(body)
    priority = body.get("priority", "normal")
    if priority not in PRIORITIES:
        raise BadRequest(f"priority must be one of {', '.join(PRIORITIES)}")
    fields = runs.run_fields(body, settings().pipeline.default_namespace)
    prepared = workflows.prepare(workflow, body.get("params", {}), count)
    if (graph_bytes := len(json.dumps(prepared.graph))) > RUN_GRAPH_LIMIT:
        raise BadRequest(f"the filled-in graph is {graph_bytes} bytes, more than the {RUN_GRAPH_LIMIT} a run can keep")
    submit.check_size(prepared.graph, count, len(prepared.images), backends.backend(settings().render.backend))
    return Request(workflow, prepared, priority, fields, pricing.render(workflow, prepared, priority))


def accepted(run: Run) -> dict[str, Any]:
    """The 202 answer for a render run: its id and status, the ETA it was given, its recipe, its links."""
    base = config.public_base_url()
    return {
        "run_id": run.run_id,
        "status": run.status,
        "estimated_cost": run.price,
        "charged": int(run.charged or 0),
        "eta_seconds": None if run.eta_seconds is None else int(run.eta_seconds),
        "workflow": {"name": run.workflow_name, "version": run.workflow_version, "sha256": run.workflow_sha256},
        "seed": None if run.seed is None else int(run.seed),
        "links": {"self": f"{base}/runs/{run.run_id}", "cancel": f"{base}/runs/{run.run_id}/cancel"},
    }


def render_settings() -> dict[str, int]:
    """The render task's timeout and heartbeat, copied into each render run's execution input."""
    current = settings()
    return {"timeout_seconds": current.render.timeout_seconds, "heartbeat_seconds": current.render.heartbeat_seconds}


def estimate(backend_name: str, priority: str, owner: str) -> int:
    """Seconds until a new job of `priority` is likely done; QueueFull for low priority behind a queue deeper
    than the owner's `low_priority_queue_limit` (LowPriorityQueueLimit by default)."""
    current = settings()
    per_job = current.render.seconds_estimate
    health = _backend_health(backend_name)
    if health is None:  # the backend did not answer: accept, with the estimate for an empty queue
        return per_job + COLD_START_SECONDS
    workers = max(health.workers, 1)
    if priority == "low":  # only low priority reads the owner's account here
        limit = accounts.limits_of(owner, accounts.find(owner)).low_priority_queue_limit
        if health.depth > limit:
            retry_after = max(1, math.ceil((health.depth - limit) / workers * per_job))
            raise QueueFull(
                f"the render queue holds {health.depth} jobs (more than {limit}); "
                f"low-priority work waits: retry after {retry_after} seconds",
                retry_after=retry_after,
            )
    ahead = 0 if priority == "high" else health.depth
    cold = COLD_START_SECONDS if health.workers == 0 else 0
    return cold + math.ceil((ahead / workers + 1) * per_job)


def cancel_run(run_id: str, caller: Caller) -> dict[str, Any]:
    """Cancel a run not yet publishing: its backend job, its execution; 409 when it has finished. What it was
    charged is settled: all of it when nothing was rendered yet."""
    if not RenderJob(runs.get_for(run_id, caller)).cancelled():  # only from the statuses runs.ENTERED_FROM allows
        current = runs.get(run_id).status
        raise Conflict(f"run {run_id} is {current}: only a run that is not publishing or finished can be cancelled")
    executions.stop(run_id, cause="cancelled by the client")
    settled = credits.settle(run_id)
    return {"run_id": run_id, "status": "cancelled", "refunded": settled.get("refunded", 0)}


def _count(body: dict[str, Any]) -> int:
    limit = settings().pipeline.max_images_per_run
    params = body.get("params")
    batch = params.get("batch") if isinstance(params, dict) else None
    count = body.get("count", batch if isinstance(batch, int) and not isinstance(batch, bool) else 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise BadRequest(f"count must be an integer between 1 and {limit} (images per run)")
    return count


def _backend_health(name: str) -> backends.Health | None:
    cached = _health.get(name)
    if cached and time.monotonic() - cached[0] < HEALTH_MAX_AGE:
        return cached[1]
    try:
        health: backends.Health | None = backends.backend(name).health()
    except Exception:  # an ETA is an estimate; a slow health endpoint must not refuse the work
        logger.warning("backend health unavailable", extra={"backend": name})
        health = None
    _health[name] = (time.monotonic(), health)
    return health
