#!/usr/bin/env bash
# ComfyUI on loopback in the background, then the RunPod handler in the foreground.
set -euo pipefail
cd /comfyui
python -u main.py --listen 127.0.0.1 --port 8188 --disable-auto-launch --disable-metadata &
cd /worker
exec python -u handler.py
