"""pyright checks calls against the service's own definitions (no code generation).

Runs the workspace's pyright on tests/typing/: correct_calls.py must have no error (its
``assert_type`` lines prove the inferred output types), and wrong_calls.py must have exactly
the errors its ``# E: rule | text`` comments announce.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

TYPING = Path(__file__).parent / "typing"
ROOT = Path(__file__).resolve().parents[3]
MARK = re.compile(r"#\s*E:\s*(?P<rule>report\w+)(?:\s*\|\s*(?P<text>.+?))?\s*$")


@cache
def pyright() -> dict[str, list[dict[str, Any]]]:
    """pyright's diagnostics for tests/typing, by file name (one run for both files)."""
    exe = shutil.which("pyright", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "pyright"]
    done = subprocess.run(
        [
            *command,
            "--outputjson",
            "--pythonpath",
            sys.executable,
            "--project",
            str(TYPING),
            str(TYPING / "correct_calls.py"),
            str(TYPING / "wrong_calls.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=TYPING,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    assert report["summary"]["filesAnalyzed"] == 2, report["summary"]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for d in report["generalDiagnostics"]:
        by_file.setdefault(Path(d["file"]).name, []).append(d)
    return by_file


def errors(name: str) -> list[dict[str, Any]]:
    return [d for d in pyright().get(name, []) if d["severity"] == "error"]


def test_correct_calls_type_check_cleanly():
    found = [
        f"{d['range']['start']['line'] + 1}: {d['message']}" for d in errors("correct_calls.py")
    ]
    assert found == []


def test_wrong_calls_report_each_expected_error():
    lines = (TYPING / "wrong_calls.py").read_text().splitlines()
    expected: dict[int, tuple[str, str | None]] = {}
    for number, line in enumerate(lines, start=1):
        m = MARK.search(line)
        if m:
            expected[number] = (m.group("rule"), m.group("text"))
    assert len(expected) >= 15

    reported: dict[int, list[dict[str, Any]]] = {}
    for d in errors("wrong_calls.py"):
        reported.setdefault(d["range"]["start"]["line"] + 1, []).append(d)

    missing = []
    for number, (rule, text) in expected.items():
        hits = [
            d
            for d in reported.get(number, [])
            if d.get("rule") == rule and (text is None or text in d["message"])
        ]
        if not hits:
            missing.append(f"line {number}: expected {rule} {text!r}; got {reported.get(number)}")
    assert missing == []
    unexpected = {n: [d["message"] for d in ds] for n, ds in reported.items() if n not in expected}
    assert unexpected == {}


def test_the_root_pyright_run_does_not_check_the_wrong_calls():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pyright"]
    included = [(ROOT / p).resolve() for p in config["include"]]
    wrong = (TYPING / "wrong_calls.py").resolve()
    assert not any(wrong.is_relative_to(p) for p in included), included
