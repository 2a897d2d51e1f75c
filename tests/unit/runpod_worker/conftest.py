"""What our worker meets in its container: a ComfyUI (the CPU renderer) and a bucket it reaches only
through presigned URLs (a moto server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from devstack.comfyui import CpuComfyUI
from support.devstack import free_port
from support.runpod import Bucket


@pytest.fixture(scope="module")
def bucket() -> Iterator[Bucket]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket="worker-outputs")
    yield Bucket(client, "worker-outputs")
    server.stop()


@pytest.fixture(scope="module")
def comfy() -> Iterator[CpuComfyUI]:
    renderer = CpuComfyUI(port=0, step_seconds=0.01).start()
    yield renderer
    renderer.stop()
