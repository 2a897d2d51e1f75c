"""Where a run's images land (`renders/{run_id}/…` in the media bucket) and how each backend's outputs
get there: our worker uploads through presigned PUTs; everything else is fetched and written here."""

from __future__ import annotations

from rendergate import formats, storage
from rendergate.backends import Backend, JobState, Upload
from rendergate.config import settings
from rendergate.errors import RenderFailed, RenderLost
from rendergate.observability import logger
from rendergate.tables import Run

PREFIX = "renders/"


def output_keys(run: Run) -> list[str]:
    """One key per image the run asks for; derived from the run, so every attempt writes the same keys."""
    name = run.workflow_name or "render"
    return [f"{PREFIX}{run.run_id}/{name}-{run.seed}-{i + 1:02d}.png" for i in range(int(run.image_count or 1))]


def uploads(run: Run, expires_in: int) -> list[Upload]:
    """Presigned PUTs for the run's keys: the GPU worker uploads straight to the bucket, no size cap."""
    bucket = settings().storage.media_bucket
    return [Upload(storage.presign_upload(bucket, key, expires_in), key) for key in output_keys(run)]


def collect(run: Run, state: JobState, backend: Backend) -> list[dict[str, str]]:
    """The run's images in the media bucket, as `{bucket, key}` for enrich. RenderLost when there are none."""
    bucket = settings().storage.media_bucket
    keys = output_keys(run)
    objects = []
    for output in state.outputs:
        if output.index >= len(keys):
            logger.warning("the backend returned more images than asked for", extra={"run_id": run.run_id})
            continue
        key = keys[output.index]
        if output.kind == "uploaded":
            if not storage.exists(bucket, key):
                raise RenderLost(f"image {output.index + 1} was reported uploaded, but s3://{bucket}/{key} is missing")
        else:
            data = output.data if output.kind == "inline" else backend.fetch(output)
            if not data:
                raise RenderFailed(f"image {output.index + 1} came back empty or not as valid base64")
            storage.write(bucket, key, data, formats.content_type(data))
        objects.append({"bucket": bucket, "key": key})
    if not objects:
        raise RenderLost(f"job {state.job_id} completed without output: no image came back")
    return objects
