"""The targets document: one JSON list in an SSM SecureString (RENDERGATE_TARGETS locally), read through
Powertools with caching; checked whole, so a document with one mistake is refused with every problem named
and nothing of it is applied."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from support.deliveries import SECRET

PARAMETER = "/rendergate/test/targets"
EXAMPLE = [
    {
        "name": "n8n",
        "kind": "webhook",
        "url": "https://n8n.example.test/webhook/rendergate",
        "secret": SECRET,
        "events": ["content.published.v1"],
    },
    {
        "name": "studio",
        "kind": "discord",
        "url": "https://discord.com/api/webhooks/1234/abcd",
        "events": ["content.published.v1"],
    },
    {
        "name": "jf",
        "kind": "jellyfin",
        "url": "http://jellyfin:8096",
        "api_key": "0123abcd",
        "library_root": "/mnt/library",
    },
    {
        "name": "kodi",
        "kind": "kodi",
        "url": "http://kodi:8080/jsonrpc",
        "username": "kodi",
        "password": "secret",
        "library_root": "smb://nas/library/",
    },
]


def parse(items: Any) -> Any:
    from rendergate.targets import parse as parse_document

    return parse_document(json.dumps(items))


def refusal(items: Any) -> str:
    from rendergate.errors import TargetsInvalid

    with pytest.raises(TargetsInvalid) as refused:
        parse(items)
    return str(refused.value)


def test_the_documented_shape_parses_with_each_kinds_default_events() -> None:
    n8n, studio, jellyfin, kodi = parse(EXAMPLE)

    assert (n8n.kind, n8n.events, n8n.namespaces) == ("webhook", {"content.published.v1"}, None)
    assert jellyfin.events == kodi.events == {"content.published.v1"}
    assert (kodi.username, kodi.library_root) == ("kodi", "smb://nas/library/")
    [defaulted] = parse([{k: v for k, v in EXAMPLE[0].items() if k != "events"}])
    assert defaulted.events == {
        "content.publish.approved.v1",
        "content.published.v1",
        "content.publish.failed.v1",
        "render.failed.v1",
    }
    assert studio.host == "https://discord.com"


def test_namespaces_limit_a_target() -> None:
    [limited] = parse([{**EXAMPLE[1], "namespaces": ["alice", "bob"]}])

    assert limited.wants("content.published.v1", "alice")
    assert not limited.wants("content.published.v1", "carol")
    assert not limited.wants("content.published.v1", None)
    assert not limited.wants("render.failed.v1", "alice")


def test_secrets_never_appear_in_a_targets_repr() -> None:
    text = repr(parse(EXAMPLE))

    for secret in (SECRET, "abcd", "0123abcd", "secret"):
        assert secret not in text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"kind": "sms"}, "kind must be one of webhook, discord, jellyfin, kodi, slack, email"),
        ({"name": "Has Spaces"}, "name must be"),
        ({"url": "ftp://n8n.example.test/x"}, "url must be an http(s) URL"),
        ({"url": "https://user:pass@n8n.example.test/x"}, "without credentials"),
        ({"secret": "hunter2"}, "secret must be whsec_"),
        ({"secret": "whsec_c2hvcnQ="}, "at least 24 random bytes"),
        ({"events": ["content.publishd.v1"]}, "not content.publishd.v1"),
        ({"events": []}, "events must be a non-empty list"),
        ({"namespaces": ["Alice!"]}, "namespaces must be"),
        ({"retries": 3}, "unknown field for a webhook target: retries"),
    ],
)
def test_each_mistake_is_named(change: dict[str, Any], named: str) -> None:
    message = refusal([{**EXAMPLE[0], **change}])

    assert named in message
    assert "nothing of it applied" in message


def test_kind_specific_rules() -> None:
    assert "a jellyfin target needs api_key" in refusal([{k: v for k, v in EXAMPLE[2].items() if k != "api_key"}])
    assert "takes only content.published.v1" in refusal([{**EXAMPLE[3], "events": ["render.failed.v1"]}])
    assert "Discord webhook URL" in refusal([{**EXAMPLE[1], "url": "https://discord.com/channels/1/2"}])


def test_one_bad_target_refuses_the_whole_document_and_names_every_problem() -> None:
    message = refusal([*EXAMPLE, {**EXAMPLE[0], "name": "second", "secret": "nope"}, {**EXAMPLE[1]}])

    assert "targets[4] (second): secret must be whsec_" in message
    assert "the name 'studio' is used twice" in message


@pytest.mark.parametrize("document", ["{", '{"targets": []}', json.dumps([1])])
def test_a_document_that_is_not_a_list_of_objects_is_refused(document: str) -> None:
    from rendergate.errors import TargetsInvalid
    from rendergate.targets import parse as parse_document

    with pytest.raises(TargetsInvalid, match="targets document"):
        parse_document(document)


def put(document: str) -> None:
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=document, Type="SecureString", Overwrite=True)


@pytest.fixture
def from_ssm(aws: None, settings: Callable[..., None]) -> Callable[[str], None]:
    """Targets read from the SSM parameter (no RENDERGATE_TARGETS), cached as long as `cache` says."""

    def configure(cache: str) -> None:
        settings(TARGETS="", TARGETS_PARAM=PARAMETER, TARGETS_CACHE_SECONDS=cache)

    return configure


def test_without_the_parameter_there_are_no_targets(from_ssm: Callable[[str], None]) -> None:
    from rendergate import targets

    from_ssm("0")

    assert targets.current() == ()


def test_the_document_is_read_from_ssm_and_kept_for_the_cache_time(from_ssm: Callable[[str], None]) -> None:
    from rendergate import targets

    put(json.dumps(EXAMPLE[:1]))
    from_ssm("300")
    assert [t.name for t in targets.current()] == ["n8n"]

    put(json.dumps(EXAMPLE))
    assert [t.name for t in targets.current()] == ["n8n"]  # still cached


def test_with_no_cache_a_new_document_applies_at_once_and_a_bad_one_is_refused_whole(
    from_ssm: Callable[[str], None],
) -> None:
    from rendergate import targets
    from rendergate.errors import TargetsInvalid

    put(json.dumps(EXAMPLE[:1]))
    from_ssm("0")
    assert [t.name for t in targets.current()] == ["n8n"]

    put(json.dumps(EXAMPLE))
    assert [t.name for t in targets.current()] == ["n8n", "studio", "jf", "kodi"]

    put(json.dumps([*EXAMPLE, {"name": "broken", "kind": "webhook"}]))
    with pytest.raises(TargetsInvalid, match="broken"):
        targets.current()
    with pytest.raises(TargetsInvalid):
        targets.named("n8n")  # nothing of a refused document is used, not even its good targets
