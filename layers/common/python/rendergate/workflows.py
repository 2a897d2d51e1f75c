"""The workflow registry: ComfyUI API-format graphs with manifests, stored in the media bucket under
`workflows/`, verified against their recorded sha256 on load, and filled in with a run's parameters."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from rendergate import storage
from rendergate.config import on_reset, settings
from rendergate.errors import BadRequest, NotFound, RegistryError, unknown_fields

PREFIX = "workflows/"
INDEX_KEY = f"{PREFIX}index.json"
LORA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ /-]{0,199}\.(safetensors|ckpt|pt)$")
IMAGE_PREFIXES = ("incoming/", "renders/")
# ComfyUI inputs that name a file under its models folder: a name must stay inside that folder
MODEL_FILE_INPUTS = frozenset(
    {"ckpt_name", "lora_name", "vae_name", "unet_name", "clip_name", "control_net_name", "model_name"}
)
SEED_LIMIT = 2**48  # random seeds stay exact in every JSON client
INDEX_MAX_AGE = 60.0

_verified: dict[tuple[str, str], Workflow] = {}  # versions are immutable, so a verified one stays valid
_index: tuple[float, dict[str, Any]] | None = None


@on_reset
def _forget() -> None:
    """The registry is read from the media bucket: forget what was read."""
    global _index
    _verified.clear()
    _index = None


@dataclass(frozen=True)
class Workflow:
    """One version of a registry workflow, its graph verified against the manifest's sha256."""

    name: str
    version: str
    sha256: str
    manifest: dict[str, Any]
    graph: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """A workflow filled in for one run: the exact graph to render and the parameters that made it."""

    graph: dict[str, Any]
    params: dict[str, Any]
    seed: int
    count: int
    images: dict[str, str]  # ComfyUI input file name -> media bucket key of the source image


def load(name: Any, version: Any = None) -> Workflow:
    """The registry's `name` at `version` (latest when None). BadRequest for unknown ones."""
    if not isinstance(name, str) or not name:
        raise BadRequest("workflow is required: the name of a registry workflow")
    if version is not None and (not isinstance(version, str) or not version):
        raise BadRequest("version must be a version string of the workflow, e.g. '1.0.0'")
    entry = _registry_index().get(name)
    if entry is None:
        known = ", ".join(sorted(_registry_index())) or "none"
        raise BadRequest(f"workflow '{name}' is not in the registry (known: {known})")
    version = version or entry["latest"]
    if version not in entry["versions"]:
        raise BadRequest(f"workflow {name} has no version '{version}' (known: {', '.join(entry['versions'])})")
    key = (name, version)
    if key not in _verified:
        _verified[key] = _read(name, version)
    return _verified[key]


def prepare(workflow: Workflow, params: Any, count: int) -> Prepared:
    """Validate `params` against the manifest and inject them, with `count` images; random seed when absent."""
    if not isinstance(params, dict):
        raise BadRequest("params must be an object of the workflow's parameters")
    specs: dict[str, dict[str, Any]] = workflow.manifest["params"]
    if unknown := set(params) - set(specs):
        error = unknown_fields((f"params.{name}" for name in unknown), what="parameter")
        raise BadRequest(f"{error} for workflow {workflow.name} (known: {', '.join(specs)})")
    values = {name: _validated(name, spec, params[name]) for name, spec in specs.items() if name in params}
    for name, spec in specs.items():
        if spec.get("required") and name not in values:
            raise BadRequest(f"params.{name} is required by workflow {workflow.name}")
    if "batch" in values and values["batch"] != count:
        raise BadRequest(f"params.batch ({values['batch']}) must equal count ({count}) when both are given")
    values.pop("batch", None)
    if "seed" in specs:
        values.setdefault("seed", secrets.randbelow(SEED_LIMIT))
    images = {input_name(key): key for name, key in values.items() if specs[name]["type"] == "image"}
    graph = inject(workflow, values, count)
    return Prepared(graph=graph, params=values, seed=int(values.get("seed", 0)), count=count, images=images)


