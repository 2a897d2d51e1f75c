"""Ingest: presigned uploads in (one file, a batch, or what an outside generator appends), object
notifications (S3's, and MinIO's through its webhook) recorded as arrivals, and one execution per run once
its files are in: when all have arrived, when the client completes the run, or when its time is up.

Every arrival is a conditional write of one key while the run is queued, and a run leaves `queued` (for
`enriching`) before its execution starts, so the objects it starts with are frozen by then: duplicate or
late notifications, a completion and the sweep can race and still start one execution with one input."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from pynamodb.expressions.condition import size
from pynamodb.expressions.update import Action

from rendergate import config, credits, executions, runs, storage
from rendergate.config import settings
from rendergate.credits import pricing
from rendergate.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    UploadRejected,
    unknown_fields,
)
from rendergate.observability import logger
from rendergate.tables import Run, now_iso, update_if

if TYPE_CHECKING:
    from rendergate.owners import Caller

INCOMING_PREFIX = "incoming/"
# The file name extensions each accepted Content-Type may carry (compared case-insensitively).
EXTENSIONS = {"image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"), "image/webp": (".webp",)}
CONTENT_TYPES = tuple(EXTENSIONS)
FILE_FIELDS = frozenset({"filename", "content_type", "size"})
RUN_FIELDS = frozenset({"namespace", "title", "tags", "auto_approve", "asset_type", "language", "author"})
UPLOAD_FIELDS = FILE_FIELDS | RUN_FIELDS | {"method", "files", "hold"}
EXTERNAL_FIELDS = RUN_FIELDS | {"source", "prompt", "params", "method", "files"}
APPEND_FIELDS = frozenset({"files", "keys", "method"})
# S3 names these ObjectCreated:*, MinIO s3:ObjectCreated:*; MinIO's PutTagging, DeleteTagging, PutRetention
# and PutLegalHold are ObjectCreated too but write no bytes (and tagging for discard would echo forever).
WRITES = frozenset({"Put", "Post", "Copy", "CompleteMultipartUpload"})
UPLOAD_SOURCES = frozenset({"upload", "comfy", "external"})
MAX_PROMPT_CHARS = 10_000
MAX_PARAMS_BYTES = 16 * 1024
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
OBJECT_NAMESPACE = uuid.UUID("6f1c2b9e-3d4a-5b6c-8d7e-9f0a1b2c3d4e")


def presign_upload(body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`POST /uploads`: a run of the caller's and a presigned POST (or PUT) for `incoming/{run_id}/{filename}`,
    or with `files` one run and a target per file, accepted in the transaction that debits what the files
    cost (UploadImageCost each). The run starts when its files are in (see `ingest_object`)."""
    _refuse_chosen_location(body)
    if unknown := set(body) - UPLOAD_FIELDS:
        raise unknown_fields(unknown)
    batch = "files" in body
    if batch and FILE_FIELDS & set(body):
        raise BadRequest("send either filename, content_type and size, or files: [{filename, content_type, size}]")
    hold = body.get("hold", False)
    if not isinstance(hold, bool):
        raise BadRequest("hold must be true or false")
    method = _method(body)
    run_id = uuid.uuid4().hex
    declared = declare_files(run_id, body["files"] if batch else [{k: body.get(k) for k in FILE_FIELDS}], batch)
    run = Run(
        run_id,
        status="queued",
        source="upload",
        owner=caller.owner,
        **runs.run_fields(body, settings().pipeline.default_namespace),
        hold=hold,
        files={runs.slot(f["key"]): f for f in declared},
        open_until=_open_until(),
    )
    credits.accept_paid_run(run, pricing.upload(len(declared)), renders=False)
    targets = [upload_target(f, method) for f in declared]
    if not batch:
        single = {k: v for k, v in targets[0].items() if k not in {"filename", "s3_uri", "get_url"}}
        return {"run_id": run_id, "method": method, "expires_at": _expires_at(), **_charged(run), **single}
    return {
        "run_id": run_id,
        "status": run.status,
        **_charged(run),
        "method": method,
        "expires_at": _expires_at(),
        "files": targets,
        "links": links(run_id),
    }


