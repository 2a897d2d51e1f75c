"""The reconciler's pass over rendering runs, against the RunPod-protocol test server and the CPU ComfyUI:
a job that vanishes after it was seen is lost, but a prompt that finishes while it is checked is not; a
submit whose answer never came is given up after every limit has passed; runs checked recently wait their
turn unless they are followed; and runs followed at the same time each show their own progress."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.seed import ROOT

from devstack.comfyui import CpuComfyUI
from support.comfyui import Halfway
from support.runpod import Outcome, RunPodServer
from support.waiting import eventually

GRAPH = json.loads((ROOT / "txt2img/1.0.0/workflow.json").read_text())


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


def test_a_prompt_finishing_while_it_is_checked_is_settled_not_lost(comfyui: CpuComfyUI, halfway: Halfway) -> None:
    from rendergate.tables import Run

    job_id = comfy_prompt("r-race")
    halfway.wait_until_reached(job_id)
    halfway.finish_after_next_answer(job_id)
    assert reconcile() == {"r-race": "IN_PROGRESS"}  # it was running when asked; the old way called it lost
    assert reconcile() == {"r-race": "completed"}
    run = Run.get("r-race")
    assert (run.job_status, len(run.outputs or [])) == ("COMPLETED", 1)


def test_runs_followed_at_the_same_time_each_show_their_own_progress(comfyui: CpuComfyUI, halfway: Halfway) -> None:
    from rendergate.tables import Run

    blocker = comfy_prompt("r-blocker")  # holds the renderer while both followers connect
    halfway.wait_until_reached(blocker)
    jobs = {run_id: comfy_prompt(run_id) for run_id in ("r-first", "r-second")}
    done = threading.Event()
    followers = [
        threading.Thread(target=reconcile_for, args=(run_id, done), daemon=True, name=f"follow-{run_id}")
        for run_id in jobs
    ]
    for follower in followers:
        follower.start()
    eventually(lambda: _connected(comfyui, 2))
    halfway.release(blocker)
    for run_id, job_id in jobs.items():
        halfway.wait_until_reached(job_id)
        eventually(lambda run_id=run_id: _midway(Run.get(run_id).progress), timeout=15)
        halfway.release(job_id)
    for follower in followers:
        follower.join(30)
    done.set()
    assert [Run.get(run_id).job_status for run_id in jobs] == ["COMPLETED", "COMPLETED"]


def comfy_prompt(run_id: str) -> str:
    """Queue a small txt2img prompt for `run_id` on the ComfyUI backend and record the run as rendering."""
    from rendergate import backends

    graph = json.loads(json.dumps(GRAPH))
    graph["3"]["inputs"]["steps"] = 10
    graph["5"]["inputs"].update(width=64, height=64)
    job_id = backends.backend("comfyui").submit(_submission(run_id, graph))
    rendering_run(run_id, backend="comfyui", job_id=job_id, submitted_at=ago(60), checked_at=ago(30), task_token=None)
    return job_id


def reconcile_for(run_id: str, done: threading.Event) -> None:
    from rendergate.render import reconcile as reconciler

    reconciler([run_id], lambda: 0 if done.is_set() else 10**9)


def _connected(renderer: CpuComfyUI, count: int) -> None:
    assert len(renderer.connected) >= count


def _midway(progress: int | None) -> None:
    assert 0 < (progress or 0) < 100, progress


def _submission(run_id: str = "run-m", graph: dict[str, Any] | None = None) -> Any:
    from rendergate.backends import Submission, Upload

    graph = graph or {"6": {"inputs": {"text": "m"}}}
    uploads = [Upload("https://x/put", f"renders/{run_id}/1.png")]
    return Submission(run_id, graph, {}, uploads, None, "normal", 60, 60)
