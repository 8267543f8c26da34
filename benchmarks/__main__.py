"""``uv run python -m benchmarks [NAME ...] [--quick] [--json FILE] [--markdown FILE]``

Runs the benchmarks (all of them by default; names: see ``--list``), one after the other, and
prints one table: each figure as ours, the peer's (or the baseline's) and the ratio, oriented so
that above 1 means ours is better. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import BENCHMARKS
from benchmarks._common import Row, Section, log, render_markdown, render_text


def machine() -> dict[str, Any]:
    load: tuple[float, ...] | None = None
    with contextlib.suppress(OSError):
        load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def run(names: list[str], quick: bool) -> list[Section]:
    sections: list[Section] = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        log(f"== {name} ==")
        t0 = time.perf_counter()
        try:
            section: Section = module.run(quick=quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            section = Section(name, getattr(module, "TITLE", name), "-")
            section.notes.append(f"failed: {type(exc).__name__}: {exc}")
        section.seconds = time.perf_counter() - t0
        log(f"== {name}: {section.seconds:.0f} s ==")
        sections.append(section)
    return sections


def load_sections(saved: dict[str, Any]) -> list[Section]:
    """The sections of a run saved with --json."""
    sections = []
    for b in saved["benchmarks"]:
        section = Section(b["name"], b["title"], b["peer"], notes=b["notes"], seconds=b["seconds"])
        for r in b["rows"]:
            section.rows.append(
                Row(
                    r["bench"],
                    r["figure"],
                    r["unit"],
                    r["ours"],
                    r["peer"],
                    r["higher_is_better"],
                    r["target"],
                    r["note"],
                    missing=r.get("missing") or "",
                    peer_missing=r.get("peer_missing") or "",
                )
            )
        sections.append(section)
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--quick", action="store_true", help="small counts, to check it all runs")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="print the table of a saved --json run"
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        sections = load_sections(saved)
        print(render_text(sections))
        if args.markdown:
            args.markdown.write_text(render_markdown(sections) + "\n")
        return 0
    if args.list:
        for name, module in BENCHMARKS.items():
            doc = (importlib.import_module(module).__doc__ or "").strip().split("\n\n")[0]
            print(f"{name:14} {' '.join(doc.split())}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    names = args.names or list(BENCHMARKS)

    info = machine()
    t0 = time.perf_counter()
    sections = run(names, args.quick)
    total = time.perf_counter() - t0

    print()
    print(
        f"Absolute figures are this machine's ({info['cpus']} CPUs, Python {info['python']}); "
        "ratio: above 1 means ours is better."
    )
    print(render_text(sections))
    print(
        f"total time: {total:.0f} s"
        + (" (--quick: counts too small to quote)" if args.quick else "")
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "quick": args.quick,
                    "seconds": total,
                    "benchmarks": [
                        {
                            "name": s.name,
                            "title": s.title,
                            "peer": s.peer,
                            "seconds": s.seconds,
                            "notes": s.notes,
                            "rows": [r.to_json() for r in s.rows],
                        }
                        for s in sections
                    ],
                },
                indent=2,
            )
        )
    if args.markdown:
        args.markdown.write_text(render_markdown(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
