"""Given S3 notifications as S3 and MinIO encode keys, when ingest decodes them, then the real key results."""

from urllib.parse import quote, quote_plus

import pytest

from rendergate.ingest import decode_key

KEYS = [
    "incoming/run/plain.png",
    "incoming/run/My Photo (1).png",
    "incoming/run/a+b=c.png",
    "incoming/run/100% real.jpg",
    "incoming/run/Ünïcödé — 写真.webp",
    "incoming/run/semi;colon&amp'quote.png",
]


@pytest.mark.parametrize("key", KEYS)
def test_s3_form_encoded_keys_decode(key: str) -> None:
    # S3 encodes like an HTML form: spaces become '+', '/' stays.
    raw = quote_plus(key, safe="/")
    assert decode_key(raw) == key


@pytest.mark.parametrize("key", KEYS)
def test_minio_keys_with_encoded_slashes_decode(key: str) -> None:
    raw = quote(key, safe="")  # MinIO encodes '/' as %2F too
    assert "%2F" in raw
    assert decode_key(raw) == key


def test_a_plus_in_a_key_is_a_space_and_an_encoded_plus_is_a_plus() -> None:
    assert decode_key("incoming/r/a+b%2Bc.png") == "incoming/r/a b+c.png"
