"""Review links for people: the log, and a local outbox file the devstack prints and tests read."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from rendergate.config import settings
from rendergate.observability import logger
from rendergate.tables import now_iso

_outbox_lock = threading.Lock()


def review_requested(run_id: str, title: str | None, asset_count: int, url: str) -> None:
    """Tell reviewers a run waits for them, with the signed link."""
    message = {
        "kind": "review.requested",
        "run_id": run_id,
        "title": title,
        "assets": asset_count,
        "url": url,
        "at": now_iso(),
    }
    logger.info("review requested", extra=message)
    _append_to_outbox(message)


def _append_to_outbox(message: dict[str, Any]) -> None:
    path = settings().review.outbox_path
    if not path:
        return
    with _outbox_lock, Path(path).open("a", encoding="utf-8") as outbox:
        outbox.write(json.dumps(message) + "\n")
