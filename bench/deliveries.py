"""Deliveries per second through the local stack: 200 events put on the bus, each delivered to one
Standard Webhooks target (a receiver on loopback that verifies every signature with the reference library),
against the same 200 signed POSTs sent to the same receiver from one process, one after another.

    python bench/deliveries.py [--events 200]

The stack is started for the run (about 30 s, not counted). Last line: plain POSTs/deliveries, the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/common/python"), str(ROOT / "infra"), str(ROOT / "tests")]

import requests  # noqa: E402

from support.deliveries import SECRET  # noqa: E402
from support.devstack import running_devstack  # noqa: E402
from support.receivers import WebhookReceiver  # noqa: E402


def events(count: int) -> list[dict[str, object]]:
    from rendergate.events import envelope

    data = {"namespace": "bench", "library_key": "bench/item/x.png", "title": "Bench"}
    return [envelope("content.published.v1", f"asset-{n}", data, f"run-{n}", str(uuid.uuid4())) for n in range(count)]


def through_the_stack(receiver: WebhookReceiver, count: int, state_dir: Path) -> float:
    """Seconds from the first event put on the bus to the last delivery verified by the receiver."""
    target = receiver.target("bench", events=["content.published.v1"])
    with running_devstack(state_dir, env={"RENDERGATE_TARGETS": json.dumps([target])}) as stack:
        bus = stack.aws("events")
        entries = [
            {
                "EventBusName": stack.state["event_bus"],
                "Source": "rendergate",
                "DetailType": e["type"],
                "Detail": json.dumps(e),
            }
            for e in events(count)
        ]
        start = time.perf_counter()
        for first in range(0, len(entries), 10):
            assert bus.put_events(Entries=entries[first : first + 10])["FailedEntryCount"] == 0
        while len(receiver.verified) < count:
            time.sleep(0.01)
        return time.perf_counter() - start


def plain_posts(receiver: WebhookReceiver, count: int) -> float:
    """Seconds to send the same signed requests from one process, one after another."""
    from rendergate.targets import parse

    [target] = parse(json.dumps([receiver.target("bench")]))
    session = requests.Session()
    start = time.perf_counter()
    for event in events(count):
        outgoing = target.adapter.request(target, event)
        assert session.post(outgoing.url, data=outgoing.body, headers=dict(outgoing.headers), timeout=15).ok
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    with WebhookReceiver(SECRET) as receiver, tempfile.TemporaryDirectory() as state_dir:
        stack_seconds = through_the_stack(receiver, args.events, Path(state_dir))  # type: ignore[arg-type]
        receiver.verified.clear()
        plain_seconds = plain_posts(receiver, args.events)  # type: ignore[arg-type]
    print(f"through the local stack: {args.events / stack_seconds:.1f} deliveries/s ({stack_seconds:.2f} s)")
    print(f"plain signed POSTs:      {args.events / plain_seconds:.1f} requests/s ({plain_seconds:.2f} s)")
    print(f"plain POSTs/deliveries: {stack_seconds / plain_seconds:.1f}")


if __name__ == "__main__":
    main()
