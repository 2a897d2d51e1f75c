"""The reconciler's pass over rendering runs, against the RunPod-protocol test server: a job that vanishes
after it was seen is lost, a submit whose answer never came is given up after every limit has passed,
and runs checked recently wait their turn unless they are followed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from support.runpod import Outcome, RunPodServer


def rendering_run(run_id: str, **fields: Any) -> Any:
    from rendergate.tables import Run

    run = Run(run_id, status="rendering", source="render", namespace="library", backend="runpod", task_token="t")
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    return run


def reconcile(*follow: str) -> dict[str, str]:
    from rendergate.render import reconcile as reconciler

    return reconciler(list(follow), lambda: 0)


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_a_job_that_vanishes_after_it_was_seen_is_lost(runpod: RunPodServer) -> None:
    from rendergate.backends.runpod import RunPod
    from rendergate.tables import Run

    runpod.script("m", Outcome(queue_seconds=30))
    job_id = RunPod(runpod.url, "e", lambda: runpod.api_key).submit(_submission())
    rendering_run("r1", job_id=job_id, submitted_at=ago(1))
    assert reconcile() == {"r1": "IN_QUEUE"}
    runpod.vanished.add(job_id)
    assert reconcile() == {"r1": "failed"}
    assert "vanished" in (Run.get("r1").backend_error or "")


def test_a_job_not_yet_visible_gets_a_grace_period(runpod: RunPodServer) -> None:
    rendering_run("r2", job_id="not-there-yet", submitted_at=ago(1))
    assert reconcile() == {"r2": "waiting"}


def test_an_unconfirmed_submit_is_given_up_only_after_every_limit(runpod: RunPodServer) -> None:
    rendering_run("fresh", submit_state="uncertain", submitted_at=ago(60))
    rendering_run("stale", submit_state="uncertain", submitted_at=ago(1800 + 600 + 301))
    assert reconcile() == {"fresh": "waiting", "stale": "lost"}


def test_runs_checked_recently_wait_unless_followed(runpod: RunPodServer, settings: Callable[..., None]) -> None:
    settings(RECONCILE_POLL_SECONDS="60")
    rendering_run("recent", job_id="j", submitted_at=ago(100), checked_at=ago(5))
    assert reconcile() == {}
    assert reconcile("recent") == {"recent": "failed"}  # followed: checked now, and the job is unknown


def _submission() -> Any:
    from rendergate.backends import Submission, Upload

    uploads = [Upload("https://x/put", "renders/r/1.png")]
    return Submission("run-m", {"6": {"inputs": {"text": "m"}}}, {}, uploads, None, "normal", 60, 60)
