"""DynamoDB through pynamodb: one model per table. Table names come from the settings at cold start."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection, LocalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from rendergate.config import derived, on_reset, settings

_config = settings()


def iso_at(epoch: float) -> str:
    """An instant as the tables write it: an ISO-8601 string in UTC to the millisecond, with Z, the same shape
    Step Functions writes (so such strings sort in time order)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_of(iso: str) -> float:
    """The seconds since the epoch of an instant the tables wrote (see `iso_at`)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def now_iso(seconds_from_now: float = 0) -> str:
    """Now, or that many seconds from now (before, when negative), as the tables write instants."""
    return iso_at(time.time() + seconds_from_now)


def save_if_absent(item: Model, condition: Condition) -> bool:
    """Save `item` when `condition` holds (usually: its key does not exist yet); False when it does not.

    The one way a duplicate delivery, a retried task or a replayed webhook is told from a first one.
    """
    try:
        item.save(condition=condition)
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def update_if(item: Model, actions: list[Action], condition: Condition) -> bool:
    """Apply `actions` to `item` when `condition` holds; False when it does not (someone got there first)."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


@derived
def transactions() -> Connection:
    """The connection transactions are sent on: one per process, as each model keeps its own, since making its
    botocore client costs more than the request."""
    return Connection(region=settings().region)


def update_if_while(
    item: Model,
    actions: list[Action],
    condition: Condition,
    other: type[Model],
    other_key: str,
    other_condition: Condition,
) -> bool:
    """Like `update_if`, in one transaction with a check that the `other` row at `other_key` meets
    `other_condition`; False when either does not hold (e.g. record a decision only while its run waits)."""
    try:
        with TransactWrite(connection=transactions()) as transaction:
            transaction.condition_check(other, other_key, condition=other_condition)
            transaction.update(item, actions=actions, condition=condition)
    except TransactWriteError as error:
        reasons = {reason.code for reason in error.cancellation_reasons if reason is not None}
        if error.cause_response_code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
            return False
        raise
    return True


@dataclass(frozen=True)
class Write:
    """One item of a transaction: `put` saves `model`, `update` applies `actions` to it, `delete` removes it,
    each only when `condition` holds. `name` says which one failed when the transaction is cancelled."""

    name: str
    model: Model
    condition: Condition | None = None
    actions: Sequence[Action] | None = None
    kind: str = "put"


@dataclass(frozen=True)
class Cancelled:
    """Why a transaction wrote nothing: the names of the items whose condition failed, and whether another
    transaction or write held one of its items at the time (DynamoDB's TransactionConflict: try again)."""

    failed: frozenset[str]
    conflict: bool


