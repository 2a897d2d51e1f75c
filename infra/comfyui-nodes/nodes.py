"""The two nodes: rendergate • Upload Image and rendergate • Completion Webhook (the PMOVES creator pipeline's
"Upload Image (MinIO)" → "Completion Webhook" graph, against rendergate's API)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

from . import client
from .images import png_batch

CATEGORY = "rendergate"
DEFAULT_API_URL = os.environ.get("RENDERGATE_API_URL", "http://127.0.0.1:3000")
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadImage:
    """Uploads the batch as PNGs (with the prompt and workflow in text chunks) through `POST /uploads`; the run
    waits for the Completion Webhook. Outputs the run id, and the `s3://` URIs and presigned GETs one per line."""

    CATEGORY = CATEGORY
    FUNCTION = "upload"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING", "STRING")
    RETURN_NAMES = ("run_id", "s3_uri", "presigned_get")
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE",),
                "api_url": ("STRING", {"default": DEFAULT_API_URL}),
                "filename_prefix": ("STRING", {"default": "comfy"}),
            },
            "optional": {
                "api_key_env": (
                    "STRING",
                    {
                        "default": "RENDERGATE_API_KEY",
                        "tooltip": "the environment variable holding the API key (the key itself is never saved)",
                    },
                ),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def upload(
        self,
        images: Any,
        api_url: str,
        filename_prefix: str,
        api_key_env: str = "RENDERGATE_API_KEY",
        prompt: dict[str, Any] | None = None,
        extra_pnginfo: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        api_key = client.secret_from(api_key_env, "api_key_env")
        try:
            pngs = png_batch(images, prompt, extra_pnginfo)
        except ValueError as error:
            raise client.NodeError(f"rendergate: {error}") from error
        prefix = UNSAFE.sub("_", filename_prefix.strip()).strip("._") or "comfy"
        files = [
            {"filename": f"{prefix}_{index:05}.png", "content_type": "image/png", "size": len(data)}
            for index, data in enumerate(pngs)
        ]
        answer = client.presign(api_url, api_key, files)
        for target, data in zip(answer["files"], pngs, strict=True):
            client.put(target, data)
        uris = [target["s3_uri"] for target in answer["files"]]
        gets = [target["get_url"] for target in answer["files"]]
        shown = [f"run {answer['run_id']}: {len(uris)} image(s) uploaded"]
        return {"ui": {"text": shown}, "result": (answer["run_id"], "\n".join(uris), "\n".join(gets))}


class CompletionWebhook:
    """Announces the uploaded images to `POST /webhooks/comfy` with title, namespace, author and tags (and the
    prompt, seed and workflow hash when wired), signed per Standard Webhooks; retried on 5xx and timeouts."""

    CATEGORY = CATEGORY
    FUNCTION = "complete"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("run_id", "status")
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "s3_uri": ("STRING", {"forceInput": True}),
                "presigned_get": ("STRING", {"forceInput": True}),
                "api_url": ("STRING", {"default": DEFAULT_API_URL}),
                "title": ("STRING", {"default": ""}),
                "namespace": ("STRING", {"default": "library"}),
                "author": ("STRING", {"default": ""}),
                "tags": ("STRING", {"default": "", "tooltip": "comma-separated"}),
            },
            "optional": {
                "positive_prompt": ("STRING", {"forceInput": True}),
                "seed": ("INT", {"forceInput": True}),
                "secret_env": (
                    "STRING",
                    {
                        "default": "RENDERGATE_COMFY_WEBHOOK_SECRET",
                        "tooltip": "the environment variable holding the whsec_ signing secret",
                    },
                ),
            },
            "hidden": {"prompt": "PROMPT"},
        }

    def complete(
        self,
        s3_uri: str,
        presigned_get: str,
        api_url: str,
        title: str,
        namespace: str,
        author: str,
        tags: str,
        positive_prompt: str | None = None,
        seed: int | None = None,
        secret_env: str = "RENDERGATE_COMFY_WEBHOOK_SECRET",  # noqa: S107 (a variable's name, not a secret)
        prompt: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        secret = client.secret_from(secret_env, "secret_env")
        completion = completion_body(s3_uri, presigned_get, title, namespace, author, tags, positive_prompt, seed)
        if prompt is not None:  # the API graph this execution ran
            canonical = json.dumps(prompt, sort_keys=True, separators=(",", ":"))
            completion["workflow_hash"] = hashlib.sha256(canonical.encode()).hexdigest()
        answer = client.post_completion(api_url, secret, completion)
        shown = [f"run {answer['run_id']}: {answer['status']}"]
        return {"ui": {"text": shown}, "result": (answer["run_id"], answer["status"])}


def completion_body(
    s3_uri: str,
    presigned_get: str,
    title: str,
    namespace: str,
    author: str,
    tags: str,
    prompt: str | None,
    seed: int | None,
) -> dict[str, Any]:
    """The webhook's body: `s3_uri` and `presigned_get` one string per image (a list for several), the
    text fields when filled in, tags split at commas."""
    uris, gets = _lines(s3_uri), _lines(presigned_get)
    if not uris:
        raise client.NodeError("rendergate: s3_uri is empty: wire it to the Upload Image node's s3_uri output")
    body: dict[str, Any] = {
        "s3_uri": uris[0] if len(uris) == 1 else uris,
        "presigned_get": gets[0] if len(gets) == 1 else gets,
        "namespace": namespace.strip() or "library",
        "tags": [tag.strip() for tag in tags.split(",") if tag.strip()],
    }
    body |= {name: value.strip() for name, value in (("title", title), ("author", author)) if value.strip()}
    if prompt:
        body["prompt"] = prompt
    if seed is not None:
        body["seed"] = int(seed)
    return body


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


NODE_CLASS_MAPPINGS = {
    "RendergateUploadImage": UploadImage,
    "RendergateCompletionWebhook": CompletionWebhook,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "RendergateUploadImage": "rendergate • Upload Image",
    "RendergateCompletionWebhook": "rendergate • Completion Webhook",
}
