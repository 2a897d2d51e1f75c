"""Settings: groups read from the environment, required ones checked at cold start, one reset for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rendergate import config, events
from rendergate.config import Settings
from rendergate.errors import SettingsInvalid
from support.aws import ROOT, UNIT_ENV


def without(*names: str, **changes: str) -> dict[str, str]:
    """The unit tests' environment without `names`, with `changes` (RENDERGATE_ names without the prefix)."""
    env = {name: value for name, value in UNIT_ENV.items() if name not in names}
    return env | {f"RENDERGATE_{name}": value for name, value in changes.items()}


def test_every_missing_required_setting_is_named_in_one_error() -> None:
    env = without(
        "RENDERGATE_MEDIA_BUCKET",
        "RENDERGATE_STATE_MACHINE_ARN",
        "RENDERGATE_LINK_SIGNING_KEY",
        "RENDERGATE_DELIVERY_QUEUE_URL",
        LIBRARY_BUCKET="  ",  # blank is as good as unset
    )
    with pytest.raises(SettingsInvalid) as raised:
        Settings.from_env(env)
    assert raised.value.missing == (
        "RENDERGATE_MEDIA_BUCKET",
        "RENDERGATE_LIBRARY_BUCKET",
        "RENDERGATE_STATE_MACHINE_ARN",
        "RENDERGATE_DELIVERY_QUEUE_URL",
        "RENDERGATE_LINK_SIGNING_KEY (or RENDERGATE_LINK_SIGNING_KEY_PARAM)",
    )
    for name in raised.value.missing:
        assert name in str(raised.value)


def test_a_secret_is_there_as_a_value_or_as_the_name_of_its_parameter() -> None:
    current = Settings.from_env(without("RENDERGATE_API_KEY", API_KEY_HASH_PARAM="/rendergate/dev/api-key-hash"))
    assert current.secrets.api_key == config.Secret(
        "", "/rendergate/dev/api-key-hash", "RENDERGATE_API_KEY (or RENDERGATE_API_KEY_HASH_PARAM)"
    )
    with pytest.raises(SettingsInvalid, match=r"RENDERGATE_API_KEY \(or RENDERGATE_API_KEY_HASH_PARAM\)"):
        Settings.from_env(without("RENDERGATE_API_KEY"))


def test_the_runpod_key_is_required_only_of_runpod_renders() -> None:
    with_comfyui = without("RENDERGATE_RUNPOD_API_KEY")
    assert Settings.from_env(with_comfyui).secrets.runpod_api_key.value == ""
    with pytest.raises(SettingsInvalid) as raised:
        Settings.from_env(with_comfyui | {"RENDERGATE_RENDER_BACKEND": "runpod"})
    assert raised.value.missing == ("RENDERGATE_RUNPOD_API_KEY (or RENDERGATE_RUNPOD_API_KEY_PARAM)",)


def test_values_that_cannot_be_read_are_named_with_the_missing_ones() -> None:
    env = without("RENDERGATE_MEDIA_BUCKET", MAX_PIXELS="40M", AUTO_APPROVE="maybe", SELECTION_LIMITS="poster=3,fanart")
    with pytest.raises(SettingsInvalid) as raised:
        Settings.from_env(env)
    assert raised.value.missing == ("RENDERGATE_MEDIA_BUCKET",)
    assert raised.value.invalid == (
        "RENDERGATE_AUTO_APPROVE='maybe' is not true or false",
        "RENDERGATE_MAX_PIXELS='40M' is not a whole number",
        "RENDERGATE_SELECTION_LIMITS: 'fanart' is not name=count",
    )


def test_groups_read_lists_limits_flags_and_clamped_numbers() -> None:
    current = Settings.from_env(
        without(
            AUTO_APPROVE=" Yes ",
            AUTO_APPROVE_NAMESPACES="pmoves, ,studio",
            SELECTION_LIMITS="poster=3, fanart = 5",
            UPLOAD_URL_EXPIRY_SECONDS="3600",  # a presigned PUT lives 15 minutes at most
            ENRICH_CONCURRENCY="0",
            DELIVERY_MAX_ATTEMPTS="-2",
            COMFYUI_URL="http://comfy.internal:8188/",
            RENDER_BACKEND=" RunPod ",
        )
    )
    assert current.review.auto_approve is True
    assert current.review.auto_approve_namespaces == ("pmoves", "studio")
    assert current.enrich.selection_limits == {"poster": 3, "fanart": 5}
    assert current.uploads.url_expiry_seconds == 900
    assert (current.enrich.concurrency, current.delivery.max_attempts) == (1, 1)
    assert current.render.comfyui_url == "http://comfy.internal:8188"
    assert current.render.backend == "runpod"
    assert current.tables.runs == "RunsTable" and current.tables.deliveries == "DeliveriesTable"
    assert current.uploads.max_bytes == 1048576 and current.pipeline.event_bus == "rendergate-events"


def test_unset_optional_settings_take_their_defaults() -> None:
    current = Settings.from_env(without("RENDERGATE_EVENT_BUS", "RENDERGATE_RUNS_TABLE", "RENDERGATE_MAX_UPLOAD_BYTES"))
    assert (current.pipeline.event_bus, current.tables.runs) == ("default", "rendergate-runs")
    assert current.uploads.max_bytes == 50 * 1024 * 1024
    assert current.review.auto_approve is False and current.secrets.targets.value == ""


def test_a_function_without_its_required_settings_does_not_start() -> None:
    env = {name: value for name, value in os.environ.items() if name != "RENDERGATE_INGEST_QUEUE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in ("layers/common/python", "functions/ingest"))
    started = subprocess.run(
        [sys.executable, "-c", "import app"], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert started.returncode != 0
    assert "SettingsInvalid: rendergate settings: missing RENDERGATE_INGEST_QUEUE_URL" in started.stderr


def test_reset_reads_the_settings_again_and_forgets_what_was_built_on_them(
    settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = events._events()
    monkeypatch.setenv("RENDERGATE_COMFYUI_URL", "http://other:8188")
    assert config.settings().render.comfyui_url == "http://127.0.0.1:9"  # read once, at cold start
    config.reset()
    assert config.settings().render.comfyui_url == "http://other:8188"
    assert events._events() is not client
    settings(COMFYUI_URL="http://third:8188")  # the fixture resets through the same function
    assert config.settings().render.comfyui_url == "http://third:8188"


def test_the_configuration_page_lists_every_variable() -> None:
    page = Path(ROOT / "docs" / "configuration.md").read_text()
    assert [name for name in config.variables() if f"`{name}`" not in page] == []
