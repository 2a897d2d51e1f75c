"""Seed the workflow registry: copy every `{name}/{version}/workflow.json` (+ manifest) of this folder
into the media bucket under `workflows/`, after checking each graph against its manifest's sha256 and
every manifest target against its graph. Versions are immutable: a stored version with another sha256
is refused (bump the version instead).

    python infra/workflows/seed.py --stack-name rendergate-dev        # the bucket from the stack's outputs
    python infra/workflows/seed.py --bucket my-media-bucket
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bundle:
    name: str
    version: str
    graph: bytes
    manifest: dict[str, Any]


def bundles(root: Path = ROOT) -> list[Bundle]:
    """Every committed workflow version, checked: sha256, names, and that each manifest target resolves."""
    from rendergate import workflows

    found = []
    for manifest_path in sorted(root.glob("*/*/manifest.json")):
        version_dir = manifest_path.parent
        name, version = version_dir.parent.name, version_dir.name
        manifest = json.loads(manifest_path.read_text())
        graph = (version_dir / "workflow.json").read_bytes()
        if (manifest.get("name"), manifest.get("version")) != (name, version):
            raise ValueError(f"{manifest_path}: name/version must be {name}/{version}")
        if workflows.digest(graph) != manifest.get("sha256"):
            raise ValueError(f"{manifest_path}: sha256 does not match workflow.json ({workflows.digest(graph)})")
        parsed = json.loads(graph)
        for spec in [manifest["count"], *manifest["params"].values()]:
            if spec.get("type") == "loras":
                for output in (spec["model"], spec["clip"]):
                    workflows.node_for(parsed, {"node": output[0]})
            else:
                node = workflows.node_for(parsed, spec)
                if spec["input"] not in parsed[node]["inputs"]:
                    raise ValueError(f"{manifest_path}: node {node} has no input {spec['input']!r}")
        found.append(Bundle(name, version, graph, manifest))
    return found


def seed(s3: Any, bucket: str, root: Path = ROOT) -> list[str]:
    """Store every version not stored yet and rewrite the index; return the keys written."""
    from rendergate import workflows

    written = []
    index: dict[str, dict[str, Any]] = {}
    for bundle in bundles(root):
        key = workflows.graph_key(bundle.name, bundle.version)
        stored = _stored(s3, bucket, key)
        if stored is not None and workflows.digest(stored) != bundle.manifest["sha256"]:
            raise ValueError(f"{key} is stored with another sha256: versions are immutable, bump the version")
        if stored is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bundle.graph, ContentType="application/json")
            written.append(key)
        manifest_key = workflows.manifest_key(bundle.name, bundle.version)
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(bundle.manifest, indent=2).encode())
        entry = index.setdefault(bundle.name, {"versions": []})
        entry["versions"].append(bundle.version)
    for entry in index.values():
        entry["versions"].sort(key=_version_order)
        entry["latest"] = entry["versions"][-1]
    body = json.dumps({"workflows": index}, indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=workflows.INDEX_KEY, Body=body, ContentType="application/json")
    return [*written, workflows.INDEX_KEY]


def _stored(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body


def _version_order(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bucket")
    target.add_argument("--stack-name")
    args = parser.parse_args(argv)
    bucket = args.bucket
    if args.stack_name:
        stack = boto3.client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]
        bucket = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "MediaBucketName")
    for key in seed(boto3.client("s3"), bucket):
        print(f"s3://{bucket}/{key}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parents[1] / "layers" / "common" / "python"))
    sys.exit(main())
