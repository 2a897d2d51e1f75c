"""Render: turn a client's request into images in `renders/{run_id}/` through a GPU backend.

`request` answers `POST /runs` and `POST /runs/{id}/cancel`; `submit` is the Render task (it stores the
task token and submits the job); `webhook` and `reconcile` learn how the job ended; `completion` resumes
or fails the task exactly once; `outputs` puts the images where enrich reads them."""

from rendergate.render.reconcile import reconcile
from rendergate.render.request import cancel_run, estimate_run, request_run
from rendergate.render.submit import start
from rendergate.render.webhook import authenticate, receive

__all__ = ["authenticate", "cancel_run", "estimate_run", "receive", "reconcile", "request_run", "start"]
