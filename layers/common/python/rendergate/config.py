"""Settings: one typed object built from the environment at cold start, grouped by concern, plus the
secrets behind it. Required settings are checked as they are read: a function without them does not start."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from rendergate.errors import SettingsInvalid

T = TypeVar("T")
Forget = TypeVar("Forget", bound=Callable[[], object])

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Tables:
    """DynamoDB table names (`RENDERGATE_<NAME>_TABLE`)."""

    runs: str
    assets: str
    reviews: str
    audit: str
    idempotency: str
    hash_index: str
    collections: str
    render_events: str
    entities: str
    actors: str
    provider_cache: str
    deliveries: str
    reviewers: str
    keys: str
    accounts: str
    ledger: str


@dataclass(frozen=True)
class Storage:
    """Where objects live: the buckets, and the S3-compatible store (MinIO) used instead of S3 when set."""

    media_bucket: str
    library_bucket: str
    library_public_base_url: str
    s3_endpoint_url: str
    endpoint: str
    public_endpoint: str
    credentials_param: str


@dataclass(frozen=True)
class Pipeline:
    """What ties the stages together: the state machine, the event bus, the ingest queue, and run limits."""

    state_machine_arn: str
    event_bus: str
    ingest_queue_url: str
    default_namespace: str
    max_images_per_run: int


@dataclass(frozen=True)
class Uploads:
    """Presigned uploads: the size cap (also the cap on any download) and how long URLs and runs wait."""

    max_bytes: int
    url_expiry_seconds: int
    grace_seconds: int


@dataclass(frozen=True)
class Review:
    """Human review: how long a review waits, who skips it, and the local outbox of review notices."""

    timeout_seconds: int
    auto_approve: bool
    auto_approve_namespaces: tuple[str, ...]
    outbox_path: str
    function: str  # the review function, which one-time schedules (reminders, escalation) invoke
    function_arn: str  # none: no reminders are scheduled
    scheduler_role_arn: str


@dataclass(frozen=True)
class Enrich:
    """Analysing and choosing images: decoding limits, concurrency, languages and per-type selection limits."""

    max_pixels: int
    max_frames: int
    concurrency: int
    preferred_language: str
    fallback_language: str
    selection_limits: dict[str, int]


@dataclass(frozen=True)
class Render:
    """Render backends (ComfyUI, RunPod), their timeouts, backpressure and the reconciler."""

    backend: str
    comfyui_url: str
    runpod_api_base: str
    runpod_endpoint_id: str
    runpod_output_url_prefixes: tuple[str, ...]
    timeout_seconds: int
    heartbeat_seconds: int
    execution_timeout_seconds: int
    queue_ttl_seconds: int
    low_priority_queue_limit: int
    seconds_estimate: int
    reconcile_poll_seconds: int
    reconcile_function: str


@dataclass(frozen=True)
class Providers:
    """The media library's metadata providers (TMDB, fanart.tv) and their answer cache."""

    tmdb_api_base: str
    tmdb_image_base: str
    fanart_api_base: str
    cache_ttl_seconds: int
    concurrency: int


@dataclass(frozen=True)
class Delivery:
    """Deliveries of events to targets: the delay queue, attempts, and how long the targets document is kept."""

    queue_url: str
    max_attempts: int
    targets_cache_seconds: int


@dataclass(frozen=True)
class Owners:
    """API keys' owners: what each owner may do by default (an owner's account can override each limit), and
    how long a rotated key keeps working."""

    metered: bool  # whether work is paid for in credits
    requests_per_minute: int  # 0: no limit, as for each limit here
    concurrent_runs: int
    daily_spend: int  # 0: no cap
    daily_refresh: int  # 0: no daily top-up
    key_rotation_grace_seconds: int


@dataclass(frozen=True)
class Credits:
    """Prices in credits (docs/credits.md), and the size of grant that needs a second admin."""

    base_cost: int
    high_priority_boost_percent: int
    upload_image_cost: int
    large_grant: int


