"""`python -m devstack`: the whole pipeline on this machine, no AWS account and no Docker."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from workflows.seed import seed

from devstack.cloud import REGION, ROOT, Stack, client, deploy, start_moto
from devstack.comfyui import CpuComfyUI
from devstack.httpapi import LocalHttpApi
from devstack.lambdas import LocalLambda
from devstack.poller import QueuePoller
from devstack.providers import ProviderStandIn
from devstack.scheduler import Scheduler
from rendergate.errors import TargetsInvalid
from rendergate.targets import parse  # reads no settings: the functions' environment is not set up yet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--moto-port", type=int, default=4566)
    parser.add_argument("--api-port", type=int, default=3000)
    parser.add_argument("--comfyui-port", type=int, default=8188, help="the CPU renderer (0: any free port)")
    parser.add_argument("--providers-port", type=int, default=8190, help="the TMDB/fanart.tv stand-in (0: any)")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".devstack")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="KEY=VALUE", help="template parameter override"
    )
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.parameter)
    if "RENDERGATE_AUTO_APPROVE" in os.environ:  # the one setting worth taking from the shell
        parameters.setdefault("AutoApprove", os.environ["RENDERGATE_AUTO_APPROVE"].lower())
    renderer = None
    if "ComfyUiUrl" not in parameters:  # locally, renders go to the CPU renderer unless told otherwise
        renderer = CpuComfyUI(args.host, args.comfyui_port).start()
        parameters["ComfyUiUrl"] = renderer.url
        parameters.setdefault("RenderBackend", "comfyui")

    stand_in = None
    if "TmdbApiBase" not in parameters:  # locally, metadata comes from the provider stand-in
        stand_in = ProviderStandIn(args.host, args.providers_port).start()
        parameters["TmdbApiBase"] = f"{stand_in.url}/3"
        parameters.setdefault("FanartApiBase", f"{stand_in.url}/v3")

    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
    args.state_dir.mkdir(parents=True, exist_ok=True)
    moto_url = f"http://{args.host}:{args.moto_port}"
    api_key = os.environ.pop("RENDERGATE_API_KEY", "") or secrets.token_urlsafe(24)
    link_key = os.environ.pop("RENDERGATE_LINK_SIGNING_KEY", "") or secrets.token_urlsafe(32)
    runpod_key = os.environ.pop("RENDERGATE_RUNPOD_API_KEY", "") or "devstack-runpod-api-key"
    webhook_secret = os.environ.pop("RENDERGATE_WEBHOOK_SECRET", "") or secrets.token_urlsafe(32)
    # any value works against the stand-in; real ones when TmdbApiBase/FanartApiBase point at the providers
    provider_keys = {
        "RENDERGATE_TMDB_TOKEN_PARAM": os.environ.pop("RENDERGATE_TMDB_TOKEN", "") or "devstack.tmdb.token",
        "RENDERGATE_FANART_API_KEY_PARAM": os.environ.pop("RENDERGATE_FANART_API_KEY", "") or "devstack-fanart-key",
    }
    inbound = {  # MinIO's auth_token and the ComfyUI node's signing secret, as SSM holds them in AWS
        "minio_token": os.environ.pop("RENDERGATE_MINIO_TOKEN", "") or secrets.token_urlsafe(24),
        "comfy_webhook_secret": os.environ.pop("RENDERGATE_COMFY_WEBHOOK_SECRET", "")
        or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "slack_signing_secret": os.environ.pop("RENDERGATE_SLACK_SIGNING_SECRET", "") or secrets.token_hex(16),
    }
    targets = checked_targets(os.environ.pop("RENDERGATE_TARGETS", "") or "[]")
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "devstack",
            "AWS_SECRET_ACCESS_KEY": "devstack",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": moto_url,
        }
    )

    server = start_moto(args.moto_port, args.host)
    stack = deploy(moto_url, parameters=parameters)
    local = LocalLambda(stack)
    local.install()
    api = LocalHttpApi(stack, local, args.host, args.api_port)
    more_secrets = {
        **provider_keys,
        "RENDERGATE_MINIO_TOKEN_PARAM": inbound["minio_token"],
        "RENDERGATE_COMFY_WEBHOOK_SECRET_PARAM": inbound["comfy_webhook_secret"],
        "RENDERGATE_SLACK_SIGNING_SECRET_PARAM": inbound["slack_signing_secret"],
    }
    _configure_functions(stack, args.state_dir, api.url, api_key, link_key, runpod_key, webhook_secret, more_secrets)
    store_targets(client("ssm", stack.endpoint_url), os.environ["RENDERGATE_TARGETS_PARAM"], targets)
    verify_senders(client("ses", stack.endpoint_url), targets)
    seed(client("s3", stack.endpoint_url), os.environ["RENDERGATE_MEDIA_BUCKET"])
    poller = QueuePoller(stack, local)
    poller.start()
    scheduler = Scheduler(stack, local)
    scheduler.start()
    api.start()

    state = _state(stack, api.url, moto_url, api_key, link_key, args.state_dir)
    state["webhook_secret"] = webhook_secret
    state.update(inbound)
    state["targets"] = [{"name": t.name, "kind": t.kind, "host": t.host} for t in parse(targets)]
    (args.state_dir / "stack.json").write_text(json.dumps(state, indent=2))
    (args.state_dir / "sam-local-env.json").write_text(json.dumps(_sam_local_env(stack, args.moto_port), indent=2))
    print(_banner(state), flush=True)

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    scheduler.stop()
    poller.stop()
    api.stop()
    if renderer is not None:
        renderer.stop()
    if stand_in is not None:
        stand_in.stop()
    server.stop()
    return 0


def _configure_functions(
    stack: Stack,
    state_dir: Path,
    api_url: str,
    api_key: str,
    link_key: str,
    runpod_key: str,
    webhook_secret: str,
    more_secrets: dict[str, str],
) -> None:
    """One process hosts every function, so their environments must agree; secrets go to SSM as in AWS."""
    merged: dict[str, str] = {}
    for function in stack.functions.values():
        for name, value in function.environment.items():
            if merged.get(name, str(value)) != str(value):
                raise SystemExit(f"functions disagree on {name}; keep per-function settings distinct")
            merged[name] = str(value)
    merged["RENDERGATE_OUTBOX_PATH"] = str(state_dir / "outbox.jsonl")
    merged["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ.update(merged)
    ssm = client("ssm", stack.endpoint_url)
    secure = {
        merged["RENDERGATE_API_KEY_HASH_PARAM"]: hashlib.sha256(api_key.encode()).hexdigest(),
        merged["RENDERGATE_LINK_SIGNING_KEY_PARAM"]: link_key,
        merged["RENDERGATE_RUNPOD_API_KEY_PARAM"]: runpod_key,
        merged["RENDERGATE_WEBHOOK_SECRET_PARAM"]: webhook_secret,
        **{merged[name]: value for name, value in more_secrets.items()},  # keyed by the parameter's variable
    }
    for name, value in secure.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name=merged["RENDERGATE_PUBLIC_BASE_URL_PARAM"], Value=api_url, Type="String", Overwrite=True)


def checked_targets(document: str) -> str:
    """The RENDERGATE_TARGETS document, refused here with the stack's own message when it is not valid."""
    try:
        parse(document)
    except TargetsInvalid as refused:
        raise SystemExit(f"RENDERGATE_TARGETS: {refused}") from refused
    return document


