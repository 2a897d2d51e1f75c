"""S3 (or MinIO) adapter: presigned URLs, reads, copies, tags and listings. Clients are created once, lazily.

Presigned URLs are signed for the host the client will use: SigV4 signs the Host header, so a URL signed
for MinIO's internal address fails with SignatureDoesNotMatch when sent to its public one. Where the two
differ (`StoragePublicEndpoint`), URLs come from a second client that only signs, never connects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rendergate.config import derived, settings, storage_credentials
from rendergate.errors import NotFound

DISCARD_TAG = "rendergate-discard"  # the media bucket's lifecycle rule expires objects tagged with it
MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
IMMUTABLE = "public, max-age=31536000, immutable"  # for objects written once at an address that never changes bytes


@dataclass(frozen=True)
class StoredObject:
    """One version of an object as S3 describes it; `body` holds its bytes when it was read."""

    version_id: str | None  # None where the bucket keeps no versions (MinIO often, S3 before versioning)
    etag: str
    size: int
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@derived
def _s3() -> Any:
    """The client that talks to the store: S3, or the S3-compatible `storage_endpoint` (MinIO)."""
    return _client(settings().storage.endpoint or None)


@derived
def _presigner() -> Any:
    """The client that signs URLs handed out: for the public endpoint when one is set, else `_s3()`."""
    public = settings().storage.public_endpoint
    return _client(public) if public else _s3()


def _client(endpoint_url: str | None) -> Any:
    config = settings()
    # Path-style addressing when pointed at moto or MinIO, where bucket subdomains do not resolve.
    addressing: Literal["path", "auto"] = "path" if (endpoint_url or config.storage.s3_endpoint_url) else "auto"
    access_key, secret_key = storage_credentials() or (None, None)
    return boto3.client(
        "s3",
        region_name=config.region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": addressing}),
    )


def presign_post(bucket: str, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
    """A presigned POST whose policy pins the key, the Content-Type and a content-length-range."""
    post: dict[str, Any] = _presigner().generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )
    return post


def presign_put(bucket: str, key: str, content_type: str, expires_in: int) -> dict[str, Any]:
    """A presigned PUT that can create the object once: Content-Type and `If-None-Match: *` are signed,
    so S3 refuses a second PUT of the same URL (412). Returns the URL and the headers to send with it."""
    url: str = _presigner().generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "IfNoneMatch": "*"},
        ExpiresIn=expires_in,
        HttpMethod="PUT",
    )
    return {"url": url, "headers": {"Content-Type": content_type, "If-None-Match": "*"}}


def presign_upload(bucket: str, key: str, expires_in: int) -> str:
    """A presigned PUT for a render output: a GPU worker uploads straight to the bucket with it."""
    url: str = _presigner().generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="PUT"
    )
    return url


def presign_get(bucket: str, key: str, expires_in: int = 3600, version_id: str | None = None) -> str:
    """A presigned GET, of one version when `version_id` is given."""
    params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    url: str = _presigner().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
    return url


def head(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    try:
        response: dict[str, Any] = _s3().head_object(Bucket=bucket, Key=key, **_version(version_id))
    except ClientError as error:
        if error.response["Error"]["Code"] in MISSING:
            raise NotFound(f"{_where(bucket, key, version_id)} does not exist") from error
        raise
    return response


def describe(bucket: str, key: str, version_id: str | None = None) -> StoredObject:
    """The object (the version `version_id`, else the current one) without its bytes."""
    return _stored(head(bucket, key, version_id))


def exists(bucket: str, key: str) -> bool:
    try:
        head(bucket, key)
    except NotFound:
        return False
    return True


def read(bucket: str, key: str) -> bytes:
    return read_object(bucket, key).body


def read_object(bucket: str, key: str, version_id: str | None = None) -> StoredObject:
    """The bytes of one version (the current one without `version_id`) with its version id and ETag,
    from one GetObject, so what is recorded about the bytes is what was read."""
    try:
        response = _s3().get_object(Bucket=bucket, Key=key, **_version(version_id))
        body: bytes = response["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in MISSING:
            raise NotFound(f"{_where(bucket, key, version_id)} does not exist") from error
        raise
    return _stored(response, body)


def write(bucket: str, key: str, body: bytes, content_type: str) -> None:
    _s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def write_if_absent(
    bucket: str, key: str, body: bytes, content_type: str, metadata: dict[str, str], cache_control: str
) -> bool:
    """Create the object only where none exists (`If-None-Match: *`); False when the key is taken."""
    put = {"ContentType": content_type, "CacheControl": cache_control, "Metadata": metadata, "IfNoneMatch": "*"}
    return _put_unless_refused(bucket, key, body, put, {"PreconditionFailed", "412"})


def replace_if_match(
    bucket: str, key: str, body: bytes, content_type: str, metadata: dict[str, str], etag: str, cache_control: str
) -> bool:
    """Overwrite the object only while it is the version with `etag` (`If-Match`); False when it changed."""
    put = {"ContentType": content_type, "CacheControl": cache_control, "Metadata": metadata, "IfMatch": etag}
    return _put_unless_refused(bucket, key, body, put, {"PreconditionFailed", "412", "ConditionalRequestConflict"})


def _put_unless_refused(bucket: str, key: str, body: bytes, put: dict[str, Any], refused: set[str]) -> bool:
    """PutObject with the conditions in `put`; False when S3 refuses it with one of the `refused` codes."""
    try:
        _s3().put_object(Bucket=bucket, Key=key, Body=body, **put)
    except ClientError as error:
        if error.response["Error"]["Code"] in refused:
            return False
        raise
    return True


def delete(bucket: str, key: str) -> None:
    """Delete the current object (a versioned bucket keeps it as a noncurrent version)."""
    _s3().delete_object(Bucket=bucket, Key=key)


def read_range(bucket: str, key: str, start: int, end: int) -> bytes:
    """Bytes `start` to `end` (inclusive) of an object, with one ranged GET."""
    try:
        response = _s3().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
    except ClientError as error:
        if error.response["Error"]["Code"] in MISSING:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from error
        raise
    data: bytes = response["Body"].read()
    return data


def copy(
    source_bucket: str,
    source_key: str,
    bucket: str,
    key: str,
    metadata: dict[str, str],
    source_version_id: str | None = None,
    source_etag: str | None = None,
) -> None:
    """Server-side copy of one source version (the current one without `source_version_id`; S3 and MinIO
    refuse it when its ETag is not `source_etag`), replacing the object's user metadata with ours."""
    source = {"Bucket": source_bucket, "Key": source_key, **_version(source_version_id)}
    _s3().copy_object(
        Bucket=bucket,
        Key=key,
        CopySource=source,
        Metadata=metadata,
        MetadataDirective="REPLACE",
        **({"CopySourceIfMatch": source_etag} if source_etag else {}),
    )


