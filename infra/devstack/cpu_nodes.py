"""The nodes the CPU renderer knows, validated as ComfyUI validates a prompt and executed on the CPU:
the same prompt, seed and size always paint the same picture (a gradient and shapes chosen by a hash
of everything that would change a real render), so tests and demos get stable, distinct images.

Validation answers as ComfyUI 0.8 does (`validate_prompt` in execution.py): `invalid_prompt` for a node
without a known class (0.8 predates the `missing_node_type` of later releases), per-node `node_errors`
(`required_input_missing`, `value_not_in_list`, `value_bigger_than_max`, …), and a prompt whose outputs
are only partly valid is accepted with the valid ones alone."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

CHECKPOINTS = ["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors", "corrupt.safetensors"]
LORAS = ["detail-tweaker.safetensors", "film-grain.safetensors"]
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "ddim"]
SCHEDULERS = ["normal", "karras", "simple"]
MAX_SIZE = 4096


class SafetensorError(Exception):
    """What loading a damaged checkpoint raises in ComfyUI."""


SafetensorError.__module__ = "safetensors_rust"


class Interrupted(Exception):
    """POST /interrupt stopped the running prompt."""


@dataclass(frozen=True)
class Spec:
    """A node class: its required inputs as ComfyUI's INPUT_TYPES, what it returns, whether it is an output."""

    required: dict[str, tuple[Any, ...]]
    returns: tuple[str, ...]
    output: bool = False


def _int(low: int, high: int) -> tuple[Any, ...]:
    return ("INT", {"min": low, "max": high})


def _float(low: float, high: float) -> tuple[Any, ...]:
    return ("FLOAT", {"min": low, "max": high})


NODES: dict[str, Spec] = {
    "CheckpointLoaderSimple": Spec({"ckpt_name": (CHECKPOINTS,)}, ("MODEL", "CLIP", "VAE")),
    "LoraLoader": Spec(
        {
            "model": ("MODEL",),
            "clip": ("CLIP",),
            "lora_name": (LORAS,),
            "strength_model": _float(-100, 100),
            "strength_clip": _float(-100, 100),
        },
        ("MODEL", "CLIP"),
    ),
    "CLIPTextEncode": Spec({"text": ("STRING", {}), "clip": ("CLIP",)}, ("CONDITIONING",)),
    "EmptyLatentImage": Spec(
        {"width": _int(16, MAX_SIZE), "height": _int(16, MAX_SIZE), "batch_size": _int(1, 64)}, ("LATENT",)
    ),
    "LoadImage": Spec({"image": ("STRING", {})}, ("IMAGE", "MASK")),
    "VAEEncode": Spec({"pixels": ("IMAGE",), "vae": ("VAE",)}, ("LATENT",)),
    "RepeatLatentBatch": Spec({"samples": ("LATENT",), "amount": _int(1, 64)}, ("LATENT",)),
    "KSampler": Spec(
        {
            "model": ("MODEL",),
            "seed": _int(0, 0xFFFFFFFFFFFFFFFF),
            "steps": _int(1, 10000),
            "cfg": _float(0.0, 100.0),
            "sampler_name": (SAMPLERS,),
            "scheduler": (SCHEDULERS,),
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "latent_image": ("LATENT",),
            "denoise": _float(0.0, 1.0),
        },
        ("LATENT",),
    ),
    "VAEDecode": Spec({"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",)),
    "SaveImage": Spec({"images": ("IMAGE",), "filename_prefix": ("STRING", {})}, (), output=True),
    "PreviewImage": Spec({"images": ("IMAGE",)}, (), output=True),
}


@dataclass
class Validation:
    ok: bool
    error: dict[str, Any] | None
    outputs: list[str]
    node_errors: dict[str, Any] = field(default_factory=dict)