def store_targets(ssm: Any, name: str, document: str) -> None:
    """Where the functions read their targets, as in AWS: an SSM SecureString."""
    ssm.put_parameter(Name=name, Value=document, Type="SecureString", Overwrite=True)


def verify_senders(ses: Any, document: str) -> None:
    """The email targets' senders as verified SES identities, as an operator verifies them once in AWS."""
    for target in parse(document):
        if target.kind == "email":
            ses.verify_email_identity(EmailAddress=target.sender)


def _sam_local_env(stack: Stack, moto_port: int) -> dict[str, dict[str, str]]:
    """`sam local invoke --env-vars` for every function: the stack's names, and moto as the endpoint."""
    env = {name: str(value) for f in stack.functions.values() for name, value in f.environment.items()}
    env["AWS_ENDPOINT_URL"] = f"http://host.docker.internal:{moto_port}"
    return {"Parameters": env}


def _state(
    stack: Stack, api_url: str, moto_url: str, api_key: str, link_key: str, state_dir: Path
) -> dict[str, object]:
    env = os.environ
    return {
        "api_url": api_url,
        "moto_url": moto_url,
        "api_key": api_key,
        "link_signing_key": link_key,
        "region": REGION,
        "media_bucket": env["RENDERGATE_MEDIA_BUCKET"],
        "library_bucket": env["RENDERGATE_LIBRARY_BUCKET"],
        "tables": {
            "runs": env["RENDERGATE_RUNS_TABLE"],
            "assets": env["RENDERGATE_ASSETS_TABLE"],
            "reviews": env["RENDERGATE_REVIEWS_TABLE"],
            "audit": env["RENDERGATE_AUDIT_TABLE"],
            "render_events": env["RENDERGATE_RENDER_EVENTS_TABLE"],
            "entities": env["RENDERGATE_ENTITIES_TABLE"],
            "actors": env["RENDERGATE_ACTORS_TABLE"],
            "provider_cache": env["RENDERGATE_PROVIDER_CACHE_TABLE"],
            "deliveries": env["RENDERGATE_DELIVERIES_TABLE"],
            "keys": env["RENDERGATE_KEYS_TABLE"],
            "accounts": env["RENDERGATE_ACCOUNTS_TABLE"],
            "ledger": env["RENDERGATE_LEDGER_TABLE"],
        },
        "providers_url": env["RENDERGATE_TMDB_API_BASE"].rsplit("/", 1)[0],
        "delivery_queue_url": env["RENDERGATE_DELIVERY_QUEUE_URL"],
        "delivery_dlq_url": stack.resources["DeliveryDeadLetterQueue"],
        "targets_param": env["RENDERGATE_TARGETS_PARAM"],
        "event_bus": env["RENDERGATE_EVENT_BUS"],
        "state_machine_arn": stack.state_machine_arn,
        "ingest_queue_url": stack.resources["IngestQueue"],
        "ingest_dlq_url": stack.resources["IngestDeadLetterQueue"],
        "render_dlq_url": stack.resources["RenderDeadLetterQueue"],
        "render_backend": env["RENDERGATE_RENDER_BACKEND"],
        "comfyui_url": env["RENDERGATE_COMFYUI_URL"],
        "reconcile_function": env["RENDERGATE_RECONCILE_FUNCTION"],
        "ledger_function": stack.functions["LedgerFunction"].name,
        "authorizer_cache_seconds": stack.authorizers["KeyAuthorizer"].ttl_seconds,
        "functions": {logical_id: function.name for logical_id, function in stack.functions.items()},
        "outbox": str(state_dir / "outbox.jsonl"),
        "parameters": stack.parameters,
        "schedules": [{"function": s.function_logical_id, "expression": s.expression} for s in stack.schedules],
    }