@dataclass(frozen=True)
class Secret:
    """A value set in the environment (`RENDERGATE_<NAME>`, locally) or else read from an SSM parameter."""

    value: str
    parameter: str
    variables: str  # how the environment names it: `RENDERGATE_<NAME> (or RENDERGATE_<NAME>_PARAM)`


@dataclass(frozen=True)
class Secrets:
    """Every secret, and the public base URL, which the stack can only hand over through SSM."""

    api_key: Secret  # the parameter holds the key's sha256
    link_signing_key: Secret
    public_base_url: Secret
    runpod_api_key: Secret
    runpod_webhook: Secret
    tmdb_token: Secret
    fanart_api_key: Secret
    minio_token: Secret
    comfy_webhook: Secret
    targets: Secret
    slack_signing: Secret


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    tables: Tables
    storage: Storage
    pipeline: Pipeline
    uploads: Uploads
    review: Review
    enrich: Enrich
    render: Render
    providers: Providers
    delivery: Delivery
    owners: Owners
    credits: Credits
    secrets: Secrets

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings in `env`; SettingsInvalid naming every required variable missing and every value
        that cannot be read."""
        read = Environment(env)
        current = read.settings()
        read.check()
        return current


class Environment:
    """Reads `RENDERGATE_*` variables (a blank one counts as unset), noting each name read and every
    required one missing or value not readable, so one error can name them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.names: list[str] = []
        self.missing: list[str] = []
        self.invalid: list[str] = []

    def settings(self) -> Settings:
        """Every group, read from the environment; a new setting goes into the group of its concern."""
        env, text, number, url = self.env, self.text, self.number, self.url
        render_backend = text("RENDER_BACKEND", "comfyui").lower()
        return Settings(
            stage=text("STAGE", "dev"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            tables=Tables(
                runs=text("RUNS_TABLE", "rendergate-runs"),
                assets=text("ASSETS_TABLE", "rendergate-assets"),
                reviews=text("REVIEWS_TABLE", "rendergate-reviews"),
                audit=text("AUDIT_TABLE", "rendergate-publisher-audit"),
                idempotency=text("IDEMPOTENCY_TABLE", "rendergate-idempotency"),
                hash_index=text("HASH_INDEX_TABLE", "rendergate-hash-index"),
                collections=text("COLLECTIONS_TABLE", "rendergate-collections"),
                render_events=text("RENDER_EVENTS_TABLE", "rendergate-render-events"),
                entities=text("ENTITIES_TABLE", "rendergate-entities"),
                actors=text("ACTORS_TABLE", "rendergate-actors"),
                provider_cache=text("PROVIDER_CACHE_TABLE", "rendergate-provider-cache"),
                deliveries=text("DELIVERIES_TABLE", "rendergate-deliveries"),
                reviewers=text("REVIEWERS_TABLE", "rendergate-reviewers"),
                keys=text("KEYS_TABLE", "rendergate-keys"),
                accounts=text("ACCOUNTS_TABLE", "rendergate-accounts"),
                ledger=text("LEDGER_TABLE", "rendergate-ledger"),
            ),
            storage=Storage(
                media_bucket=text("MEDIA_BUCKET", required=True),
                library_bucket=text("LIBRARY_BUCKET", required=True),
                library_public_base_url=url("LIBRARY_PUBLIC_BASE_URL"),
                s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "",
                endpoint=url("STORAGE_ENDPOINT"),
                public_endpoint=url("STORAGE_PUBLIC_ENDPOINT"),
                credentials_param=text("STORAGE_CREDENTIALS_PARAM"),  # none: the function's own keys
            ),
            pipeline=Pipeline(
                state_machine_arn=text("STATE_MACHINE_ARN", required=True),
                event_bus=text("EVENT_BUS", "default"),
                ingest_queue_url=text("INGEST_QUEUE_URL", required=True),
                default_namespace=text("DEFAULT_NAMESPACE", "library"),
                max_images_per_run=number("MAX_IMAGES_PER_RUN", 8, least=1),
            ),
            uploads=Uploads(
                max_bytes=number("MAX_UPLOAD_BYTES", 50 * 1024 * 1024, least=1),
                url_expiry_seconds=number("UPLOAD_URL_EXPIRY_SECONDS", 900, least=1, most=900),
                grace_seconds=number("UPLOAD_GRACE_SECONDS", 3600, least=0),
            ),
            review=Review(
                timeout_seconds=number("REVIEW_TIMEOUT_SECONDS", 7 * 24 * 3600, least=1),
                auto_approve=self.flag("AUTO_APPROVE"),
                auto_approve_namespaces=self.names_list("AUTO_APPROVE_NAMESPACES"),
                outbox_path=text("OUTBOX_PATH"),
                function=text("REVIEW_FUNCTION"),
                function_arn=text("REVIEW_FUNCTION_ARN"),
                scheduler_role_arn=text("REVIEW_SCHEDULER_ROLE_ARN"),
            ),
            enrich=Enrich(
                max_pixels=number("MAX_PIXELS", 40_000_000, least=1),
                max_frames=number("MAX_FRAMES", 1000, least=1),
                concurrency=number("ENRICH_CONCURRENCY", 4, least=1),
                preferred_language=text("PREFERRED_LANGUAGE", "en"),
                fallback_language=text("FALLBACK_LANGUAGE", "en"),
                selection_limits=self.limits("SELECTION_LIMITS"),
            ),
            render=Render(
                backend=render_backend,
                comfyui_url=url("COMFYUI_URL", "http://127.0.0.1:8188"),
                runpod_api_base=url("RUNPOD_API_BASE", "https://api.runpod.ai/v2"),
                runpod_endpoint_id=text("RUNPOD_ENDPOINT_ID"),
                runpod_output_url_prefixes=self.names_list("RUNPOD_OUTPUT_URL_PREFIXES"),
                timeout_seconds=number("RENDER_TIMEOUT_SECONDS", 3600, least=1),
                heartbeat_seconds=number("RENDER_HEARTBEAT_SECONDS", 300, least=1),
                execution_timeout_seconds=number("RENDER_EXECUTION_TIMEOUT_SECONDS", 600, least=1),
                queue_ttl_seconds=number("RENDER_QUEUE_TTL_SECONDS", 1800, least=1),
                low_priority_queue_limit=number("LOW_PRIORITY_QUEUE_LIMIT", 10, least=0),
                seconds_estimate=number("RENDER_SECONDS_ESTIMATE", 20, least=1),
                reconcile_poll_seconds=number("RECONCILE_POLL_SECONDS", 30, least=0),
                reconcile_function=text("RECONCILE_FUNCTION"),  # optional: the schedule is the backstop
            ),
            providers=Providers(
                tmdb_api_base=url("TMDB_API_BASE", "https://api.themoviedb.org/3"),
                tmdb_image_base=url("TMDB_IMAGE_BASE"),
                fanart_api_base=url("FANART_API_BASE", "https://webservice.fanart.tv/v3"),
                cache_ttl_seconds=number("PROVIDER_CACHE_TTL_SECONDS", 86400, least=0),
                concurrency=number("PROVIDER_CONCURRENCY", 8, least=1),
            ),
            delivery=Delivery(
                queue_url=text("DELIVERY_QUEUE_URL", required=True),
                max_attempts=number("DELIVERY_MAX_ATTEMPTS", 10, least=1),
                targets_cache_seconds=number("TARGETS_CACHE_SECONDS", 60, least=0),
            ),
            owners=Owners(
                metered=self.flag("DEFAULT_METERED", True),
                requests_per_minute=number("DEFAULT_REQUESTS_PER_MINUTE", 120, least=0),
                concurrent_runs=number("DEFAULT_CONCURRENT_RUNS", 4, least=0),
                daily_spend=number("DEFAULT_DAILY_SPEND", 0, least=0),
                daily_refresh=number("DEFAULT_DAILY_REFRESH", 0, least=0),
                key_rotation_grace_seconds=number("KEY_ROTATION_GRACE_SECONDS", 86400, least=0),
            ),
            credits=Credits(
                base_cost=number("CREDIT_BASE_COST", 10, least=0),
                high_priority_boost_percent=number("HIGH_PRIORITY_BOOST_PERCENT", 50, least=0),
                upload_image_cost=number("UPLOAD_IMAGE_COST", 0, least=0),
                large_grant=number("LARGE_GRANT_CREDITS", 1000, least=0),
            ),
            secrets=Secrets(
                api_key=self.secret("API_KEY", parameter="API_KEY_HASH_PARAM"),
                link_signing_key=self.secret("LINK_SIGNING_KEY"),
                public_base_url=self.secret("PUBLIC_BASE_URL"),
                runpod_api_key=self.secret("RUNPOD_API_KEY", required=render_backend == "runpod"),
                runpod_webhook=self.secret("WEBHOOK_SECRET"),
                tmdb_token=self.secret("TMDB_TOKEN"),
                fanart_api_key=self.secret("FANART_API_KEY"),
                minio_token=self.secret("MINIO_TOKEN"),
                comfy_webhook=self.secret("COMFY_WEBHOOK_SECRET"),
                targets=self.secret("TARGETS", required=False),  # no document: nothing is delivered
                slack_signing=self.secret("SLACK_SIGNING_SECRET"),
            ),
        )

    def check(self) -> None:
        """SettingsInvalid naming every required variable missing and every value not readable."""
        if self.missing or self.invalid:
            raise SettingsInvalid(self.missing, self.invalid)

    def text(self, name: str, default: str = "", *, required: bool = False) -> str:
        """`RENDERGATE_<name>`, stripped; `default` when unset; noted as missing when required and unset."""
        variable = f"RENDERGATE_{name}"
        self.names.append(variable)
        value = self.env.get(variable, "").strip()
        if not value and required:
            self.missing.append(variable)
        return value or default

    def url(self, name: str, default: str = "") -> str:
        """A base URL, without its trailing slash."""
        return self.text(name, default).rstrip("/")

    def number(self, name: str, default: int, *, least: int | None = None, most: int | None = None) -> int:
        """A whole number, clamped into [least, most]."""
        raw = self.text(name)
        try:
            value = int(raw) if raw else default
        except ValueError:
            self.invalid.append(f"RENDERGATE_{name}={raw!r} is not a whole number")
            return default
        if least is not None:
            value = max(least, value)
        return value if most is None else min(most, value)

    def flag(self, name: str, default: bool = False) -> bool:
        """A yes/no setting: true, yes, on or 1, and false, no, off or 0 (any case); unset is `default`."""
        raw = self.text(name).lower()
        if raw and raw not in TRUE | FALSE:
            self.invalid.append(f"RENDERGATE_{name}={raw!r} is not true or false")
        return raw in TRUE if raw else default

    def names_list(self, name: str) -> tuple[str, ...]:
        """`a,b`: a comma-separated list, blanks dropped."""
        return tuple(item.strip() for item in self.text(name).split(",") if item.strip())

    def limits(self, name: str) -> dict[str, int]:
        """`poster=3,fanart=5`: a count per name."""
        limits = {}
        for item in self.names_list(name):
            key, _, count = item.partition("=")
            try:
                limits[key.strip()] = int(count)
            except ValueError:
                self.invalid.append(f"RENDERGATE_{name}: {item!r} is not name=count")
        return limits

    def secret(self, name: str, *, parameter: str = "", required: bool = True) -> Secret:
        """`RENDERGATE_<name>` or the SSM parameter named by `RENDERGATE_<name>_PARAM`; when required,
        missing unless one of the two is set."""
        parameter = parameter or f"{name}_PARAM"
        secret = Secret(self.text(name), self.text(parameter), f"RENDERGATE_{name} (or RENDERGATE_{parameter})")
        if required and not (secret.value or secret.parameter):
            self.missing.append(secret.variables)
        return secret


def variables() -> tuple[str, ...]:
    """Every `RENDERGATE_*` variable the settings read, in the order of their groups."""
    read = Environment({})
    read.settings()
    return tuple(read.names)


@functools.cache
def settings() -> Settings:
    """The settings of this process, read once (at cold start: the table models read them on import)."""
    return Settings.from_env(os.environ)


_forgetters: list[Callable[[], object]] = []


def on_reset(forget: Forget) -> Forget:
    """Have `reset` call `forget`, which drops something built from the settings (a client, a cache)."""
    _forgetters.append(forget)
    return forget


def derived(function: Callable[..., T]) -> functools._lru_cache_wrapper[T]:
    """`function`'s result, made once like functools.cache and made again after `reset`."""
    cached = functools.cache(function)
    on_reset(cached.cache_clear)
    return cached


def reset() -> None:
    """Read the settings again on next use, and forget every client, cache and SSM value built from them."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    settings.cache_clear()
    DEFAULT_PROVIDERS.clear()
    for forget in _forgetters:
        forget()


def api_key_hash() -> str:
    """Hex sha256 of the client API key: from RENDERGATE_API_KEY locally, else the SSM SecureString."""
    secret = settings().secrets.api_key
    if secret.value:
        return hashlib.sha256(secret.value.encode()).hexdigest()
    return _parameter(secret.parameter).strip().lower()


def link_signing_key() -> bytes:
    """The key that signs review links."""
    return _secret(settings().secrets.link_signing_key).encode()


def public_base_url() -> str:
    """Where reviewers reach the HTTP API; review links are built on it."""
    return _secret(settings().secrets.public_base_url, decrypt=False).rstrip("/")


def runpod_api_key() -> str:
    """The RunPod API key: RENDERGATE_RUNPOD_API_KEY locally, else the SSM SecureString."""
    return _secret(settings().secrets.runpod_api_key).strip()


def webhook_secret() -> bytes:
    """The key that signs the per-run webhook URLs handed to RunPod."""
    return _secret(settings().secrets.runpod_webhook).encode()


def tmdb_token() -> str:
    """TMDB's read access token (sent as a Bearer token): RENDERGATE_TMDB_TOKEN locally, else the SSM SecureString."""
    return _secret(settings().secrets.tmdb_token).strip()


def fanart_api_key() -> str:
    """fanart.tv's project API key: RENDERGATE_FANART_API_KEY locally, else the SSM SecureString."""
    return _secret(settings().secrets.fanart_api_key).strip()


def minio_token() -> str:
    """The token MinIO's webhook target sends as `Authorization: Bearer <token>` (its `auth_token`)."""
    return _secret(settings().secrets.minio_token).strip()


def comfy_webhook_secret() -> str:
    """The Standard Webhooks secret (`whsec_` + base64) the ComfyUI completion node signs with."""
    return _secret(settings().secrets.comfy_webhook).strip()


def storage_credentials() -> tuple[str, str] | None:
    """The access key and secret of an S3-compatible store (MinIO) at `storage.endpoint`, from an SSM
    SecureString `{"access_key_id": ..., "secret_access_key": ...}`; None uses the function's own role (S3)."""
    storage = settings().storage
    if not (storage.endpoint and storage.credentials_param):
        return None
    document = json.loads(_parameter(storage.credentials_param))
    return str(document["access_key_id"]), str(document["secret_access_key"])


def targets_document() -> str | None:
    """The delivery targets document (JSON): RENDERGATE_TARGETS locally, else the SSM SecureString, read
    again once it is older than `delivery.targets_cache_seconds`; None when neither exists (no targets)."""
    current = settings()
    targets = current.secrets.targets
    if targets.value or not targets.parameter:
        return targets.value or None
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        return _parameter(targets.parameter, max_age=current.delivery.targets_cache_seconds)
    except GetParameterError as error:
        if "ParameterNotFound" not in str(error):  # Powertools wraps the ClientError in its text
            raise
        return None


def slack_signing_secret() -> str:
    """Slack's signing secret for `POST /slack/actions`: RENDERGATE_SLACK_SIGNING_SECRET locally, else the SSM
    SecureString."""
    return _secret(settings().secrets.slack_signing).strip()


def _secret(secret: Secret, decrypt: bool = True) -> str:
    if not (secret.value or secret.parameter):  # only a secret that is not always required gets here
        raise SettingsInvalid([secret.variables])
    return secret.value or _parameter(secret.parameter, decrypt=decrypt)


def _parameter(name: str, decrypt: bool = True, max_age: int = 300) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=decrypt, max_age=max_age))
