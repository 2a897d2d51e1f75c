"""Reviewers: named people with an email and the namespaces they review, who sign in without a password. A
sign-in link opens a page whose button starts a session; the session is a sealed cookie that names the
reviewer, and every form a signed-in reviewer posts carries a token bound to that session and to the review,
so a cookie alone never acts. Namespaces keep their review policy here too (reminders, escalation, expiry)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from rendergate import config, events, listing, signing
from rendergate.errors import BadRequest, Conflict, LinkInvalid, NotFound, ReviewExpired, unknown_fields
from rendergate.names import NAMESPACE, TARGET
from rendergate.tables import Membership, Reviewer, ReviewPolicy, UsedToken, now_iso, save_if_absent, transactions

if TYPE_CHECKING:
    from aws_lambda_powertools.shared.cookies import Cookie

REVIEWER_NAMESPACE = uuid.UUID("0b5b7a8e-3c1d-4e2f-9a6b-7c8d9e0f1a2b")
EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
EVERY_NAMESPACE = "*"
FIELDS = {"name", "email", "namespaces", "target", "slack_user_id"}
SIGN_IN_SECONDS = 15 * 60  # a sign-in link lives this long, and works once
SESSION_SECONDS = 12 * 3600
COOKIE = "rendergate_session"
CURSOR_PURPOSE = "reviewers-cursor"
POLICY_FIELDS = {"reminder_after_hours", "reminder_every_hours", "escalate_after_hours", "escalate_to", "expiry"}
EXPIRY_POLICIES = ("expire", "auto-reject")
MAX_HOURS = 24 * 30


@dataclass(frozen=True)
class Session:
    """A signed-in reviewer: who, and the nonce that forms bind their tokens to."""

    reviewer: Reviewer
    nonce: str
    expires_at: int


def create(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """`POST /reviewers`: a new reviewer (201); the same one again answers it (200); another with that email is
    a 409. Their namespaces are written with them, in one transaction."""
    fields = _fields(body)
    reviewer = Reviewer(reviewer_id_for(fields["email"]), **fields)
    try:
        existing = Reviewer.get(reviewer.reviewer_id)
    except DoesNotExist:
        existing = None
    if existing is not None:
        if _comparable(existing) != _comparable(reviewer):
            raise Conflict(f"a reviewer with the email {fields['email']} exists already: DELETE it first to change it")
        return view(existing), 200
    with TransactWrite(connection=transactions()) as transaction:
        transaction.save(reviewer, condition=Reviewer.reviewer_id.does_not_exist())
        for namespace in reviewer.namespaces:
            transaction.save(_membership(namespace, reviewer.reviewer_id))
    return view(Reviewer.get(reviewer.reviewer_id)), 201


def get(reviewer_id: str) -> Reviewer:
    """The reviewer; NotFound when there is none (or the id is not one)."""
    if not re.fullmatch(r"[0-9a-f]{32}", reviewer_id):
        raise NotFound("there is no such reviewer")
    try:
        return Reviewer.get(reviewer_id)
    except DoesNotExist as error:
        raise NotFound("there is no such reviewer") from error


def find(reviewer_id: str) -> Reviewer | None:
    try:
        return get(reviewer_id)
    except NotFound:
        return None


def delete(reviewer_id: str) -> None:
    """`DELETE /reviewers/{id}`: the reviewer and their namespaces; their sessions end with them."""
    reviewer = get(reviewer_id)
    with TransactWrite(connection=transactions()) as transaction:
        transaction.delete(reviewer)
        for namespace in reviewer.namespaces:
            transaction.delete(_membership(namespace, reviewer.reviewer_id))


def list_reviewers(limit: str, cursor: str | None) -> dict[str, Any]:
    """`GET /reviewers`, oldest first, paged."""
    found, next_cursor = listing.page(Reviewer.by_created, "reviewers", CURSOR_PURPOSE, "all", limit, cursor)
    return {"reviewers": [view(reviewer) for reviewer in found], "next_cursor": next_cursor}


def of_namespace(namespace: str | None) -> list[Reviewer]:
    """The reviewers of a namespace (and those who review every namespace)."""
    ids = {
        member.member
        for group in ([namespace] if namespace else []) + [EVERY_NAMESPACE]
        for member in Membership.by_namespace.query(group)
    }
    found = list(Reviewer.batch_get(sorted(ids))) if ids else []
    return sorted(found, key=lambda reviewer: reviewer.created_at)


def reviews(reviewer: Reviewer, namespace: str) -> bool:
    """Whether `reviewer` reviews `namespace`."""
    return EVERY_NAMESPACE in reviewer.namespaces or namespace in reviewer.namespaces


def view(reviewer: Reviewer) -> dict[str, Any]:
    return {
        "reviewer_id": reviewer.reviewer_id,
        "name": reviewer.name,
        "email": reviewer.email,
        "namespaces": sorted(reviewer.namespaces or []),
        "target": reviewer.target,
        "slack_user_id": reviewer.slack_user_id,
        "created_at": reviewer.created_at,
    }


def _comparable(reviewer: Reviewer) -> dict[str, Any]:
    return view(reviewer) | {"email": reviewer.email.lower(), "created_at": None}


def reviewer_id_for(email: str) -> str:
    return uuid.uuid5(REVIEWER_NAMESPACE, email.strip().lower()).hex


def send_sign_in_link(reviewer_id: str) -> dict[str, Any]:
    """`POST /reviewers/{id}/link`: a signed sign-in link that expires and works once, delivered to the reviewer
    through their target (or by email), never answered to the caller."""
    from rendergate import notify

    reviewer = get(reviewer_id)
    expires_at = int(time.time()) + SIGN_IN_SECONDS
    link = sign_in_link(reviewer, expires_at)
    delivery = notify.send_personal(
        reviewer,
        "reviewer.sign_in.v1",
        {"reviewer_id": reviewer.reviewer_id, "name": reviewer.name, "url": link, "expires_at": expires_at},
    )
    return {"reviewer_id": reviewer.reviewer_id, "expires_at": expires_at, "delivery": delivery}


def sign_in_link(reviewer: Reviewer, expires_at: int) -> str:
    payload = json.dumps({"r": reviewer.reviewer_id, "exp": expires_at, "n": secrets.token_urlsafe(12)}).encode()
    token = signing.seal(config.link_signing_key(), "reviewer-sign-in", payload)
    return f"{config.public_base_url()}/signin?token={token}"


def sign_in_offer(token: str | None) -> Reviewer:
    """Whom a sign-in link would sign in (for its page); the link is checked but not used."""
    return get(_sign_in_claims(token)["r"])


def sign_in(token: str | None) -> tuple[Reviewer, str]:
    """Use a sign-in link once: the reviewer and the session cookie's value. LinkInvalid for a forged link,
    ReviewExpired for an old or used one."""
    claims = _sign_in_claims(token)
    reviewer = get(claims["r"])
    used = UsedToken(f"used#sign-in#{claims['n']}", ttl=int(claims["exp"]) + 3600)
    if not save_if_absent(used, UsedToken.key.does_not_exist()):
        raise ReviewExpired("this sign-in link was used already: ask for a new one")
    now = int(time.time())
    session = {"r": reviewer.reviewer_id, "iat": now, "exp": now + SESSION_SECONDS, "n": secrets.token_urlsafe(12)}
    return reviewer, signing.seal(config.link_signing_key(), "reviewer-session", json.dumps(session).encode())


def session_from(cookies: list[str] | None) -> Session | None:
    """The signed-in reviewer of a request, from its session cookie; None when there is none, or it is forged,
    expired, issued before the reviewer signed out, or its reviewer was removed."""
    value = next((c.split("=", 1)[1] for c in cookies or [] if c.strip().startswith(f"{COOKIE}=")), None)
    payload = signing.unseal(config.link_signing_key(), "reviewer-session", value.strip()) if value else None
    if payload is None:
        return None
    claims = json.loads(payload)
    if int(claims["exp"]) <= time.time():
        return None
    reviewer = find(str(claims["r"]))
    if reviewer is None or (reviewer.signed_out_at and int(claims["iat"]) <= int(reviewer.signed_out_at)):
        return None
    return Session(reviewer, str(claims["n"]), int(claims["exp"]))


def form_token(session: Session, purpose: str) -> str:
    """The token a signed-in reviewer's form carries: bound to their session and to what the form acts on."""
    return signing.seal(config.link_signing_key(), "reviewer-form", f"{session.nonce}:{purpose}".encode())


