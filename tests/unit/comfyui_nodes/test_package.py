"""The node package installs as ComfyUI-Manager expects and loads as ComfyUI loads custom nodes: the folder
imported by path (never on sys.path), the mappings exported, every node shaped as ComfyUI calls it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from types import ModuleType

from devstack.custom_nodes import RENDERGATE_NODES

COMFY_TYPES = {"IMAGE", "STRING", "INT", "FLOAT", "BOOLEAN"}
HIDDEN = {"PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID"}
ALLOWED_IMPORTS = {"numpy", "PIL", "requests"}  # ComfyUI ships the first two; requirements.txt adds the third


def test_the_package_exports_both_nodes_with_display_names(nodes: ModuleType) -> None:
    assert set(nodes.NODE_CLASS_MAPPINGS) == {"RendergateUploadImage", "RendergateCompletionWebhook"}
    assert nodes.NODE_DISPLAY_NAME_MAPPINGS == {
        "RendergateUploadImage": "rendergate • Upload Image",
        "RendergateCompletionWebhook": "rendergate • Completion Webhook",
    }


def test_every_node_is_shaped_as_comfyui_calls_it(nodes: ModuleType) -> None:
    for node in nodes.NODE_CLASS_MAPPINGS.values():
        inputs = node.INPUT_TYPES()
        assert set(inputs) <= {"required", "optional", "hidden"} and inputs["required"]
        for group in ("required", "optional"):
            for name, spec in inputs.get(group, {}).items():
                assert spec[0] in COMFY_TYPES, (node, name)
        assert set(inputs.get("hidden", {}).values()) <= HIDDEN
        assert isinstance(node.RETURN_TYPES, tuple) and len(node.RETURN_NAMES) == len(node.RETURN_TYPES)
        assert callable(getattr(node(), node.FUNCTION))
        assert node.CATEGORY == "rendergate"
        assert node.OUTPUT_NODE is True


def test_no_secret_is_a_node_input(nodes: ModuleType) -> None:
    """ComfyUI saves every input into the workflow JSON and each saved image: inputs name variables instead."""
    for node in nodes.NODE_CLASS_MAPPINGS.values():
        inputs = node.INPUT_TYPES()
        names = {name for group in ("required", "optional") for name in inputs.get(group, {})}
        assert not names & {"api_key", "secret", "token", "password"}


def test_the_folder_loads_without_being_on_sys_path() -> None:
    """In a fresh interpreter whose path lacks the folder, as ComfyUI runs it: relative imports must resolve."""
    script = (
        "import sys; from devstack.custom_nodes import load; "
        "assert not any(p.endswith('comfyui-nodes') for p in sys.path); print(sorted(load().NODE_CLASS_MAPPINGS))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
        env={"PYTHONPATH": str(RENDERGATE_NODES.parents[0])},
    )
    assert result.returncode == 0, result.stderr
    assert "RendergateUploadImage" in result.stdout


def test_pyproject_carries_the_registrys_section() -> None:
    project = tomllib.loads((RENDERGATE_NODES / "pyproject.toml").read_text())
    name = project["project"]["name"]
    assert re.match(r"^[A-Za-z][A-Za-z0-9_.-]{0,98}$", name) and not re.search(r"[-_.]{2}", name)
    assert "comfyui" not in name.lower()
    assert re.match(r"^\d+\.\d+\.\d+$", project["project"]["version"])
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]


def test_nothing_is_required_beyond_what_comfyui_has_and_requests() -> None:
    lines = (RENDERGATE_NODES / "requirements.txt").read_text().splitlines()
    assert [line.split(">")[0] for line in lines if line.strip() and not line.startswith("#")] == ["requests"]
    for path in RENDERGATE_NODES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= ALLOWED_IMPORTS | sys.stdlib_module_names, (path.name, roots)