def transact(*writes: Write, token: str | None = None) -> Cancelled | None:
    """Write every item or none in one TransactWriteItems; None when it was written, else what refused it.
    `token` (ClientRequestToken) makes an identical retry within ten minutes a no-op on DynamoDB's side."""
    deletes = [w for w in writes if w.kind == "delete"]
    puts = [w for w in writes if w.kind == "put"]
    updates = [w for w in writes if w.kind == "update"]
    ordered = deletes + puts + updates  # the order pynamodb sends them in, and the reasons come back in
    try:
        with TransactWrite(connection=transactions(), client_request_token=token) as transaction:
            for write in deletes:
                transaction.delete(write.model, condition=write.condition)
            for write in puts:
                transaction.save(write.model, condition=write.condition)
            for write in updates:
                transaction.update(write.model, actions=list(write.actions or []), condition=write.condition)
    except TransactWriteError as error:
        if error.cause_response_code != "TransactionCanceledException":
            raise
        reasons = error.cancellation_reasons
        failed = frozenset(
            write.name
            for write, reason in zip(ordered, reasons, strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        )
        conflict = any(reason is not None and reason.code == "TransactionConflict" for reason in reasons)
        if not failed and not conflict:
            raise
        return Cancelled(failed, conflict)
    return None


class RunsByCreated(GlobalSecondaryIndex["Run"]):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RunsByStatus(GlobalSecondaryIndex["Run"]):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RunsByOwner(GlobalSecondaryIndex["Run"]):
    class Meta:
        index_name = "by_owner"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class Run(Model):
    """One pass through the pipeline: uploaded objects (one, a batch, or what an outside generator appends),
    or a render request."""

    class Meta:
        table_name = _config.tables.runs
        region = _config.region

    run_id = UnicodeAttribute(hash_key=True)
    listing = UnicodeAttribute(default="runs")  # one partition, so the index lists newest first
    created_at = UnicodeAttribute(default_for_new=now_iso)
    updated_at = UnicodeAttribute(default=now_iso)
    status = UnicodeAttribute()
    source = UnicodeAttribute()
    namespace = UnicodeAttribute()
    title = UnicodeAttribute(null=True)
    tags = ListAttribute[str](default=list)
    auto_approve = BooleanAttribute(default=False)
    asset_type = UnicodeAttribute(null=True)
    language = UnicodeAttribute(null=True)
    author = UnicodeAttribute(null=True)
    # uploads: each object key the run expects, with what its presign declared ({filename, content_type, size,
    # declared_at, index}; loose objects declare nothing), and each key's first arrival ({version_id, rejected,
    # at}). Both are written one key at a time, conditionally, only while the run is queued.
    files: MapAttribute[str, Any] = MapAttribute(default=dict)
    arrivals: MapAttribute[str, Any] = MapAttribute(default=dict)
    hold = BooleanAttribute(default=False)  # starts on POST /runs/{id}/complete (or the comfy webhook), not on arrival
    open_until = UnicodeAttribute(null=True)  # past this the sweep starts the run with what arrived, or expires it
    prompt = UnicodeAttribute(null=True)  # comfy and external runs: how the images were made, as metadata only
    webhook_id = UnicodeAttribute(null=True)  # the comfy completion webhook that completed the run
    review_id = UnicodeAttribute(null=True)
    error_name = UnicodeAttribute(null=True)
    error_cause = UnicodeAttribute(null=True)
    published = JSONAttribute(null=True)
    publish_failures = JSONAttribute(null=True)  # approved assets that could not be published: id, code, reason
    # render runs: what was asked, exactly what was rendered, and where the backend job stands (the job's
    # fields are written only by rendergate.render.job.RenderJob's transitions)
    workflow_name = UnicodeAttribute(null=True)
    workflow_version = UnicodeAttribute(null=True)
    workflow_sha256 = UnicodeAttribute(null=True)
    graph = JSONAttribute(null=True)
    params = JSONAttribute(null=True)
    seed = NumberAttribute(null=True)
    image_count = NumberAttribute(null=True)
    priority = UnicodeAttribute(null=True)
    eta_seconds = NumberAttribute(null=True)
    request_sha256 = UnicodeAttribute(null=True)  # with an Idempotency-Key (or a webhook id): the request it stands for
    backend = UnicodeAttribute(null=True)
    task_token = UnicodeAttribute(null=True)  # never leaves the backend
    submit_state = UnicodeAttribute(null=True)  # sending | submitted | uncertain | refused
    submit_attempts = NumberAttribute(null=True)
    job_id = UnicodeAttribute(null=True)
    job_status = UnicodeAttribute(null=True)
    progress = NumberAttribute(null=True)
    submitted_at = UnicodeAttribute(null=True)
    checked_at = UnicodeAttribute(null=True)
    heartbeat_at = UnicodeAttribute(null=True)
    rendered_at = UnicodeAttribute(null=True)
    outputs = ListAttribute[str](null=True)
    timings = JSONAttribute(null=True)
    backend_error = UnicodeAttribute(null=True)
    entity_id = UnicodeAttribute(null=True)  # an entity's enrichment: the media item it enriches
    owner = UnicodeAttribute(null=True)  # who asked for it (an API key's owner); None for objects that came loose
    # paid work: its price ({base, boost, total}), what was debited, what was refunded since, and whether it
    # holds one of its owner's concurrent-run slots (until its images are rendered or it ends)
    price = JSONAttribute(null=True)
    charged = NumberAttribute(null=True)
    refunded = NumberAttribute(null=True)
    holds_slot = BooleanAttribute(null=True)
    started_at = UnicodeAttribute(null=True)  # an upload run's enrichment began (the work it paid for)
    by_created = RunsByCreated()
    by_status = RunsByStatus()
    by_owner = RunsByOwner()


class AssetsByRun(GlobalSecondaryIndex["Asset"]):
    class Meta:
        index_name = "by_run"
        projection = AllProjection()

    run_id = UnicodeAttribute(hash_key=True)


class AssetsBySha256(GlobalSecondaryIndex["Asset"]):
    class Meta:
        index_name = "by_sha256"
        projection = KeysOnlyProjection()

    sha256 = UnicodeAttribute(hash_key=True)


class Asset(Model):
    """One image of a run, with what enrichment learned about it and where it was published."""

    class Meta:
        table_name = _config.tables.assets
        region = _config.region

    asset_id = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute()
    ordinal = NumberAttribute(default=0)
    bucket = UnicodeAttribute()
    key = UnicodeAttribute()
    version_id = UnicodeAttribute(null=True)  # the version enrich analysed; publish reads exactly that one
    etag = UnicodeAttribute(null=True)
    filename = UnicodeAttribute()
    status = UnicodeAttribute()  # enriched | rejected | approved | published | discarded | failed
    rejection_reason = UnicodeAttribute(null=True)
    rejection_code = UnicodeAttribute(null=True)
    failure_code = UnicodeAttribute(null=True)  # approved but not published, e.g. changed_after_review
    failure_reason = UnicodeAttribute(null=True)
    asset_type = UnicodeAttribute(default="generic")
    provider = UnicodeAttribute(default="upload")
    language = UnicodeAttribute(null=True)
    format = UnicodeAttribute(null=True)
    mode = UnicodeAttribute(null=True)
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    has_alpha = BooleanAttribute(null=True)
    frames = NumberAttribute(null=True)
    bytes = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    phash = UnicodeAttribute(null=True)
    dhash = UnicodeAttribute(null=True)
    blank = BooleanAttribute(null=True)
    thumb_key = UnicodeAttribute(null=True)
    cache_key = UnicodeAttribute(null=True)
    score = NumberAttribute(null=True)
    score_parts = JSONAttribute(null=True)
    selected = BooleanAttribute(null=True)
    selection_reason = UnicodeAttribute(null=True)
    duplicate_of = UnicodeAttribute(null=True)
    duplicate_kind = UnicodeAttribute(null=True)  # exact | near
    duplicate_distance = NumberAttribute(null=True)
    library_key = UnicodeAttribute(null=True)
    public_url = UnicodeAttribute(null=True)
    # a provider candidate of an entity's enrichment: where it came from and what the provider claimed
    source_url = UnicodeAttribute(null=True)
    season = NumberAttribute(null=True)  # season artwork of a TV show
    rank = NumberAttribute(null=True)  # 1 = first of its type (and season) in the selection
    vote_average = NumberAttribute(null=True)
    vote_count = NumberAttribute(null=True)
    claimed_width = NumberAttribute(null=True)
    claimed_height = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(default=now_iso)
    by_run = AssetsByRun()
    by_sha256 = AssetsBySha256()


class HashIndex(Model):
    """Library-wide dedupe. `sha256#{type}#{sha}` claims a content (first asset wins, conditionally);
    `phash#{type}#{band}#{bits}` lists the assets whose phash has those 16 bits in that band."""

    class Meta:
        table_name = _config.tables.hash_index
        region = _config.region

    hash_key = UnicodeAttribute(hash_key=True)
    asset_id = UnicodeAttribute(range_key=True)
    run_id = UnicodeAttribute(null=True)
    phash = UnicodeAttribute(null=True)
    dhash = UnicodeAttribute(null=True)
    cache_key = UnicodeAttribute(null=True)
    owner = UnicodeAttribute(null=True)  # on a sha256 claim: the asset whose copy is stored
    selected = BooleanAttribute(null=True)


class Collection(Model):
    """A library item (`{namespace}/{slug}`) and the asset types its owner locked against auto-selection."""

    class Meta:
        table_name = _config.tables.collections
        region = _config.region

    collection_id = UnicodeAttribute(hash_key=True)  # "{namespace}/{slug}", or "{namespace}" for a library
    locked_types = ListAttribute[str](default=list)
    auto_publish = BooleanAttribute(null=True)  # a library's: entities publish without review
    discard_refund = NumberAttribute(null=True)  # a library's: the share of a discarded image's cost given back
    updated_at = UnicodeAttribute(default=now_iso)


class Review(Model):
    """A human review: the task token it resumes, stored behind a short id, and its one decision."""

    class Meta:
        table_name = _config.tables.reviews
        region = _config.region

    review_id = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute()
    task_token = UnicodeAttribute()
    asset_ids = ListAttribute[str](default=list)
    expires_at = NumberAttribute()
    status = UnicodeAttribute(default="pending")  # pending | decided | expired
    approved = ListAttribute[str](null=True)
    rejected = ListAttribute[str](null=True)
    reviewer = UnicodeAttribute(null=True)
    notes = UnicodeAttribute(null=True)
    decided_at = UnicodeAttribute(null=True)
    delivered_at = UnicodeAttribute(null=True)  # when the state machine took the decision (SendTaskSuccess)
    decided_by = UnicodeAttribute(null=True)  # the owner of the API key that decided (None: a signed link)
    locked_types = ListAttribute[str](null=True)  # an entity's review: the types the reviewer locked
    asset_notes = JSONAttribute(null=True)  # per asset id, the reviewer's note
    reviewer_id = UnicodeAttribute(null=True)  # a signed-in reviewer's id (reviewer then holds their name)
    reminded_at = NumberAttribute(null=True)  # the last reminder sent, for throttling
    escalated_at = NumberAttribute(null=True)
    created_at = UnicodeAttribute(default_for_new=now_iso)
    ttl = NumberAttribute()


class AuditByStatus(GlobalSecondaryIndex["PublisherAudit"]):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class PublisherAudit(Model):
    """One row per approval event that reached the publisher; upserted on retries and replays."""

    class Meta:
        table_name = _config.tables.audit
        region = _config.region

    publish_event_id = UnicodeAttribute(hash_key=True)
    approval_event_ts = UnicodeAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    artifact_uri = UnicodeAttribute(null=True)
    artifact_path = UnicodeAttribute(null=True)
    namespace = UnicodeAttribute(null=True)
    reviewer = UnicodeAttribute(null=True)
    reviewed_at = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # published | failed
    failure_reason = UnicodeAttribute(null=True)
    published_event_id = UnicodeAttribute(null=True)
    published_at = UnicodeAttribute(null=True)
    public_url = UnicodeAttribute(null=True)
    processed_at = UnicodeAttribute(default_for_new=now_iso)
    updated_at = UnicodeAttribute(default=now_iso)
    meta = JSONAttribute(null=True)  # source meta, slug, the failing `stage` and earlier `failures`, replays
    by_status = AuditByStatus()


class RenderEvent(Model):
    """One (backend job, status) the pipeline acted on; the conditional put makes webhooks and the
    reconciler act once, however often the same outcome is reported."""

    class Meta:
        table_name = _config.tables.render_events
        region = _config.region

    event_id = UnicodeAttribute(hash_key=True)  # "{job_id}:{status}"
    run_id = UnicodeAttribute()
    job_id = UnicodeAttribute()
    status = UnicodeAttribute()
    source = UnicodeAttribute()  # webhook | reconciler
    outcome = UnicodeAttribute(default="processing")  # processing | done
    received_at = UnicodeAttribute(default_for_new=now_iso)
    ttl = NumberAttribute()


class EntitiesByCreated(GlobalSecondaryIndex["Entity"]):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class Entity(Model):
    """A media item (a movie or a TV show) in a library folder: what the providers say about it, its actors,
    and what was published for it. Its enrichments are runs whose assets are provider candidates."""

    class Meta:
        table_name = _config.tables.entities
        region = _config.region

    entity_id = UnicodeAttribute(hash_key=True)
    listing = UnicodeAttribute(default="entities")
    created_at = UnicodeAttribute(default_for_new=now_iso)
    updated_at = UnicodeAttribute(default=now_iso)
    kind = UnicodeAttribute()  # movie | tvshow
    status = UnicodeAttribute()  # identified | enriching | enriched | published | stale
    owner = UnicodeAttribute(null=True)  # who registered it
    namespace = UnicodeAttribute()
    folder = UnicodeAttribute()
    media_key = UnicodeAttribute(null=True)
    auto_publish = BooleanAttribute(null=True)  # None: the library's setting decides
    tmdb_id = NumberAttribute()
    imdb_id = UnicodeAttribute(null=True)
    tvdb_id = NumberAttribute(null=True)
    metadata = JSONAttribute(null=True)  # title, originaltitle, plot, runtime, premiered, year, ratings, ...
    actors = JSONAttribute(null=True)  # [{actor_id, name, role, order}], in credit order
    streamdetails = JSONAttribute(null=True)
    streamdetails_source = UnicodeAttribute(null=True)  # request | probe
    run_id = UnicodeAttribute(null=True)  # the latest enrichment
    enrichments = NumberAttribute(default=0)
    provider_status = JSONAttribute(null=True)  # per provider: ok, cached, not_found, or the error
    enriched_at = UnicodeAttribute(null=True)
    fingerprint = UnicodeAttribute(null=True)  # of the latest enrichment's result
    last_published_at = UnicodeAttribute(null=True)
    published_fingerprint = UnicodeAttribute(null=True)
    published_nfo_hash = UnicodeAttribute(null=True)
    published_files = JSONAttribute(null=True)  # {library key: {sha256, etag, role}} written for this entity
    published_assets = JSONAttribute(null=True)  # [{asset_id, asset_type, season, rank, sha256}]
    by_created = EntitiesByCreated()


class FolderClaim(Model):
    """One library folder belongs to one entity; claimed conditionally, case-insensitively."""

    class Meta:
        table_name = _config.tables.entities
        region = _config.region

    entity_id = UnicodeAttribute(hash_key=True)  # "folder#{namespace}/{folder, lower case}"
    owner = UnicodeAttribute()


class Actor(Model):
    """A person credited on entities, one row however many entities share them (found by provider id),
    with their profile image analysed and cached once."""

    class Meta:
        table_name = _config.tables.actors
        region = _config.region

    actor_id = UnicodeAttribute(hash_key=True)  # "tmdb-{person id}"
    name = UnicodeAttribute()
    tmdb_id = NumberAttribute(null=True)
    profile_path = UnicodeAttribute(null=True)
    source_url = UnicodeAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    format = UnicodeAttribute(null=True)
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    cache_key = UnicodeAttribute(null=True)
    thumb_key = UnicodeAttribute(null=True)
    image_problem = UnicodeAttribute(null=True)  # why the profile image is not cached
    updated_at = UnicodeAttribute(default=now_iso)


class ProviderAnswer(Model):
    """A provider's answer to one request, kept `PROVIDER_CACHE_TTL_SECONDS` (the table's TTL deletes it later;
    readers check `expires_at` themselves, since TTL deletion lags)."""

    class Meta:
        table_name = _config.tables.provider_cache
        region = _config.region

    request_key = UnicodeAttribute(hash_key=True)  # "{provider} {path}?{query}"
    status = NumberAttribute()  # 200, or 404 (remembered too, so an unknown title is not asked again)
    body = BinaryAttribute(null=True, legacy_encoding=False)  # zlib-compressed JSON
    fetched_at = UnicodeAttribute(default_for_new=now_iso)
    expires_at = NumberAttribute()
    ttl = NumberAttribute()


class DeliveriesByEvent(GlobalSecondaryIndex["Delivery"]):
    class Meta:
        index_name = "by_event"
        projection = AllProjection()

    event_id = UnicodeAttribute(hash_key=True)
    target = UnicodeAttribute(range_key=True)


class DeliveriesByTarget(GlobalSecondaryIndex["Delivery"]):
    class Meta:
        index_name = "by_target"
        projection = AllProjection()

    target = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DeliveriesByState(GlobalSecondaryIndex["Delivery"]):
    class Meta:
        index_name = "by_state"
        projection = AllProjection()

    state = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class Delivery(Model):
    """One event sent to one target: its attempts, the last answer, the next attempt and how it ended."""

    class Meta:
        table_name = _config.tables.deliveries
        region = _config.region

    delivery_id = UnicodeAttribute(hash_key=True)  # uuid5 of the event id and the target's name
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    run_id = UnicodeAttribute(null=True)  # the event's correlation id
    namespace = UnicodeAttribute(null=True)
    target = UnicodeAttribute()
    target_kind = UnicodeAttribute()
    recipient = UnicodeAttribute(null=True)  # a reviewer the delivery is addressed to, through their target
    target_host = UnicodeAttribute(null=True)  # scheme and host only: a target's path may hold its token
    state = UnicodeAttribute()  # pending | sending | delivered | failed | disabled
    attempts = NumberAttribute(default=0)  # requests sent (or tried)
    failures = NumberAttribute(default=0)  # attempts that count toward the limit (waits a target asked for do not)
    last_status = NumberAttribute(null=True)
    last_outcome = UnicodeAttribute(null=True)  # answered | unknown (sent, no answer) | not_sent
    response_excerpt = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)  # what the target calls its copy (Discord's message id)
    next_attempt_at = UnicodeAttribute(null=True)
    claimed_at = UnicodeAttribute(null=True)  # while `sending`: when the attempt began
    history = JSONAttribute(default=list)  # the latest attempts: at, attempt, status, outcome, note
    event = JSONAttribute()  # the CloudEvent envelope, sent again on every attempt
    created_at = UnicodeAttribute(default_for_new=now_iso)
    updated_at = UnicodeAttribute(default=now_iso)
    delivered_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # TTL
    by_event = DeliveriesByEvent()
    by_target = DeliveriesByTarget()
    by_state = DeliveriesByState()


