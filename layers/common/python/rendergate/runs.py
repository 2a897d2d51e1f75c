"""Runs: creation, status transitions that never go backwards, and the views the API returns."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.indexes import Index

from rendergate import accounts, config, listing, signing, storage
from rendergate.config import settings
from rendergate.errors import BadRequest, Conflict, Forbidden, NotFound, scrubbed
from rendergate.names import NAMESPACE
from rendergate.profiles import PROFILES
from rendergate.tables import Asset, Review, Run, now_iso, save_if_absent, update_if

if TYPE_CHECKING:
    from rendergate.owners import Caller

STATUSES = (
    "queued",
    "rendering",
    "enriching",
    "awaiting_review",
    "publishing",
    "completed",
    "rejected",
    "failed",
    "cancelled",
    "expired",
)
FINAL = frozenset({"completed", "rejected", "failed", "cancelled", "expired"})
# A status may be entered only from the ones before it, so duplicate or late events cannot rewind a run.
ENTERED_FROM: dict[str, frozenset[str]] = {
    "rendering": frozenset({"queued"}),
    "enriching": frozenset({"queued", "rendering"}),
    "awaiting_review": frozenset({"queued", "rendering", "enriching"}),
    "publishing": frozenset({"enriching", "awaiting_review"}),
    "completed": frozenset({"publishing"}),
    "rejected": frozenset({"publishing"}),
    "cancelled": frozenset({"queued", "rendering", "enriching", "awaiting_review"}),
    "failed": frozenset({"queued", "rendering", "enriching", "awaiting_review", "publishing"}),
    "expired": frozenset({"queued", "awaiting_review"}),
}
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
CURSOR_PURPOSE = "runs-cursor"
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
IDEMPOTENCY_NAMESPACE = uuid.UUID("2a9c4e1f-6b3d-4f8a-9e2c-7d5b1a3c8e4f")


def run_fields(body: dict[str, Any], default_namespace: str) -> dict[str, Any]:
    """The fields every run request may set (namespace, title, tags, auto_approve, asset_type, language)."""
    namespace = body.get("namespace", default_namespace)
    if not isinstance(namespace, str) or not NAMESPACE.match(namespace):
        raise BadRequest("namespace must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
    title = body.get("title")
    if title is not None and (not isinstance(title, str) or not 0 < len(title) <= 200):
        raise BadRequest("title must be a string of 1-200 characters")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 20 or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        raise BadRequest("tags must be a list of at most 20 strings of 1-64 characters")
    auto_approve = body.get("auto_approve", False)
    if not isinstance(auto_approve, bool):
        raise BadRequest("auto_approve must be true or false")
    asset_type = body.get("asset_type")  # None: enrich takes `render` for renders, `generic` for uploads
    if asset_type is not None and asset_type not in PROFILES:
        raise BadRequest(f"asset_type must be one of {', '.join(PROFILES)}")
    language = body.get("language")
    if language is not None and (not isinstance(language, str) or not LANGUAGE.match(language)):
        raise BadRequest("language must be a language code such as 'en' or 'pt-BR'")
    author = body.get("author")
    if author is not None and (not isinstance(author, str) or not 0 < len(author) <= 120):
        raise BadRequest("author must be a string of 1-120 characters")
    return {
        "namespace": namespace,
        "title": title,
        "tags": tags,
        "auto_approve": auto_approve,
        "asset_type": asset_type,
        "language": language,
        "author": author,
    }


def run_id_for(idempotency_key: str | None) -> str:
    """A new run id, or with an Idempotency-Key one derived from it, so a client's retry finds its run."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise BadRequest("the Idempotency-Key header must be 1-200 printable characters without spaces")
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key).hex


