"""Deliveries: every event on the bus that a target wants becomes one delivery per (event, target), whose
id derives from both, so a duplicate event finds its deliveries and sends nothing new. A delivery is
attempted when its event arrives; an attempt that fails is recorded (status, an excerpt of the answer, the
next attempt) and retried through the delivery queue with a delay, never a sleep, so retries outlive the
Lambda: exponential backoff with jitter, or exactly the wait the target asked for (429 / Retry-After), up
to `delivery_max_attempts` failed attempts. It ends delivered, failed or disabled.

An attempt first claims its delivery (a conditional write on the attempt count), so two copies of a
message never send twice at once. A delivered one is never sent again. One whose answer never came
(a timeout, a dropped connection, or an attempt that died before recording it) is retried and recorded
with the outcome `unknown`: the target may have it, and receivers dedupe by the event id."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.indexes import Index

from rendergate import events, listing, queues, runs, targets
from rendergate.config import settings
from rendergate.errors import BadRequest, Conflict, NotFound, Undeliverable
from rendergate.names import EVENT_ID, TARGET
from rendergate.observability import logger
from rendergate.tables import Delivery, Reviewer, TargetState, epoch_of, iso_at, now_iso, save_if_absent, update_if
from rendergate.targets import Target
from rendergate.targets.http import Answer, NoAnswer, Verdict, send

DELIVERY_NAMESPACE = uuid.UUID("6f1d2c3b-8a9e-4f70-b1c2-d3e4f5a6b7c8")
STATES = ("pending", "sending", "delivered", "failed", "disabled")
FINAL = frozenset({"delivered", "failed", "disabled"})
FIRST_RETRY_SECONDS = 5.0
BACKOFF_FACTOR = 4
MAX_RETRY_SECONDS = 6 * 3600.0
MAX_WAIT_SECONDS = 24 * 3600.0  # the longest wait a target may ask for
GIVE_UP_SECONDS = 3 * 24 * 3600  # waits asked for do not count as failures, so age bounds them
LEASE_SECONDS = 120  # an attempt that claimed a delivery this long ago without recording an answer has died
ATTEMPT_BUDGET_MS = 25_000  # an attempt starts only with this much time left: connect, answer, records
OVERDUE_SECONDS = 60  # the sweep sends a pending delivery's message again this long after it was due
HISTORY = 20  # attempts kept on the row
TTL_SECONDS = 90 * 24 * 3600
CONCURRENCY = 16
CURSOR_PURPOSE = "deliveries-cursor"
T = TypeVar("T")
ADDRESSED = frozenset({"review.requested.v1", "review.reminder.v1", "review.escalated.v1"})


def clock() -> float:
    """Seconds since the epoch; the one clock of this module, so tests can move it forward."""
    return time.time()


async def handle_message(body: str, remaining_ms: Callable[[], int]) -> None:
    """One message of the delivery queue: an event from the bus (fanned out to its targets, each delivery
    attempted at once, concurrently) or a delivery whose next attempt is due."""
    try:
        message = json.loads(body)
    except ValueError:
        logger.error("not a delivery message; dropped", extra={"body": body[:200]})
        return
    if isinstance(message, dict) and "delivery_id" in message:
        await _in_thread(attempt_when_due, message, remaining_ms)
        return
    if not isinstance(message, dict) or message.get("source") != events.SOURCE:
        logger.error("not an event of ours; dropped", extra={"body": body[:200]})
        return
    due = await _in_thread(accept, message.get("detail"))
    attempts = (_in_thread(_attempt, row, remaining_ms, created) for row, created in due)
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome  # the message comes back; claims keep what was done from being done twice


def accept(envelope: Any) -> list[tuple[Delivery, bool]]:
    """Record a delivery for every target that wants this event (once, whatever the number of copies);
    return those due now, each with whether it was created now (an earlier copy may have made it)."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("id"), str) or not envelope.get("type"):
        logger.error("an event without id or type; dropped", extra={"event": str(envelope)[:200]})
        return []
    interested = [target for target in targets.current() if envelope["type"] in target.events]
    addressed = envelope["type"] in ADDRESSED
    namespace = _namespace(envelope) if interested or addressed else None
    chosen: list[tuple[Target, Reviewer | None]] = [
        (target, None) for target in interested if target.wants(str(envelope["type"]), namespace)
    ]
    if addressed:
        chosen += [pair for pair in _addressees(envelope, namespace) if (pair[0], None) not in chosen]
    due = []
    for target, reviewer in chosen:
        row, created = _open(target, envelope, namespace, reviewer)
        if row.state == "pending" and not _later(row):
            due.append((row, created))
    return due