class TargetState(Model):
    """A target that stopped taking deliveries (Discord's 404, a webhook's 410), keyed `target#{name}` in
    the deliveries table. It has none of the indexes' attributes, so listings never show it. It holds for
    the URL it was recorded for: a document that gives the target another URL enables it again."""

    class Meta:
        table_name = _config.tables.deliveries
        region = _config.region

    key = UnicodeAttribute(hash_key=True, attr_name="delivery_id")
    fingerprint = UnicodeAttribute()
    disabled_at = UnicodeAttribute()
    reason = UnicodeAttribute()
    disabled_by = UnicodeAttribute(null=True)  # the delivery whose answer disabled it


class ReviewersByNamespace(GlobalSecondaryIndex["Membership"]):
    class Meta:
        index_name = "by_namespace"
        projection = AllProjection()

    member_of = UnicodeAttribute(hash_key=True)
    member = UnicodeAttribute(range_key=True)


class ReviewersByCreated(GlobalSecondaryIndex["Reviewer"]):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class KeysByCreated(GlobalSecondaryIndex["ApiKey"]):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class Reviewer(Model):
    """A named person who reviews some namespaces: where to reach them, and when they last signed out (sessions
    issued before that are refused)."""

    class Meta:
        table_name = _config.tables.reviewers
        region = _config.region

    reviewer_id = UnicodeAttribute(hash_key=True)  # uuid5 of the lower-cased email
    listing = UnicodeAttribute(default="reviewers")
    created_at = UnicodeAttribute(default_for_new=now_iso)
    name = UnicodeAttribute()
    email = UnicodeAttribute()
    namespaces = ListAttribute[str](default=list)  # "*" reviews every namespace
    target = UnicodeAttribute(null=True)  # a target of the targets document; else email
    slack_user_id = UnicodeAttribute(null=True)  # who may press the Slack buttons as this reviewer
    signed_out_at = NumberAttribute(null=True)
    by_created = ReviewersByCreated()


