"""`make demo` against a running stack: upload (or render), review link, decision, published location."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.devstack import DevStack, devstack_command


def demo(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m devstack.demo` as `make demo` runs it, in a clean environment."""
    return devstack_command("demo", state_dir, *args)


def test_demo_uploads_approves_and_prints_where_it_was_published(devstack: DevStack) -> None:
    result = demo(Path(devstack.state["outbox"]).parent, "--approve")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("review link: http") for line in lines)
    [published] = [line for line in lines if line.startswith("published: ")]
    bucket, _, key = published.removeprefix("published: s3://").partition("/")
    assert bucket == devstack.state["library_bucket"]
    assert key == "library/demo-render/demo.png"
    devstack.aws("s3").head_object(Bucket=bucket, Key=key)


def test_the_render_demo_renders_approves_and_publishes(devstack: DevStack) -> None:
    result = demo(Path(devstack.state["outbox"]).parent, "--render", "--approve", "--title", "Demo lighthouse")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("render run ") and "txt2img 1.0.0" in lines[0]
    assert lines[1].startswith("seed ")
    assert len([line for line in lines if line.startswith("asset renders/")]) == 2
    published = [line.removeprefix("published: s3://") for line in lines if line.startswith("published: ")]
    assert len(published) == 2
    for location in published:
        bucket, _, key = location.partition("/")
        assert key.startswith("library/demo-lighthouse/txt2img-")
        devstack.aws("s3").head_object(Bucket=bucket, Key=key)


def test_demo_explains_when_no_stack_runs(tmp_path: Path) -> None:
    result = demo(tmp_path)
    assert result.returncode == 1
    assert "make run" in result.stderr


def test_the_entity_demo_publishes_a_movie_and_prints_its_folder_and_nfo(devstack: DevStack) -> None:
    result = demo(Path(devstack.state["outbox"]).parent, "--entity", "--approve")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("entity ") and "The Matrix (1999)" in lines[0]
    assert any(line.strip().startswith("The Matrix (1999)-poster.jpg") for line in lines)
    assert any(line.strip().startswith(".actors/Keanu_Reeves.jpg") for line in lines)
    assert "<lockdata>true</lockdata>" in result.stdout


def test_the_comfy_demo_runs_both_nodes_and_publishes(devstack: DevStack) -> None:
    result = demo(Path(devstack.state["outbox"]).parent, "--comfy", "--approve", "--title", "Demo gradients")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("uploaded run ") and "rendergate • Upload Image" in lines[0]
    assert lines[1].endswith("Completion Webhook: enriching")
    assert any(line.startswith("review link: http") for line in lines)
    published = [line.removeprefix("published: s3://") for line in lines if line.startswith("published: ")]
    assert sorted(p.partition("/")[2] for p in published) == [
        "library/demo-gradients/demo_00000.png",
        "library/demo-gradients/demo_00001.png",
    ]