def register_external(body: dict[str, Any], caller: Caller, idempotency_key: str | None = None) -> dict[str, Any]:
    """`POST /runs` with `source: external`: a run an outside generator fills (`POST /runs/{id}/assets`) and
    closes (`POST /runs/{id}/complete`); title, prompt and params are kept as metadata, nothing is rendered."""
    if unknown := set(body) - EXTERNAL_FIELDS:
        raise unknown_fields(unknown)
    fingerprint = runs.fingerprint(body)
    run_id = runs.run_id_for(idempotency_key)
    if idempotency_key and (earlier := runs.find(run_id)) is not None:
        return _registered(runs.same_request(earlier, fingerprint), _method(body))
    method = _method(body)
    declared = declare_files(run_id, body["files"], True) if "files" in body else []
    run = Run(
        run_id,
        status="queued",
        source="external",
        owner=caller.owner,
        **runs.run_fields(body, settings().pipeline.default_namespace),
        hold=True,
        prompt=prompt_text(body.get("prompt")),
        params=_params(body.get("params")),
        files={runs.slot(f["key"]): f for f in declared},
        open_until=_open_until(),
        request_sha256=fingerprint,
    )
    if not runs.create(run):  # the same Idempotency-Key, sent twice at once
        return _registered(runs.same_request(runs.get(run_id), fingerprint), method)
    return _registered(run, method)