def validate(prompt: Any, input_dir: Path) -> Validation:
    """ComfyUI's validate_prompt: node classes first, then each output's inputs, recursively."""
    if not isinstance(prompt, dict):
        return Validation(False, _error("invalid_prompt", "Prompt must be an object of nodes", ""), [])
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return Validation(False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"), [])
        if node["class_type"] not in NODES:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return Validation(False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"), [])
    outputs = [node_id for node_id, node in prompt.items() if NODES[node["class_type"]].output]
    if not outputs:
        return Validation(False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [])
    checked: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
    good: list[str] = []
    lines: list[str] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        if _inputs_valid(prompt, output, checked, input_dir):
            good.append(output)
            continue
        for node_id, (valid, reasons) in checked.items():
            if valid or not reasons:
                continue
            entry = node_errors.setdefault(
                node_id, {"errors": reasons, "dependent_outputs": [], "class_type": prompt[node_id]["class_type"]}
            )
            if output not in entry["dependent_outputs"]:
                entry["dependent_outputs"].append(output)
            lines += [f"{reason['message']}: {reason['details']}" for reason in reasons]
    if not good:
        details = "\n".join(dict.fromkeys(lines))
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
        return Validation(False, error, [], node_errors)
    return Validation(True, None, good, node_errors)


def _inputs_valid(
    prompt: dict[str, Any], node_id: str, checked: dict[str, tuple[bool, list[dict[str, Any]]]], input_dir: Path
) -> bool:
    if node_id in checked:
        return checked[node_id][0]
    node = prompt[node_id]
    spec = NODES[node["class_type"]]
    inputs = node.get("inputs") or {}
    reasons: list[dict[str, Any]] = []
    valid = True
    for name, config in spec.required.items():
        if name not in inputs:
            reasons.append(_reason("required_input_missing", "Required input is missing", name, input_name=name))
            continue
        value = inputs[name]
        if isinstance(value, list):
            valid = _link_valid(prompt, name, config, value, reasons, checked, input_dir) and valid
        else:
            _value_check(node["class_type"], name, config, value, reasons, input_dir)
    ok = valid and not reasons
    checked[node_id] = (ok, reasons)
    return ok


def _link_valid(
    prompt: dict[str, Any],
    name: str,
    config: tuple[Any, ...],
    link: list[Any],
    reasons: list[dict[str, Any]],
    checked: dict[str, tuple[bool, list[dict[str, Any]]]],
    input_dir: Path,
) -> bool:
    bad = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
    if len(link) != 2 or str(link[0]) not in prompt or not isinstance(link[1], int):
        reasons.append(_reason("bad_linked_input", bad, name, input_name=name, received_value=link))
        return False
    source = str(link[0])
    returns = NODES[prompt[source]["class_type"]].returns
    if not 0 <= link[1] < len(returns) or returns[link[1]] != config[0]:
        received = returns[link[1]] if 0 <= link[1] < len(returns) else None
        details = f"{name}, received_type({received}) mismatch input_type({config[0]})"
        reasons.append(_reason("return_type_mismatch", "Return type mismatch between linked nodes", details))
        return False
    return _inputs_valid(prompt, source, checked, input_dir)


def _value_check(
    class_type: str, name: str, config: tuple[Any, ...], value: Any, reasons: list[dict[str, Any]], input_dir: Path
) -> None:
    kind = config[0]
    options = config[1] if len(config) > 1 else {}
    if isinstance(kind, list):
        if value not in kind:
            details = f"{name}: '{value}' not in {kind}"
            reasons.append(
                _reason("value_not_in_list", "Value not in list", details, input_name=name, received_value=value)
            )
        return
    try:
        converted = {"INT": int, "FLOAT": float, "STRING": str}[kind](value)
    except (KeyError, TypeError, ValueError) as error:
        message = f"Failed to convert an input value to a {kind} value"
        reasons.append(_reason("invalid_input_type", message, f"{name}, {value}, {error}", input_name=name))
        return
    if "min" in options and converted < options["min"]:
        message = f"Value {converted} smaller than min of {options['min']}"
        reasons.append(_reason("value_smaller_than_min", message, name, input_name=name, received_value=value))
    elif "max" in options and converted > options["max"]:
        message = f"Value {converted} bigger than max of {options['max']}"
        reasons.append(_reason("value_bigger_than_max", message, name, input_name=name, received_value=value))
    elif class_type == "LoadImage" and not _safe_file(input_dir, str(value)):
        details = f"image - Invalid image file: {value}"
        reasons.append(_reason("custom_validation_failed", "Custom validation failed for node", details))


def _safe_file(folder: Path, name: str) -> bool:
    path = (folder / name).resolve()
    return path.is_relative_to(folder.resolve()) and path.is_file()


def _error(kind: str, message: str, details: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


def _reason(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return _error(kind, message, details, extra)


@dataclass
class Run:
    """One prompt being executed: where images go and how progress and cancellation reach it."""

    prompt_id: str
    prompt: dict[str, Any]
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    step_seconds: float
    send: Callable[[str, dict[str, Any]], None]
    interrupted: Callable[[], bool]
    next_filename: Callable[[str], str]
    stepped: Callable[[int, int], None] = lambda step, steps: None  # after each sampling step
    executed: list[str] = field(default_factory=list)
    outputs_ui: dict[str, dict[str, Any]] = field(default_factory=dict)


def execute(run: Run, outputs: list[str]) -> None:
    """Evaluate every output node (and what it needs), reporting `executing`, `progress` and `executed`."""
    values: dict[str, tuple[Any, ...]] = {}
    for output in outputs:
        _evaluate(run, output, values)


class NodeFailure(Exception):
    """A node raised while executing: the `execution_error` ComfyUI would send."""

    def __init__(self, node_id: str, node_type: str, error: Exception) -> None:
        super().__init__(str(error))
        self.node_id, self.node_type, self.error = node_id, node_type, error


def _evaluate(run: Run, node_id: str, values: dict[str, tuple[Any, ...]]) -> tuple[Any, ...]:
    if node_id in values:
        return values[node_id]
    node = run.prompt[node_id]
    class_type = node["class_type"]
    arguments = {}
    for name, value in node["inputs"].items():
        if isinstance(value, list) and len(value) == 2 and str(value[0]) in run.prompt:
            arguments[name] = _evaluate(run, str(value[0]), values)[value[1]]
        else:
            arguments[name] = value
    if run.interrupted():
        raise Interrupted()
    run.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": run.prompt_id})
    try:
        result = EXECUTORS[class_type](run, node_id, arguments)
    except Interrupted:
        raise
    except Exception as error:
        raise NodeFailure(node_id, class_type, error) from error
    run.executed.append(node_id)
    values[node_id] = result
    return result


def _checkpoint(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    if a["ckpt_name"] == "corrupt.safetensors":
        raise SafetensorError("Error while deserializing header: HeaderTooLarge")
    model = {"ckpt": a["ckpt_name"], "loras": []}
    return (model, model, {"ckpt": a["ckpt_name"]})


def _lora(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    lora = [a["lora_name"], float(a["strength_model"])]
    return ({**a["model"], "loras": [*a["model"]["loras"], lora]}, {**a["clip"], "loras": [*a["clip"]["loras"], lora]})


def _encode(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    return ({"text": str(a["text"]), "clip": a["clip"]},)


def _empty_latent(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    return ({"width": int(a["width"]), "height": int(a["height"]), "sources": [None] * int(a["batch_size"])},)


def _load_image(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    image = Image.open(run.input_dir / str(a["image"]))
    image.load()
    return ([image.convert("RGB")], None)


def _vae_encode(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    images = a["pixels"]
    width, height = images[0].size
    return ({"width": width - width % 8, "height": height - height % 8, "sources": list(images)},)


def _repeat(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    latent = a["samples"]
    return ({**latent, "sources": latent["sources"] * int(a["amount"])},)


def _sample(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    steps = int(a["steps"])
    for step in range(steps):
        if run.interrupted():
            raise Interrupted()
        if run.step_seconds:
            import time

            time.sleep(run.step_seconds)
        run.send("progress", {"value": step + 1, "max": steps, "prompt_id": run.prompt_id, "node": node_id})
        run.stepped(step + 1, steps)
    latent = a["latent_image"]
    recipe = {
        "model": a["model"],
        "positive": a["positive"]["text"],
        "negative": a["negative"]["text"],
        "seed": int(a["seed"]),
        "steps": steps,
        "cfg": float(a["cfg"]),
        "sampler": a["sampler_name"],
        "scheduler": a["scheduler"],
        "denoise": float(a["denoise"]),
        "size": [latent["width"], latent["height"]],
    }
    images = [
        paint(latent["width"], latent["height"], {**recipe, "index": i}, source, float(a["denoise"]))
        for i, source in enumerate(latent["sources"])
    ]
    return ({**latent, "images": images},)


def _decode(run: Run, node_id: str, a: dict[str, Any]) -> tuple[Any, ...]:
    latent = a["samples"]
    images = latent.get("images") or [
        paint(latent["width"], latent["height"], {"unsampled": i}, s, 1.0) for i, s in enumerate(latent["sources"])
    ]
    return (images,)


def _save(run: Run, node_id: str, a: dict[str, Any], folder_type: str = "output") -> tuple[Any, ...]:
    folder = run.output_dir if folder_type == "output" else run.temp_dir
    prefix = str(a.get("filename_prefix", "ComfyUI")) if folder_type == "output" else "ComfyUI_temp"
    saved = []
    for image in a["images"]:
        filename = run.next_filename(prefix)
        info = PngInfo()
        info.add_text("prompt", json.dumps(run.prompt, sort_keys=True))
        image.save(folder / filename, "PNG", pnginfo=info)
        saved.append({"filename": filename, "subfolder": "", "type": folder_type})
    run.outputs_ui[node_id] = {"images": saved}
    run.send(
        "executed", {"node": node_id, "display_node": node_id, "output": {"images": saved}, "prompt_id": run.prompt_id}
    )
    return ()


EXECUTORS: dict[str, Callable[[Run, str, dict[str, Any]], tuple[Any, ...]]] = {
    "CheckpointLoaderSimple": _checkpoint,
    "LoraLoader": _lora,
    "CLIPTextEncode": _encode,
    "EmptyLatentImage": _empty_latent,
    "LoadImage": _load_image,
    "VAEEncode": _vae_encode,
    "RepeatLatentBatch": _repeat,
    "KSampler": _sample,
    "VAEDecode": _decode,
    "SaveImage": _save,
    "PreviewImage": lambda run, node_id, a: _save(run, node_id, a, folder_type="temp"),
}


def paint(width: int, height: int, recipe: dict[str, Any], source: Image.Image | None, denoise: float) -> Image.Image:
    """A deterministic picture for `recipe`: a smooth four-colour gradient and shapes placed by its hash."""
    rng = random.Random(hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).digest())
    corners = Image.new("RGB", (2, 2))
    corners.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(4)])
    image = corners.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randint(width // 10, width // 2), y0 + rng.randint(height // 10, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    if source is not None:
        image = Image.blend(source.convert("RGB").resize((width, height)), image, max(0.0, min(1.0, denoise)))
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def object_info() -> dict[str, Any]:
    """`GET /object_info`: each node class's inputs and outputs, as ComfyUI describes them."""
    return {
        name: {
            "input": {"required": {k: list(v) for k, v in spec.required.items()}},
            "input_order": {"required": list(spec.required)},
            "output": list(spec.returns),
            "output_is_list": [False] * len(spec.returns),
            "output_name": list(spec.returns),
            "name": name,
            "display_name": name,
            "description": "",
            "python_module": "nodes",
            "category": "rendergate/cpu",
            "output_node": spec.output,
        }
        for name, spec in NODES.items()
    }
