"""Kodi: JSON-RPC 2.0 `VideoLibrary.Scan` of the published item's folder over HTTP POST, with basic auth.
Kodi answers every call 200, its errors included (`{"error": {code, message}}`); it takes only
`Content-Type: application/json` (or the JSON-RPC variants) without parameters, else 415."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rendergate.targets.http import Answer, Outgoing, Verdict, by_status
from rendergate.targets.library import located, published_folder

if TYPE_CHECKING:
    from rendergate.targets import Target

DEFAULT_EVENTS = ("content.published.v1",)
ALLOWED_EVENTS = frozenset(DEFAULT_EVENTS)


def request(target: Target, event: dict[str, Any]) -> Outgoing:
    directory = located(target.library_root, published_folder(event), folder=True)
    call = {
        "jsonrpc": "2.0",
        "method": "VideoLibrary.Scan",
        "params": {"directory": directory, "showdialogs": False},
        "id": str(event["id"]),
    }
    auth = (target.username, target.password) if target.username else None
    return Outgoing(target.url, {"Content-Type": "application/json"}, body=json.dumps(call).encode(), auth=auth)


def outcome(answer: Answer) -> Verdict:
    """A JSON-RPC result is delivered; a JSON-RPC error fails (the call itself is wrong); HTTP errors as usual."""
    if not answer.ok:
        return by_status(answer, refused_auth="retry")
    reply = answer.json()
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        error = reply["error"]
        return Verdict("failed", f"JSON-RPC error {error.get('code')}: {error.get('message')}")
    if isinstance(reply, dict) and "result" in reply:
        return Verdict("delivered")
    return Verdict("failed", "the answer is not a JSON-RPC response")
