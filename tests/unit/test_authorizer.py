"""The HttpApi's Lambda authoriser and the scopes of the routes: every route of the template behind it admits a
key with its scope and refuses every other scope with a 403 naming the one it needs; revoked keys stop working
once API Gateway's cached answer for them expires; a rotated key works for its grace period; the first admin
key is the one whose sha256 is in SSM."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import boto3
import pytest

from support import gateway
from support.events import http_request
from support.handlers import AUTH, call
from support.owners import key_for

ROUTES = gateway.guarded_routes()


def concrete(path: str) -> str:
    """The path with a value in each of its parameters (one no route has data for)."""
    return re.sub(r"\{[^}]+\}", "x0", path)


def test_every_route_behind_the_authoriser_declares_the_scope_it_needs() -> None:
    from rendergate.owners import ROUTE_SCOPES

    assert {f"{method} {path}" for _, method, path in ROUTES} == set(ROUTE_SCOPES)


@pytest.mark.parametrize(("function", "method", "path"), ROUTES, ids=[f"{m} {p}" for _, m, p in ROUTES])
def test_a_route_admits_the_scope_it_needs_and_refuses_every_other_naming_it(
    aws: None, function: str, method: str, path: str
) -> None:
    from rendergate.owners import ROUTE_SCOPES, SCOPES

    needed = ROUTE_SCOPES[f"{method} {path}"]
    body = {} if method in ("POST", "PUT") else None
    for scope in SCOPES:
        status, answer = call(function, method, concrete(path), body, key_for("ada", scope, metered=False))
        if scope == needed:
            assert status not in (401, 403), (scope, answer)
        else:
            assert (status, answer["error"], answer["scope"]) == (403, "Forbidden", needed), (scope, answer)
            assert f"'{needed}'" in answer["message"]


def test_a_request_without_a_key_never_reaches_a_function(aws: None) -> None:
    status, answer = call("runs", "GET", "/runs")
    assert (status, answer) == (401, {"message": "Unauthorized"})
    for header in ("Bearer nonsense", "Basic dW5pdA==", "Bearer rgk_0123456789abcdef_" + "A" * 43):
        assert call("runs", "GET", "/runs", headers={"Authorization": header})[0] == 403


def test_the_first_admin_key_is_the_one_whose_sha256_is_in_ssm(aws: None, settings: Callable[..., None]) -> None:
    # Given a deployed stack: no key in the environment, its sha256 in an SSM SecureString
    digest = hashlib.sha256(b"the-deployed-key").hexdigest()
    boto3.client("ssm").put_parameter(Name="/rendergate/api-key", Value=digest, Type="SecureString")
    settings(API_KEY="", API_KEY_HASH_PARAM="/rendergate/api-key")

    # Then that key is the admin owner's, with every scope; another key is refused
    status, answer = call("admin", "GET", "/admin/keys", headers={"Authorization": "Bearer the-deployed-key"})
    assert status == 200, answer
    assert call("admin", "GET", "/credits", headers={"Authorization": "Bearer the-deployed-key"})[1]["owner"] == "admin"
    assert call("admin", "GET", "/admin/keys", headers=AUTH)[0] == 403


def test_a_key_is_shown_once_and_only_its_hash_is_stored(aws: None) -> None:
    from rendergate.tables import ApiKey

    status, made = call("admin", "POST", "/admin/keys", {"owner": "ada", "scopes": ["runs", "read"]}, AUTH)
    assert status == 201 and made["key"].startswith("rgk_")
    stored = ApiKey.get(made["key_id"])
    assert stored.key_hash == hashlib.sha256(made["key"].encode()).hexdigest()
    assert made["key"] not in str(stored.attribute_values)
    _, listed = call("admin", "GET", "/admin/keys", headers=AUTH)
    assert [k["key_id"] for k in listed["keys"]] == [made["key_id"]]
    assert "key" not in listed["keys"][0] and "key_hash" not in listed["keys"][0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def asking(authorizer: object, headers: dict[str, str], method: str = "GET", path: str = "/runs") -> int | None:
    """API Gateway's status for a request (None: let through to the function)."""
    event = http_request(method, path, None, headers)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    verdict = authorizer.authorise(event)  # type: ignore[attr-defined]
    return verdict.status  # type: ignore[no-any-return]


