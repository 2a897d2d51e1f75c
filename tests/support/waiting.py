"""Waiting for what happens asynchronously (queues, executions) without sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 10) -> Any:
    """Retry `check` until it stops raising AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def until(value: Callable[[], Any], timeout: float = 20, what: str = "the condition") -> Any:
    """Poll `value` until it is truthy and return it; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while not (result := value()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)
    return result
