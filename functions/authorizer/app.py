from typing import Any

from rendergate import owners


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # the identity source is the Authorization header (API Gateway caches the answer per value of it)
    return owners.authorise((event.get("identitySource") or [None])[0])
