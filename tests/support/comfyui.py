"""Tests against the CPU ComfyUI: a graph ComfyUI accepts only in part, and a hook that stops prompts
halfway through sampling, so a test can look at a prompt while it is certainly running."""

from __future__ import annotations

import copy
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.comfyui import CpuComfyUI

BROKEN_SAMPLER = "12"
BROKEN_OUTPUT = "14"


def partly_valid(graph: dict[str, Any]) -> dict[str, Any]:
    """The txt2img graph with a second output whose sampler names a sampler that does not exist: ComfyUI
    queues it with the first output alone and lists the broken sampler in `node_errors`."""
    made = copy.deepcopy(graph)
    made[BROKEN_SAMPLER] = copy.deepcopy(made["3"])
    made[BROKEN_SAMPLER]["inputs"]["sampler_name"] = "warp"
    made["13"] = {"class_type": "VAEDecode", "inputs": {"samples": [BROKEN_SAMPLER, 0], "vae": ["4", 2]}}
    made[BROKEN_OUTPUT] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "second", "images": ["13", 0]}}
    return made


class Halfway:
    """The renderer's `stepping` hook: every prompt stops halfway through sampling until it is released
    (or interrupted, which a sampler notices at its next step)."""

    def __init__(self, renderer: CpuComfyUI) -> None:
        self.renderer = renderer
        self.reached: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.released: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.everything = threading.Event()
        renderer.stepping = self

    def __call__(self, prompt_id: str, step: int, steps: int) -> None:
        if step != steps // 2:
            return
        self.reached[prompt_id].set()
        while not (self.released[prompt_id].wait(0.05) or self.everything.is_set() or self.renderer.interrupt.is_set()):
            pass

    def wait_until_reached(self, prompt_id: str, timeout: float = 20) -> None:
        assert self.reached[prompt_id].wait(timeout), f"prompt {prompt_id} never got halfway"

    def release(self, prompt_id: str) -> None:
        self.released[prompt_id].set()

    def finish_after_next_answer(self, prompt_id: str) -> None:
        """Let the held prompt finish after the renderer's next answer is made and before it is sent: the
        moment a client that asks in two requests can miss the prompt between queue and history."""

        def answering(method: str, path: str) -> None:
            self.renderer.answering = None
            self.release(prompt_id)
            deadline = time.monotonic() + 20
            while prompt_id not in self.renderer.history and time.monotonic() < deadline:
                time.sleep(0.01)

        self.renderer.answering = answering
