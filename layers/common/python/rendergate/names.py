"""How the names the API takes are written. Plain patterns, importable anywhere (the local stack checks a
targets document with them before any table is configured)."""

from __future__ import annotations

import re

NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")  # a library namespace, the first folder of its keys
TARGET = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # a delivery target's name
EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # an event id as the bus carries it (no '/', no spaces)
OWNER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")  # an owner of API keys and credits: a user or a service
