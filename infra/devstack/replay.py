"""`python -m devstack.replay <publish_event_id>` (`make replay EVENT=<id>`): publish one approval again
from its audit row (`POST /audit/{id}/replay`) and say what happened. The local stack by default; a
deployed one with `--api-url` and `--api-key`. Find the ids to replay with `GET /audit?status=failed`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from devstack.cloud import ROOT

REPLAY_SECONDS = 150  # a replay publishes: as long as the publish function may take, and then some


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.replay", description=__doc__)
    parser.add_argument("publish_event_id", help="the audit row's publish_event_id (the approval event's id)")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".devstack")
    parser.add_argument("--api-url", help="a deployed stack's ApiUrl output (default: the local stack)")
    parser.add_argument("--api-key", help="that stack's API key")
    args = parser.parse_args(argv)
    if args.api_url:
        api_url, api_key = args.api_url.rstrip("/"), args.api_key or ""
    else:
        state_file = args.state_dir / "stack.json"
        if not state_file.exists():
            print("the devstack is not running: start it with `make run`, or give --api-url", file=sys.stderr)
            return 1
        state = json.loads(state_file.read_text())
        api_url, api_key = state["api_url"], state["api_key"]
    answer = requests.post(
        f"{api_url}/audit/{args.publish_event_id}/replay",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=REPLAY_SECONDS,
    )
    body = answer.json()
    if answer.status_code != 200:
        print(f"{body.get('error')}: {body.get('message')}", file=sys.stderr)
        return 1
    if not body["replayed"]:
        print(body["message"])
        return 0
    item = body["published"]
    print(f"replayed {args.publish_event_id}: published at s3://{item['library_bucket']}/{item['library_key']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
