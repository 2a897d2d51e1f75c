"""Reading entity views in the tests."""

from __future__ import annotations

from typing import Any

from support.owners import ADMIN


def artwork(view: dict[str, Any], asset_id: str) -> dict[str, Any]:
    """One candidate of the view, by asset id."""
    return next(
        c for g in view["artwork"].values() for c in g["selected"] + g["alternatives"] if c["asset_id"] == asset_id
    )


def chosen(view: dict[str, Any]) -> dict[str, list[str]]:
    """The selected images' sha256 per type, in rank order."""
    return {group: [c["sha256"] for c in entry["selected"]] for group, entry in view["artwork"].items()}


def entity_row(view: dict[str, Any]) -> Any:
    from rendergate.tables import Entity

    return Entity.get(view["entity_id"])


def publish(view: dict[str, Any], approved: list[str] | None = None, **decision: Any) -> dict[str, Any]:
    """Publish an entity's enrichment with `approved` (in rank order; default: its selection)."""
    from rendergate.publish import publish_run

    chosen = view["result"]["selected_ids"] if approved is None else approved
    review = {"approved": chosen, "rejected": [], "reviewer": "Ada", "reviewed_at": "2026-01-01T00:00:00Z", **decision}
    return publish_run({"run_id": view["enrichment"]["run_id"], "review": review})


def enrich_again(entity_id: str) -> dict[str, Any]:
    """A new enrichment of the entity, run to its end; the entity's view."""
    from rendergate.enrich import enrich_run
    from rendergate.media import entities
    from rendergate.tables import Run

    previous = Run.get(str(entities.get(entity_id).run_id))
    if previous.status == "enriching":  # it reached its review, as the Review task would move it
        previous.update(actions=[Run.status.set("awaiting_review")])
    view = entities.enrich_again(entity_id, ADMIN)
    result = enrich_run({"run_id": view["enrichment"]["run_id"], "objects": []})
    return entities.view(entities.get(entity_id)) | {"result": result}