def append_assets(run_id: str, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """`POST /runs/{id}/assets`: more images for an external run, each a presigned upload (`files`) or an
    object already uploaded under `incoming/{run_id}/` (`keys`). Conflict once the run is no longer open."""
    if unknown := set(body) - APPEND_FIELDS:
        raise unknown_fields(unknown)
    if "files" not in body and "keys" not in body:
        raise BadRequest("send files: [{filename, content_type, size}] to upload, or keys: [...] of uploaded objects")
    method = _method(body)
    run = runs.get_for(run_id, caller, consistent=True)
    _check_open(run)
    present = runs.files_of(run)
    declared = declare_files(run_id, body["files"], True) if "files" in body else []
    keys = _keys(run_id, body.get("keys"))
    entries = declared + [
        {"key": key, "filename": key.rsplit("/", 1)[-1], "declared_at": now_iso(), "index": i}
        for i, key in enumerate(keys)
    ]
    fresh, limit = [e for e in entries if e["key"] not in present], settings().pipeline.max_images_per_run
    if len(present) + len(fresh) > limit:
        raise BadRequest(f"a run holds at most {limit} files ({len(present)} already declared, {len(fresh)} more sent)")
    for entry in entries:
        slot = runs.slot(entry["key"])
        if entry["key"] in present or not update_if(
            run,
            [Run.files[slot].set(entry), Run.open_until.set(_open_until()), Run.updated_at.set(now_iso())],
            Run.files[slot].does_not_exist() & (Run.status == "queued"),
        ):
            run = runs.get(run_id, consistent=True)
            _check_open(run)
            _same_declaration(run, entry)
    for key in keys:  # already uploaded: recorded now, whether or not its notification has come
        if storage.exists(settings().storage.media_bucket, key):
            ingest_object(settings().storage.media_bucket, key)
    run = runs.get(run_id, consistent=True)
    return {**state(run), "uploads": [upload_target(f, method) for f in declared], "expires_at": _expires_at()}


def complete_run(run_id: str, caller: Caller) -> dict[str, Any]:
    """`POST /runs/{id}/complete`: start the run with what has arrived (what has not is listed as missing).
    Completing a run that has started already answers its state; one that has ended, or that has nothing
    yet, is a Conflict."""
    run = runs.get_for(run_id, caller, consistent=True)
    if run.source not in UPLOAD_SOURCES:
        raise Conflict(f"run {run_id} is a {run.source} run: only upload and external runs are completed")
    if run.status in ("expired", "cancelled"):
        raise Conflict(f"run {run_id} is {run.status}")
    if run.status == "queued":
        run = close(run)
        if run.status == "queued":
            raise Conflict(f"nothing has arrived for run {run_id} yet: upload a file first, or cancel the run")
    return state(run)


def close(run: Run) -> Run:
    """Take in what is in the bucket though its notification has not come, then start the run with what
    arrived. A run with nothing arrived stays queued (the caller decides: a Conflict, or expiry)."""
    gather(run)
    run = runs.get(run.run_id, consistent=True)
    if run.status == "queued" and runs.arrivals_of(run):
        run = start(run)
    return run


def gather(run: Run) -> None:
    """Record every expected object that is in the bucket (and, for an external run, every object under its
    prefix) but has not arrived yet: its notification is late or was lost."""
    bucket = settings().storage.media_bucket
    arrived = runs.arrivals_of(run)
    keys = [key for key in runs.files_of(run) if key not in arrived]
    if run.source == "external":
        listed, _ = storage.list_page(bucket, f"{INCOMING_PREFIX}{run.run_id}/")
        keys += [o.key for o in listed if _owner_id(o.key) == run.run_id and o.key not in arrived and o.key not in keys]
    for key in keys:
        if storage.exists(bucket, key):
            ingest_object(bucket, key)


def state(run: Run) -> dict[str, Any]:
    """What the run-filling routes answer: the run's status and each of its files."""
    return {"run_id": run.run_id, "status": run.status, "source": run.source, "files": runs.files_view(run)}


def declare_files(run_id: str, items: Any, batch: bool, already: int = 0) -> list[dict[str, Any]]:
    """Validate declared files (one, or a batch as `files[i]`) and name their keys under the run."""
    limit = settings().pipeline.max_images_per_run
    if not isinstance(items, list) or not items:
        raise BadRequest("files must be a non-empty list of {filename, content_type, size}")
    if already + len(items) > limit:
        raise BadRequest(f"a run holds at most {limit} files ({already} already declared, {len(items)} more sent)")
    declared, names = [], set()
    declared_at = now_iso()
    for index, item in enumerate(items):
        where = f"files[{index}]: " if batch else ""
        if not isinstance(item, dict):
            raise BadRequest(f"{where}each file must be an object {{filename, content_type, size}}")
        if unknown := set(item) - FILE_FIELDS:
            raise BadRequest(f"{where}{unknown_fields(unknown)}")
        file = _declared_file(item, where)
        if file["filename"] in names:
            raise BadRequest(f"{where}{file['filename']} is sent twice: file names must differ within a run")
        names.add(file["filename"])
        key = f"{INCOMING_PREFIX}{run_id}/{file['filename']}"
        declared.append({"key": key, **file, "declared_at": declared_at, "index": index})
    return declared


def upload_target(file: dict[str, Any], method: str) -> dict[str, Any]:
    """Where and how to upload one declared file: the presigned POST's fields or the PUT's headers, and a
    presigned GET of the same object for the uploader's own use (ComfyUI's node passes it on)."""
    config_ = settings()
    expires_in = config_.uploads.url_expiry_seconds
    bucket, key = config_.storage.media_bucket, str(file["key"])
    target: dict[str, Any] = {"filename": file["filename"], "key": key, "s3_uri": f"s3://{bucket}/{key}"}
    if method == "PUT":
        put = storage.presign_put(bucket, key, file["content_type"], expires_in)
        target["url"], target["headers"] = put["url"], put["headers"]
    else:
        post = storage.presign_post(bucket, key, file["content_type"], int(file["size"]), expires_in)
        target["url"], target["fields"] = post["url"], post["fields"]
    target["get_url"] = storage.presign_get(bucket, key, expires_in=expires_in)
    return target


def links(run_id: str) -> dict[str, str]:
    base = config.public_base_url()
    return {
        "self": f"{base}/runs/{run_id}",
        "assets": f"{base}/runs/{run_id}/assets",
        "complete": f"{base}/runs/{run_id}/complete",
    }


def safe_filename(filename: Any) -> str:
    """A bare file name: no path parts, no control or format characters, at most 255 bytes."""
    if not isinstance(filename, str) or not filename.strip():
        raise BadRequest("filename is required")
    if "/" in filename or "\\" in filename or filename in {".", ".."}:
        raise BadRequest("filename must not contain path parts")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} for ch in filename):
        raise BadRequest("filename must not contain control characters")
    if len(filename.encode()) > 255:
        raise BadRequest("filename must be at most 255 bytes")
    return unicodedata.normalize("NFC", filename)


def decode_key(raw_key: str) -> str:
    """S3 sends object keys form-encoded ('+' for space); MinIO QueryEscapes them ('/' as %2F too). Both decode
    here."""
    return unquote_plus(raw_key)


def ingest_message(body: str) -> list[str]:
    """Handle one SQS message holding an S3 notification (or MinIO's records, queued by its webhook); return the
    runs whose objects it recorded."""
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    handled = []
    for record in message.get("Records", []):
        if not writes_bytes(str(record.get("eventName", ""))):
            continue
        stored = record["s3"]["object"]
        run_id = ingest_object(record["s3"]["bucket"]["name"], decode_key(stored["key"]), stored.get("versionId"))
        if run_id:
            handled.append(run_id)
    return handled