def send_personal(reviewer: Reviewer, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A message for one reviewer that is not an event on the bus (their sign-in link): recorded and sent as
    a delivery to the reviewer's target (or by email), retried like any other. Conflict when there is no way
    to reach them."""
    target = reviewer_target(reviewer)
    if target is None:
        raise Conflict(
            f"there is no way to reach {reviewer.name}: name a target of the targets document as their target, "
            "or add an email target"
        )
    envelope = events.envelope(event_type, reviewer.reviewer_id, data, reviewer.reviewer_id, str(uuid.uuid4()))
    row, _ = _open(target, envelope, None, reviewer)
    _schedule(row.delivery_id, 0)
    return {"delivery_id": row.delivery_id, "target": target.name, "kind": target.kind}


def reviewer_target(reviewer: Reviewer) -> Target | None:
    """Where a reviewer is reached: their own target, else the first email target of the document."""
    if reviewer.target:
        return targets.named(reviewer.target)
    return next((target for target in targets.current() if target.kind == "email"), None)


def _addressees(envelope: dict[str, Any], namespace: str | None) -> list[tuple[Target, Reviewer | None]]:
    """Who a review event is addressed to: the namespace's reviewers (each through their own target), or for
    an escalation the target its policy names."""
    from rendergate import reviewers

    data = envelope.get("data") or {}
    if envelope["type"] == "review.escalated.v1":
        target = targets.named(str(data.get("escalate_to") or ""))
        if target is None:
            logger.warning(
                "the escalation target is not in the targets document", extra={"target": data.get("escalate_to")}
            )
        return [(target, None)] if target is not None else []
    found: list[tuple[Target, Reviewer | None]] = []
    for reviewer in reviewers.of_namespace(namespace):
        target = reviewer_target(reviewer)
        if target is None:
            logger.warning("a reviewer cannot be reached", extra={"reviewer_id": reviewer.reviewer_id})
            continue
        found.append((target, reviewer))
    return found


def attempt_when_due(message: dict[str, Any], remaining_ms: Callable[[], int]) -> None:
    """A retry message: attempt its delivery, or send the message on when it came early (SQS delays a
    message 15 minutes at most, so longer waits take several hops)."""
    wait = float(message.get("due") or 0) - clock()
    if wait > 1:
        queues.send(settings().delivery.queue_url, message, wait)
        return
    attempt(str(message["delivery_id"]), remaining_ms)


def attempt(delivery_id: str, remaining_ms: Callable[[], int]) -> None:
    """Send one delivery once, if it is due and nobody else is sending it, and record what came back."""
    row = _find(delivery_id)
    if row is not None:
        _attempt(row, remaining_ms, created=False)


def _attempt(row: Delivery, remaining_ms: Callable[[], int], created: bool) -> None:
    """`attempt` of a row in hand; one created this moment was checked against its target's disablement."""
    if row.state in FINAL or (row.state == "pending" and _later(row)):
        return
    if row.state == "sending" and not _abandoned(row):
        return  # another attempt is under way
    if remaining_ms() < ATTEMPT_BUDGET_MS:
        _schedule(row.delivery_id, 0)  # not enough time left in this invocation: the next one sends it
        return
    target = targets.named(row.target)
    if target is None:
        _close(row, "disabled", f"the target {row.target} is no longer in the targets document")
        return
    disabled = None if created else _disablement(target)
    if disabled is not None:
        _close(row, "disabled", f"the target {target.name} is disabled since {disabled.disabled_at}: {disabled.reason}")
        return
    if _claim(row):
        verdict, answer, outcome = _send(target, row)
        _record(row, target, verdict, answer, outcome)


def retry(delivery_id: str) -> dict[str, Any]:
    """`POST /deliveries/{id}/retry`: a failed or disabled delivery gets a fresh set of attempts (a disabled
    target is enabled again); a delivered one is never sent again."""
    row = _find(delivery_id)
    if row is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    if row.state == "delivered":
        raise Conflict(
            f"delivery {delivery_id} was delivered at {row.delivered_at} (HTTP {row.last_status}); "
            "a delivered notification is never sent again"
        )
    if row.state not in FINAL:
        raise Conflict(f"delivery {delivery_id} is {row.state}; its next attempt is at {row.next_attempt_at}")
    target = targets.named(row.target)
    if target is None:
        raise Conflict(f"the target {row.target} is no longer in the targets document; nothing to retry")
    was = row.state
    history = _history(row, {"at": now_iso(), "outcome": "retry requested", "note": f"was {was}"})
    actions: list[Action] = [
        Delivery.state.set("pending"),
        Delivery.failures.set(0),
        Delivery.next_attempt_at.set(iso_at(clock())),
        Delivery.note.set("retried on request"),
        Delivery.history.set(history),
        Delivery.updated_at.set(now_iso()),
    ]
    if not update_if(row, actions, (Delivery.state == was) & (Delivery.attempts == row.attempts)):
        raise Conflict(f"delivery {delivery_id} changed meanwhile; ask again")
    if was == "disabled":
        _enable(target)
    _schedule(delivery_id, 0)
    return view(row)


def list_deliveries(
    event_id: str | None, target: str | None, state: str | None, limit: str, cursor: str | None
) -> dict[str, Any]:
    """`GET /deliveries`: by event (one row per target), by target or by state, newest first."""
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    if target is not None and not TARGET.match(target):
        raise BadRequest("target must be a target's name (1-63 characters of a-z, 0-9, '_' or '-')")
    if event_id is not None and not EVENT_ID.match(event_id):
        raise BadRequest("event_id must be an event id (1-128 characters of letters, digits, '_', '.', ':', '-')")
    if not (event_id or target or state):
        raise BadRequest("filter by event_id, target or state (e.g. ?state=failed)")
    in_state = (Delivery.state == state) if state else None
    index: Index[Delivery]
    options: dict[str, Any]
    if event_id:  # one row per target: the target is its sort key
        index, key = Delivery.by_event, event_id
        options = {"range_key_condition": (Delivery.target == target) if target else None, "filter_condition": in_state}
    elif target:
        index, key = Delivery.by_target, target
        options = {"filter_condition": in_state, "scan_index_forward": False}
    else:
        index, key = Delivery.by_state, str(state)
        options = {"scan_index_forward": False}
    found, next_cursor = listing.page(
        index, key, CURSOR_PURPOSE, f"{event_id}|{target}|{state}", limit, cursor, **options
    )
    return {"deliveries": [view(row) for row in found], "next_cursor": next_cursor}


def of_events(*event_ids: str) -> list[dict[str, Any]]:
    """The deliveries of these events, for the audit view: where each went and how it ended."""
    shown = ("delivery_id", "target", "event_type", "state", "attempts", "last_status")
    views = [view(row) for event_id in event_ids if event_id for row in Delivery.by_event.query(event_id)]
    return [{key: item[key] for key in shown} for item in views]


def resend_overdue(remaining_ms: Callable[[], int]) -> dict[str, str]:
    """The sweep's part: pending deliveries whose message should have come a while ago get a new one (the
    claim makes a late original harmless)."""
    cutoff = iso_at(clock() - OVERDUE_SECONDS)
    resent: dict[str, str] = {}
    for row in Delivery.by_state.query("pending", filter_condition=Delivery.next_attempt_at < cutoff):
        if remaining_ms() < 5_000:
            break
        _schedule(row.delivery_id, 0)
        resent[row.delivery_id] = "resent"
    return resent


def view(row: Delivery) -> dict[str, Any]:
    """A delivery as the API shows it; never the target's URL or secrets."""
    return {
        "delivery_id": row.delivery_id,
        "target": row.target,
        "kind": row.target_kind,
        "target_host": row.target_host,
        "recipient": row.recipient,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "run_id": row.run_id,
        "namespace": row.namespace,
        "state": row.state,
        "attempts": int(row.attempts),
        "failed_attempts": int(row.failures),
        "last_status": int(row.last_status) if row.last_status is not None else None,
        "last_outcome": row.last_outcome,
        "response_excerpt": row.response_excerpt,
        "note": row.note,
        "message_id": row.message_id,
        "next_attempt_at": row.next_attempt_at if row.state == "pending" else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "delivered_at": row.delivered_at,
        "history": list(row.history or []),
    }


def retry_delay(failures: int, asked: float | None) -> float:
    """Seconds until the next attempt: the wait the target asked for, else exponential backoff from 5 s
    (x4 each failure, at most 6 hours) with equal jitter (between half the step and the step)."""
    if asked is not None:
        return min(MAX_WAIT_SECONDS, max(1.0, asked))
    step = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * BACKOFF_FACTOR ** max(0, failures - 1))
    return random.uniform(step / 2, step)