def inject(workflow: Workflow, values: dict[str, Any], count: int) -> dict[str, Any]:
    """A copy of the graph with each value written to the node input its manifest names."""
    graph = copy.deepcopy(workflow.graph)
    specs = workflow.manifest["params"]
    target = workflow.manifest["count"]
    graph[node_for(graph, target)]["inputs"][target["input"]] = count
    for name, value in values.items():
        spec = specs[name]
        if spec["type"] == "loras":
            _insert_loras(graph, spec, value)
        elif spec["type"] == "image":
            graph[node_for(graph, spec)]["inputs"][spec["input"]] = input_name(value)
        else:
            graph[node_for(graph, spec)]["inputs"][spec["input"]] = value
    return graph


def node_for(graph: dict[str, Any], target: dict[str, Any]) -> str:
    """The id of the node a manifest entry targets, by node id or by its `_meta.title`."""
    if "node" in target:
        if target["node"] not in graph:
            raise RegistryError(f"the manifest names node {target['node']}, which the graph does not have")
        return str(target["node"])
    matches = [nid for nid, node in graph.items() if node.get("_meta", {}).get("title") == target.get("title")]
    if len(matches) != 1:
        raise RegistryError(f"the manifest's title {target.get('title')!r} matches {len(matches)} nodes, not one")
    return matches[0]


def digest(graph_bytes: bytes) -> str:
    return hashlib.sha256(graph_bytes).hexdigest()


def graph_key(name: str, version: str) -> str:
    return f"{PREFIX}{name}/{version}.json"


def manifest_key(name: str, version: str) -> str:
    return f"{PREFIX}{name}/{version}.manifest.json"


def _registry_index() -> dict[str, Any]:
    global _index
    if _index is None or time.monotonic() - _index[0] > INDEX_MAX_AGE:
        try:
            raw = storage.read(settings().storage.media_bucket, INDEX_KEY)
        except NotFound as error:
            raise RegistryError("the workflow registry is empty: seed it (make seed-workflows)") from error
        _index = (time.monotonic(), json.loads(raw)["workflows"])
    return _index[1]


def _read(name: str, version: str) -> Workflow:
    bucket = settings().storage.media_bucket
    try:
        manifest = json.loads(storage.read(bucket, manifest_key(name, version)))
        graph_bytes = storage.read(bucket, graph_key(name, version))
    except NotFound as error:
        raise RegistryError(f"workflow {name} {version} is listed but not stored: re-seed the registry") from error
    actual = digest(graph_bytes)
    if actual != manifest["sha256"]:
        raise RegistryError(
            f"workflow {name} {version} does not match its recorded sha256 "
            f"({actual[:12]}… ≠ {manifest['sha256'][:12]}…): refusing to render it"
        )
    return Workflow(name, version, actual, manifest, json.loads(graph_bytes))


def _validated(name: str, spec: dict[str, Any], value: Any) -> Any:
    field = f"params.{name}"
    kind = spec["type"]
    if kind == "string":
        text = _string(field, spec, value)
        return model_file(field, text) if spec.get("input") in MODEL_FILE_INPUTS else text
    if kind in ("integer", "number"):
        return _number(field, spec, value, integer=kind == "integer")
    if kind == "image":
        return _image(field, value)
    if kind == "loras":
        return _loras(field, spec, value)
    raise RegistryError(f"the manifest gives {field} the unknown type {kind!r}")


