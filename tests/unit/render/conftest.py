from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devstack.comfyui import CpuComfyUI
from support.runpod import RunPodServer


@pytest.fixture
def runpod(aws: None, renderer: CpuComfyUI, settings: Callable[..., None]) -> Iterator[RunPodServer]:
    """The RunPod-protocol test server, configured as the render backend; every run is due for a check."""
    server = RunPodServer("render-unit-key", endpoint_id="e").start()
    settings(
        RENDER_BACKEND="runpod",
        RUNPOD_API_BASE=server.url,
        RUNPOD_ENDPOINT_ID="e",
        RUNPOD_API_KEY=server.api_key,
        RECONCILE_POLL_SECONDS="0",
    )
    yield server
    server.stop()


@pytest.fixture
def comfyui(aws: None, renderer: CpuComfyUI, settings: Callable[..., None]) -> CpuComfyUI:
    """The CPU renderer as the render backend; every run is due for a check."""
    settings(RECONCILE_POLL_SECONDS="0")
    return renderer
