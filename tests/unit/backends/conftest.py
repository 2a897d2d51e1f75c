from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.runpod import RunPodServer


@pytest.fixture
def runpod() -> Iterator[RunPodServer]:
    """The RunPod-protocol test server (no worker: its jobs are scripted, or wait in the queue)."""
    server = RunPodServer("runpod-unit-key").start()
    yield server
    server.stop()