def discard(bucket: str, key: str) -> None:
    """Tag the object's current version for the lifecycle rule that expires discarded objects (if any is left)."""
    try:
        tag(bucket, key, {DISCARD_TAG: "true"})
    except ClientError as error:
        if error.response["Error"]["Code"] not in MISSING:
            raise


def tag(bucket: str, key: str, tags: dict[str, str]) -> None:
    """Set tags on an object (lifecycle rules act on them, e.g. discard)."""
    _s3().put_object_tagging(
        Bucket=bucket,
        Key=key,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
    )


def tags(bucket: str, key: str) -> dict[str, str]:
    tag_set = _s3().get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


@dataclass(frozen=True)
class Listed:
    """One object of a listing: its key and when it was last written (seconds since the epoch)."""

    key: str
    last_modified: float


def list_page(bucket: str, prefix: str, start_after: str = "", limit: int = 1000) -> tuple[list[Listed], bool]:
    """One page of the keys under `prefix` after `start_after`, in key order, and whether more follow."""
    after = {"StartAfter": start_after} if start_after else {}
    response = _s3().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=limit, **after)
    listed = [Listed(str(o["Key"]), o["LastModified"].timestamp()) for o in response.get("Contents", [])]
    return listed, bool(response.get("IsTruncated"))


def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


def _where(bucket: str, key: str, version_id: str | None) -> str:
    return f"version {version_id} of s3://{bucket}/{key}" if version_id else f"s3://{bucket}/{key}"


def _stored(response: dict[str, Any], body: bytes = b"") -> StoredObject:
    version_id = response.get("VersionId")
    # "null" is the one version of an unversioned (or suspended) key: a later write replaces it in place
    return StoredObject(
        version_id=None if version_id in (None, "null") else str(version_id),
        etag=str(response.get("ETag", "")),
        size=int(response.get("ContentLength", len(body))),
        content_type=response.get("ContentType"),
        metadata=dict(response.get("Metadata", {})),
        body=body,
    )