def _banner(state: dict[str, object]) -> str:
    renders = state["comfyui_url"] if state["render_backend"] == "comfyui" else "RunPod"
    return "\n".join(
        [
            "rendergate devstack ready",
            f"  HTTP API      {state['api_url']}   (POST /uploads, POST /runs, GET /runs, /reviews/...)",
            f"  AWS (moto)    {state['moto_url']}   (AWS_ENDPOINT_URL for aws-cli, boto3, sam local)",
            f"  admin key     {state['api_key']}   (owner admin, every scope; POST /admin/keys makes more)",
            f"  MinIO token   {state['minio_token']}   (POST /webhooks/minio: the webhook target's auth_token)",
            f"  comfy secret  {state['comfy_webhook_secret']}   (the nodes' RENDERGATE_COMFY_WEBHOOK_SECRET)",
            f"  slack secret  {state['slack_signing_secret']}   (signs presses of Slack buttons: POST /slack/actions)",
            "  review mail   sent through moto's SES: GET /moto-api/data.json on the AWS endpoint lists it",
            f"  renders       {state['render_backend']} at {renders}",
            f"  providers     TMDB and fanart.tv at {state['providers_url']}",
            f"  media bucket  {state['media_bucket']}",
            f"  library       {state['library_bucket']}",
            f"  review links  appended to {state['outbox']}",
            f"  deliveries    {_targets_line(state['targets'])}",
            "  try: make demo  (or RENDER=1, COMFY=1, ENTITY=1)    stop: Ctrl-C",
        ]
    )


def _targets_line(targets: Any) -> str:
    if not targets:
        return "no targets (set RENDERGATE_TARGETS to a targets document; see README)"
    return ", ".join(f"{t['name']} ({t['kind']}, {t['host']})" for t in targets)


if __name__ == "__main__":
    sys.exit(main())