class Membership(Model):
    """That a reviewer reviews a namespace, keyed `member#{namespace}#{reviewer id}` in the reviewers table, so
    the reviewers of a namespace are one query of its sparse index."""

    class Meta:
        table_name = _config.tables.reviewers
        region = _config.region

    key = UnicodeAttribute(hash_key=True, attr_name="reviewer_id")
    member_of = UnicodeAttribute()
    member = UnicodeAttribute()
    by_namespace = ReviewersByNamespace()


class ReviewPolicy(Model):
    """A namespace's reminder, escalation and expiry policy, keyed `policy#{namespace}` in the reviewers table."""

    class Meta:
        table_name = _config.tables.reviewers
        region = _config.region

    key = UnicodeAttribute(hash_key=True, attr_name="reviewer_id")
    policy = JSONAttribute()
    updated_at = UnicodeAttribute(default=now_iso)


class UsedToken(Model):
    """A one-time credential that was used (a sign-in link, a Slack request's signature), keyed `used#{purpose}#…`
    in the reviewers table until it could no longer be presented anyway."""

    class Meta:
        table_name = _config.tables.reviewers
        region = _config.region

    key = UnicodeAttribute(hash_key=True, attr_name="reviewer_id")
    used_at = UnicodeAttribute(default_for_new=now_iso)
    ttl = NumberAttribute()