def fingerprint(body: dict[str, Any]) -> str:
    """The sha256 of a request body, recorded on the run an idempotent request made."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def same_request(run: Run, fingerprint: str) -> Run:
    """The run an idempotent request made before; Conflict when the key was used for another request."""
    if run.request_sha256 != fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    return run


def pipeline_input(run: Run, objects: list[dict[str, str]], render: dict[str, int] | None = None) -> dict[str, Any]:
    """The execution input. Derived from the run only, so starting it twice starts nothing new."""
    current = settings()
    payload: dict[str, Any] = {
        "run_id": run.run_id,
        "source": run.source,
        "namespace": run.namespace,
        "title": run.title,
        "tags": list(run.tags or []),
        "objects": objects,
        "auto_approve": auto_approves(run),
        "review_timeout_seconds": current.review.timeout_seconds,
    }
    if render is not None:
        payload["render"] = render
    return payload


def auto_approves(run: Run) -> bool:
    """Whether the run skips the review: asked for, set for the stack (AutoApprove), or set for its namespace."""
    review = settings().review
    return bool(run.auto_approve or review.auto_approve or run.namespace in review.auto_approve_namespaces)


def slot(key: str) -> str:
    """The entry of an object key in a run's `files` and `arrivals` maps: keys may hold characters ('.', '[0]')
    that DynamoDB document paths would read as structure, so each entry is named by the key's digest."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:32]


def files_of(run: Run) -> dict[str, dict[str, Any]]:
    """The objects a run expects, by key, in the order they were declared."""
    entries = _entries(run.files)
    ordered = sorted(entries, key=lambda e: (str(e.get("declared_at", "")), int(e.get("index", 0)), str(e["key"])))
    return {str(entry["key"]): entry for entry in ordered}


def arrivals_of(run: Run) -> dict[str, dict[str, Any]]:
    """The first arrival of each object of a run, by key: its version and, if refused, why."""
    return {str(entry["key"]): entry for entry in _entries(run.arrivals)}


def _entries(attribute: Any) -> list[dict[str, Any]]:
    mapping = attribute.as_dict() if hasattr(attribute, "as_dict") else dict(attribute or {})
    return [dict(value) for value in mapping.values()]


def create(run: Run) -> bool:
    """Save a new run; False when a run with that id exists already (a duplicate delivery)."""
    return save_if_absent(run, Run.run_id.does_not_exist())


def get(run_id: str, consistent: bool = False) -> Run:
    """The run; `consistent` reads it after every write acknowledged so far (for decisions made on it)."""
    try:
        return Run.get(run_id, consistent_read=consistent)
    except DoesNotExist as error:
        raise NotFound(f"run {run_id} does not exist") from error


def find(run_id: str, consistent: bool = False) -> Run | None:
    try:
        return Run.get(run_id, consistent_read=consistent)
    except DoesNotExist:
        return None


def advance(run: Run, status: str, **fields: Any) -> bool:
    """Move a run to `status` (setting `fields` too) if it is in a status that may precede it."""
    actions: list[Action] = [Run.status.set(status), Run.updated_at.set(now_iso())]
    actions += [getattr(Run, name).set(value) for name, value in fields.items()]
    return update_if(run, actions, Run.status.is_in(*ENTERED_FROM[status]))


def view(run: Run) -> dict[str, Any]:
    """What `GET /runs/{id}` answers: status, assets, review and published items, and the error."""
    assets = sorted(Asset.by_run.query(run.run_id), key=lambda a: (a.ordinal, a.asset_id))
    answer = {
        **summary(run),
        "assets": [asset_view(asset) for asset in assets],
        "review": review_view(run),
        "published": run.published or [],
        "publish_failures": run.publish_failures or [],
        "error": error_view(run),
    }
    if run.price is not None:
        answer["credits"] = credits_view(run)
    if files := files_view(run):
        answer["files"] = files
    if run.source in ("comfy", "external"):
        answer["generation"] = {
            "prompt": run.prompt,
            "params": run.params or {},
            "seed": None if run.seed is None else int(run.seed),
            "workflow_sha256": run.workflow_sha256,
        }
    if run.source == "render":
        answer["render"] = render_view(run)
        made_by = {key: index for index, key in enumerate(run.outputs or [])}
        for asset in answer["assets"]:
            if asset["key"] in made_by:
                asset["render"] = {**_recipe(run), "index": made_by[asset["key"]]}
    return answer


