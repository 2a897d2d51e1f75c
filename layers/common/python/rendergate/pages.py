"""The HTML reviewers see. Every value is escaped; pages carry no script."""

from __future__ import annotations

from html import escape
from typing import Any

from rendergate.tables import Asset, Entity, Review, Run

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.5rem} .assets{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:1rem}
figure{border:1px solid #ddd;border-radius:.5rem;margin:0;padding:.75rem}
figure img{max-width:100%;height:auto;display:block;margin-bottom:.5rem;background:#eee}
figcaption{font-size:.85rem;color:#555} label{margin-right:1rem} .meta{color:#555}
textarea,input[type=text]{width:100%;box-sizing:border-box;margin:.25rem 0 1rem}
button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem} .problem{border-left:4px solid #c00;padding-left:1rem}
.duplicate{color:#a40} .selection{font-weight:600}
.group{margin:1.5rem 0} .rank{width:3.5rem} .actors{display:flex;flex-wrap:wrap;gap:.75rem;list-style:none;padding:0}
.actors li{width:7rem;font-size:.8rem} .actors img{width:7rem;height:auto;background:#eee} dt{font-weight:600}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name=robots content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _run_heading(run: Run) -> str:
    title = escape(str(run.title or run.run_id))
    tags = ", ".join(escape(t) for t in run.tags or [])
    return (
        f"<h1>Review: {title}</h1>"
        f"<p class=meta>run <code>{escape(run.run_id)}</code> · namespace <code>{escape(run.namespace)}</code>"
        f"{' · tags ' + tags if tags else ''}</p>"
    )


def _facts(asset: Asset) -> str:
    facts = (
        f"{escape(asset.filename)}<br>{escape(str(asset.format))} {asset.width} x {asset.height}, "
        f"{asset.bytes} bytes{', transparent' if asset.has_alpha else ''}"
        f"{f', {asset.frames} frames' if (asset.frames or 1) > 1 else ''}"
        f"<br>sha256 <code>{escape((asset.sha256 or '')[:16])}…</code> phash <code>{escape(asset.phash or '')}</code>"
        f"<br>{escape(str(asset.asset_type))}, score {asset.score if asset.score is not None else '-'}: "
        f"<span class=selection>{'selected' if asset.selected else 'not selected'}</span>"
        f" <small>({escape(asset.selection_reason or '')})</small>"
    )
    if asset.duplicate_of:
        kind = (
            "an exact copy"
            if asset.duplicate_kind == "exact"
            else f"a near-duplicate (distance {asset.duplicate_distance})"
        )
        facts += (
            f"<br><strong class=duplicate>This is {kind} of asset <code>{escape(asset.duplicate_of)}</code></strong>"
        )
    return facts


def review_form(
    run: Run, review: Review, assets: list[Asset], previews: dict[str, str], action: str, exp: int, sig: str
) -> str:
    figures = []
    for asset in assets:
        choices = "".join(
            f'<label><input type=radio name="asset-{escape(asset.asset_id)}" value="{value}"'
            f"{' checked' if (value == 'approve') == bool(asset.selected) else ''}> {value}</label>"
            for value in ("approve", "reject")
        )
        figures.append(
            f'<figure data-asset-id="{escape(asset.asset_id)}">'
            f'<img src="{escape(previews[asset.asset_id])}" alt="{escape(asset.filename)}" loading=lazy>'
            f"<figcaption>{_facts(asset)}</figcaption><div>{choices}</div></figure>"
        )
    body = (
        _run_heading(run)
        + f'<form method=post action="{escape(action)}">'
        + f'<input type=hidden name=exp value="{exp}"><input type=hidden name=sig value="{escape(sig)}">'
        + f"<div class=assets>{''.join(figures)}</div>"
        + "<p><label for=reviewer>Your name</label><input type=text id=reviewer name=reviewer maxlength=120></p>"
        + "<p><label for=notes>Notes</label><textarea id=notes name=notes rows=3 maxlength=2000></textarea></p>"
        + "<button type=submit name=submit value=selection>Submit decision</button>"
        + "<button type=submit name=all value=approve>Approve all</button>"
        + "<button type=submit name=all value=reject>Reject all</button>"
        + "</form>"
    )
    return _page(f"Review {run.title or run.run_id}", body)


def entity_review_form(
    run: Run,
    review: Review,
    entity: Entity,
    assets: list[Asset],
    actors: list[dict[str, Any]],
    previews: dict[str, str],
    action: str,
    exp: int,
    sig: str,
    locked: set[str] | None = None,
) -> str:
    """An entity's review: key metadata, the actors with their thumbnails, and per artwork type the selected
    images in rank order, then the alternatives with score, size, language and provider. A rank box per
    image (blank: not selected) swaps and reorders; a checkbox per type locks it against re-enrichment."""
    metadata = entity.metadata or {}
    facts = [
        ("Title", metadata.get("title")),
        ("Original title", metadata.get("originaltitle")),
        ("Year", metadata.get("year")),
        ("Premiered", metadata.get("premiered")),
        ("Runtime", f"{metadata['runtime']} min" if metadata.get("runtime") else None),
        ("Genres", ", ".join(metadata.get("genres") or [])),
        ("Studios", ", ".join(metadata.get("studios") or [])),
        ("Rating", "; ".join(f"{r['name']} {r['value']} ({r['votes']} votes)" for r in metadata.get("ratings") or [])),
        ("Plot", metadata.get("plot")),
        ("Folder", f"{entity.namespace}/{entity.folder}"),
    ]
    listed = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts if v)
    people = "".join(
        f"<li>{_actor_image(actor)}<strong>{escape(actor['name'])}</strong><br>{escape(actor.get('role') or '')}</li>"
        for actor in actors
    )
    groups: dict[tuple[str, Any], list[Asset]] = {}
    for asset in assets:
        groups.setdefault((str(asset.asset_type), asset.season), []).append(asset)
    sections = []
    for (asset_type, season), members in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        ordered = sorted(members, key=lambda a: (not a.selected, int(a.rank or 0), -float(a.score or 0)))
        title = asset_type + (f", season {int(season)}" if season is not None else "")
        figures = "".join(_candidate_figure(asset, previews) for asset in ordered)
        sections.append(
            f'<section class=group data-type="{escape(asset_type)}"><h2>{escape(title)}</h2>'
            f'<label><input type=checkbox name="lock-{escape(asset_type)}" value=on'
            f"{' checked' if asset_type in (locked or set()) else ''}> lock {escape(asset_type)}</label>"
            f"<div class=assets>{figures}</div></section>"
        )
    body = (
        _run_heading(run)
        + f"<dl>{listed}</dl><h2>Actors</h2><ul class=actors>{people}</ul>"
        + f'<form method=post action="{escape(action)}">'
        + f'<input type=hidden name=exp value="{exp}"><input type=hidden name=sig value="{escape(sig)}">'
        + "<p>Rank the images to publish per type (1 first; blank: not published). Locked types keep this"
        + " selection when the entity is enriched again.</p>"
        + "".join(sections)
        + "<p><label for=reviewer>Your name</label><input type=text id=reviewer name=reviewer maxlength=120></p>"
        + "<p><label for=notes>Notes</label><textarea id=notes name=notes rows=3 maxlength=2000></textarea></p>"
        + "<button type=submit name=decision value=approve>Approve this selection</button>"
        + "<button type=submit name=all value=reject>Publish nothing</button>"
        + "</form>"
    )
    return _page(f"Review {metadata.get('title') or run.run_id}", body)


def _actor_image(actor: dict[str, Any]) -> str:
    if not actor.get("thumb_url"):
        return "<div class=meta>no image</div>"
    return f'<img src="{escape(actor["thumb_url"])}" alt="{escape(actor["name"])}" loading=lazy>'


def _candidate_figure(asset: Asset, previews: dict[str, str]) -> str:
    claimed = (
        f" (claimed {asset.claimed_width} x {asset.claimed_height})"
        if asset.claimed_width and (asset.claimed_width, asset.claimed_height) != (asset.width, asset.height)
        else ""
    )
    if asset.status == "rejected":
        facts = f"{escape(asset.provider)}: rejected ({escape(asset.rejection_reason or '')})"
        return f'<figure data-asset-id="{escape(asset.asset_id)}"><figcaption>{facts}</figcaption></figure>'
    facts = (
        f"score {asset.score}, {asset.width} x {asset.height}{escape(claimed)}, "
        f"language {escape(asset.language or 'none')}, {escape(asset.provider)}"
        f"{f', votes {asset.vote_average:.1f} ({asset.vote_count})' if asset.vote_average is not None else ''}"
        f"<br><small>{escape(asset.selection_reason or '')}</small>"
    )
    rank = int(asset.rank) if asset.selected and asset.rank else ""
    return (
        f'<figure data-asset-id="{escape(asset.asset_id)}"'
        f"{' class=selected' if asset.selected else ''}>"
        f'<img src="{escape(previews.get(asset.asset_id, ""))}" alt="{escape(asset.asset_type)}" loading=lazy>'
        f"<figcaption>{facts}</figcaption>"
        f'<label>rank <input class=rank type=number min=1 max=20 name="rank-{escape(asset.asset_id)}"'
        f' value="{rank}"></label></figure>'
    )


DELIVERY_NOTES = {
    "pending": "The pipeline has not taken it yet; it is sent again shortly, there is nothing more to do.",
    "undelivered": "The run ended before the pipeline took this decision.",
}


def review_decided(run: Run, review: Review, assets: list[Asset], already: bool, delivery: str | None) -> str:
    approved = set(review.approved or [])
    rows = "".join(
        f"<li>{escape(a.filename)}: <strong>{'approved' if a.asset_id in approved else 'rejected'}</strong></li>"
        for a in assets
    )
    lead = "This review was already decided." if already else "Thank you: your decision is recorded."
    note = DELIVERY_NOTES.get(delivery or "")
    body = (
        _run_heading(run)
        + f"<p id=outcome>{lead}</p><ul>{rows}</ul>"
        + (f"<p id=delivery>{escape(note)}</p>" if note else "")
        + f"<p class=meta>by {escape(review.reviewer or '')} at {escape(review.decided_at or '')}</p>"
    )
    return _page("Review decided", body)


def review_closed(run: Run, review: Review, state: str) -> str:
    """A review that takes no decision any more: what became of its run, and no form."""
    if state == "expired":
        title, lead = "This review has expired", "Nobody decided before the review timed out."
    else:
        title, lead = "This review is closed", "The run no longer waits for a decision."
    body = (
        _run_heading(run)
        + f"<div class=problem><h2>{escape(title)}</h2><p id=outcome>{escape(lead)}</p>"
        + f"<p id=run-status>The run is <strong>{escape(run.status)}</strong>"
        + f" (since {escape(run.updated_at or '')}).</p></div>"
    )
    return _page(title, body)


def problem(status: int, message: str) -> str:
    titles: dict[int, Any] = {
        400: "This decision is incomplete",
        403: "This link is not valid",
        404: "No such review",
        409: "Already decided",
        410: "This review has expired",
        413: "This request is too large",
    }
    title = titles.get(status, "Something went wrong")
    body = f"<div class=problem><h1>{escape(title)}</h1><p id=message>{escape(message)}</p></div>"
    return _page(title, body)