class ApiKey(Model):
    """An API key: its owner and scopes, and only the sha256 of the key itself (shown once, at creation)."""

    class Meta:
        table_name = _config.tables.keys
        region = _config.region

    key_id = UnicodeAttribute(hash_key=True)
    listing = UnicodeAttribute(default="keys")  # one partition, so the index lists newest first
    created_at = UnicodeAttribute(default_for_new=now_iso)
    owner = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    scopes = ListAttribute[str](default=list)
    key_hash = UnicodeAttribute()
    status = UnicodeAttribute(default="active")  # active | revoked
    created_by = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)
    revoked_by = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)  # a rotated key works until then
    replaced_by = UnicodeAttribute(null=True)
    replaces = UnicodeAttribute(null=True)
    by_created = KeysByCreated()


class Account(Model):
    """An owner (a user or a service): its credit balance, the sequence number every ledger transaction
    moves, what it has in flight and spent today, and its limits where they differ from the defaults."""

    class Meta:
        table_name = _config.tables.accounts
        region = _config.region

    owner = UnicodeAttribute(hash_key=True, attr_name="pk")
    item = UnicodeAttribute(range_key=True, attr_name="sk", default="account")
    kind = UnicodeAttribute(default="user")  # user | service
    metered = BooleanAttribute(null=True)  # None: the stack's default
    balance = NumberAttribute(default=0)
    seq = NumberAttribute(default=0)  # transactions applied; equals the owner's ledger rows
    active_runs = NumberAttribute(default=0)
    spent_day = UnicodeAttribute(null=True)  # the UTC day `spent_today` counts
    spent_today = NumberAttribute(default=0)
    limits = JSONAttribute(null=True)  # overrides of requests_per_minute, concurrent_runs, daily_spend, daily_refresh
    refreshed_on = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(default_for_new=now_iso)
    updated_at = UnicodeAttribute(default=now_iso)


