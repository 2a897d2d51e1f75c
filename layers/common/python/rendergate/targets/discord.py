"""Discord: execute the channel's webhook with `?wait=true`, so Discord answers with the message it saved
and its id is kept (a delivered message is never posted again). One embed per event, cut to Discord's
limits rather than refused; `allowed_mentions: {"parse": []}` so titles and tags ping nobody. A published
image travels as the embed's image: its public URL when the library has one, else the file itself as an
attachment (`files[0]` beside `payload_json`), never a presigned URL that may expire before Discord reads it.
429 waits the body's `retry_after` (seconds, a float); 401, 403 and 404 (an unknown or deleted webhook,
a bad token) disable the target; 400 fails the delivery with Discord's own explanation.

A message that asks someone to act (a review request, a reminder, a sign-in link) is text with the link, sent
with `flags: 4` (SUPPRESS_EMBEDS) so Discord does not unfurl the link (fetching it as a preview), and a link
button (`with_components=true`: a webhook that no application owns may send link buttons, never interactive
ones). It mentions only whom the target's `mention` names (`<@user id>`, `<@&role id>`)."""

from __future__ import annotations

import json
import posixpath
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from botocore.exceptions import BotoCoreError, ClientError

from rendergate import storage
from rendergate.errors import NotFound
from rendergate.observability import logger
from rendergate.targets import messages
from rendergate.targets.http import Answer, Outgoing, Verdict, by_status, retry_after

if TYPE_CHECKING:
    from rendergate.targets import Target

DEFAULT_EVENTS = ("content.published.v1",)
TITLE, DESCRIPTION, FIELD_NAME, FIELD_VALUE, FOOTER, AUTHOR = 256, 4096, 256, 1024, 2048, 256
MAX_FIELDS = 25
MAX_TOTAL = 6000  # title, description, field names and values, footer and author together
MAX_FILE_BYTES = 10 * 1024 * 1024  # Discord's default upload limit per file
EMBEDDABLE = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
TITLES = {
    "content.published.v1": "Published",
    "content.publish.approved.v1": "Approved",
    "content.publish.failed.v1": "Not published",
    "render.failed.v1": "Render failed",
    "render.completed.v1": "Rendered",
    "review.requested.v1": "Waiting for review",
    "content.discarded.v1": "Discarded",
}
COLOURS = {"content.published.v1": 0x2ECC71, "content.publish.failed.v1": 0xE74C3C, "render.failed.v1": 0xE74C3C}
SUPPRESS_EMBEDS = 4
CONTENT = 2000
LINK_BUTTON = 5
MENTION = re.compile(r"<@(&?)(\d{17,20})>")
SHOWN = ("namespace", "author", "reviewer", "tags", "stage", "code", "reason", "error", "message")


def request(target: Target, event: dict[str, Any]) -> Outgoing:
    if event.get("type") in messages.ASKING:
        return _asking(target, event)
    data = event.get("data") or {}
    embed = _embed(event, data)
    cover_url, cover_file = _cover(data) if event.get("type") == "content.published.v1" else (None, None)
    payload: dict[str, Any] = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    url = _waiting(target.url)
    if cover_url:
        embed["image"] = {"url": cover_url}
    if cover_file is None:
        return Outgoing(url, {"Content-Type": "application/json"}, body=json.dumps(payload).encode())
    name, _, _ = cover_file
    embed["image"] = {"url": f"attachment://{name}"}
    payload["attachments"] = [{"id": 0, "filename": name}]
    parts = {"payload_json": (None, json.dumps(payload).encode(), "application/json"), "files[0]": cover_file}
    return Outgoing(url, {}, parts=parts)


def outcome(answer: Answer) -> Verdict:
    reply = answer.json()
    said = reply.get("message") if isinstance(reply, dict) else None
    if answer.ok:
        message_id = str(reply["id"]) if isinstance(reply, dict) and reply.get("id") else None
        return Verdict("delivered", message_id=message_id)
    if answer.status == 429:
        asked = reply.get("retry_after") if isinstance(reply, dict) else None
        wait = float(asked) if isinstance(asked, int | float) else retry_after(answer)
        return Verdict("retry", f"HTTP 429: rate limited for {wait} s", retry_after=wait, rate_limited=True)
    if answer.status in (401, 403, 404):
        return Verdict("disabled", f"HTTP {answer.status}: {said or 'Discord refused the webhook'}")
    if answer.status == 400:
        return Verdict("failed", f"HTTP 400: {said or 'Discord refused the message'}")
    return by_status(answer)


def _asking(target: Target, event: dict[str, Any]) -> Outgoing:
    """A message that asks someone to act: text and a link button, no embed, no unfurled link."""
    asked = messages.of(event)
    mentions = MENTION.findall(target.mention)
    allowed: dict[str, Any] = {"parse": []}
    if users := [snowflake for role, snowflake in mentions if not role]:
        allowed["users"] = users
    if roles := [snowflake for role, snowflake in mentions if role]:
        allowed["roles"] = roles
    lead = " ".join(f"<@{role}{snowflake}>" for role, snowflake in mentions)
    content = "\n".join(filter(None, [lead, f"**{asked.subject}**", *asked.lines, asked.url]))
    if _units(content) > CONTENT:
        content = _cut("\n".join(filter(None, [lead, f"**{asked.subject}**", *asked.lines])), CONTENT - 200)
        content += "\n" + asked.url
    button = {"type": 2, "style": LINK_BUTTON, "label": asked.action, "url": asked.url}
    payload = {
        "content": content,
        "flags": SUPPRESS_EMBEDS,
        "allowed_mentions": allowed,
        "components": [{"type": 1, "components": [button]}],
    }
    url = _waiting(target.url, with_components="true")
    return Outgoing(url, {"Content-Type": "application/json"}, body=json.dumps(payload).encode())


