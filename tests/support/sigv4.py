"""What an S3-compatible server (S3, MinIO) does with a presigned URL: recompute its SigV4 signature for the
Host the request reached it by, with botocore's own signer, and accept it only when the two agree."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def accepted_by(
    host: str, url: str, method: str, headers: dict[str, str], credentials: Credentials, region: str
) -> bool:
    """Whether a server reached as `host` (`name` or `name:port`) accepts `url` sent with `headers`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    fields = dict(query)
    unsigned = urlencode([(k, v) for k, v in query if k != "X-Amz-Signature"], quote_via=quote)
    request = AWSRequest(method=method, url=urlunsplit((parts.scheme, host, parts.path, unsigned, "")))
    signed_names = fields["X-Amz-SignedHeaders"].split(";")
    for name, value in headers.items():
        if name.lower() in signed_names:
            request.headers[name] = value
    request.context["timestamp"] = fields["X-Amz-Date"]
    signer = S3SigV4QueryAuth(credentials, "s3", region, expires=int(fields["X-Amz-Expires"]))
    if signer.signed_headers(signer.headers_to_sign(request)) != fields["X-Amz-SignedHeaders"]:
        return False
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    return signer.signature(string_to_sign, request) == fields["X-Amz-Signature"]
