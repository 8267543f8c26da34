"""The README's examples are files; write them into a sandbox and run them with pytest.

The sandbox runs in a fresh interpreter that finds the plugin through its entry point."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```(?:python|toml)\n# file: (\S+)\n(.*?)```", re.DOTALL)


def readme_files() -> dict[str, str]:
    return {name: body for name, body in BLOCK.findall(README.read_text())}


def test_the_readme_examples_pass(run_pytest: Callable[..., Any]) -> None:
    files = readme_files()
    assert "coffee_shop.py" in files and "pyproject.toml" in files
    expected = sum(body.count("\nasync def test_") for body in files.values())
    assert expected >= 8
    result = run_pytest(files)
    assert result.outcomes() == {"passed": expected}, result.output
