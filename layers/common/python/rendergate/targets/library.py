"""Where a published item sits in a media server's view of the library: the server mounts the library
bucket (or a copy of it) under its own `library_root`, so its path is that root plus the library key."""

from __future__ import annotations

import posixpath
from typing import Any

from rendergate.errors import Undeliverable


def published_key(event: dict[str, Any]) -> str:
    """The library key a `content.published.v1` event names (its file), else the folder it names."""
    data = event.get("data") or {}
    key = data.get("library_key") or data.get("folder")
    if not isinstance(key, str) or not key.strip("/"):
        raise Undeliverable(f"{event.get('type')} {event.get('id')} names no library key or folder")
    return key.strip("/")


def published_folder(event: dict[str, Any]) -> str:
    """The folder of the published item: the event's `folder`, else the folder of its library key."""
    data = event.get("data") or {}
    folder = data.get("folder")
    if isinstance(folder, str) and folder.strip("/"):
        return folder.strip("/")
    return posixpath.dirname(published_key(event))


def located(root: str, relative: str, folder: bool = False) -> str:
    """`relative` (a library key, '/'-separated) under the server's `root`, in the root's own separator
    (a Windows root such as `D:\\Media` gets backslashes); folders end with a separator, as Kodi's do."""
    separator = "\\" if "\\" in root and "/" not in root else "/"
    path = root.rstrip("/\\") + separator + relative.strip("/").replace("/", separator)
    return path + separator if folder else path
