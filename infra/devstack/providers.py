"""A stand-in for TMDB v3 and fanart.tv v3 on loopback, answering from `devstack.provider_fixtures` in their
response shapes and with their rules where our code depends on them:

- TMDB wants `Authorization: Bearer <token>` or `api_key=`; without either it answers 401 with its
  envelope (status_code 7). An unknown id is 404 (status_code 34). `append_to_response` takes at most 20
  items (else 400, status_code 27) and adds exactly the parts it names; `include_image_language` filters
  images by language ("null" for none), as TMDB does. `/configuration` gives the image base.
- fanart.tv wants `api_key=`; an unknown id is 404 with `{"status": "error", "error message": "Not found"}`;
  image `likes` are strings and images have no sizes.
- Images are generated at their stated size (alpha for logos, clear art and discs); some are broken, one
  is missing, one is smaller than TMDB claims.

Tests script faults through `/__standin/faults` (429 with Retry-After, 5xx, for N requests under a path) and
read the request log through `/__standin/requests`; neither exists on a real provider.
"""

from __future__ import annotations

import io
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack import provider_fixtures as fixtures

TMDB_NOT_FOUND = {
    "success": False,
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
}
TMDB_BAD_KEY = {
    "success": False,
    "status_code": 7,
    "status_message": "Invalid API key: You must be granted a valid key.",
}
TMDB_TOO_MANY = {
    "success": False,
    "status_code": 25,
    "status_message": "Your request count (#) is over the allowed limit of (40).",
}
TMDB_APPEND_LIMIT = 20
IMAGE_SIZES = {"w92": 92, "w154": 154, "w185": 185, "w300": 300, "w342": 342, "w500": 500, "w780": 780, "w1280": 1280}


