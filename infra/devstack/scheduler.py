"""Scheduled functions: moto does not fire EventBridge rules, so this invokes each function of the
template's Schedule events on its rate, with the event EventBridge sends. Rates come from the deployed
rules; cron expressions are not run locally (invoke the function by hand instead). Nor does moto run
EventBridge Scheduler's one-time schedules (a review's reminders): each second, those whose `at(...)` time
has come invoke their target with their input and, as `ActionAfterCompletion: DELETE` asks, are deleted."""

from __future__ import annotations

import calendar
import json
import re
import threading
import time
import traceback
import uuid
from typing import Any

from devstack.cloud import ACCOUNT, REGION, Schedule, Stack, client
from devstack.lambdas import FunctionError, LocalLambda

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def period_seconds(expression: str) -> int | None:
    """Seconds between invocations for `rate(N unit)`; None for anything else (cron)."""
    match = RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(schedule: Schedule) -> dict[str, Any]:
    """What EventBridge delivers for a schedule (or the target's own Input, when it has one)."""
    if schedule.payload is not None:
        return dict(schedule.payload)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [schedule.rule_arn],
        "detail": {},
    }


class Scheduler:
    def __init__(self, stack: Stack, local: LocalLambda) -> None:
        self.stack = stack
        self.local = local
        self._stop = threading.Event()

    def start(self) -> None:
        for schedule in self.stack.schedules:
            period = period_seconds(schedule.expression)
            if period is None:
                print(f"devstack: not scheduling {schedule.function_logical_id} ({schedule.expression})", flush=True)
                continue
            threading.Thread(target=self._every, args=(schedule, period), daemon=True).start()
        threading.Thread(target=self._one_time, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _every(self, schedule: Schedule, period: int) -> None:
        # like EventBridge, the first invocation comes one period after the rule exists; runs may overlap
        while not self._stop.wait(period):
            threading.Thread(target=self._fire, args=(schedule,), daemon=True).start()

    def _one_time(self) -> None:
        scheduler = client("scheduler", self.stack.endpoint_url)
        while not self._stop.wait(1):
            try:
                for due in self.due_one_time(scheduler, time.time()):
                    threading.Thread(target=self._run_one_time, args=(due,), daemon=True).start()
            except Exception:  # the next pass tries again
                traceback.print_exc()

    @staticmethod
    def due_one_time(scheduler: Any, now: float) -> list[dict[str, Any]]:
        """The one-time schedules whose time has come, each deleted as it is taken (so it runs once)."""
        due = []
        for summary in scheduler.list_schedules()["Schedules"]:
            detail = scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
            found = AT.match(detail["ScheduleExpression"])
            when = found and calendar.timegm(time.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S"))
            if not when or when > now:
                continue
            if detail.get("ActionAfterCompletion") == "DELETE":
                scheduler.delete_schedule(Name=detail["Name"], GroupName=detail.get("GroupName", "default"))
            due.append(detail)
        return due

    def _run_one_time(self, detail: dict[str, Any]) -> None:
        function = self.stack.function_by_name(detail["Target"]["Arn"])
        if function is None:
            print(f"devstack: schedule {detail['Name']} targets nothing of this stack", flush=True)
            return
        try:
            self.local.invoke(function, json.loads(detail["Target"].get("Input") or "{}"))
        except FunctionError:
            traceback.print_exc()

    def _fire(self, schedule: Schedule) -> None:
        function = self.stack.functions[schedule.function_logical_id]
        try:
            self.local.invoke(function, scheduled_event(schedule))
        except FunctionError:
            traceback.print_exc()