def credits_view(run: Run) -> dict[str, Any]:
    """What the run costs and what it was charged and given back (an unmetered owner is charged nothing)."""
    return {
        "estimated_cost": run.price,
        "charged": int(run.charged or 0),
        "refunded": int(run.refunded or 0),
        "holds_slot": bool(run.holds_slot),
    }


def files_view(run: Run) -> list[dict[str, Any]]:
    """Each object of the run: `pending` (expected, the run still open), `arrived`, `rejected` (with the
    reason) or `missing` (the run started, or ended, without it)."""
    arrivals = arrivals_of(run)
    expected = files_of(run)
    keys = list(expected) + sorted(k for k in arrivals if k not in expected)
    view = []
    for key in keys:
        arrival = arrivals.get(key)
        item = {"key": key, "filename": key.rsplit("/", 1)[-1]}
        if arrival is None:
            item["status"] = "pending" if run.status == "queued" else "missing"
        elif arrival.get("rejected"):
            item |= {"status": "rejected", "reason": arrival["rejected"]}
        else:
            item["status"] = "arrived"
        view.append(item)
    return view


def render_view(run: Run) -> dict[str, Any]:
    """How a render run was asked for and where its backend job stands; the task token stays inside."""
    return {
        **_recipe(run),
        "params": run.params or {},
        "count": run.image_count,
        "priority": run.priority,
        "backend": run.backend,
        "job_id": run.job_id,
        "job_status": run.job_status,
        "progress": run.progress,
        "eta_seconds": run.eta_seconds,
        "submitted_at": run.submitted_at,
        "rendered_at": run.rendered_at,
        "timings": run.timings or {},
        "backend_error": scrubbed(run.backend_error) if run.backend_error else None,
        "graph": run.graph,
    }


def _recipe(run: Run) -> dict[str, Any]:
    """What re-renders an asset exactly: the workflow version and its sha256, and the seed."""
    return {
        "workflow": run.workflow_name,
        "version": run.workflow_version,
        "sha256": run.workflow_sha256,
        "seed": run.seed,
    }


def summary(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.status,
        "source": run.source,
        "namespace": run.namespace,
        "title": run.title,
        "tags": list(run.tags or []),
        "auto_approve": run.auto_approve,
        "author": run.author,
        "owner": run.owner,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "error": error_view(run),
    }


def asset_view(asset: Asset) -> dict[str, Any]:
    view: dict[str, Any] = {
        "asset_id": asset.asset_id,
        "key": asset.key,
        "status": asset.status,
        "asset_type": asset.asset_type,
        "format": asset.format,
        "mode": asset.mode,
        "width": asset.width,
        "height": asset.height,
        "has_alpha": asset.has_alpha,
        "frames": asset.frames,
        "bytes": asset.bytes,
        "sha256": asset.sha256,
        "phash": asset.phash,
        "dhash": asset.dhash,
        "score": asset.score,
        "score_parts": asset.score_parts,
        "selected": asset.selected,
        "selection_reason": asset.selection_reason,
        "duplicate": duplicate_view(asset),
        "cache_key": asset.cache_key,
        "preview_url": None,
        "original_url": None,
        "library_key": asset.library_key,
        "public_url": asset.public_url,
    }
    if asset.status == "rejected":
        view["rejection"] = {"code": asset.rejection_code, "reason": asset.rejection_reason}
    else:
        if asset.status == "failed":
            view["failure"] = {"code": asset.failure_code, "reason": asset.failure_reason}
        # the version enrich analysed: what the reviewer sees is what publish reads
        view["original_url"] = storage.presign_get(asset.bucket, asset.key, version_id=asset.version_id)
        view["preview_url"] = (
            storage.presign_get(asset.bucket, asset.thumb_key) if asset.thumb_key else view["original_url"]
        )
    return view


def duplicate_view(asset: Asset) -> dict[str, Any] | None:
    if not asset.duplicate_of:
        return None
    return {"of": asset.duplicate_of, "kind": asset.duplicate_kind, "distance": asset.duplicate_distance}


