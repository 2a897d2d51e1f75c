from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from moto import mock_aws

from rendergate import config
from support.aws import create_resources

if TYPE_CHECKING:
    from devstack.comfyui import CpuComfyUI
    from support.comfyui import Halfway


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process with template.yaml's tables, the buckets and a (non-executing) state machine."""
    with mock_aws():
        config.reset()
        create_resources()
        yield
        config.reset()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Change settings for one test: `settings(COMFYUI_URL=...)` sets RENDERGATE_COMFYUI_URL."""

    def change(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"RENDERGATE_{name}", value)
        config.reset()

    yield change
    config.reset()


@pytest.fixture
def renderer(settings: Callable[..., None]) -> Iterator[CpuComfyUI]:
    """The CPU ComfyUI renderer on loopback, configured as the render backend."""
    from devstack.comfyui import CpuComfyUI

    running = CpuComfyUI(port=0, step_seconds=0.001).start()
    settings(COMFYUI_URL=running.url, RENDER_BACKEND="comfyui")
    yield running
    running.stop()


@pytest.fixture
def halfway(renderer: CpuComfyUI) -> Iterator[Halfway]:
    """Every prompt the renderer runs stops halfway through sampling until the test releases it."""
    from support.comfyui import Halfway

    hook = Halfway(renderer)
    yield hook
    hook.everything.set()