def writes_bytes(event_name: str) -> bool:
    """Whether a notification's event wrote an object's bytes: `ObjectCreated:Put` (S3) or
    `s3:ObjectCreated:Put` (MinIO), Post, Copy or CompleteMultipartUpload; not MinIO's tagging or retention."""
    kind, _, what = event_name.removeprefix("s3:").partition(":")
    return kind == "ObjectCreated" and what in WRITES


def ingest_object(bucket: str, key: str, version_id: str | None = None) -> str | None:
    """Record one created object as an arrival of its run (the first arrival of a key decides; an upload unlike
    its declaration arrives refused), and start the run when that was its last expected file. Returns the
    run id, or None when the object was ignored."""
    current = settings()
    if bucket != current.storage.media_bucket or not key.startswith(INCOMING_PREFIX):
        logger.warning("ignoring an object outside incoming/", extra={"bucket": bucket, "key": key})
        return None
    run = _run_for(bucket, key)
    if run.status in runs.FINAL:
        _leave(run, [key])
        return None
    try:
        stored = storage.describe(bucket, key, version_id)
    except NotFound:
        stored = None  # gone already: enrich records the asset as missing
    rejection = None
    if stored is not None:
        try:
            check_declaration(runs.files_of(run).get(key, {}), stored)
        except UploadRejected as refused:
            rejection = str(refused)
        version_id = stored.version_id
    first = run.status == "queued" and key not in runs.arrivals_of(run)
    if rejection and first:
        logger.warning("upload rejected", extra={"run_id": run.run_id, "key": key, "reason": rejection})
        storage.discard(bucket, key)  # before it is recorded, so a redelivery after a crash still tags it
    if not (first and _record_arrival(run, key, version_id, rejection)):
        run = runs.get(run.run_id, consistent=True)
        if key not in runs.arrivals_of(run):  # the run left queued before this object came
            _leave(run, [key])
            return None
        # a redelivery, or a later write to a key that arrived: the first arrival stands
    return _proceed(run)


def check_declaration(declared: dict[str, Any], stored: storage.StoredObject) -> None:
    """Raise UploadRejected when the stored object is larger than declared or of another Content-Type.
    Storage is asked to enforce both when presigning; this does not rely on it having done so."""
    size = declared.get("size")
    if size is not None and stored.size > int(size):
        raise UploadRejected(f"the upload is {stored.size} bytes, more than the {int(size)} declared")
    expected, sent = declared.get("content_type"), stored.content_type
    if expected is not None and (sent or "").lower() != str(expected).lower():
        raise UploadRejected(f"the upload was stored as Content-Type {sent or '(none)'}, not the declared {expected}")


def start(run: Run) -> Run:
    """Start a queued run with the objects that arrived (fail it when every one was refused): move it to
    `enriching` first, so a sweep that expired it and a late object cannot both win, then start the
    execution named after it with an input derived from its arrivals, which no longer change."""
    if not objects(run):
        reasons = [f"{k.rsplit('/', 1)[-1]}: {a['rejected']}" for k, a in runs.arrivals_of(run).items()]
        if reasons:
            _fail(run, UploadRejected(reasons[0].partition(": ")[2] if len(reasons) == 1 else "; ".join(reasons)))
        return runs.get(run.run_id, consistent=True)
    if not runs.advance(run, "enriching", started_at=now_iso()):
        run = runs.get(run.run_id, consistent=True)
        if run.status in runs.FINAL:
            _leave(run, list(runs.arrivals_of(run)))
            return run
    if executions.start(run.run_id, runs.pipeline_input(run, objects(run))) is None:
        logger.info("the run's execution exists already", extra={"run_id": run.run_id})
    return run


def objects(run: Run) -> list[dict[str, str]]:
    """The execution's sources: each arrival that was not refused, in declared order, naming the version that
    was checked, so enrich analyses exactly those bytes."""
    arrivals, expected = runs.arrivals_of(run), runs.files_of(run)
    keys = [k for k in expected if k in arrivals] + sorted(k for k in arrivals if k not in expected)
    bucket = settings().storage.media_bucket
    sources = []
    for key in keys:
        arrival = arrivals[key]
        if arrival.get("rejected"):
            continue
        version = arrival.get("version_id")
        sources.append({"bucket": bucket, "key": key, **({"version_id": version} if version else {})})
    return sources


