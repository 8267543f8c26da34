"""Load (issue 21, item 4): 1,000 workflow starts sent at once plus 10,000 emitted events fanned
out to two subscriptions on ``eventual dev``; the same scenario at 200 concurrent starts on the
AWS runtime in moto (the harness).

Correctness first: every execution succeeded with its exact result, each subscription received
each event exactly once (the events sent plus the one each execution emits), 0 HTTP errors,
nothing alarming in the server's log; a failed check is printed as a note of the section. The
figures: start latency p50/p99 under load, against a baseline measured on the same server in
the same run before the load (``listWorkflows`` and one ``startExecution`` at a time, unloaded),
so the ratio (baseline / loaded, below 1: slower under load) is the figure to quote; the
throughputs are this machine's. Each target runs in its own process.

The scenario and its service: packages/eventual-cli/tests/fixtures/load_service/ (CI runs it
at 100 starts + 1,000 events on dev and 50 + 200 on moto: test_load_dev.py, test_load_aws.py).

    uv run python -m benchmarks load          # or: uv run python -m benchmarks.load [--quick]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks._common import ROOT, Row, Section, WorkerError, log, render_text, run_worker

NAME = "load"
TITLE = "concurrent starts + emitted events fanned out to 2 subscriptions, every result checked"
FIXTURES = ROOT / "packages" / "eventual-cli" / "tests" / "fixtures"

FULL = {"dev": (1_000, 10_000), "aws": (200, 2_000)}
QUICK = {"dev": (100, 1_000), "aws": (20, 100)}


# ---------------------------------------------------------------- workers (child processes)


def _scenario() -> Any:
    if str(FIXTURES) not in sys.path:
        sys.path.insert(0, str(FIXTURES))
    from load_service import scenario  # pyright: ignore[reportMissingImports]

    return scenario


def dev(starts: int, events: int) -> dict[str, Any]:
    """The scenario on ``eventual dev`` (a subprocess of this worker)."""
    report = _scenario().run_dev(starts, events, timeout=600)
    return {
        "figures": report.figures(),
        "problems": report.problems() + report.notes,
        "summary": report.summary(),
    }


def aws(starts: int, events: int) -> dict[str, Any]:
    """The scenario on the AWS runtime in moto (the harness, in this worker)."""
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # moto and botocore are chatty
    report = _scenario().run_aws(starts, events)
    return {
        "figures": report.figures(),
        "problems": report.problems() + report.notes,
        "summary": report.summary(),
    }


# ---------------------------------------------------------------- the section


def _rows(label: str, f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            NAME,
            f"{label}: start p99 vs unloaded listWorkflows p50",
            "ms",
            f["start_p99_ms"],
            f["baseline_p50_ms"],
            False,
            note=f"p99 = {f['start_p99_over_baseline']:.0f}x the baseline",
        ),
        Row(
            NAME,
            f"{label}: start p99 vs unloaded startExecution p50",
            "ms",
            f["start_p99_ms"],
            f["idle_start_p50_ms"],
            False,
            note=f"p99 = {f['start_p99_over_idle_start']:.1f}x the baseline",
        ),
        Row(
            NAME,
            f"{label}: start p50 vs unloaded startExecution p50",
            "ms",
            f["start_p50_ms"],
            f["idle_start_p50_ms"],
            False,
        ),
        Row(NAME, f"{label}: start max", "ms", f["start_max_ms"], None, False, peer_missing="-"),
        Row(
            NAME,
            f"{label}: executions finished/s",
            "exec/s",
            f["executions_per_s"],
            None,
            peer_missing="-",
            note=f"all finished {f['finished_s']:.1f} s after the first start",
        ),
        Row(
            NAME,
            f"{label}: subscription deliveries/s",
            "deliv/s",
            f["deliveries_per_s"],
            None,
            peer_missing="-",
        ),
    ]


def run(quick: bool = False) -> Section:
    counts = QUICK if quick else FULL
    section = Section(NAME, TITLE, "the same server unloaded, measured in the same run")
    for target, label in (("dev", "eventual dev"), ("aws", "moto harness")):
        starts, events = counts[target]
        log(f"[{NAME}] {label}: {starts} concurrent starts + {events:,} events")
        try:
            result = run_worker(
                f"benchmarks.load:{target}", starts=starts, events=events, timeout=1800
            )
        except WorkerError as exc:
            section.notes.append(f"{label} failed: {str(exc).splitlines()[0]}")
            log(str(exc))
            continue
        log(f"[{NAME}]   {result['summary']}")
        f = result["figures"]
        section.rows += _rows(f"{label} {starts}+{events:,}", f)
        problems = result["problems"]
        if problems:
            section.notes.append(f"{label}: CHECKS FAILED: {'; '.join(problems)}")
        else:
            executions = f["starts"]
            section.notes.append(
                f"{label}: {starts} starts sent at once + {events:,} events in batches: every "
                f"execution SUCCEEDED with its result ({executions} + the unloaded ones), each "
                "of 2 subscriptions got each event exactly once (0 missed, 0 duplicates), "
                "0 HTTP errors"
            )
    section.notes.append(
        "the moto harness plays Lambda in one process, one invocation at a time: its starts "
        "are all in flight on the queue at once, but the calls themselves are sequential"
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, to check it runs")
    args = parser.parse_args(argv)
    print(render_text([run(quick=args.quick)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
