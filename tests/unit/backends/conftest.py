from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.comfyui import CpuComfyUI
from support.runpod import RunPodServer


@pytest.fixture
def runpod(renderer: CpuComfyUI) -> Iterator[RunPodServer]:
    """The RunPod-protocol test server; jobs it runs with our worker go to the CPU renderer."""
    server = RunPodServer("runpod-unit-key", renderer.url).start()
    yield server
    server.stop()