def delivery_id_for(event_id: str, target_name: str, recipient: str | None = None) -> str:
    name = f"{event_id}/{target_name}" + (f"/{recipient}" if recipient else "")
    return str(uuid.uuid5(DELIVERY_NAMESPACE, name))


def _namespace(envelope: dict[str, Any]) -> str | None:
    """The namespace an event concerns: its data's, else its run's (render and review events name only the run)."""
    data = envelope.get("data")
    namespace = data.get("namespace") if isinstance(data, dict) else None
    if isinstance(namespace, str):
        return namespace
    run_id = envelope.get("correlationid")
    run = runs.find(run_id) if isinstance(run_id, str) and run_id else None
    return run.namespace if run else None


def _open(
    target: Target, envelope: dict[str, Any], namespace: str | None, reviewer: Reviewer | None = None
) -> tuple[Delivery, bool]:
    """The delivery of this event to this target (addressed to `reviewer`, if any): created now (disabled at
    once for a disabled target), or the one an earlier copy of the event created; and which of the two."""
    now = clock()
    recipient = reviewer.reviewer_id if reviewer else None
    row = Delivery(
        delivery_id_for(str(envelope["id"]), target.name, recipient),
        recipient=recipient,
        event_id=str(envelope["id"]),
        event_type=str(envelope["type"]),
        run_id=str(envelope.get("correlationid") or "") or None,
        namespace=namespace,
        target=target.name,
        target_kind=target.kind,
        target_host=target.host,
        state="pending",
        next_attempt_at=iso_at(now),
        event=envelope,
        history=[],
        expires_at=int(now) + TTL_SECONDS,
    )
    disabled = _disablement(target)
    if disabled is not None:
        row.state, row.next_attempt_at = "disabled", None
        row.note = f"the target {target.name} is disabled since {disabled.disabled_at}: {disabled.reason}"
    if save_if_absent(row, Delivery.delivery_id.does_not_exist()):
        return row, True
    return Delivery.get(row.delivery_id), False