def unclaimed(bucket: str, keys: list[str]) -> list[str]:
    """Of these objects under incoming/, the ones that never produced an arrival: no run holds them, or
    their run is still open and has not recorded them (their notification was lost)."""
    owners = {key: _owner_id(key) for key in keys}
    loose = {key: loose_run_id(bucket, key) for key in keys}
    wanted = {i for i in owners.values() if i} | set(loose.values())
    found = {run.run_id: run for run in Run.batch_get(sorted(wanted))}
    missing = []
    for key in keys:
        owner = found.get(owners[key] or "")
        if owner is not None and _belongs(owner, key):
            if owner.status == "queued" and key not in runs.arrivals_of(owner):
                missing.append(key)
        elif loose[key] not in found:
            missing.append(key)
    return missing


def loose_run_id(bucket: str, key: str) -> str:
    """The run of an object that arrived without a presign: derived from where it is."""
    return uuid.uuid5(OBJECT_NAMESPACE, f"s3://{bucket}/{key}").hex


def _proceed(run: Run) -> str:
    """After an arrival: start the run if that was its last expected file and it does not wait to be
    completed; a run that started already is started again (the same name and input start nothing new,
    and a crash between moving it and starting it is mended)."""
    if run.status == "queued":
        expected, arrived = runs.files_of(run), runs.arrivals_of(run)
        if not run.hold and run.source != "external" and all(key in arrived for key in expected):
            start(run)
    elif run.status not in runs.FINAL and executions.start(run.run_id, runs.pipeline_input(run, objects(run))) is None:
        logger.info("duplicate delivery; the run's execution exists", extra={"run_id": run.run_id})
    return run.run_id


def _record_arrival(run: Run, key: str, version_id: str | None, rejection: str | None) -> bool:
    """The first arrival of `key`, recorded only while the run is queued; False when it was not (a duplicate,
    or the run moved on). The run is refreshed on success."""
    slot = runs.slot(key)
    arrival = {"key": key, "version_id": version_id, "rejected": rejection, "at": now_iso()}
    actions: list[Action] = [Run.arrivals[slot].set(arrival), Run.updated_at.set(now_iso())]
    # at most a run's worth of objects, whatever is put under an external run's prefix
    room = size(Run.arrivals) < settings().pipeline.max_images_per_run
    return update_if(run, actions, Run.arrivals[slot].does_not_exist() & (Run.status == "queued") & room)


def _fail(run: Run, rejection: UploadRejected) -> None:
    """Fail a run whose every file was refused (only while queued), and give back what it was charged."""
    failure: list[Action] = [
        Run.status.set("failed"),
        Run.error_name.set(type(rejection).__name__),
        Run.error_cause.set(str(rejection)),
        Run.updated_at.set(now_iso()),
    ]
    if update_if(run, failure, Run.status == "queued"):
        credits.settle(run.run_id)


def _leave(run: Run, keys: list[str]) -> None:
    """Objects that arrived for a run that has started or ended start nothing; unless the run completed (it
    holds published originals), they are tagged for discard, as publish tags what was not approved."""
    if run.status != "completed":
        for key in keys:
            storage.discard(settings().storage.media_bucket, key)
    logger.warning("ignoring objects that came after their run moved on", extra={"run_id": run.run_id})


def _run_for(bucket: str, key: str) -> Run:
    """The run that expects the object (a presigned upload, or any object under an external run's prefix),
    or a new one for an object that arrived another way."""
    owner_id = _owner_id(key)
    if owner_id and (run := runs.find(owner_id)) is not None and _belongs(run, key):
        return run
    run_id = loose_run_id(bucket, key)
    filename = key.rsplit("/", 1)[-1]
    runs.create(
        Run(
            run_id,
            status="queued",
            source="upload",
            namespace=settings().pipeline.default_namespace,
            title=filename.rsplit(".", 1)[0] or filename,
            files={runs.slot(key): {"key": key, "filename": filename, "declared_at": now_iso(), "index": 0}},
            open_until=_open_until(),
        )
    )
    return runs.get(run_id, consistent=True)


def _owner_id(key: str) -> str | None:
    parts = key.split("/")
    return parts[1] if len(parts) == 3 and RUN_ID.match(parts[1]) else None


def _belongs(run: Run, key: str) -> bool:
    return run.source == "external" or key in runs.files_of(run)


