from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from devstack.custom_nodes import load
from support.aws import UNIT_ENV


@pytest.fixture(scope="module")
def nodes() -> ModuleType:
    """The node package as ComfyUI imports it from custom_nodes/."""
    return load()


@pytest.fixture
def node_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a ComfyUI user exports before starting ComfyUI: the API key and the webhook secret."""
    monkeypatch.setenv("RENDERGATE_API_KEY", UNIT_ENV["RENDERGATE_API_KEY"])
    monkeypatch.setenv("RENDERGATE_COMFY_WEBHOOK_SECRET", UNIT_ENV["RENDERGATE_COMFY_WEBHOOK_SECRET"])
    yield