def fit(embed: dict[str, Any]) -> dict[str, Any]:
    """`embed` within Discord's limits: every text cut to its own limit (Discord counts after trimming, in
    UTF-16 units here, which is never fewer than characters), at most 25 fields, and 6000 in all, which the
    description gives up first and then the last fields."""
    fitted = {key: value for key, value in embed.items() if key not in ("title", "description", "fields")}
    for key, limit in (("title", TITLE), ("description", DESCRIPTION)):
        if embed.get(key):
            fitted[key] = _cut(str(embed[key]), limit)
    if "footer" in embed:
        fitted["footer"] = {**embed["footer"], "text": _cut(str(embed["footer"]["text"]), FOOTER)}
    if "author" in embed:
        fitted["author"] = {**embed["author"], "name": _cut(str(embed["author"]["name"]), AUTHOR)}
    fields = [
        {"name": _cut(str(f["name"]), FIELD_NAME) or "-", "value": _cut(str(f["value"]), FIELD_VALUE) or "-"}
        | ({"inline": True} if f.get("inline") else {})
        for f in embed.get("fields", [])[:MAX_FIELDS]
    ]
    excess = _total(fitted, fields) - MAX_TOTAL
    if excess > 0 and fitted.get("description"):
        kept = _units(fitted["description"]) - excess
        fitted["description"] = _cut(fitted["description"], kept) if kept > 1 else ""
        fitted = {k: v for k, v in fitted.items() if v != ""}
    while fields and _total(fitted, fields) > MAX_TOTAL:
        fields.pop()
    if fields:
        fitted["fields"] = fields
    return fitted


def _embed(event: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    event_type = str(event.get("type"))
    title = data.get("title") or posixpath.basename(str(data.get("library_key") or "")) or TITLES.get(event_type)
    embed: dict[str, Any] = {
        "title": str(title or event_type),
        "footer": {"text": f"rendergate · {TITLES.get(event_type, event_type)}"},
        "color": COLOURS.get(event_type, 0x95A5A6),
    }
    if isinstance(event.get("time"), str):
        embed["timestamp"] = event["time"]
    link = data.get("public_url") or data.get("url")
    if isinstance(link, str) and link.startswith(("https://", "http://")):
        embed["url"] = link
    fields = []
    for name in SHOWN:
        value = data.get(name)
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        if value not in (None, ""):
            fields.append(
                {"name": name.replace("_", " ").capitalize(), "value": str(value), "inline": len(str(value)) < 40}
            )
    if data.get("library_key"):
        where = link if isinstance(link, str) else f"s3://{data.get('library_bucket')}/{data['library_key']}"
        fields.append({"name": "Library", "value": where})
    embed["fields"] = fields
    return fit(embed)


def _cover(data: dict[str, Any]) -> tuple[str | None, tuple[str | None, bytes, str] | None]:
    """The published image for the embed: its public URL, else its bytes when Discord can show them."""
    public = data.get("public_url")
    if isinstance(public, str) and public.startswith(("https://", "http://")):
        return public, None
    bucket, key = data.get("library_bucket"), data.get("library_key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None, None
    try:
        stored = storage.describe(bucket, key)
        content_type = (stored.content_type or "").split(";")[0].strip().lower()
        if content_type not in EMBEDDABLE or stored.size > MAX_FILE_BYTES:
            return None, None
        body = storage.read_object(bucket, key, stored.version_id).body
    except (NotFound, BotoCoreError, ClientError) as missing:  # the message goes without its image
        logger.warning("no cover for the Discord message", extra={"key": key, "error": type(missing).__name__})
        return None, None
    return None, (f"cover.{EMBEDDABLE[content_type]}", body, content_type)


def _waiting(url: str, **more: str) -> str:
    """The webhook URL with `wait=true` (other query parameters, such as `thread_id`, kept)."""
    parts = urlsplit(url)
    added = {"wait": "true", **more}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in added] + list(added.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, limit: int) -> str:
    """`text` trimmed, and cut to `limit` UTF-16 units with an ellipsis when longer."""
    text = text.strip()
    if _units(text) <= limit:
        return text
    kept, used = [], 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > limit - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept).rstrip() + "…"


def _total(embed: dict[str, Any], fields: list[dict[str, Any]]) -> int:
    texts = [embed.get("title", ""), embed.get("description", "")]
    texts += [embed.get("footer", {}).get("text", ""), embed.get("author", {}).get("name", "")]
    texts += [text for field in fields for text in (field["name"], field["value"])]
    return sum(_units(str(text)) for text in texts)