def _claim(row: Delivery) -> bool:
    """Take the delivery for one attempt. An abandoned claim (its attempt died unrecorded) counts as an
    attempt whose outcome is unknown."""
    attempts, failures = int(row.attempts), int(row.failures)
    condition = (Delivery.state == row.state) & (Delivery.attempts == attempts)
    history = list(row.history or [])
    if row.state == "sending":
        condition &= Delivery.claimed_at == row.claimed_at
        failures += 1
        history = _history(
            row,
            {
                "at": row.claimed_at,
                "attempt": attempts,
                "outcome": "unknown",
                "note": "the attempt never recorded an answer",
            },
        )
    actions: list[Action] = [
        Delivery.state.set("sending"),
        Delivery.claimed_at.set(iso_at(clock())),
        Delivery.attempts.set(attempts + 1),
        Delivery.failures.set(failures),
        Delivery.history.set(history),
        Delivery.updated_at.set(now_iso()),
    ]
    return update_if(row, actions, condition)


def _send(target: Target, row: Delivery) -> tuple[Verdict, Answer | None, str]:
    event = dict(row.event)
    if row.recipient:
        from rendergate import reviewers

        reviewer = reviewers.find(str(row.recipient))
        if reviewer is None:
            return Verdict("failed", "the reviewer it was addressed to was removed"), None, "not_sent"
        event["recipient"] = {"reviewer_id": reviewer.reviewer_id, "name": reviewer.name, "email": reviewer.email}
    try:
        if hasattr(target.adapter, "deliver"):  # not an HTTP request (email through SES)
            verdict, answer, outcome = target.adapter.deliver(target, event)
            return verdict, answer, outcome
        outgoing = target.adapter.request(target, event)
    except Undeliverable as error:
        return Verdict("failed", str(error)), None, "not_sent"
    try:
        answer = send(outgoing)
    except NoAnswer as missing:
        return Verdict("retry", str(missing)), None, "unknown" if missing.sent else "not_sent"
    return target.adapter.outcome(answer), answer, "answered"


