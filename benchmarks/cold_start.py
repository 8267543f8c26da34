"""5. Cold start of the AWS Lambda handlers: what a new container pays before it can handle its
first event, against ``python -c pass`` and against boto3 (which every Python Lambda talking to
AWS pays). Target: a handler costs at most 150 ms beyond boto3.

For each handler module (``eventual.aws_runtime.handlers.<kind>``) two figures, each the CPU
time (user + system) of a fresh ``python -c ...`` process, best of several interleaved runs (CPU
time, not wall time, so that other work on a shared machine does not distort the figures; on a
Lambda container, whose CPU is its own, the wall time of an import is about its CPU time):

- import: ``import eventual.aws_runtime.handlers.<kind>``, against ``import boto3``;
- first invocation (``command``): that, the boto3 clients, and a real first request,
  ``POST /rpc/add`` of the one-command service (``benchmarks/_http_service.py``), which calls no
  AWS API, so everything it builds on the way is measured;
- first-invocation init (the other kinds, whose events call AWS): that, the boto3 clients it
  uses (no network call), and what the first event builds before its first AWS call: the
  service, eventual-core, the Runtime on the AWS adapters (``handlers._common.runtime(kind)``);

each against ``import boto3`` plus the same clients, which is what a hand-written boto3 Lambda
pays. This pair carries the 150 ms budget.

Every process runs with bytecode (a private ``PYTHONPYCACHEPREFIX``, written by one unmeasured
run of each case first), as a deployed function does: the Lambda runtime's boto3 comes with its
bytecode, and the eventual.cdk bundle ships bytecode compiled for the function's Python
(``unchecked-hash`` pycs; see the eventual-cdk README). Only a bundle synthesized where no
interpreter of that Python version was found ships sources alone (the bundler warns); a
Lambda's code directory is read-only, so that function would also compile pydantic, eventual
and the service on every cold start: a cost this figure leaves out (see docs/benchmarks.md for
its size).

CPU times on a shared machine move from run to run by tens of ms, and by hundreds when other
work keeps its cores busy. With ``--instructions`` (or
``EVENTUAL_BENCH_INSTRUCTIONS=1`` in the suite), each first-invocation case and its peer also
run once under ``valgrind --tool=cachegrind``, and a note gives the instructions each executes,
as a multiple of the peer's: the figure that does not move with the machine's load.

``benchmarks/aws_cold_start.py`` (the AWS runtime's own, ``python -X importtime``) stays a
standalone script: it breaks the import down by module.

    uv run python -m benchmarks cold_start
    uv run python -m benchmarks.cold_start --instructions
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import ROOT, Row, Section, find_module, log, render_text

NAME = "cold_start"
TITLE = "AWS Lambda handler cold start (import, import + first-invocation init)"
BUDGET_MS = 150.0

INIT = """
import eventual.aws_runtime.handlers.{kind}
from eventual.aws_runtime import clients
for name in {clients!r}:
    clients.client(name)
"""
# What the first event of the other kinds builds before it calls AWS: the service, the Runtime
# on the AWS adapters and all of eventual-core it imports (the engine, the history models).
RUNTIME = """
from eventual.aws_runtime.handlers import _common
_common.runtime({kind!r})
"""
# The kinds whose first invocation the benchmark runs in full, since it calls no AWS API: the
# command handler serving the one-command service's ``POST /rpc/add``. Its figure includes
# everything a real first request pays (the service, the HTTP layer, input validation,
# whatever is built on first use). ``add`` does not use the runtime, so the command handler
# never builds it; a command that does pays about the ``system`` row's extra at its first use.
FIRST_EVENT = {
    "command": """
from eventual.aws_runtime.handlers.command import handler
response = handler({event!r})
assert response["statusCode"] == 200 and response["body"] == '{{"sum":42}}', response
""".format(
        event={
            "version": "2.0",
            "rawPath": "/rpc/add",
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "http": {"method": "POST", "path": "/rpc/add"},
                "stage": "$default",
                "domainName": "example.execute-api.us-east-1.amazonaws.com",
            },
            "body": '{"a": 20, "b": 22}',
            "isBase64Encoded": False,
        }
    )
}
BOTO3 = """
import boto3
for name in {clients!r}:
    boto3.client(name)