def _same_declaration(run: Run, entry: dict[str, Any]) -> None:
    """A file appended again as it was declared is a retry (its upload is answered again); declared otherwise,
    it is a Conflict."""
    declared = runs.files_of(run).get(entry["key"])
    if declared is None or any(declared.get(f) != entry.get(f) for f in ("content_type", "size")):
        raise Conflict(f"{entry['filename']} is already part of run {run.run_id}, declared otherwise")


def _check_open(run: Run) -> None:
    if run.source != "external":
        raise Conflict(f"run {run.run_id} is a {run.source} run: only runs registered with source external take assets")
    if run.status != "queued":
        raise Conflict(f"run {run.run_id} is {run.status}: assets are appended only until the run is completed")


def _keys(run_id: str, keys: Any) -> list[str]:
    """Object keys an external run adopts: each directly under `incoming/{run_id}/`, an image by its name."""
    if keys is None:
        return []
    prefix = f"{INCOMING_PREFIX}{run_id}/"
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise BadRequest(f"keys must be a non-empty list of object keys under {prefix}")
    for index, key in enumerate(keys):
        name = key.removeprefix(prefix)
        if not key.startswith(prefix) or safe_filename(name) != name:
            raise BadRequest(f"keys[{index}] must be an object directly under {prefix}")
        if not name.lower().endswith(tuple(e for group in EXTENSIONS.values() for e in group)):
            raise BadRequest(f"keys[{index}] must name a .png, .jpg, .jpeg or .webp image")
    if len(set(keys)) != len(keys):
        raise BadRequest("keys must not repeat")
    return list(keys)


def _declared_file(item: dict[str, Any], where: str) -> dict[str, Any]:
    content_type = item.get("content_type")
    if content_type not in CONTENT_TYPES:
        raise UnsupportedMediaType(f"{where}content_type must be one of {', '.join(CONTENT_TYPES)}")
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise BadRequest(f"{where}size must be the file's size in bytes, a positive integer")
    limit = settings().uploads.max_bytes
    if size > limit:
        raise PayloadTooLarge(f"{where}size {size} is over the limit of {limit} bytes")
    try:
        filename = safe_filename(item.get("filename"))
    except BadRequest as error:
        raise BadRequest(f"{where}{error}") from error
    if not filename.lower().endswith(EXTENSIONS[content_type]):
        raise BadRequest(f"{where}filename must end in {' or '.join(EXTENSIONS[content_type])} for {content_type}")
    return {"filename": filename, "content_type": content_type, "size": size}


def _refuse_chosen_location(body: dict[str, Any]) -> None:
    for field in ("bucket", "key", "prefix"):
        if field in body:
            raise BadRequest(f"'{field}' cannot be chosen: uploads always land under {INCOMING_PREFIX}<run_id>/")


def _method(body: dict[str, Any]) -> str:
    method = body.get("method", "POST")
    if method not in ("POST", "PUT"):
        raise BadRequest("method must be POST or PUT")
    return str(method)


def prompt_text(prompt: Any) -> str | None:
    """A generation prompt kept as metadata: a string of at most MAX_PROMPT_CHARS, or None."""
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS):
        raise BadRequest(f"prompt must be a string of at most {MAX_PROMPT_CHARS} characters")
    return prompt


def _params(params: Any) -> dict[str, Any] | None:
    if params is None:
        return None
    if not isinstance(params, dict) or len(json.dumps(params)) > MAX_PARAMS_BYTES:
        raise BadRequest(f"params must be an object of at most {MAX_PARAMS_BYTES} bytes as JSON")
    return params


def _registered(run: Run, method: str) -> dict[str, Any]:
    """The 201 answer to registering an external run (again for a retried Idempotency-Key, with new URLs)."""
    declared = [f for f in runs.files_of(run).values() if f.get("content_type")]
    uploads = [upload_target(f, method) for f in declared] if run.status == "queued" else []
    return {**state(run), "uploads": uploads, "expires_at": _expires_at(), "links": links(run.run_id)}


def _charged(run: Run) -> dict[str, Any]:
    """What an upload run costs and was charged, when it costs anything."""
    return {"estimated_cost": run.price, "charged": int(run.charged or 0)} if run.charged else {}


def _open_until() -> str:
    """How long a run waits for its files: its upload URLs' lifetime and the grace period, from now."""
    current = settings()
    waited = current.uploads.url_expiry_seconds + current.uploads.grace_seconds
    return now_iso(waited)


def _expires_at() -> str:
    return now_iso(settings().uploads.url_expiry_seconds)
