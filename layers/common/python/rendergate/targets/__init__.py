"""Delivery targets: where events go once the pipeline emits them. A Standard Webhooks listener (n8n or any
other), a Discord channel, a Jellyfin server, a Kodi player: all of them are one JSON document, an SSM
SecureString. Each kind is an adapter that turns one event into one HTTP request (`request`) and reads the
answer as a Verdict (`outcome`). The document is checked whole: one mistake refuses all of it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from rendergate import config, events
from rendergate.errors import TargetsInvalid
from rendergate.names import NAMESPACE, TARGET
from rendergate.observability import logger
from rendergate.targets import discord, email, jellyfin, kodi, slack, webhook

KINDS: dict[str, ModuleType] = {
    "webhook": webhook,
    "discord": discord,
    "jellyfin": jellyfin,
    "kodi": kodi,
    "slack": slack,
    "email": email,
}
FIELDS = {  # beyond name, kind, url, events and namespaces: required, then optional
    "webhook": ({"secret"}, set()),
    "discord": (set(), {"mention"}),
    "jellyfin": ({"api_key", "library_root"}, set()),
    "kodi": ({"library_root"}, {"username", "password"}),
    "slack": (set(), set()),
    "email": ({"sender"}, {"to"}),
}
COMMON = {"name", "kind", "url", "events", "namespaces"}
WITHOUT_URL = frozenset({"email"})  # kinds that are not reached over HTTP
EMAIL_ADDRESS = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$")
DISCORD_MENTIONS = re.compile(r"^(<@&?\d{17,20}>)( <@&?\d{17,20}>)*$")

DISCORD_PATH = re.compile(r"/webhooks/\d+/[^/]+/?$")
MIN_SECRET_BYTES = 24  # Standard Webhooks: at least 24 random bytes
MAX_TARGETS = 50
MAX_PROBLEMS = 10

_parsed: tuple[str, tuple[Target, ...]] | None = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Target:
    """One place deliveries go. Secrets never appear in its repr."""

    name: str
    kind: str
    url: str = field(repr=False)
    events: frozenset[str]
    namespaces: frozenset[str] | None = None
    secret: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    library_root: str = ""
    mention: str = ""
    sender: str = ""
    to: str = ""

    def wants(self, event_type: str, namespace: str | None) -> bool:
        """Whether this target takes events of `event_type` from `namespace` (an email target without `to`
        carries only messages addressed to reviewers)."""
        if event_type not in self.events or (self.kind == "email" and not self.to):
            return False
        return self.namespaces is None or namespace in self.namespaces

    @property
    def adapter(self) -> ModuleType:
        return KINDS[self.kind]

    @property
    def fingerprint(self) -> str:
        """Identifies where the target points; a disablement holds only while the URL stays the same."""
        return hashlib.sha256(f"{self.kind} {self.url}".encode()).hexdigest()[:32]

    @property
    def host(self) -> str:
        """Scheme, host and port: enough to say where deliveries go, never the path (it may hold a token)."""
        if self.kind in WITHOUT_URL:
            return f"{self.kind}:{self.sender.rsplit('@', 1)[-1]}"
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def current() -> tuple[Target, ...]:
    """The targets of the current document (re-read as its cache expires); none without a document.
    Raises TargetsInvalid, logged, when the document is not valid: nothing of it is applied."""
    global _parsed
    document = config.targets_document()
    if document is None:
        return ()
    with _lock:
        if _parsed is not None and _parsed[0] == document:
            return _parsed[1]
    try:
        targets = parse(document)
    except TargetsInvalid as refused:
        logger.error("the delivery targets document was refused", extra={"problems": str(refused)})
        raise
    with _lock:
        _parsed = (document, targets)
    return targets


def named(name: str) -> Target | None:
    """The current target called `name`, if the document still has it."""
    return next((target for target in current() if target.name == name), None)


@config.on_reset
def forget() -> None:
    """Drop the parsed document, so the next `current` parses again."""
    global _parsed
    with _lock:
        _parsed = None


def parse(document: str) -> tuple[Target, ...]:
    """Every target of a JSON document (a list of objects); TargetsInvalid naming each problem otherwise."""
    try:
        items = json.loads(document)
    except ValueError as error:
        raise TargetsInvalid(f"the targets document is not valid JSON: {error}") from error
    if not isinstance(items, list):
        raise TargetsInvalid("the targets document must be a JSON list of targets")
    if len(items) > MAX_TARGETS:
        raise TargetsInvalid(f"the targets document lists {len(items)} targets; at most {MAX_TARGETS}")
    problems: list[str] = []
    targets = []
    for index, item in enumerate(items):
        where = f"targets[{index}]" + (f" ({item.get('name')})" if isinstance(item, dict) and item.get("name") else "")
        found: list[str] = []
        target = _target(item, found)
        problems += [f"{where}: {problem}" for problem in found]
        if target is not None:
            targets.append(target)
    names = [target.name for target in targets]
    problems += [f"the name {name!r} is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        shown = problems[:MAX_PROBLEMS] + (
            [f"and {len(problems) - MAX_PROBLEMS} more"] if len(problems) > MAX_PROBLEMS else []
        )
        raise TargetsInvalid("the targets document was refused, nothing of it applied: " + "; ".join(shown))
    return tuple(targets)


def _target(item: Any, problems: list[str]) -> Target | None:
    if not isinstance(item, dict):
        problems.append("each target must be a JSON object")
        return None
    kind = item.get("kind")
    if kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
        return None
    required, optional = FIELDS[kind]
    unknown = set(item) - COMMON - required - optional
    if unknown:
        problems.append(
            f"unknown field{'s' if len(unknown) > 1 else ''} for a {kind} target: {', '.join(sorted(unknown))}"
        )
    name = item.get("name")
    if not isinstance(name, str) or not TARGET.match(name):
        problems.append("name must be 1-63 characters of a-z, 0-9, '_' or '-'")
    for key in sorted(required - set(item)):
        problems.append(f"a {kind} target needs {key}")
    texts = {key: item.get(key, "") for key in (required | optional)}
    for key, value in texts.items():
        if not isinstance(value, str) or (key in required and not value.strip()):
            problems.append(f"{key} must be a non-empty string")
    url = item.get("url", "" if kind in WITHOUT_URL else None)
    parts = urlsplit(url) if isinstance(url, str) else None
    if kind in WITHOUT_URL:
        if url:
            problems.append(f"a {kind} target has no url")
    elif parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        problems.append("url must be an http(s) URL without credentials in it")
    elif kind == "discord" and not DISCORD_PATH.search(parts.path):
        problems.append("url must be a Discord webhook URL (…/api/webhooks/{id}/{token})")
    if kind == "discord" and texts.get("mention") and not DISCORD_MENTIONS.match(str(texts["mention"])):
        problems.append("mention must be Discord mentions such as '<@80351110224678912>' or '<@&165511591545143296>'")
    if kind == "email":
        addresses = [str(texts.get("sender", ""))] + [
            a.strip() for a in str(texts.get("to", "")).split(",") if a.strip()
        ]
        if not all(EMAIL_ADDRESS.match(address) for address in addresses):
            problems.append("sender and to must be email addresses (to: several separated by commas)")
    if kind == "webhook" and isinstance(texts.get("secret"), str):
        _check_secret(str(texts["secret"]), problems)
    event_types = _event_types(item, kind, problems)
    namespaces = _namespaces(item, problems)
    if problems:
        return None
    return Target(
        name=str(name),
        kind=kind,
        url=str(url),
        events=event_types,
        namespaces=namespaces,
        **{key: str(value) for key, value in texts.items()},
    )


def _event_types(item: dict[str, Any], kind: str, problems: list[str]) -> frozenset[str]:
    adapter = KINDS[kind]
    allowed = frozenset(getattr(adapter, "ALLOWED_EVENTS", events.TYPES))
    chosen = item.get("events", list(adapter.DEFAULT_EVENTS))
    if not isinstance(chosen, list) or not chosen or not all(isinstance(t, str) for t in chosen):
        problems.append("events must be a non-empty list of event types")
        return frozenset()
    wrong = sorted(set(chosen) - allowed)
    if wrong:
        problems.append(f"a {kind} target takes only {', '.join(sorted(allowed))}; not {', '.join(wrong)}")
    return frozenset(chosen)


def _namespaces(item: dict[str, Any], problems: list[str]) -> frozenset[str] | None:
    if "namespaces" not in item:
        return None
    chosen = item["namespaces"]
    if not isinstance(chosen, list) or not chosen or not all(isinstance(n, str) and NAMESPACE.match(n) for n in chosen):
        problems.append("namespaces must be a non-empty list of namespaces (a-z, 0-9, '.', '_', '-')")
        return None
    return frozenset(chosen)


def _check_secret(secret: str, problems: list[str]) -> None:
    """`whsec_` and the base64 of at least 24 random bytes, as Standard Webhooks secrets are written."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True) if secret.startswith("whsec_") else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < MIN_SECRET_BYTES:
        problems.append(
            "secret must be whsec_ and the base64 of at least 24 random bytes (whsec_$(openssl rand -base64 32))"
        )
