"""Shared fixtures. Unit tests get in-process moto with template.yaml's tables; integration and e2e
tests share one devstack process per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.aws import apply_unit_env
from support.devstack import DevStack, running_devstack

apply_unit_env()  # before any test module imports rendergate


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    # targets are read for every batch, so a test can point the running stack at its own receivers
    with running_devstack(tmp_path_factory.mktemp("devstack"), parameters={"TargetsCacheSeconds": "0"}) as stack:
        yield stack