def _string(field: str, spec: dict[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string")
    limit = spec.get("max_length", 4000)
    if len(value) > limit:
        raise BadRequest(f"{field} must be at most {limit} characters")
    if spec.get("required") and not value.strip():
        raise BadRequest(f"{field} must not be empty")
    if "pattern" in spec and not re.match(spec["pattern"], value):
        raise BadRequest(f"{field} {value!r} is not an acceptable value")
    return value


def _number(field: str, spec: dict[str, Any], value: Any, integer: bool) -> int | float:
    wanted = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise BadRequest(f"{field} must be {'an integer' if integer else 'a number'}")
    low, high = spec.get("min"), spec.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"{field} must be between {low} and {high}")
    step = spec.get("multiple_of")
    if step and value % step:
        raise BadRequest(f"{field} must be a multiple of {step}")
    return value


def _image(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(IMAGE_PREFIXES) or ".." in value.split("/"):
        raise BadRequest(f"{field} must be the key of an image in the media bucket under incoming/ or renders/")
    try:
        size = int(storage.head(settings().storage.media_bucket, value)["ContentLength"])
    except NotFound as error:
        raise BadRequest(f"{field}: there is no object {value} in the media bucket") from error
    if size > (limit := settings().uploads.max_bytes):
        raise BadRequest(
            f"{field}: {value} is {size} bytes, more than the {limit} a source image may be (MaxUploadBytes)"
        )
    return value


def _loras(field: str, spec: dict[str, Any], value: Any) -> list[dict[str, Any]]:
    limit = spec.get("max_items", 4)
    if not isinstance(value, list) or len(value) > limit:
        raise BadRequest(f"{field} must be a list of at most {limit} LoRAs")
    loras = []
    for i, item in enumerate(value):
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or set(item) - {"name", "strength"}:
            raise BadRequest(f"{field}[{i}] must be a name or {{name, strength}}")
        name, strength = item.get("name"), item.get("strength", 1.0)
        if not isinstance(name, str) or not LORA_NAME.match(name):
            raise BadRequest(f"{field}[{i}].name must be a LoRA file name, e.g. detail.safetensors")
        model_file(f"{field}[{i}].name", name)
        if isinstance(strength, bool) or not isinstance(strength, int | float) or not -4 <= strength <= 4:
            raise BadRequest(f"{field}[{i}].strength must be a number between -4 and 4")
        loras.append({"name": name, "strength": strength})
    return loras


def model_file(field: str, name: str) -> str:
    """A file name relative to a ComfyUI models folder: forward-slash subfolders are fine (SDXL/base.safetensors);
    absolute paths, drive letters, backslashes, `.`/`..` segments and control characters are refused."""
    segments = name.split("/")
    if (
        not name
        or "\\" in name
        or ":" in name
        or any(segment in ("", ".", "..") for segment in segments)
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
    ):
        raise BadRequest(f"{field} must be a file name inside the models folder, e.g. SDXL/model.safetensors")
    return name


def _insert_loras(graph: dict[str, Any], spec: dict[str, Any], loras: list[dict[str, Any]]) -> None:
    """Chain a LoraLoader per LoRA after the manifest's model and clip outputs, and rewire their consumers."""
    model, clip = list(spec["model"]), list(spec["clip"])
    first_free = max((int(n) for n in graph if n.isdigit()), default=0) + 1
    chain = []
    for offset, lora in enumerate(loras):
        node_id = str(first_free + offset)
        graph[node_id] = {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": lora["name"],
                "strength_model": lora["strength"],
                "strength_clip": lora["strength"],
                "model": model,
                "clip": clip,
            },
            "_meta": {"title": f"LoRA {offset + 1}"},
        }
        chain.append(node_id)
        model, clip = [node_id, 0], [node_id, 1]
    originals = {tuple(spec["model"]): model, tuple(spec["clip"]): clip}
    for node_id, node in graph.items():
        if node_id in chain:
            continue
        for input_name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and tuple(value) in originals:
                node["inputs"][input_name] = originals[tuple(value)]


def input_name(key: str) -> str:
    """The file name a source image gets in ComfyUI's input folder: derived from its key, so stable."""
    extension = key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else "png"
    return f"rendergate-{hashlib.sha256(key.encode()).hexdigest()[:20]}.{extension}"
