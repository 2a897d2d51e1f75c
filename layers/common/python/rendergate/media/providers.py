"""The metadata providers, TMDB v3 and fanart.tv v3, over HTTP: their answers kept in the ProviderAnswer table
for `PROVIDER_CACHE_TTL_SECONDS`, rate limits respected (a 429 waits its Retry-After), 5xx and lost connections
retried with backoff, and image downloads streamed under a size cap."""

from __future__ import annotations

import email.utils
import hashlib
import json
import random
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from pynamodb.exceptions import DoesNotExist

from rendergate import config
from rendergate.config import settings
from rendergate.errors import NotFound, ProviderUnavailable, RendergateError
from rendergate.observability import logger
from rendergate.tables import ProviderAnswer, now_iso

TMDB, FANART = "tmdb", "fanart.tv"
ATTEMPTS = 4
BACKOFF_SECONDS = 0.5  # the first wait after a 5xx or a lost connection; doubled each time, full jitter
CONNECT_TIMEOUT, READ_TIMEOUT = 5, 20
MAX_CACHED_BYTES = 350_000  # a DynamoDB item holds 400 KB; a larger answer is used but not kept
MAX_RETRY_AFTER_SECONDS = 60


class ProviderError(RendergateError):
    """A provider refused a request for a reason retrying does not change (401, 422, a body that is not JSON)."""


@dataclass(frozen=True)
class Deadline:
    """When the work must stop (time.monotonic()); waits that would pass it give up instead."""

    at: float

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return self.at - time.monotonic()


def tmdb(path: str, params: dict[str, str] | None = None, deadline: Deadline | None = None) -> tuple[Any, bool]:
    """A TMDB v3 answer and whether it came from the cache. NotFound on TMDB's 404."""
    return _cached(TMDB, settings().providers.tmdb_api_base, path, params or {}, deadline)


def fanart(path: str, deadline: Deadline | None = None) -> tuple[Any, bool]:
    """A fanart.tv v3 answer and whether it came from the cache. NotFound on fanart.tv's 404."""
    return _cached(FANART, settings().providers.fanart_api_base, path, {}, deadline)


def tmdb_image_base(deadline: Deadline | None = None) -> str:
    """Where TMDB's images live: `TMDB_IMAGE_BASE` when set, else `/configuration`'s secure_base_url."""
    if settings().providers.tmdb_image_base:
        return settings().providers.tmdb_image_base + "/"
    answer, _ = tmdb("/configuration", deadline=deadline)
    return str(answer["images"]["secure_base_url"])


def download(url: str, max_bytes: int, deadline: Deadline | None = None) -> bytes:
    """An image's bytes (at most `max_bytes`), retried like the API calls. NotFound on a 404."""
    response = _request(url, {}, deadline, stream=True)
    try:
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > max_bytes:
                raise ProviderError(f"{url} is larger than {max_bytes} bytes")
        return bytes(body)
    except requests.RequestException as error:
        raise ProviderUnavailable(f"{url}: the download broke off ({type(error).__name__})") from error
    finally:
        response.close()


def fetch_verified(asset: Any, deadline: Deadline | None = None) -> bytes:
    """The provider's bytes again, only when their sha256 is the analysed one (else ChangedAfterReview)."""
    from rendergate.errors import ChangedAfterReview

    try:
        data = download(str(asset.source_url), settings().uploads.max_bytes, deadline)
    except NotFound as missing:
        raise ChangedAfterReview(f"{asset.source_url} is gone from its provider: {missing}") from missing
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != asset.sha256:
        raise ChangedAfterReview(f"{asset.source_url} changed since it was analysed: its sha256 is {sha256}")
    return data


