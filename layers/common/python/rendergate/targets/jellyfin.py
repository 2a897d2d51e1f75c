"""Jellyfin: tell the server a published file exists (`POST /Library/Media/Updated`), so it scans that
path instead of waiting for its next library scan. The API key goes in `Authorization: MediaBrowser
Token="…"`; the legacy `X-Emby-Token` header is ignored by current Jellyfin unless legacy authorization is
turned on. Jellyfin URL-decodes header values, so the key is sent percent-encoded."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rendergate.targets.http import Answer, Outgoing, Verdict, by_status
from rendergate.targets.library import located, published_key

if TYPE_CHECKING:
    from rendergate.targets import Target

DEFAULT_EVENTS = ("content.published.v1",)
ALLOWED_EVENTS = frozenset(DEFAULT_EVENTS)


def request(target: Target, event: dict[str, Any]) -> Outgoing:
    path = located(target.library_root, published_key(event))
    body = {"Updates": [{"Path": path, "UpdateType": "Created"}]}
    headers = {
        "Authorization": f'MediaBrowser Token="{quote(target.api_key, safe="")}", Client="rendergate"',
        "Content-Type": "application/json",
    }
    return Outgoing(target.url.rstrip("/") + "/Library/Media/Updated", headers, body=json.dumps(body).encode())


def outcome(answer: Answer) -> Verdict:
    """204 delivered; a refused key (401, 403) and 5xx are retried; other answers fail."""
    return by_status(answer, refused_auth="retry")
