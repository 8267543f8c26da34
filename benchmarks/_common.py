"""What every benchmark shares: the result row, the table, and running one side in a fresh
process.

Each side of a comparison (ours, the peer's) runs in its own Python process, one after the
other, never at the same time: neither inherits the other's threads, caches or imports, and the
imports themselves are not timed. A worker is a module-level function ``f(**params) -> dict``;
``run_worker("benchmarks.throughput:ours", n=200)`` runs it in a child process and returns its
dict (decoded from the last line of the child's stdout).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "BENCHMARK-RESULT "
NOT_YET = "not available yet"


@dataclass
class Row:
    """One figure: ours, the peer's (or the baseline's), and how many times better we are.

    ``ratio`` is oriented so that above 1 means ours is better: ours/peer for a rate,
    peer/ours for a time. ``target`` is the ratio the issue asks for (``None``: no target).
    ``ours``/``peer`` are ``None`` when that side could not run; ``missing`` says why.
    """

    bench: str
    figure: str
    unit: str
    ours: float | None
    peer: float | None
    higher_is_better: bool = True
    target: float | None = None
    note: str = ""
    missing: str = NOT_YET
    peer_missing: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.peer is None or self.ours <= 0 or self.peer <= 0:
            return None
        return self.ours / self.peer if self.higher_is_better else self.peer / self.ours

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        ratio = self.ratio
        if ratio is None:
            return "?"
        return "yes" if ratio >= self.target else "NO"

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "figure": self.figure,
            "unit": self.unit,
            "ours": self.ours,
            "peer": self.peer,
            "ratio": self.ratio,
            "higher_is_better": self.higher_is_better,
            "target": self.target,
            "meets_target": None if self.target is None else self.verdict == "yes",
            "note": self.note,
            "missing": None if self.ours is not None else self.missing,
            "peer_missing": None if self.peer is not None else self.peer_missing,
        }


@dataclass
class Section:
    """One benchmark's rows and the line that says what it compares."""

    name: str
    title: str
    peer: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------- formatting


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(row: Row) -> str:
    ratio = row.ratio
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def fmt_target(row: Row) -> str:
    return "" if row.target is None else f">= {row.target:g}x"


def _cells(section: Section, row: Row) -> list[str]:
    ours = fmt(row.ours) if row.ours is not None else row.missing
    peer = fmt(row.peer) if row.peer is not None else (row.peer_missing or "not measured")
    verdict = row.verdict
    target = fmt_target(row) + (f" ({verdict})" if verdict else "")
    return [f"{row.figure} [{row.unit}]", ours, peer, fmt_ratio(row), target, row.note]


HEADERS = ["figure [unit]", "ours", "peer", "ratio", "target (met?)", "note"]


def render_text(sections: Iterable[Section]) -> str:
    sections = list(sections)
    table: list[list[str]] = []
    for s in sections:
        for r in s.rows:
            table.append(_cells(s, r))
    widths = [len(h) for h in HEADERS]
    for cells in table:
        for i, c in enumerate(cells[:-1]):
            widths[i] = max(widths[i], len(c))
    lines: list[str] = []

    def line(cells: list[str]) -> str:
        parts = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)]
        parts[-1] = cells[-1]
        return "  ".join(parts[:-1]) + ("  " + parts[-1] if parts[-1] else "")

    lines.append(line(HEADERS))
    lines.append("  ".join("-" * w for w in widths[:-1]) + "  " + "-" * len(HEADERS[-1]))
    for s in sections:
        lines.append(f"{s.name}: {s.title} -- peer: {s.peer}")
        for r in s.rows:
            lines.append(line(_cells(s, r)))
        for n in s.notes:
            lines.append(f"    {n}")
    return "\n".join(lines)


def render_markdown(sections: Iterable[Section]) -> str:
    lines = [
        "| benchmark | figure | ours | peer | ratio | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for s in sections:
        for i, r in enumerate(s.rows):
            cells = _cells(s, r)
            name = f"**{s.name}** (vs {s.peer})" if i == 0 else ""
            figure = cells[0] + (f" ({r.note})" if r.note else "")
            lines.append(
                f"| {name} | {figure} | {cells[1]} | {cells[2]} | {cells[3]} | {cells[4]} |"
            )
    notes = [f"- **{s.name}**: {n}" for s in sections for n in s.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


# ---------------------------------------------------------------- availability


def importable(module: str) -> bool:
    """Whether ``module`` imports (in a child process, so that a half-written module of
    another package cannot break this one)."""
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return proc.returncode == 0


def has_attr(module: str, attr: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; assert hasattr(m, {attr!r})"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return proc.returncode == 0


def find_module(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------- workers


class WorkerError(RuntimeError):
    pass


def run_worker(target: str, *, timeout: float = 600.0, **params: Any) -> dict[str, Any]:
    """Run ``module:function(**params)`` in a fresh Python process and return its dict."""
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._worker", target, json.dumps(params)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise WorkerError(f"{target} failed (exit {proc.returncode}):\n{tail}")


def call_worker(target: str, params: dict[str, Any]) -> dict[str, Any]:
    module_name, _, func_name = target.partition(":")
    func: Callable[..., dict[str, Any]] = getattr(importlib.import_module(module_name), func_name)
    return func(**params)


# ---------------------------------------------------------------- statistics


def best_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One worker's results over several rounds, as one result: each timing (a float: seconds,
    lower is better) its least of the rounds that ran; every other key from the first of them.
    Rounds that report ``missing`` count only when every round does (then the first one)."""
    ran = [r for r in rounds if not r.get("missing")]
    if not ran:
        return dict(rounds[0])
    merged = dict(ran[0])
    for key, value in ran[0].items():
        values = [r.get(key) for r in ran]
        if isinstance(value, float) and all(isinstance(v, float) for v in values):
            merged[key] = min(v for v in values if isinstance(v, float))
    return merged


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest-rank."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def log(message: str) -> None:
    """Progress on stderr, so that stdout carries the table only."""
    print(message, file=sys.stderr, flush=True)
