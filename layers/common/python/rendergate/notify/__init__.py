"""Notify: tell people and systems what happened. Events on the bus become deliveries to the targets that
want them (Standard Webhooks, Discord, Jellyfin, Kodi: `rendergate.targets`), recorded and retried until
they are delivered, failed or disabled (`deliveries`); review events are also addressed to the namespace's
reviewers, each through their own target; review links also go to a local outbox
(`outbox`)."""

from rendergate.notify.deliveries import (
    handle_message,
    list_deliveries,
    of_events,
    resend_overdue,
    retry,
    send_personal,
)
from rendergate.notify.outbox import review_requested

__all__ = [
    "handle_message",
    "list_deliveries",
    "of_events",
    "resend_overdue",
    "retry",
    "review_requested",
    "send_personal",
]