class ProviderStandIn:
    """The stand-in server; `url` is its base (TMDB under /3, fanart.tv under /v3, images under /t/p and /fanart)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        stand_in = self
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._images: dict[str, bytes] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                stand_in.handle(self)

            def do_POST(self) -> None:
                stand_in.control(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def start(self) -> ProviderStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    # ---- control (tests only) ----
    def control(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}")
        path = urlsplit(request.path).path
        with self._lock:
            if path == "/__standin/faults":
                self.faults.append({"times": 1, **body})
            elif path == "/__standin/reset":
                self.faults.clear()
                self.requests.clear()
            else:
                return _send(request, 404, {"message": "no such control"})
        _send(request, 200, {"faults": self.faults})

    # ---- the providers ----
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/__standin/requests":
            with self._lock:
                return _send(request, 200, {"requests": list(self.requests)})
        with self._lock:
            self.requests.append({"path": url.path, "query": query})
            fault = next((f for f in self.faults if url.path.startswith(f["path_prefix"]) and f["times"] > 0), None)
            if fault is not None:
                fault["times"] -= 1
        if fault is not None:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            body = TMDB_TOO_MANY if fault["status"] == 429 else {"status_code": 11, "status_message": "Internal error"}
            return _send(request, int(fault["status"]), body, headers)
        if url.path.startswith("/3/"):
            return self._tmdb(request, url.path[2:], query)
        if url.path.startswith("/v3/"):
            return self._fanart(request, url.path[3:], query)
        if url.path.startswith("/t/p/"):
            size, _, name = url.path[len("/t/p/") :].partition("/")
            return self._image(request, f"/{name}", IMAGE_SIZES.get(size))
        if url.path.startswith("/fanart/"):
            return self._image(request, url.path[len("/fanart") :], None)
        _send(request, 404, {"message": "Not Found"})

    def _tmdb(self, request: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        authorization = request.headers.get("Authorization", "")
        if not (authorization.startswith("Bearer ") and authorization[7:].strip()) and not query.get("api_key"):
            return _send(request, 401, TMDB_BAD_KEY)
        parts = path.strip("/").split("/")
        if parts == ["configuration"]:
            return _send(request, 200, self._configuration())
        if len(parts) == 2 and parts[0] == "find":
            return _send(request, 200, _find(parts[1], query.get("external_source", "")))
        if len(parts) != 2 or parts[0] not in ("movie", "tv") or not parts[1].isdigit():
            return _send(request, 404, TMDB_NOT_FOUND)
        catalogue = fixtures.MOVIES if parts[0] == "movie" else fixtures.TV_SHOWS
        document = catalogue.get(int(parts[1]))
        if document is None:
            return _send(request, 404, TMDB_NOT_FOUND)
        appended = [item for item in query.get("append_to_response", "").split(",") if item]
        if len(appended) > TMDB_APPEND_LIMIT:
            return _send(
                request,
                400,
                {
                    "success": False,
                    "status_code": 27,
                    "status_message": "Too many append to response objects: The maximum number of remote calls is 20.",
                },
            )
        answer = {k: v for k, v in document.items() if k not in ("images", "credits", "external_ids")}
        for item in appended:
            if item == "images":
                answer["images"] = _filtered(document["images"], query.get("include_image_language"))
            elif item in ("credits", "external_ids"):
                answer[item] = document[item]
        _send(request, 200, answer)

    def _configuration(self) -> dict[str, Any]:
        return {
            "change_keys": [],
            "images": {
                "base_url": f"{self.url}/t/p/",
                "secure_base_url": f"{self.url}/t/p/",
                "backdrop_sizes": ["w300", "w780", "w1280", "original"],
                "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
                "poster_sizes": ["w92", "w154", "w185", "w342", "w500", "w780", "original"],
                "profile_sizes": ["w45", "w185", "h632", "original"],
                "still_sizes": ["w92", "w185", "w300", "original"],
            },
        }

    def _fanart(self, request: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        if not query.get("api_key"):
            return _send(request, 401, {"status": "error", "error message": "Invalid API key"})
        parts = path.strip("/").split("/")
        catalogue = {"movies": fixtures.FANART_MOVIES, "tv": fixtures.FANART_TV}.get(parts[0])
        document = (
            catalogue.get(int(parts[1])) if catalogue is not None and len(parts) == 2 and parts[1].isdigit() else None
        )
        if document is None:
            return _send(request, 404, {"status": "error", "error message": "Not found"})
        text = json.dumps(document).replace("{fanart}", f"{self.url}/fanart")
        _send(request, 200, json.loads(text))

    def _image(self, request: BaseHTTPRequestHandler, name: str, width: int | None) -> None:
        picture = fixtures.PICTURES.get(name)
        if picture is None or picture.missing:
            return _send(request, 404, {"message": "Not Found"})
        key = f"{name}@{width}"
        with self._lock:
            data = self._images.get(key)
        if data is None:
            data = draw(picture, width)
            with self._lock:
                self._images[key] = data
        request.send_response(200)
        request.send_header("Content-Type", "image/png" if picture.fmt == "PNG" else "image/jpeg")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


def draw(picture: fixtures.Picture, width: int | None = None) -> bytes:
    """A picture with structure at several scales, the same design whatever the size (so resized copies are
    near-duplicates), transparent around its shapes where the type needs alpha."""
    from PIL import Image, ImageDraw

    rng = random.Random(picture.seed)
    base = Image.new(
        "RGBA",
        (64, 64),
        (0, 0, 0, 0) if picture.alpha else (rng.randrange(256), rng.randrange(256), rng.randrange(256), 255),
    )
    canvas = ImageDraw.Draw(base)
    for _ in range(10):
        x, y, w, h = rng.randrange(56), rng.randrange(56), rng.randrange(8, 40), rng.randrange(8, 40)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 255)
        (canvas.ellipse if rng.random() < 0.5 else canvas.rectangle)((x, y, x + w, y + h), fill=colour)
    size = (picture.width, picture.height)
    if width is not None and width < picture.width:
        size = (width, round(picture.height * width / picture.width))
    image = base.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    if picture.fmt == "PNG":
        (image if picture.alpha else image.convert("RGB")).save(buffer, "PNG", compress_level=1)
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    return data[: len(data) // 2] if picture.broken else data


def _filtered(images: dict[str, list[dict[str, Any]]], languages: str | None) -> dict[str, Any]:
    if languages is None:
        return images
    wanted = {None if code == "null" else code for code in languages.split(",")}
    return {kind: [i for i in items if i.get("iso_639_1") in wanted] for kind, items in images.items()}


def _find(external_id: str, source: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "movie_results": [],
        "person_results": [],
        "tv_results": [],
        "tv_episode_results": [],
        "tv_season_results": [],
    }
    found = fixtures.EXTERNAL_IDS.get((source, external_id))
    if found is not None:
        kind, tmdb_id = found
        document = (fixtures.MOVIES if kind == "movie" else fixtures.TV_SHOWS)[tmdb_id]
        summary = {"id": tmdb_id, "title": document.get("title"), "name": document.get("name"), "media_type": kind}
        answer["movie_results" if kind == "movie" else "tv_results"].append(summary)
    return answer


def _send(request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json;charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)