def check_form_token(session: Session, purpose: str, token: str | None) -> bool:
    payload = signing.unseal(config.link_signing_key(), "reviewer-form", token or "")
    return payload == f"{session.nonce}:{purpose}".encode()


def cookie(value: str, max_age: int) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure when the API is served over https, expiring (a
    max_age of 0 removes it)."""
    from aws_lambda_powertools.shared.cookies import Cookie, SameSite

    secure = config.public_base_url().startswith("https://")
    return Cookie(COOKIE, value, path="/", secure=secure, http_only=True, max_age=max_age, same_site=SameSite.LAX_MODE)


def sign_out(session: Session) -> None:
    """End every session of the reviewer issued until now."""
    session.reviewer.update(actions=[Reviewer.signed_out_at.set(int(time.time()))])


def policy(namespace: str) -> dict[str, Any]:
    """A namespace's review policy; without one, no reminders, no escalation, and reviews expire."""
    _namespace(namespace)
    try:
        stored = dict(ReviewPolicy.get(f"policy#{namespace}").policy or {})
    except DoesNotExist:
        stored = {}
    return {"namespace": namespace, "expiry": "expire"} | stored


def set_policy(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """`PUT /review-policies/{namespace}`: replace the policy. Hours are whole numbers from 1 to 720; escalation
    names a target of the targets document."""
    _namespace(namespace)
    if unknown := set(body) - POLICY_FIELDS:
        raise unknown_fields(unknown)
    chosen: dict[str, Any] = {}
    for name in ("reminder_after_hours", "reminder_every_hours", "escalate_after_hours"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_HOURS:
            raise BadRequest(f"{name} must be a whole number of hours from 1 to {MAX_HOURS}")
        chosen[name] = value
    if "reminder_every_hours" in chosen and "reminder_after_hours" not in chosen:
        raise BadRequest("reminder_every_hours needs reminder_after_hours")
    escalate_to = body.get("escalate_to")
    if ("escalate_after_hours" in chosen) != (escalate_to is not None):
        raise BadRequest("escalate_after_hours and escalate_to go together")
    if escalate_to is not None:
        if not isinstance(escalate_to, str) or not TARGET.match(escalate_to):
            raise BadRequest("escalate_to must be the name of a target of the targets document")
        chosen["escalate_to"] = escalate_to
    expiry = body.get("expiry", "expire")
    if expiry not in EXPIRY_POLICIES:
        raise BadRequest(f"expiry must be one of {', '.join(EXPIRY_POLICIES)}")
    chosen["expiry"] = expiry
    ReviewPolicy(f"policy#{namespace}", policy=chosen, updated_at=now_iso()).save()
    return policy(namespace)


def announce(event_type: str, review_id: str, run_id: str, data: dict[str, Any]) -> None:
    """Put a review event on the bus with an id derived from what it is, so a repeat is the same event."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]
    event_id = f"{event_type.removesuffix('.v1').replace('.', '-')}-{review_id}-{digest}"
    events.emit(event_type, subject=run_id, data=data, correlation_id=run_id, event_id=event_id)


def _sign_in_claims(token: str | None) -> dict[str, Any]:
    payload = signing.unseal(config.link_signing_key(), "reviewer-sign-in", token or "") if token else None
    if payload is None:
        raise LinkInvalid("this sign-in link is not valid")
    claims: dict[str, Any] = json.loads(payload)
    if int(claims["exp"]) <= time.time():
        raise ReviewExpired("this sign-in link has expired: ask for a new one")
    return claims


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    if unknown := set(body) - FIELDS:
        raise unknown_fields(unknown)
    name, email = body.get("name"), body.get("email")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 120:
        raise BadRequest("name must be a string of 1-120 characters")
    if not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email.strip()):
        raise BadRequest("email must be an email address such as ann@example.com")
    namespaces = body.get("namespaces")
    if (
        not isinstance(namespaces, list)
        or not 0 < len(namespaces) <= 50
        or not all(isinstance(n, str) and (n == EVERY_NAMESPACE or NAMESPACE.match(n)) for n in namespaces)
    ):
        raise BadRequest("namespaces must be a list of 1-50 namespaces (a-z, 0-9, '.', '_', '-'), or [\"*\"] for all")
    target, slack_user_id = body.get("target"), body.get("slack_user_id")
    if target is not None and (not isinstance(target, str) or not TARGET.match(target)):
        raise BadRequest("target must be the name of a target of the targets document")
    if slack_user_id is not None and (not isinstance(slack_user_id, str) or not SLACK_USER.match(slack_user_id)):
        raise BadRequest("slack_user_id must be a Slack user id such as U024BE7LH")
    return {
        "name": name.strip(),
        "email": email.strip(),
        "namespaces": sorted(set(namespaces)),
        "target": target,
        "slack_user_id": slack_user_id,
    }


def _membership(namespace: str, reviewer_id: str) -> Membership:
    return Membership(f"member#{namespace}#{reviewer_id}", member_of=namespace, member=reviewer_id)


def _namespace(namespace: str) -> None:
    if not NAMESPACE.match(namespace):
        raise BadRequest("namespace must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
