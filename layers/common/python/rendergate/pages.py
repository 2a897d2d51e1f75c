"""The HTML reviewers see. Every value is escaped. The one script (the review page's keys) is a constant the
Content-Security-Policy allows by its hash; every page works without it, as plain forms."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from html import escape
from typing import Any

from rendergate.tables import Asset, Entity, Review, Reviewer, Run, epoch_of

KEYS = (
    ("A", "approve this image and go to the next"),
    ("R", "reject this image and go to the next"),
    ("J / K", "next / previous image"),
    ("Shift+A", "approve every image not marked rejected"),
    ("N", "write a note on this image"),
    ("Enter", "submit the decision"),
    ("?", "show or hide these keys"),
)
SCRIPT = """(function(){
var form=document.getElementById('decision');if(!form)return;
var figures=[].slice.call(form.querySelectorAll('figure[data-asset-id]'));
var help=document.getElementById('keys');var at=0;
function show(i){figures.forEach(function(f,j){f.classList.toggle('current',j===i)})}
function go(i){if(!figures.length)return;at=Math.max(0,Math.min(figures.length-1,i));show(at);
figures[at].focus();figures[at].scrollIntoView({block:'nearest'})}
function mark(f,value){if(!f)return;var r=f.querySelector('input[type=radio][value='+value+']');
if(r){r.checked=true;f.dataset.marked=value}}
document.addEventListener('keydown',function(e){
var t=e.target,k=e.key;
if(t&&(t.tagName==='TEXTAREA'||(t.tagName==='INPUT'&&t.type==='text'))){
if(k==='Escape'){t.blur();if(figures[at])figures[at].focus()}return}
if(e.ctrlKey||e.metaKey||e.altKey||(t&&(t.tagName==='BUTTON'||t.tagName==='A')&&k==='Enter'))return;
if(k==='A'&&e.shiftKey){figures.forEach(function(f){if(f.dataset.marked!=='reject')mark(f,'approve')})}
else if(k==='a'||k==='A'){mark(figures[at],'approve');go(at+1)}
else if(k==='r'||k==='R'){mark(figures[at],'reject');go(at+1)}
else if(k==='j'||k==='J'){go(at+1)}
else if(k==='k'||k==='K'){go(at-1)}
else if(k==='n'||k==='N'){var n=figures[at]&&figures[at].querySelector('textarea');
(n||document.getElementById('notes')).focus()}
else if(k==='Enter'){form.requestSubmit(document.getElementById('submit'))}
else if(k==='?'){help.hidden=!help.hidden}
else return;
e.preventDefault()});
figures.forEach(function(f,i){f.addEventListener('focus',function(){at=i;show(i)});
f.addEventListener('change',function(e){if(e.target.type==='radio')f.dataset.marked=e.target.value})});
go(0);})();"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
# Only the script above may run; pages cannot be framed, and forms post only back to the API.
CONTENT_SECURITY_POLICY = (
    f"frame-ancestors 'none'; script-src 'sha256-{SCRIPT_HASH}'; object-src 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class SignedIn:
    """The signed-in reviewer a page is for, and the token their form carries."""

    name: str
    token: str


@dataclass(frozen=True)
class InboxRow:
    """One pending review in the inbox."""

    run: Run
    review: Review
    link: str
    thumbs: list[tuple[Asset, str]] = field(default_factory=list)
    selected: int = 0


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d1d1f;
overflow-wrap:anywhere} code{overflow-wrap:anywhere} figure:focus,figure.current{outline:3px solid #0b57d0}
.pair{display:flex;gap:.5rem} .pair>div{flex:1 1 0;min-width:0} .banner{background:#e8f0fe;padding:.5rem 1rem}
.inbox{list-style:none;padding:0} .inbox li{border:1px solid #ddd;border-radius:.5rem;padding:.75rem;margin:.75rem 0}
.strip{display:flex;flex-wrap:wrap;gap:.25rem} .strip img{width:4rem;height:4rem;object-fit:cover;background:#eee}
#keys{border:1px solid #ccc;padding:.5rem 1rem} .who{display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
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


def _page(title: str, body: str, script: bool = False) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name=robots content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main>"
        + (f"<script>{SCRIPT}</script>" if script else "")
        + "</body></html>"
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
    parts = asset.score_parts if isinstance(asset.score_parts, dict) else {}
    if parts:
        facts += (
            "<br><small>score parts: "
            + ", ".join(f"{escape(str(name))} {escape(str(value))}" for name, value in sorted(parts.items()))
            + "</small>"
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
    run: Run,
    review: Review,
    assets: list[Asset],
    previews: dict[str, str],
    action: str,
    exp: int,
    sig: str,
    signed_in: SignedIn | None = None,
    duplicates: dict[str, Asset] | None = None,
    previous: tuple[Run, Review] | None = None,
) -> str:
    """The review form: per image approve or reject (the selection preselected) and a note, the facts behind
    the selection, a near-duplicate beside what it duplicates; the render's recipe; keys for everything."""
    duplicates = duplicates or {}
    figures = []
    for number, asset in enumerate(assets, 1):
        choices = "".join(
            f'<label><input type=radio name="asset-{escape(asset.asset_id)}" value="{value}"'
            f"{' checked' if (value == 'approve') == bool(asset.selected) else ''}> {value}</label>"
            for value in ("approve", "reject")
        )
        image = f'<img src="{escape(previews[asset.asset_id])}" alt="{escape(asset.filename)}" loading=lazy>'
        original = duplicates.get(asset.asset_id)
        if original is not None:
            image = (
                f"<div class=pair><div>{image}<small>this image</small></div><div>"
                f'<img src="{escape(previews.get(original.asset_id, ""))}" alt="{escape(original.filename)}, '
                f'which it duplicates" loading=lazy><small>duplicates {escape(original.filename)}</small></div></div>'
            )
        figures.append(
            f'<figure data-asset-id="{escape(asset.asset_id)}" tabindex=0 role=group'
            f' aria-label="image {number} of {len(assets)}: {escape(asset.filename)}">{image}'
            f"<figcaption>{_facts(asset)}</figcaption><div>{choices}</div>"
            f'<label>note <textarea name="note-{escape(asset.asset_id)}" rows=1 maxlength=500></textarea></label>'
            "</figure>"
        )
    body = (
        _run_heading(run)
        + _previous_banner(previous)
        + _who(signed_in)
        + _recipe(run)
        + "<p class=meta>Keys: A approve, R reject, J/K next/previous, Shift+A approve all not rejected,"
        + " N note, Enter submit, ? all keys.</p>"
        + "<div id=keys hidden><h2>Keys</h2><dl>"
        + "".join(f"<dt>{escape(key)}</dt><dd>{escape(does)}</dd>" for key, does in KEYS)
        + "</dl></div>"
        + f'<form id=decision method=post action="{escape(action)}">'
        + f'<input type=hidden name=exp value="{exp}"><input type=hidden name=sig value="{escape(sig)}">'
        + (f'<input type=hidden name=csrf value="{escape(signed_in.token)}">' if signed_in else "")
        + f"<div class=assets>{''.join(figures)}</div>"
        + (
            ""
            if signed_in
            else "<p><label for=reviewer>Your name</label><input type=text id=reviewer name=reviewer maxlength=120></p>"
        )
        + "<p><label for=notes>Notes</label><textarea id=notes name=notes rows=3 maxlength=2000></textarea></p>"
        + "<button type=submit id=submit name=submit value=selection>Submit decision</button>"
        + "<button type=submit name=all value=approve>Approve all</button>"
        + "<button type=submit name=all value=reject>Reject all</button>"
        + "</form>"
    )
    return _page(f"Review {run.title or run.run_id}", body, script=True)


def _who(signed_in: SignedIn | None) -> str:
    if signed_in is None:
        return ""
    return f'<p class=who>Signed in as <strong>{escape(signed_in.name)}</strong> <a href="/inbox">inbox</a></p>'


def _previous_banner(previous: tuple[Run, Review] | None) -> str:
    if previous is None:
        return ""
    run, review = previous
    approved, rejected = len(review.approved or []), len(review.rejected or [])
    return (
        f"<p class=banner id=previous role=status>Recorded: {escape(str(run.title or run.run_id))}, "
        f"{approved} approved, {rejected} rejected. This is your next review.</p>"
    )


def _recipe(run: Run) -> str:
    """How a render (or an outside generator's images) was made: prompt, seed and workflow."""
    params = run.params if isinstance(run.params, dict) else {}
    prompt = params.get("prompt") or run.prompt
    workflow = (
        f"{run.workflow_name} {run.workflow_version}"
        if run.workflow_name
        else (f"sha256 {str(run.workflow_sha256)[:16]}…" if run.workflow_sha256 else None)
    )
    facts = [("Prompt", prompt), ("Negative prompt", params.get("negative_prompt"))]
    facts += [("Seed", None if run.seed is None else int(run.seed)), ("Workflow", workflow)]
    listed = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts if v not in (None, ""))
    return f"<dl class=recipe>{listed}</dl>" if listed else ""


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
    signed_in: SignedIn | None = None,
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
        + _who(signed_in)
        + f'<form method=post action="{escape(action)}">'
        + f'<input type=hidden name=exp value="{exp}"><input type=hidden name=sig value="{escape(sig)}">'
        + (f'<input type=hidden name=csrf value="{escape(signed_in.token)}">' if signed_in else "")
        + "<p>Rank the images to publish per type (1 first; blank: not published). Locked types keep this"
        + " selection when the entity is enriched again.</p>"
        + "".join(sections)
        + (
            ""
            if signed_in
            else "<p><label for=reviewer>Your name</label><input type=text id=reviewer name=reviewer maxlength=120></p>"
        )
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


def review_decided(
    run: Run, review: Review, assets: list[Asset], already: bool, delivery: str | None, inbox: str | None = None
) -> str:
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
        + (f'<p><a href="{escape(inbox)}">Back to your inbox</a>: nothing else waits for you.</p>' if inbox else "")
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


def inbox(reviewer: Reviewer, rows: list[InboxRow], sign_out_token: str, now: int) -> str:
    """A reviewer's pending reviews, oldest first: what, from where, how many, how old, how long left."""
    items = []
    for row in rows:
        count = len(row.review.asset_ids or [])
        opened = int(epoch_of(str(row.review.created_at)))
        thumbs = "".join(
            f'<img src="{escape(url)}" alt="{escape(asset.filename)}" loading=lazy>' for asset, url in row.thumbs
        )
        items.append(
            f'<li data-review-id="{escape(row.review.review_id)}"><h2><a href="{escape(row.link)}">'
            f"{escape(str(row.run.title or row.run.run_id))}</a></h2>"
            f"<p class=meta>{escape(str(row.run.source))} in <code>{escape(row.run.namespace)}</code> · "
            f"{count} image{'s' if count != 1 else ''}, {row.selected} selected · waiting {_span(now - opened)}"
            f" · expires in {_span(int(row.review.expires_at) - now)}</p>"
            f"<div class=strip>{thumbs}</div></li>"
        )
    listed = f"<ol class=inbox>{''.join(items)}</ol>" if items else "<p id=empty>Nothing waits for your review.</p>"
    body = (
        f"<h1>Reviews waiting: {len(rows)}</h1>"
        f"<div class=who><p>Signed in as <strong>{escape(reviewer.name)}</strong>"
        f" (namespaces: {escape(', '.join(sorted(reviewer.namespaces or [])))})</p>"
        f'<form method=post action="/signout"><input type=hidden name=csrf value="{escape(sign_out_token)}">'
        "<button type=submit>Sign out</button></form></div>" + listed
    )
    return _page(f"Inbox ({len(rows)})", body)


def sign_in_offer(reviewer: Reviewer, token: str) -> str:
    """The page a sign-in link opens: it signs nobody in until its button is pressed."""
    body = (
        "<h1>Sign in to rendergate</h1>"
        f"<p>Sign in as <strong>{escape(reviewer.name)}</strong> ({escape(reviewer.email)}) to review"
        f" {escape(', '.join(sorted(reviewer.namespaces or [])))}.</p>"
        f'<form method=post action="/signin"><input type=hidden name=token value="{escape(token)}">'
        "<button type=submit>Sign in</button></form>"
        "<p class=meta>The link works once. If you did not ask for it, close this page.</p>"
    )
    return _page("Sign in", body)


def signed_out() -> str:
    body = "<h1>Signed out</h1><p id=outcome>Ask for a new sign-in link to come back.</p>"
    return _page("Signed out", body)


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def problem(status: int, message: str) -> str:
    titles: dict[int, Any] = {
        400: "This decision is incomplete",
        401: "Sign in first",
        403: "This link is not valid",
        404: "No such review",
        409: "Already decided",
        410: "This review has expired",
        413: "This request is too large",
    }
    title = titles.get(status, "Something went wrong")
    body = f"<div class=problem><h1>{escape(title)}</h1><p id=message>{escape(message)}</p></div>"
    return _page(title, body)