class RateWindow(Model):
    """Requests one key sent in one minute (`pk` rate#{key id}, `sk` the minute); expires soon after."""

    class Meta:
        table_name = _config.tables.accounts
        region = _config.region

    key = UnicodeAttribute(hash_key=True, attr_name="pk")
    window = UnicodeAttribute(range_key=True, attr_name="sk")
    hits = NumberAttribute(default=0)
    ttl = NumberAttribute()


class CreditApproval(Model):
    """A grant or adjustment larger than `LargeGrantCredits`, waiting for a second admin (`pk` approvals)."""

    class Meta:
        table_name = _config.tables.accounts
        region = _config.region

    partition = UnicodeAttribute(hash_key=True, attr_name="pk", default="approvals")
    approval_id = UnicodeAttribute(range_key=True, attr_name="sk")
    owner = UnicodeAttribute()
    amount = NumberAttribute()
    reason = UnicodeAttribute()  # grant | adjust
    note = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="pending")  # pending | approved | denied
    requested_by = UnicodeAttribute()
    requested_at = UnicodeAttribute(default_for_new=now_iso)
    expires_at = UnicodeAttribute()
    decided_by = UnicodeAttribute(null=True)
    decided_at = UnicodeAttribute(null=True)
    txn_id = UnicodeAttribute(null=True)  # the ledger row it became


