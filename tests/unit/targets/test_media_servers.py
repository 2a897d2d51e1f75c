"""Jellyfin and Kodi, against stand-ins that check what the real servers check: Jellyfin's path, body and
`Authorization: MediaBrowser Token="…"` (URL-decoded, as Jellyfin reads it; the legacy X-Emby-Token is
ignored), Kodi's basic auth, exact Content-Type and JSON-RPC 2.0 `VideoLibrary.Scan` parameters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from support.deliveries import once, published
from support.receivers import Jellyfin, Kodi

KEY = "a1+b2/c3="  # a key with characters that URL decoding would change


@pytest.fixture
def jellyfin() -> Iterator[Jellyfin]:
    with Jellyfin(KEY) as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def kodi() -> Iterator[Kodi]:
    with Kodi("kodi", "p@ss:word") as stand_in:
        yield stand_in  # type: ignore[misc]


def test_jellyfin_is_told_the_published_files_path_under_its_library_root(jellyfin: Jellyfin) -> None:
    verdict = once(jellyfin.target("jf", library_root="/mnt/library/"), published(namespace="alice"))

    assert verdict.state == "delivered"
    assert jellyfin.updates == [{"Path": "/mnt/library/alice/sunset/x.png", "UpdateType": "Created"}]
    assert jellyfin.seen[0].headers["authorization"].startswith("MediaBrowser Token=")


def test_a_windows_library_root_gets_backslashes(jellyfin: Jellyfin) -> None:
    once(jellyfin.target("jf", library_root="D:\\Media"), published(namespace="alice"))

    assert jellyfin.updates[0]["Path"] == "D:\\Media\\alice\\sunset\\x.png"


def test_the_stand_in_checks_auth_as_current_jellyfin_does(jellyfin: Jellyfin) -> None:
    url, body = f"{jellyfin.url}/Library/Media/Updated", {"Updates": [{"Path": "/x", "UpdateType": "Created"}]}

    assert requests.post(url, json=body, headers={"X-Emby-Token": KEY}, timeout=5).status_code == 401
    raw = {"Authorization": f'MediaBrowser Token="{KEY}"'}
    assert requests.post(url, json=body, headers=raw, timeout=5).status_code == 401  # '+' decoded to ' '
    assert requests.post(url, json=body, params={"ApiKey": KEY}, timeout=5).status_code == 204


def test_a_refused_key_and_a_failing_server_are_retried_a_bad_request_fails(jellyfin: Jellyfin) -> None:
    wrong = {**jellyfin.target("jf"), "api_key": "wrong"}
    assert once(wrong, published()).state == "retry"
    jellyfin.script(503, 400)
    assert once(jellyfin.target("jf"), published()).state == "retry"
    assert once(jellyfin.target("jf"), published()).state == "failed"


def test_an_event_without_a_library_path_is_undeliverable(jellyfin: Jellyfin) -> None:
    from rendergate.errors import Undeliverable

    with pytest.raises(Undeliverable, match="names no library key"):
        once(jellyfin.target("jf"), published(library_key=None))
    assert jellyfin.seen == []


def test_kodi_scans_the_published_folder_under_its_library_root(kodi: Kodi) -> None:
    verdict = once(kodi.target("kodi", library_root="smb://nas/library"), published(namespace="alice"))

    assert verdict.state == "delivered"
    assert kodi.scans == [{"directory": "smb://nas/library/alice/sunset/", "showdialogs": False}]


def test_kodi_folder_from_the_event_wins(kodi: Kodi) -> None:
    once(kodi.target("kodi"), published(folder="Movies/Alien (1979)", library_key="Movies/Alien (1979)/movie.nfo"))

    assert kodi.scans[0]["directory"] == "smb://nas/library/Movies/Alien (1979)/"


def test_kodi_answers_errors_with_200_and_they_fail_the_delivery(kodi: Kodi) -> None:
    kodi.script(
        (
            200,
            {"Content-Type": "application/json"},
            {"error": {"code": -32602, "message": "Invalid params."}, "id": "x", "jsonrpc": "2.0"},
        )
    )

    verdict = once(kodi.target("kodi"), published())

    assert (verdict.state, verdict.note) == ("failed", "JSON-RPC error -32602: Invalid params.")


def test_the_stand_in_takes_only_what_kodi_takes(kodi: Kodi) -> None:
    call = {"jsonrpc": "2.0", "method": "VideoLibrary.Scan", "params": {"directory": "/x/"}, "id": 1}
    auth = ("kodi", "p@ss:word")
    assert requests.post(f"{kodi.url}/jsonrpc", json=call, timeout=5).status_code == 401
    typed = {"Content-Type": "application/json; charset=utf-8"}
    assert requests.post(f"{kodi.url}/jsonrpc", data=b"{}", headers=typed, auth=auth, timeout=5).status_code == 415
    wrong = requests.post(f"{kodi.url}/jsonrpc", json={**call, "params": {"path": "/x"}}, auth=auth, timeout=5)
    assert wrong.json()["error"]["code"] == -32602


def test_wrong_kodi_credentials_are_retried(kodi: Kodi) -> None:
    assert once({**kodi.target("kodi"), "password": "nope"}, published()).state == "retry"
