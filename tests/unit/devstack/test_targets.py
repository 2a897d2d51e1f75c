"""`make run` with RENDERGATE_TARGETS: the local stack checks the document before it starts (refusing a
bad one with the same message the functions would log) and stores it where the functions read it, an SSM
SecureString, as a deploy does."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest

from support.deliveries import SECRET

HOOK = {"name": "n8n", "kind": "webhook", "url": "http://127.0.0.1:5678/webhook/rendergate", "secret": SECRET}


def test_a_bad_document_stops_the_stack_before_it_starts_and_says_why() -> None:
    from devstack.__main__ import checked_targets

    with pytest.raises(SystemExit, match=r"RENDERGATE_TARGETS: .*targets\[1\] \(n8n\): secret must be whsec_"):
        checked_targets(json.dumps([{**HOOK, "name": "first"}, {**HOOK, "secret": "plain"}]))


def test_the_document_goes_where_the_functions_read_it(aws: None, settings: Callable[..., None]) -> None:
    from devstack.__main__ import checked_targets, store_targets
    from rendergate import targets

    document = checked_targets(json.dumps([HOOK]))
    store_targets(boto3.client("ssm"), "/rendergate/dev/targets", document)
    settings(TARGETS="", TARGETS_PARAM="/rendergate/dev/targets", TARGETS_CACHE_SECONDS="0")

    parameter = boto3.client("ssm").get_parameter(Name="/rendergate/dev/targets")["Parameter"]
    assert parameter["Type"] == "SecureString"
    assert [target.name for target in targets.current()] == ["n8n"]
