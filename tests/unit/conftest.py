from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from support.aws import create_resources


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process with template.yaml's tables, the buckets and a (non-executing) state machine."""
    with mock_aws():
        from rendergate import config

        config.settings.cache_clear()
        _reset_clients()
        create_resources()
        yield
        _reset_clients()


def _reset_clients() -> None:
    from rendergate import events, executions, storage
    from rendergate.tables import Asset, PublisherAudit, Review, Run

    for adapter in (storage._s3, events._events, executions._sfn):
        adapter.cache_clear()
    for model in (Run, Asset, Review, PublisherAudit):
        model._connection = None
