"""Settings: one typed object built from the environment at cold start, plus the secrets behind it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    media_bucket: str
    library_bucket: str
    runs_table: str
    assets_table: str
    reviews_table: str
    audit_table: str
    idempotency_table: str
    hash_index_table: str
    collections_table: str
    event_bus: str
    state_machine_arn: str
    api_key: str
    api_key_hash_param: str
    link_signing_key: str
    link_signing_key_param: str
    public_base_url: str
    public_base_url_param: str
    max_upload_bytes: int
    upload_url_expiry_seconds: int
    upload_grace_seconds: int
    review_timeout_seconds: int
    auto_approve: bool
    default_namespace: str
    library_public_base_url: str
    outbox_path: str
    s3_endpoint_url: str
    max_pixels: int
    max_frames: int
    preferred_language: str
    selection_limits: dict[str, int]
    enrich_concurrency: int
    render_events_table: str
    render_backend: str
    comfyui_url: str
    runpod_api_base: str
    runpod_endpoint_id: str
    runpod_api_key: str
    runpod_api_key_param: str
    runpod_output_url_prefixes: tuple[str, ...]
    webhook_secret: str
    webhook_secret_param: str
    render_timeout_seconds: int
    render_heartbeat_seconds: int
    render_execution_timeout_seconds: int
    render_queue_ttl_seconds: int
    max_images_per_run: int
    low_priority_queue_limit: int
    render_seconds_estimate: int
    reconcile_poll_seconds: int
    reconcile_function: str
    entities_table: str
    actors_table: str
    provider_cache_table: str
    tmdb_api_base: str
    tmdb_image_base: str
    tmdb_token: str
    tmdb_token_param: str
    fanart_api_base: str
    fanart_api_key: str
    fanart_api_key_param: str
    provider_cache_ttl_seconds: int
    provider_concurrency: int
    fallback_language: str
    storage_endpoint: str
    storage_public_endpoint: str
    storage_credentials_param: str
    ingest_queue_url: str
    minio_token: str
    minio_token_param: str
    comfy_webhook_secret: str
    comfy_webhook_secret_param: str
    auto_approve_namespaces: tuple[str, ...]
    deliveries_table: str
    delivery_queue_url: str
    delivery_max_attempts: int
    targets: str
    targets_param: str
    targets_cache_seconds: int
    keys_table: str
    accounts_table: str
    ledger_table: str
    key_rotation_grace_seconds: int
    credit_base_cost: int
    high_priority_boost_percent: int
    upload_image_cost: int
    large_grant_credits: int
    default_metered: bool
    default_requests_per_minute: int
    default_concurrent_runs: int
    default_daily_spend: int
    default_daily_refresh: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def text(name: str, default: str = "") -> str:
            return env.get(f"RENDERGATE_{name}", default)

        return cls(
            stage=text("STAGE", "dev"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            media_bucket=text("MEDIA_BUCKET"),
            library_bucket=text("LIBRARY_BUCKET"),
            runs_table=text("RUNS_TABLE", "rendergate-runs"),
            assets_table=text("ASSETS_TABLE", "rendergate-assets"),
            reviews_table=text("REVIEWS_TABLE", "rendergate-reviews"),
            audit_table=text("AUDIT_TABLE", "rendergate-publisher-audit"),
            idempotency_table=text("IDEMPOTENCY_TABLE", "rendergate-idempotency"),
            hash_index_table=text("HASH_INDEX_TABLE", "rendergate-hash-index"),
            collections_table=text("COLLECTIONS_TABLE", "rendergate-collections"),
            event_bus=text("EVENT_BUS", "default"),
            state_machine_arn=text("STATE_MACHINE_ARN"),
            api_key=text("API_KEY"),
            api_key_hash_param=text("API_KEY_HASH_PARAM"),
            link_signing_key=text("LINK_SIGNING_KEY"),
            link_signing_key_param=text("LINK_SIGNING_KEY_PARAM"),
            public_base_url=text("PUBLIC_BASE_URL"),
            public_base_url_param=text("PUBLIC_BASE_URL_PARAM"),
            max_upload_bytes=int(text("MAX_UPLOAD_BYTES", str(50 * 1024 * 1024))),
            upload_url_expiry_seconds=min(int(text("UPLOAD_URL_EXPIRY_SECONDS", "900")), 900),
            upload_grace_seconds=int(text("UPLOAD_GRACE_SECONDS", "3600")),
            review_timeout_seconds=int(text("REVIEW_TIMEOUT_SECONDS", str(7 * 24 * 3600))),
            auto_approve=_flag(text("AUTO_APPROVE", "false")),
            default_namespace=text("DEFAULT_NAMESPACE", "library"),
            library_public_base_url=text("LIBRARY_PUBLIC_BASE_URL").rstrip("/"),
            outbox_path=text("OUTBOX_PATH"),
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "",
            max_pixels=int(text("MAX_PIXELS", "40000000")),
            max_frames=int(text("MAX_FRAMES", "1000")),
            preferred_language=text("PREFERRED_LANGUAGE", "en"),
            selection_limits=_limits(text("SELECTION_LIMITS")),
            enrich_concurrency=max(1, int(text("ENRICH_CONCURRENCY", "4"))),
            render_events_table=text("RENDER_EVENTS_TABLE", "rendergate-render-events"),
            render_backend=text("RENDER_BACKEND", "comfyui").strip().lower(),
            comfyui_url=text("COMFYUI_URL", "http://127.0.0.1:8188").rstrip("/"),
            runpod_api_base=text("RUNPOD_API_BASE", "https://api.runpod.ai/v2").rstrip("/"),
            runpod_endpoint_id=text("RUNPOD_ENDPOINT_ID"),
            runpod_api_key=text("RUNPOD_API_KEY"),
            runpod_api_key_param=text("RUNPOD_API_KEY_PARAM"),
            runpod_output_url_prefixes=_list(text("RUNPOD_OUTPUT_URL_PREFIXES")),
            webhook_secret=text("WEBHOOK_SECRET"),
            webhook_secret_param=text("WEBHOOK_SECRET_PARAM"),
            render_timeout_seconds=int(text("RENDER_TIMEOUT_SECONDS", "3600")),
            render_heartbeat_seconds=int(text("RENDER_HEARTBEAT_SECONDS", "300")),
            render_execution_timeout_seconds=int(text("RENDER_EXECUTION_TIMEOUT_SECONDS", "600")),
            render_queue_ttl_seconds=int(text("RENDER_QUEUE_TTL_SECONDS", "1800")),
            max_images_per_run=int(text("MAX_IMAGES_PER_RUN", "8")),
            low_priority_queue_limit=int(text("LOW_PRIORITY_QUEUE_LIMIT", "10")),
            render_seconds_estimate=int(text("RENDER_SECONDS_ESTIMATE", "20")),
            reconcile_poll_seconds=int(text("RECONCILE_POLL_SECONDS", "30")),
            reconcile_function=text("RECONCILE_FUNCTION"),
            entities_table=text("ENTITIES_TABLE", "rendergate-entities"),
            actors_table=text("ACTORS_TABLE", "rendergate-actors"),
            provider_cache_table=text("PROVIDER_CACHE_TABLE", "rendergate-provider-cache"),
            tmdb_api_base=text("TMDB_API_BASE", "https://api.themoviedb.org/3").rstrip("/"),
            tmdb_image_base=text("TMDB_IMAGE_BASE").rstrip("/"),
            tmdb_token=text("TMDB_TOKEN"),
            tmdb_token_param=text("TMDB_TOKEN_PARAM"),
            fanart_api_base=text("FANART_API_BASE", "https://webservice.fanart.tv/v3").rstrip("/"),
            fanart_api_key=text("FANART_API_KEY"),
            fanart_api_key_param=text("FANART_API_KEY_PARAM"),
            provider_cache_ttl_seconds=int(text("PROVIDER_CACHE_TTL_SECONDS", "86400")),
            provider_concurrency=max(1, int(text("PROVIDER_CONCURRENCY", "8"))),
            fallback_language=text("FALLBACK_LANGUAGE", "en"),
            storage_endpoint=text("STORAGE_ENDPOINT").rstrip("/"),
            storage_public_endpoint=text("STORAGE_PUBLIC_ENDPOINT").rstrip("/"),
            storage_credentials_param=text("STORAGE_CREDENTIALS_PARAM"),
            ingest_queue_url=text("INGEST_QUEUE_URL"),
            minio_token=text("MINIO_TOKEN"),
            minio_token_param=text("MINIO_TOKEN_PARAM"),
            comfy_webhook_secret=text("COMFY_WEBHOOK_SECRET"),
            comfy_webhook_secret_param=text("COMFY_WEBHOOK_SECRET_PARAM"),
            auto_approve_namespaces=_list(text("AUTO_APPROVE_NAMESPACES")),
            deliveries_table=text("DELIVERIES_TABLE", "rendergate-deliveries"),
            delivery_queue_url=text("DELIVERY_QUEUE_URL"),
            delivery_max_attempts=max(1, int(text("DELIVERY_MAX_ATTEMPTS", "10"))),
            targets=text("TARGETS"),
            targets_param=text("TARGETS_PARAM"),
            targets_cache_seconds=max(0, int(text("TARGETS_CACHE_SECONDS", "60"))),
            keys_table=text("KEYS_TABLE", "rendergate-keys"),
            accounts_table=text("ACCOUNTS_TABLE", "rendergate-accounts"),
            ledger_table=text("LEDGER_TABLE", "rendergate-ledger"),
            key_rotation_grace_seconds=int(text("KEY_ROTATION_GRACE_SECONDS", "86400")),
            credit_base_cost=int(text("CREDIT_BASE_COST", "10")),
            high_priority_boost_percent=int(text("HIGH_PRIORITY_BOOST_PERCENT", "50")),
            upload_image_cost=int(text("UPLOAD_IMAGE_COST", "0")),
            large_grant_credits=int(text("LARGE_GRANT_CREDITS", "1000")),
            default_metered=_flag(text("DEFAULT_METERED", "true")),
            default_requests_per_minute=int(text("DEFAULT_REQUESTS_PER_MINUTE", "120")),
            default_concurrent_runs=int(text("DEFAULT_CONCURRENT_RUNS", "4")),
            default_daily_spend=int(text("DEFAULT_DAILY_SPEND", "0")),
            default_daily_refresh=int(text("DEFAULT_DAILY_REFRESH", "0")),
        )


def _flag(spec: str) -> bool:
    return spec.strip().lower() in {"1", "true", "yes", "on"}


def _list(spec: str) -> tuple[str, ...]:
    """`a,b`: a comma-separated list, blanks dropped."""
    return tuple(item.strip() for item in spec.split(",") if item.strip())


def _limits(spec: str) -> dict[str, int]:
    """`poster=3,fanart=5`: overrides of the per-type selection limits."""
    limits = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        limits[name.strip()] = int(count)
    return limits


@cache
def settings() -> Settings:
    """The settings of this process, read once."""
    return Settings.from_env(os.environ)


def api_key_hash() -> str:
    """Hex sha256 of the client API key: from RENDERGATE_API_KEY locally, else the SSM SecureString."""
    config = settings()
    if config.api_key:
        return hashlib.sha256(config.api_key.encode()).hexdigest()
    return _parameter(config.api_key_hash_param).strip().lower()


def link_signing_key() -> bytes:
    """The key that signs review links."""
    config = settings()
    return (config.link_signing_key or _parameter(config.link_signing_key_param)).encode()


def public_base_url() -> str:
    """Where reviewers reach the HTTP API; review links are built on it."""
    config = settings()
    return (config.public_base_url or _parameter(config.public_base_url_param, decrypt=False)).rstrip("/")


def runpod_api_key() -> str:
    """The RunPod API key: RENDERGATE_RUNPOD_API_KEY locally, else the SSM SecureString."""
    config = settings()
    return (config.runpod_api_key or _parameter(config.runpod_api_key_param)).strip()


def webhook_secret() -> bytes:
    """The key that signs the per-run webhook URLs handed to RunPod."""
    config = settings()
    return (config.webhook_secret or _parameter(config.webhook_secret_param)).encode()


def tmdb_token() -> str:
    """TMDB's read access token (sent as a Bearer token): RENDERGATE_TMDB_TOKEN locally, else the SSM SecureString."""
    config = settings()
    return (config.tmdb_token or _parameter(config.tmdb_token_param)).strip()


