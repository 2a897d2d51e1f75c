"""What a debit adds to `POST /runs` on the local stack: the same render request sent by a metered owner (priced,
then accepted in the transaction that debits it) and by an unmetered one (accepted with a plain conditional
put), interleaved, one request at a time, over HTTP.

    python bench/debit_latency.py [--requests 30]

The stack is started for the run (about 30 s, not counted). Last line: the median latency with a debit over
the median without, the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/common/python"), str(ROOT / "infra"), str(ROOT / "tests")]

import requests  # noqa: E402

from support.devstack import running_devstack  # noqa: E402

RUN = {"workflow": "txt2img", "params": {"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 1}}
NO_LIMITS = {"requests_per_minute": 0, "concurrent_runs": 0}


def owner(api_url: str, admin: dict[str, str], name: str, metered: bool) -> dict[str, str]:
    """A key of a new owner without limits, metered or not (a metered one gets credits for every request)."""
    made = requests.post(f"{api_url}/admin/keys", json={"owner": name, "scopes": ["runs"]}, headers=admin, timeout=30)
    made.raise_for_status()
    account = {"metered": metered, "limits": NO_LIMITS}
    requests.put(f"{api_url}/admin/owners/{name}", json=account, headers=admin, timeout=30).raise_for_status()
    if metered:
        grant = {"amount": 1000, "note": "bench"}  # at most LargeGrantCredits: applied at once
        requests.post(f"{api_url}/admin/credits/{name}", json=grant, headers=admin, timeout=30).raise_for_status()
    return {"Authorization": f"Bearer {made.json()['key']}"}


def timed(api_url: str, key: dict[str, str]) -> float:
    start = time.perf_counter()
    answer = requests.post(f"{api_url}/runs", json=RUN, headers=key, timeout=60)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 202, answer.text
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state_dir, running_devstack(Path(state_dir)) as stack:
        paying = owner(stack.api_url, stack.auth, "bench-paying", metered=True)
        free = owner(stack.api_url, stack.auth, "bench-free", metered=False)
        for key in (paying, free):  # warm both paths (imports, connections)
            timed(stack.api_url, key)
        with_debit, without = [], []
        for _ in range(args.requests):  # interleaved, so machine noise hits both alike
            with_debit.append(timed(stack.api_url, paying))
            without.append(timed(stack.api_url, free))
    debit_ms, plain_ms = statistics.median(with_debit) * 1000, statistics.median(without) * 1000
    print(f"POST /runs without credits: {plain_ms:.0f} ms (median of {args.requests})")
    print(f"POST /runs with a debit:    {debit_ms:.0f} ms (median of {args.requests})")
    print(f"debit/plain latency: {debit_ms / plain_ms:.2f}")


if __name__ == "__main__":
    main()
