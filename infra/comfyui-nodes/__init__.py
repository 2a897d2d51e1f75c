"""rendergate's ComfyUI nodes: upload a generated batch for review, and announce it with a signed webhook.

ComfyUI imports this folder from custom_nodes/ and registers the classes in NODE_CLASS_MAPPINGS."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
