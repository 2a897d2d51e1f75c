"""The registry's workflows as committed: ComfyUI API-format graphs with their manifests."""