def fanart_api_key() -> str:
    """fanart.tv's project API key: RENDERGATE_FANART_API_KEY locally, else the SSM SecureString."""
    config = settings()
    return (config.fanart_api_key or _parameter(config.fanart_api_key_param)).strip()


def minio_token() -> str:
    """The token MinIO's webhook target sends as `Authorization: Bearer <token>` (its `auth_token`)."""
    config = settings()
    return (config.minio_token or _parameter(config.minio_token_param)).strip()


def comfy_webhook_secret() -> str:
    """The Standard Webhooks secret (`whsec_` + base64) the ComfyUI completion node signs with."""
    config = settings()
    return (config.comfy_webhook_secret or _parameter(config.comfy_webhook_secret_param)).strip()


def storage_credentials() -> tuple[str, str] | None:
    """The access key and secret of an S3-compatible store (MinIO) at `storage_endpoint`, from an SSM
    SecureString `{"access_key_id": ..., "secret_access_key": ...}`; None uses the function's own role (S3)."""
    config = settings()
    if not (config.storage_endpoint and config.storage_credentials_param):
        return None
    document = json.loads(_parameter(config.storage_credentials_param))
    return str(document["access_key_id"]), str(document["secret_access_key"])


def targets_document() -> str | None:
    """The delivery targets document (JSON): RENDERGATE_TARGETS locally, else the SSM SecureString, read
    again once it is older than `targets_cache_seconds`; None when neither exists (no targets)."""
    config = settings()
    if config.targets or not config.targets_param:
        return config.targets or None
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        return _parameter(config.targets_param, max_age=config.targets_cache_seconds)
    except GetParameterError as error:
        if "ParameterNotFound" not in str(error):  # Powertools wraps the ClientError in its text
            raise
        return None


def _parameter(name: str, decrypt: bool = True, max_age: int = 300) -> str:
    if not name:
        raise RuntimeError("a required secret is configured neither in the environment nor as an SSM parameter")
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=decrypt, max_age=max_age))
