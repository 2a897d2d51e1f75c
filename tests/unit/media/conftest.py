from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devstack.providers import ProviderStandIn
from support.owners import ADMIN


class StandIn:
    """The TMDB/fanart.tv stand-in on loopback, with its request log and fault script."""

    def __init__(self, server: ProviderStandIn) -> None:
        self.server = server
        self.url = server.url

    def requests(self, prefix: str = "") -> list[str]:
        """The paths asked for, in order (those under `prefix`)."""
        return [r["path"] for r in self.server.requests if r["path"].startswith(prefix)]

    def fail(self, path_prefix: str, status: int, times: int = 1, retry_after: int | None = None) -> None:
        fault: dict[str, Any] = {"path_prefix": path_prefix, "status": status, "times": times}
        if retry_after is not None:
            fault["retry_after"] = retry_after
        requests.post(f"{self.url}/__standin/faults", json=fault, timeout=5).raise_for_status()


@pytest.fixture
def providers_server(aws: None, settings: Callable[..., None]) -> Iterator[StandIn]:
    """The provider stand-in, configured as TMDB and fanart.tv, on in-process moto."""
    server = ProviderStandIn().start()
    settings(TMDB_API_BASE=f"{server.url}/3", FANART_API_BASE=f"{server.url}/v3")
    yield StandIn(server)
    server.stop()


@pytest.fixture
def enriched(providers_server: StandIn) -> Callable[..., dict[str, Any]]:
    """Register an entity and run its enrichment as the Enrich task would; the entity's view."""
    from rendergate.enrich import enrich_run
    from rendergate.media import entities

    def make(**body: Any) -> dict[str, Any]:
        view, status = entities.register({"kind": "movie", **body}, ADMIN)
        assert status in (200, 201), view
        result = enrich_run({"run_id": view["enrichment"]["run_id"], "objects": []})
        assert result["more"] is False
        return entities.view(entities.get(view["entity_id"])) | {"result": result}

    return make