def _record(row: Delivery, target: Target, verdict: Verdict, answer: Answer | None, outcome: str) -> None:
    """Write what one attempt learned, conditional on still holding the claim; schedule the next attempt."""
    attempt_number = int(row.attempts)
    failures = int(row.failures) + (1 if verdict.state == "retry" and not verdict.rate_limited else 0)
    state, note, delay = verdict.state, verdict.note, 0.0
    entry: dict[str, Any] = {"at": now_iso(), "attempt": attempt_number, "outcome": outcome}
    entry |= {"status": answer.status} if answer else {}
    entry |= {"note": note[:200]} if note else {}
    if state == "retry":
        delay = retry_delay(failures, verdict.retry_after)
        if failures >= settings().delivery.max_attempts:
            state, note = "failed", f"gave up after {failures} failed attempts; the last: {note}"
        elif clock() + delay - epoch_of(row.created_at) > GIVE_UP_SECONDS:
            days = GIVE_UP_SECONDS // 86400
            state, note = "failed", f"gave up: the next attempt would be {days} days after the event; the last: {note}"
        else:
            state = "pending"
            entry["retry_in_seconds"] = round(delay, 1)
    actions: list[Action] = [
        Delivery.state.set(state),
        Delivery.failures.set(failures),
        Delivery.last_outcome.set(outcome),
        Delivery.note.set(note) if note else Delivery.note.remove(),
        Delivery.history.set(_history(row, entry)),
        Delivery.claimed_at.remove(),
        Delivery.updated_at.set(now_iso()),
        Delivery.next_attempt_at.set(iso_at(clock() + delay))
        if state == "pending"
        else Delivery.next_attempt_at.remove(),
    ]
    if answer is not None:
        actions += [Delivery.last_status.set(answer.status), Delivery.response_excerpt.set(answer.excerpt or "-")]
    if state == "delivered":
        actions.append(Delivery.delivered_at.set(now_iso()))
        if verdict.message_id:
            actions.append(Delivery.message_id.set(verdict.message_id))
    if not update_if(row, actions, (Delivery.state == "sending") & (Delivery.attempts == attempt_number)):
        logger.warning("an attempt lost its claim before recording", extra={"delivery_id": row.delivery_id})
        return
    if state == "pending":
        _schedule(row.delivery_id, delay)
    if state == "disabled":
        _disable(target, row, note)
    logger.info(
        "delivery attempt",
        extra={"delivery_id": row.delivery_id, "target": target.name, "state": state, "outcome": outcome},
    )


def _close(row: Delivery, state: str, note: str) -> None:
    actions: list[Action] = [
        Delivery.state.set(state),
        Delivery.note.set(note),
        Delivery.next_attempt_at.remove(),
        Delivery.updated_at.set(now_iso()),
    ]
    update_if(row, actions, (Delivery.state == row.state) & (Delivery.attempts == row.attempts))


def _schedule(delivery_id: str, delay: float) -> None:
    queues.send(settings().delivery.queue_url, {"delivery_id": delivery_id, "due": clock() + delay}, delay)


def _disablement(target: Target) -> TargetState | None:
    """The record that disabled this target at its current URL, if any."""
    try:
        state = TargetState.get(f"target#{target.name}")
    except DoesNotExist:
        return None
    return state if state.fingerprint == target.fingerprint else None


def _disable(target: Target, row: Delivery, reason: str) -> None:
    TargetState(
        f"target#{target.name}",
        fingerprint=target.fingerprint,
        disabled_at=now_iso(),
        reason=reason,
        disabled_by=row.delivery_id,
    ).save()
    logger.warning("a delivery target was disabled", extra={"target": target.name, "reason": reason})


def _enable(target: Target) -> None:
    TargetState(f"target#{target.name}").delete()  # deleting what is not there is no error


def _find(delivery_id: str) -> Delivery | None:
    try:
        return Delivery.get(delivery_id)
    except DoesNotExist:
        return None


def _later(row: Delivery) -> bool:
    """Whether a pending delivery's next attempt is still more than a second away."""
    return bool(row.next_attempt_at) and epoch_of(str(row.next_attempt_at)) > clock() + 1


def _abandoned(row: Delivery) -> bool:
    return not row.claimed_at or epoch_of(str(row.claimed_at)) < clock() - LEASE_SECONDS


def _history(row: Delivery, entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [*list(row.history or []), entry][-HISTORY:]


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="delivery")


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (DynamoDB, HTTP) on the delivery threads, so a batch's deliveries go out together."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), partial(function, *args))
