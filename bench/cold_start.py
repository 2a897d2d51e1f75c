"""Cold import of every handler in template.yaml against `import boto3`, each in a fresh interpreter,
all in the same run. Budget (DESIGN §7): the worst handler at most 1.7 times boto3. The HttpApi's authoriser
(AuthorizerFunction) runs before every route whose answer is not cached, so its line is printed on its own.

    python bench/cold_start.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.aws import UNIT_ENV  # noqa: E402

BUDGET = 1.7  # x import boto3
AUTHORISER = "AuthorizerFunction"
MEASURE = """
import importlib.util, sys, time
start = time.perf_counter()
{body}
print(time.perf_counter() - start)
"""
LOAD_HANDLER = """
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(getattr(module, {attribute!r}))
"""


def timed(body: str, env: dict[str, str]) -> float:
    code = MEASURE.format(body=body)
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(output.stdout.strip().splitlines()[-1])


def handlers() -> dict[str, str]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            props = resource["Properties"]
            module, attribute = props["Handler"].rsplit(".", 1)
            found[logical_id] = LOAD_HANDLER.format(
                path=str(ROOT / props["CodeUri"] / f"{module}.py"), attribute=attribute
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "layers/common/python"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # a function stops at cold start without its required settings: give it the unit tests' ones
        **{name: value for name, value in UNIT_ENV.items() if name.startswith("RENDERGATE_")},
    }
    timings: dict[str, list[float]] = {"boto3": []}
    bodies = {"boto3": "import boto3", **handlers()}
    for _ in range(args.repeat):  # interleaved, so machine noise hits every candidate alike
        for name, body in bodies.items():
            timings.setdefault(name, []).append(timed(body, env))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    baseline = medians.pop("boto3")
    print(f"import boto3: {baseline * 1000:.0f} ms (median of {args.repeat})")
    for name, value in sorted(medians.items(), key=lambda item: item[1]):
        print(f"{name:>18}: {value * 1000:6.0f} ms  {value / baseline:.2f}x")
    authoriser = medians[AUTHORISER] / baseline
    verdict = "within" if authoriser <= BUDGET else "OVER"
    print(f"authoriser cold import/boto3: {authoriser:.2f} ({verdict} the budget of {BUDGET})")
    worst = max(medians, key=lambda name: medians[name])
    print(f"cold import worst/boto3: {medians[worst] / baseline:.2f} ({worst})")


if __name__ == "__main__":
    main()
