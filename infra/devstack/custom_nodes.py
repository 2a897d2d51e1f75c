"""Load a ComfyUI custom-node folder the way ComfyUI does (nodes.py `load_custom_node`): its `__init__.py` is
executed under a module name made from the folder's path ('.' → '_x_'), registered in sys.modules before it
runs so its relative imports resolve, and never with the folder on sys.path. No ComfyUI is needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
RENDERGATE_NODES = ROOT / "infra" / "comfyui-nodes"


def load(folder: Path = RENDERGATE_NODES) -> ModuleType:
    """The custom-node package in `folder`, imported as ComfyUI imports it; it must export the mappings."""
    module_path = str(folder)
    sys_module_name = module_path.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(sys_module_name, str(folder / "__init__.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"{folder} is not a custom-node folder (no __init__.py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[sys_module_name] = module
    spec.loader.exec_module(module)
    if getattr(module, "NODE_CLASS_MAPPINGS", None) is None:
        raise ImportError(f"{folder} exports no NODE_CLASS_MAPPINGS; ComfyUI would skip it")
    return module