def test_a_revoked_key_stops_working_once_the_cached_answer_expires(aws: None) -> None:
    ttl = gateway.cache_seconds()  # the template's AuthorizerCacheSeconds
    clock = Clock()
    authorizer = gateway.authorizer(ttl, clock)
    headers = key_for("ada", "read")
    key_id = headers["Authorization"].split("_")[1]
    assert asking(authorizer, headers) is None

    status, revoked = call("admin", "DELETE", f"/admin/keys/{key_id}", headers=AUTH)
    assert (status, revoked["status"]) == (200, "revoked")

    clock.now += ttl - 1  # API Gateway still holds the answer it gave for this header
    assert asking(authorizer, headers) is None
    clock.now += 1
    assert asking(authorizer, headers) == 403


def test_the_cache_is_keyed_on_the_authorization_header_alone(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from rendergate import owners

    calls: list[str | None] = []
    original = owners.authorise
    monkeypatch.setattr(owners, "authorise", lambda header: calls.append(header) or original(header))
    clock = Clock()
    authorizer = gateway.authorizer(60, clock)
    first, second = key_for("ada", "read"), key_for("bob", "read")

    # The same header on another route gets the answer kept for it; another header is asked about
    assert asking(authorizer, first, "GET", "/runs") is None
    assert asking(authorizer, first, "GET", "/credits") is None
    assert asking(authorizer, second, "GET", "/credits") is None
    assert calls == [first["Authorization"], second["Authorization"]]  # the function ran once per header

    # The key is the header's exact value: the same key written otherwise is asked about again
    differently = {"Authorization": first["Authorization"].replace("Bearer", "bearer")}
    assert asking(authorizer, differently) is None
    assert calls[-1] == differently["Authorization"] and len(calls) == 3


def test_a_rotated_key_works_beside_its_replacement_for_the_grace_period(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate import owners
    from rendergate.tables import now_iso

    old = key_for("ada", "read")
    old_id = old["Authorization"].split("_")[1]
    status, rotated = call("admin", "POST", f"/admin/keys/{old_id}/rotate", {"grace_seconds": 600}, AUTH)
    assert status == 201, rotated
    new = {"Authorization": f"Bearer {rotated['key']}"}
    assert rotated["replaces"]["key_id"] == old_id and rotated["replaces"]["replaced_by"] == rotated["key_id"]

    # During the grace period both keys work
    assert call("runs", "GET", "/runs", headers=old)[0] == 200
    assert call("runs", "GET", "/runs", headers=new)[0] == 200

    # After it, only the new one
    later = now_iso(601)
    monkeypatch.setattr(owners, "now_iso", lambda: later)
    assert call("runs", "GET", "/runs", headers=old)[0] == 403
    assert call("runs", "GET", "/runs", headers=new)[0] == 200

    # A key is rotated once: rotating the old one again is refused
    assert call("admin", "POST", f"/admin/keys/{old_id}/rotate", headers=AUTH)[0] == 409


def test_rotation_grace_defaults_to_the_stacks_setting(aws: None, settings: Callable[..., None]) -> None:
    settings(KEY_ROTATION_GRACE_SECONDS="0")
    old = key_for("ada", "read")
    _, rotated = call("admin", "POST", f"/admin/keys/{old['Authorization'].split('_')[1]}/rotate", headers=AUTH)
    assert call("runs", "GET", "/runs", headers=old)[0] == 403
    assert call("runs", "GET", "/runs", headers={"Authorization": f"Bearer {rotated['key']}"})[0] == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"owner": "ada", "scopes": ["everything"]}, "unknown scope"),
        ({"owner": "ada", "scopes": []}, "scopes must be"),
        ({"owner": "Ada!", "scopes": ["read"]}, "owner must be"),
        ({"owner": "ada", "scopes": ["read"], "key": "mine"}, "key"),
    ],
)
def test_a_key_that_cannot_be_made_is_a_clear_400(aws: None, body: dict[str, object], fragment: str) -> None:
    status, answer = call("admin", "POST", "/admin/keys", body, AUTH)
    assert status == 400 and fragment in answer["message"], answer
