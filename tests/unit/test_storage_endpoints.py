"""MinIO as the object store: presigned URLs are signed for the host clients use (StoragePublicEndpoint), path
style, since SigV4 signs the Host header: a server reached by another name answers SignatureDoesNotMatch.
Checked here as the server would check it, with botocore's SigV4 signer."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

import boto3
from botocore.credentials import Credentials

from support.owners import ADMIN
from support.sigv4 import accepted_by

INTERNAL, PUBLIC = "minio.internal:9000", "files.example.test"


def env_credentials() -> Credentials:
    """The keys the functions sign with where no store keys are configured (moto's, in these tests)."""
    found = boto3.Session().get_credentials()
    assert found is not None
    return Credentials(found.access_key, found.secret_key)


def presigned_put() -> dict[str, str]:
    from rendergate import ingest

    return ingest.presign_upload({"filename": "a.png", "content_type": "image/png", "size": 10, "method": "PUT"}, ADMIN)


def test_urls_are_signed_for_the_public_host_and_refused_at_the_internal_one(
    aws: None, settings: Callable[..., None]
) -> None:
    settings(STORAGE_ENDPOINT=f"http://{INTERNAL}", STORAGE_PUBLIC_ENDPOINT=f"https://{PUBLIC}")
    answer = presigned_put()
    url = urlsplit(answer["url"])
    assert (url.scheme, url.netloc) == ("https", PUBLIC)
    assert url.path == f"/media-bucket/{answer['key']}"  # path style: MinIO has no bucket subdomains
    assert accepted_by(PUBLIC, answer["url"], "PUT", answer["headers"], env_credentials(), "us-east-1")
    assert not accepted_by(INTERNAL, answer["url"], "PUT", answer["headers"], env_credentials(), "us-east-1")


def test_without_a_public_host_urls_are_signed_for_the_store_the_functions_use(
    aws: None, settings: Callable[..., None]
) -> None:
    settings(STORAGE_ENDPOINT=f"http://{INTERNAL}")
    answer = presigned_put()
    assert urlsplit(answer["url"]).netloc == INTERNAL
    assert accepted_by(INTERNAL, answer["url"], "PUT", answer["headers"], env_credentials(), "us-east-1")
    assert not accepted_by(PUBLIC, answer["url"], "PUT", answer["headers"], env_credentials(), "us-east-1")


def test_previews_and_originals_are_signed_for_the_public_host_too(aws: None, settings: Callable[..., None]) -> None:
    from rendergate import storage

    settings(STORAGE_ENDPOINT=f"http://{INTERNAL}", STORAGE_PUBLIC_ENDPOINT=f"https://{PUBLIC}")
    url = storage.presign_get("media-bucket", "thumbs/ab/abc.webp")
    assert accepted_by(PUBLIC, url, "GET", {}, env_credentials(), "us-east-1")
    assert not accepted_by(INTERNAL, url, "GET", {}, env_credentials(), "us-east-1")


def test_the_store_is_reached_with_its_own_keys_from_ssm(aws: None, settings: Callable[..., None]) -> None:
    keys = {"access_key_id": "minio-access", "secret_access_key": "minio-secret-key"}
    boto3.client("ssm").put_parameter(
        Name="/rendergate/test/storage", Value=json.dumps(keys), Type="SecureString", Overwrite=True
    )
    settings(
        STORAGE_ENDPOINT=f"http://{INTERNAL}",
        STORAGE_PUBLIC_ENDPOINT=f"https://{PUBLIC}",
        STORAGE_CREDENTIALS_PARAM="/rendergate/test/storage",
    )
    answer = presigned_put()
    minio = Credentials("minio-access", "minio-secret-key")
    assert "minio-access%2F" in answer["url"]
    assert accepted_by(PUBLIC, answer["url"], "PUT", answer["headers"], minio, "us-east-1")
    assert not accepted_by(PUBLIC, answer["url"], "PUT", answer["headers"], env_credentials(), "us-east-1")