class Unsettled(Model):
    """A paid run whose credits are not settled yet (`pk` settle, `sk` its id): the sweep settles the ones
    that ended, should the refund where they ended not have happened."""

    class Meta:
        table_name = _config.tables.accounts
        region = _config.region

    partition = UnicodeAttribute(hash_key=True, attr_name="pk", default="settle")
    run_id = UnicodeAttribute(range_key=True, attr_name="sk")
    owner = UnicodeAttribute()
    created_at = UnicodeAttribute(default_for_new=now_iso)


class LedgerByAt(LocalSecondaryIndex["LedgerEntry"]):
    class Meta:
        index_name = "by_at"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class LedgerByMonth(GlobalSecondaryIndex["LedgerEntry"]):
    class Meta:
        index_name = "by_month"
        projection = AllProjection()

    month = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class LedgerEntry(Model):
    """One credit transaction of one owner, written once and never changed. `txn_id` is derived from what
    caused it (`debit#{run id}`, `refund#{run id}`, `refresh#{day}`...), so a retry finds it."""

    class Meta:
        table_name = _config.tables.ledger
        region = _config.region

    owner = UnicodeAttribute(hash_key=True)
    txn_id = UnicodeAttribute(range_key=True)
    at = UnicodeAttribute()
    month = UnicodeAttribute()  # YYYY-MM of `at`: exports read a period month by month
    delta = NumberAttribute()
    reason = UnicodeAttribute()  # debit | refund | grant | adjust | boost | refresh
    balance = NumberAttribute()  # the owner's balance after it
    actor = UnicodeAttribute()  # the owner whose key caused it, or "system"
    job = UnicodeAttribute(null=True)  # the run it pays for or refunds
    note = UnicodeAttribute(null=True)
    by_at = LedgerByAt()
    by_month = LedgerByMonth()


@on_reset
def _forget_connections() -> None:
    """Each model keeps the connection it opened; the next use opens one for the settings now in force."""
    for model in (value for value in globals().values() if isinstance(value, type) and issubclass(value, Model)):
        model._connection = None
