"""The one HTTP client of delivery targets: a request out, an answer (status, headers, the start of the body)
or a NoAnswer that says whether the request may have reached the target. Redirects are not followed (the
target's URL should be updated instead) and no request is retried here: the delivery queue retries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from time import time
from typing import TYPE_CHECKING, Any

from rendergate.errors import scrubbed

if TYPE_CHECKING:
    import requests

TIMEOUT = (5, 15)  # connect, read: Standard Webhooks asks receivers to answer within 15-30 s
MAX_ANSWER_BYTES = 64 * 1024  # what is read of an answer; the rest is not needed to judge it
EXCERPT_CHARS = 300
USER_AGENT = "rendergate-delivery/1"
POOL = 16  # connections kept per host, one per concurrent attempt


@dataclass(frozen=True)
class Outgoing:
    """One POST to a target: `body` (bytes sent as they are) or `parts` (multipart/form-data: name ->
    (file name, or None for a plain field; content; its Content-Type))."""

    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    parts: Mapping[str, tuple[str | None, bytes, str]] | None = None
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class Answer:
    """What a target answered: its status, headers and the start of its body."""

    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def excerpt(self) -> str:
        """The first few hundred characters of the body, on one line, without URL secrets."""
        return scrubbed(" ".join(self.text.split()))[:EXCERPT_CHARS]


class NoAnswer(Exception):
    """No answer came. `sent` is False when the request cannot have reached the target (no connection was
    made), True when it may have (the connection dropped or the answer timed out): the outcome is unknown."""

    def __init__(self, sent: bool, reason: str) -> None:
        super().__init__(reason)
        self.sent = sent


@dataclass(frozen=True)
class Verdict:
    """What an answer means for the delivery: delivered, retry (after `retry_after` seconds when the target
    named a wait; `rate_limited` when that wait is all it asked for), failed, or disabled (the target is gone)."""

    state: str
    note: str = ""
    retry_after: float | None = None
    rate_limited: bool = False
    message_id: str | None = None


def send(outgoing: Outgoing) -> Answer:
    """POST `outgoing`; raise NoAnswer when nothing came back. Errors never carry the URL (its path may
    hold a token, as a Discord webhook's does)."""
    import requests

    try:
        response = _session().post(
            outgoing.url,
            headers={"User-Agent": USER_AGENT, **outgoing.headers},
            data=outgoing.body,
            files=outgoing.parts,
            auth=outgoing.auth,
            timeout=TIMEOUT,
            allow_redirects=False,
            stream=True,
        )
    except requests.exceptions.ConnectTimeout as error:
        raise NoAnswer(False, f"no connection within {TIMEOUT[0]} s") from error
    except requests.exceptions.ReadTimeout as error:
        raise NoAnswer(True, f"no answer within {TIMEOUT[1]} s; the request may have been received") from error
    except requests.exceptions.ConnectionError as error:
        if _connected(error):
            raise NoAnswer(True, "the connection dropped before an answer came") from error
        raise NoAnswer(False, f"no connection could be made ({_cause(error)})") from error
    with response:
        return Answer(response.status_code, response.headers, _start_of_body(response))


def retry_after(answer: Answer) -> float | None:
    """Seconds the `Retry-After` header asks for (a number, or an HTTP date); None without one."""
    value = answer.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


def by_status(answer: Answer, refused_auth: str = "retry") -> Verdict:
    """The usual reading of a status: 2xx delivered; 429, 408, 425 and 5xx retried (honouring Retry-After);
    401 and 403 as `refused_auth` says; any other status failed."""
    if answer.ok:
        return Verdict("delivered")
    wait = retry_after(answer)
    if answer.status == 429:
        return Verdict("retry", f"HTTP 429: rate limited{_for(wait)}", retry_after=wait, rate_limited=True)
    if answer.status in (401, 403):
        return Verdict(refused_auth, f"HTTP {answer.status}: the target refused our credentials", retry_after=wait)
    if answer.status in (408, 425) or answer.status >= 500:
        return Verdict("retry", f"HTTP {answer.status}", retry_after=wait)
    return Verdict("failed", f"HTTP {answer.status}")


def _for(wait: float | None) -> str:
    return f" for {wait:g} s" if wait is not None else ""


@cache
def _session() -> requests.Session:
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=POOL, pool_maxsize=POOL, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _start_of_body(response: requests.Response) -> str:
    """At most MAX_ANSWER_BYTES of the body; a body that breaks off still leaves the status to judge by."""
    import requests

    try:
        data = response.raw.read(MAX_ANSWER_BYTES, decode_content=True)
    except (requests.exceptions.RequestException, OSError, ValueError):
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""


def _connected(error: Exception) -> bool:
    """Whether a ConnectionError came after a connection was made (the request may have been received)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError | ConnectTimeoutError):
            return False
        pending.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
        pending.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
    return True


def _cause(error: Exception) -> str:
    """A connection error's kind, without the URL its text carries (a Discord webhook's path is its token)."""
    text = str(error).lower()
    if "name resolution" in text or "name or service not known" in text or "nodename" in text:
        return "the host name did not resolve"
    if "refused" in text:
        return "connection refused"
    return type(error).__name__
