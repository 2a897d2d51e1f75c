"""S3 (or MinIO) adapter: presigned URLs, reads, copies and tags. The client is created once, lazily."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rendergate.config import settings
from rendergate.errors import NotFound


@cache
def _s3() -> Any:
    config = settings()
    # Path-style addressing when pointed at moto or MinIO, where bucket subdomains do not resolve.
    addressing: Literal["path", "auto"] = "path" if config.s3_endpoint_url else "auto"
    return boto3.client(
        "s3",
        region_name=config.region,
        config=Config(signature_version="s3v4", s3={"addressing_style": addressing}),
    )


def presign_post(bucket: str, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
    """A presigned POST whose policy pins the key, the Content-Type and a content-length-range."""
    post: dict[str, Any] = _s3().generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )
    return post


def presign_put(bucket: str, key: str, content_type: str, expires_in: int) -> str:
    """A presigned PUT with the Content-Type among the signed headers."""
    url: str = _s3().generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=expires_in,
        HttpMethod="PUT",
    )
    return url


def presign_upload(bucket: str, key: str, expires_in: int) -> str:
    """A presigned PUT for a render output: a GPU worker uploads straight to the bucket with it."""
    url: str = _s3().generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="PUT"
    )
    return url


def presign_get(bucket: str, key: str, expires_in: int = 3600) -> str:
    url: str = _s3().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)
    return url


def head(bucket: str, key: str) -> dict[str, Any]:
    try:
        response: dict[str, Any] = _s3().head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from error
        raise
    return response


def exists(bucket: str, key: str) -> bool:
    try:
        head(bucket, key)
    except NotFound:
        return False
    return True


def read(bucket: str, key: str) -> bytes:
    try:
        body: bytes = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in {"404", "NoSuchKey"}:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from error
        raise
    return body


def write(bucket: str, key: str, body: bytes, content_type: str) -> None:
    _s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def copy(source_bucket: str, source_key: str, bucket: str, key: str, metadata: dict[str, str]) -> None:
    """Server-side copy, replacing the object's user metadata with ours."""
    _s3().copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": source_bucket, "Key": source_key},
        Metadata=metadata,
        MetadataDirective="REPLACE",
    )


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