def _cached(provider: str, base: str, path: str, params: dict[str, str], deadline: Deadline | None) -> tuple[Any, bool]:
    query = urlencode(sorted(params.items()))
    request_key = f"{provider} {path}?{query}"
    now = int(time.time())
    try:
        kept = ProviderAnswer.get(request_key)
    except DoesNotExist:
        kept = None
    if kept is not None and int(kept.expires_at) > now:
        if int(kept.status) == 404:
            raise NotFound(f"{provider} has no {path} (remembered)")
        return json.loads(zlib.decompress(kept.body or b"")), True
    try:
        answer = _fetch(provider, f"{base}{path}", params, deadline)
    except NotFound:
        _keep(request_key, 404, None)
        raise
    _keep(request_key, 200, answer)
    return answer, False


def _keep(request_key: str, status: int, answer: Any) -> None:
    body = zlib.compress(json.dumps(answer, separators=(",", ":")).encode(), 6) if answer is not None else None
    if body is not None and len(body) > MAX_CACHED_BYTES:
        logger.info("provider answer too large to keep", extra={"request": request_key, "bytes": len(body)})
        return
    expires_at = int(time.time()) + settings().providers.cache_ttl_seconds
    ProviderAnswer(
        request_key, status=status, body=body, fetched_at=now_iso(), expires_at=expires_at, ttl=expires_at
    ).save()


def _fetch(provider: str, url: str, params: dict[str, str], deadline: Deadline | None) -> Any:
    response = _request(url, {**params, **_auth_params(provider)}, deadline, headers=_auth_headers(provider))
    try:
        return response.json()
    except ValueError as error:
        raise ProviderError(f"{provider} answered {url} with something that is not JSON") from error


def _auth_headers(provider: str) -> dict[str, str]:
    if provider == TMDB and "." in (token := config.tmdb_token()):  # a read access token (a JWT)
        return {"Authorization": f"Bearer {token}"}
    return {}


def _auth_params(provider: str) -> dict[str, str]:
    if provider == FANART:
        return {"api_key": config.fanart_api_key()}
    token = config.tmdb_token()
    return {} if "." in token else {"api_key": token}  # a v3 API key goes in the query


def _request(
    url: str,
    params: dict[str, str],
    deadline: Deadline | None,
    headers: dict[str, str] | None = None,
    stream: bool = False,
) -> requests.Response:
    """GET with retries: 429 waits Retry-After, 5xx and lost connections back off; each wait must end before
    the deadline, else ProviderUnavailable. 404 is NotFound; other 4xx are ProviderError."""
    problem = ""
    for attempt in range(ATTEMPTS):
        try:
            response = _session().get(
                url, params=params, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), stream=stream
            )
        except requests.RequestException as error:
            problem, wait = f"no answer ({type(error).__name__})", _backoff(attempt)
        else:
            if response.status_code < 300:
                return response
            response.close()
            if response.status_code == 404:
                raise NotFound(f"{_where(url)} answered 404")
            if response.status_code == 429:
                problem, wait = "429 Too Many Requests", _retry_after(response, attempt)
            elif response.status_code >= 500:
                problem, wait = f"{response.status_code}", _backoff(attempt)
            else:
                raise ProviderError(f"{_where(url)} answered {response.status_code}: {response.text[:200]}")
        if attempt == ATTEMPTS - 1:
            break
        if deadline is not None and wait >= deadline.left():
            raise ProviderUnavailable(f"{_where(url)}: {problem}, and waiting {wait:.1f} s would pass the deadline")
        logger.info("provider busy; waiting", extra={"url": _where(url), "problem": problem, "wait": wait})
        _pause(wait)
    raise ProviderUnavailable(f"{_where(url)}: {problem} after {ATTEMPTS} attempts")


def _retry_after(response: requests.Response, attempt: int) -> float:
    """Retry-After in seconds or as an HTTP date; without one, the 5xx backoff."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    if value:
        when = email.utils.parsedate_to_datetime(value)
        if when is not None:
            return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER_SECONDS)
    return _backoff(attempt)


def _backoff(attempt: int) -> float:
    return random.uniform(0, BACKOFF_SECONDS * 2**attempt)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _where(url: str) -> str:
    return url.split("?", 1)[0]


_local = threading.local()


def _session() -> requests.Session:
    """One connection pool per thread (requests' Session is not thread-safe to share)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.headers["User-Agent"] = "rendergate"
    return session