"""
# The floor under our figures: pydantic, which the benchmark's service imports for its own
# models and eventual-core validates with, and asyncio, which runs every handler.
PYDANTIC = """
import asyncio
from pydantic import BaseModel
class AddInput(BaseModel):
    a: int
    b: int
AddInput.model_validate_json('{"a": 20, "b": 22}')
asyncio.run(asyncio.sleep(0))
"""
# The AWS services each kind of handler calls on an ordinary invocation.
CLIENTS = {
    "orchestrator": ("dynamodb", "sqs", "lambda"),
    "task": ("dynamodb", "sqs"),
    "command": ("dynamodb", "sqs"),
    "system": ("dynamodb", "sqs"),
    "subscription": ("dynamodb", "sqs"),
    "timer": ("dynamodb", "sqs"),
}
DEFAULT_CLIENTS = ("dynamodb", "sqs")


def handler_kinds() -> list[str]:
    spec = None
    try:
        import importlib.util

        spec = importlib.util.find_spec("eventual.aws_runtime.handlers")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


PYCACHE = Path(tempfile.gettempdir()) / "eventual-bench-pycache"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Bytecode, as for a Lambda runtime's own boto3 (see the module's docstring). Without this,
    # an inherited PYTHONDONTWRITEBYTECODE would make every measured process compile every
    # module it imports, boto3 included. The cache lives outside the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "EVENTUAL_SERVICE_NAME": "bench-http",
            "EVENTUAL_SERVICE_ENTRY": "benchmarks._http_service",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            # Dummy credentials: clients are built, never called.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_code(code: str, env: dict[str, str]) -> float:
    """CPU seconds (user + system) of a fresh ``python -c code`` process."""
    t0 = _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    elapsed = _children_cpu() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed:\n{proc.stderr[-1500:]}")
    return elapsed


def measure(cases: dict[str, str], rounds: int) -> dict[str, float]:
    """Best CPU time (ms) of each case, the cases interleaved round by round."""
    env = _env()
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, code in cases.items():
            ms = time_code(code, env) * 1000
            best[name] = min(best.get(name, ms), ms)
    return best


def count_instructions(code: str, env: dict[str, str]) -> int | None:
    """Instructions a fresh ``python -c code`` process executes (cachegrind), or ``None``
    without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    proc = subprocess.run(
        [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            code,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind python -c {code!r} failed:\n{proc.stderr[-1500:]}")
    return int(found.group(1).replace(",", ""))


def instruction_notes(cases: dict[str, str], kinds: list[str]) -> list[str]:
    """One note per handler: its first-invocation instructions against its peer's."""
    env = _env()
    counts: dict[str, int] = {}

    def count(name: str) -> int | None:
        if name not in counts:
            found = count_instructions(cases[name], env)
            if found is None:
                return None
            counts[name] = found
        return counts[name]

    floor_base = f"boto3 {DEFAULT_CLIENTS}"
    floor, floor_peer = count("pydantic"), count(floor_base)
    if floor is None or floor_peer is None:
        return ["instructions: not counted (valgrind is not installed)"]
    notes = []
    for kind in kinds:
        if f"init {kind}" not in cases:
            continue
        names = CLIENTS.get(kind, DEFAULT_CLIENTS)
        ours, peer = count(f"init {kind}"), count(f"boto3 {names}")
        assert ours is not None and peer is not None
        notes.append(
            f"{kind}: instructions (cachegrind) {ours / peer:.3f}x those of boto3 + "
            f"{'/'.join(names)} clients ({(ours - peer) / 1e6:+.0f}M)"
        )
    notes.append(
        f"instructions of the pydantic + asyncio floor: {floor / floor_peer:.3f}x those of "
        f"boto3 + {'/'.join(DEFAULT_CLIENTS)} clients ({(floor - floor_peer) / 1e6:+.0f}M)"
    )
    return notes


def run(quick: bool = False, instructions: bool | None = None) -> Section:
    if instructions is None:
        instructions = os.environ.get("EVENTUAL_BENCH_INSTRUCTIONS", "") not in ("", "0")
    rounds = 2 if quick else 5
    section = Section(NAME, TITLE, "python -c pass / boto3")
    kinds = handler_kinds() if find_module("eventual.aws_runtime.handlers") else []
    cases: dict[str, str] = {"pass": "pass", "boto3": "import boto3"}
    for names in {CLIENTS.get(k, DEFAULT_CLIENTS) for k in kinds}:
        cases[f"boto3 {names}"] = BOTO3.format(clients=names)
    if kinds:
        cases["pydantic"] = BOTO3.format(clients=DEFAULT_CLIENTS) + PYDANTIC
    init_ok: dict[str, bool] = {}
    for kind in kinds:
        cases[f"import {kind}"] = f"import eventual.aws_runtime.handlers.{kind}"
        init = INIT.format(kind=kind, clients=CLIENTS.get(kind, DEFAULT_CLIENTS))
        init += FIRST_EVENT.get(kind) or RUNTIME.format(kind=kind)
        try:
            time_code(init, _env())  # also writes the bytecode cache
            cases[f"init {kind}"] = init
            init_ok[kind] = True
        except RuntimeError as exc:
            init_ok[kind] = False
            section.notes.append(
                f"{kind}: first-invocation init failed: {str(exc).splitlines()[-1]}"
            )
    for name, code in cases.items():
        if not name.startswith("init "):
            time_code(code, _env())  # writes the bytecode of what it imports
    log(f"[{NAME}] {len(cases)} cases x {rounds} rounds")
    ms = measure(cases, rounds)
    import boto3

    section.peer = f"python -c pass / boto3 {boto3.__version__}"
    section.rows.append(
        Row(NAME, "python -c pass (reference)", "ms", None, ms["pass"], False, missing="-")
    )
    if not kinds:
        section.rows.append(
            Row(NAME, "handler import, vs import boto3", "ms", None, ms["boto3"], False)
        )
        return section
    for kind in kinds:
        imp = ms[f"import {kind}"]
        section.rows.append(
            Row(
                NAME,
                f"{kind}: import, vs import boto3",
                "ms",
                imp,
                ms["boto3"],
                False,
                note=f"{imp - ms['pass']:+.0f} ms beyond python -c pass",
            )
        )
    for kind in kinds:
        if not init_ok.get(kind):
            continue
        names = CLIENTS.get(kind, DEFAULT_CLIENTS)
        full = ms[f"init {kind}"]
        base = ms[f"boto3 {names}"]
        extra = full - base
        ok = "yes" if extra <= BUDGET_MS else "NO"
        section.rows.append(
            Row(
                NAME,
                f"{kind}: {'first invocation' if kind in FIRST_EVENT else 'first-invocation init'}"
                f", vs boto3 + {'/'.join(names)} clients",
                "ms",
                full,
                base,
                False,
                note=f"{extra:+.0f} ms beyond boto3 (budget {BUDGET_MS:.0f} ms: {ok})",
            )
        )
    if kinds:
        floor = ms["pydantic"] - ms[f"boto3 {DEFAULT_CLIENTS}"]
        section.notes.append(
            f"of the extra beyond boto3, {floor:.0f} ms is the floor of any Lambda whose code "
            "uses pydantic and asyncio, measured the same way: boto3 + dynamodb/sqs clients, "
            "importing pydantic and asyncio, one model validating one input, one event loop run"
        )
    section.notes.append(
        f"each figure: CPU time of a fresh `python -c` process, best of {rounds} interleaved "
        "runs; the ms figures and the budget are this machine's"
    )
    if instructions and kinds:
        log(f"[{NAME}] counting instructions (valgrind)")
        section.notes.extend(instruction_notes(cases, kinds))
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, to check it runs")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each first invocation's instructions with valgrind (a few minutes)",
    )
    args = parser.parse_args(argv)
    print(render_text([run(quick=args.quick, instructions=args.instructions or None)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