def review_view(run: Run) -> dict[str, Any] | None:
    if not run.review_id:
        return None
    try:
        review = Review.get(run.review_id)
    except DoesNotExist:
        return None
    return {
        "review_id": review.review_id,
        "status": review_status(review, run),
        "url": review_link(review),
        "expires_at": int(review.expires_at),
        "decided_at": review.decided_at,
        "delivery": delivery(review, run),
        "delivered_at": review.delivered_at,
    }


def review_status(review: Review, run: Run) -> str:
    """pending, decided, expired (nobody decided in time), or closed (the run ended otherwise, e.g. cancelled).
    Computed, because the state machine's timeout ends the run without touching the review's row."""
    if review.status != "pending":
        return str(review.status)
    if run.status == "expired" or int(review.expires_at) <= time.time():
        return "expired"
    return "pending" if run.status == "awaiting_review" else "closed"


def delivery(review: Review, run: Run) -> str | None:
    """Whether a recorded decision reached the state machine: delivered, pending (the sweep sends it again)
    or undelivered (the run ended first); None while there is no decision."""
    if review.status != "decided":
        return None
    if review.delivered_at or run.status in ("publishing", "completed", "rejected"):
        return "delivered"
    return "pending" if run.status == "awaiting_review" else "undelivered"


def review_request(review: Review, run: Run) -> dict[str, Any]:
    """What review events say about a review: its run, what waits, the link and when it expires."""
    return {
        "run_id": run.run_id,
        "review_id": review.review_id,
        "asset_ids": list(review.asset_ids or []),
        "url": review_link(review),
        "title": run.title,
        "namespace": run.namespace,
        "source": run.source,
        "assets": len(review.asset_ids or []),
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(review.expires_at))),
    }


def review_link(review: Review) -> str:
    """The signed link a reviewer opens; the signature covers the review id and the expiry."""
    expires_at = int(review.expires_at)
    signature = signing.sign_link(config.link_signing_key(), review.review_id, expires_at)
    return f"{config.public_base_url()}/reviews/{review.review_id}?exp={expires_at}&sig={signature}"


def error_view(run: Run) -> dict[str, str] | None:
    """A failure as `{name, message}`: the Step Functions error and the stage's own message."""
    if not run.error_name:
        return None
    message = run.error_cause or ""
    for _ in range(2):  # the cause is JSON of {Error, Cause}, whose Cause is the Lambda error JSON
        try:
            decoded = json.loads(message)
        except (TypeError, ValueError):
            break
        if not isinstance(decoded, dict):
            break
        message = decoded.get("errorMessage") or decoded.get("Cause") or message
    return {"name": run.error_name, "message": scrubbed(str(message))}


def list_runs(caller: Caller, status: str | None, owner: str | None, limit: str, cursor: str | None) -> dict[str, Any]:
    """Runs newest first, `limit` a page, with a signed cursor for the next page: the caller's own, or an
    admin's choice of owner (every run without one)."""
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    if owner is not None:
        accounts.owner_name(owner)
    if not caller.sees(owner or caller.owner):
        raise Forbidden("only an admin may list another owner's runs", scope="admin")
    owner = owner or (None if caller.is_admin else caller.owner)
    index: Index[Run]
    if owner is not None:  # one owner's: its own index, the status (if any) filtered
        in_status = (Run.status == status) if status else None
        index, partition, condition = Run.by_owner, owner, in_status
    else:  # one status: its own index, so a page is full whatever the mix of statuses; else every run
        index, partition, condition = (Run.by_status, status, None) if status else (Run.by_created, "runs", None)
    found, next_cursor = listing.page(
        index,
        partition,
        CURSOR_PURPOSE,
        f"owner={owner}|status={status}",
        limit,
        cursor,
        scan_index_forward=False,
        filter_condition=condition,
    )
    return {"runs": [summary(run) for run in found], "next_cursor": next_cursor}


def get_for(run_id: str, caller: Caller, consistent: bool = False) -> Run:
    """The run, if the caller may see it (its own, or any for an admin); NotFound otherwise, so another
    owner's run ids tell nothing."""
    run = get(run_id, consistent)
    if not caller.sees(run.owner):
        raise NotFound(f"run {run_id} does not exist")
    return run
