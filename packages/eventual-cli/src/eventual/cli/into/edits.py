"""The edit helpers every target kind uses: line insertions and replacements that keep the rest
of a file byte for byte (Windows line ends too) and report each changed line, TOML arrays and
tables extended in place, several edits of one file within a plan, and relative paths."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from .repo import FileEdit, IntoPlan, LineChange


def read_exact(path: Path) -> str:
    """A file's text exactly as it is (its line ends kept, unlike ``read_text``)."""
    return path.read_bytes().decode("utf-8")


def split_lines(text: str) -> list[str]:
    return text.split("\n")


def join_lines(lines: list[str]) -> str:
    return "\n".join(lines)


class Edit:
    """Accumulates line insertions/replacements on one file's text, tracking final numbers."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.original = text
        self.lines = split_lines(text)
        self.changes: list[LineChange] = []
        self.cr = "\r\n" in text  # keep Windows line ends

    def insert(self, index: int, line: str) -> None:
        """Insert ``line`` before 0-based ``index`` of the current lines."""
        line = line.removesuffix("\r")
        self.lines.insert(index, line + "\r" if self.cr else line)
        for c in self.changes:
            if c.line - 1 >= index:
                c.line += 1
        self.changes.append(LineChange(line=index + 1, new=line))

    def replace(self, index: int, line: str) -> None:
        line = line.removesuffix("\r")
        old = self.lines[index]
        self.lines[index] = line + "\r" if self.cr else line
        for c in self.changes:
            if c.line - 1 == index:
                c.new = line
                return
        self.changes.append(LineChange(line=index + 1, new=line, old=old.removesuffix("\r")))

    def save(self) -> tuple[list[str], list[LineChange]]:
        return list(self.lines), [LineChange(c.line, c.new, c.old) for c in self.changes]

    def restore(self, saved: tuple[list[str], list[LineChange]]) -> None:
        self.lines, self.changes = saved

    @property
    def text(self) -> str:
        return join_lines(self.lines)

    def result(self) -> FileEdit | None:
        if not self.changes:
            return None
        return FileEdit(self.path, sorted(self.changes, key=lambda c: c.line), self.text)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _section_range(lines: list[str], section: str) -> tuple[int, int] | None:
    """(header index, end index exclusive) of ``[section]``."""
    start = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        if start is not None:
            return start, i
        if m.group(1).replace(" ", "") == section and not line.lstrip().startswith("[["):
            start = i
    return (start, len(lines)) if start is not None else None


def append_to_array(edit: Edit, section: str, key: str, item: str) -> bool:
    """Add the TOML string ``item`` to the array ``key`` of ``[section]``; False (and the text
    unchanged) when the array is not written in a way this can extend safely."""
    saved = edit.save()
    if _append_lines(edit, section, key, item):
        data: Any = load_toml(edit.text)
        for part in [*section.split("."), key]:
            data = data.get(part) if isinstance(data, dict) else None
        if isinstance(data, list) and item in data:
            return True
    edit.restore(saved)
    return False


def _append_lines(edit: Edit, section: str, key: str, item: str) -> bool:
    bounds = _section_range(edit.lines, section)
    if bounds is None:
        return False
    start, end = bounds
    key_re = re.compile(rf"^(\s*){re.escape(key)}\s*=\s*\[(.*)$")
    for i in range(start + 1, end):
        m = key_re.match(edit.lines[i])
        if not m:
            continue
        rest = m.group(2)
        quoted = json.dumps(item)
        if "]" in rest:  # one line: key = [a, b]  (# a comment)
            inside, after = rest.split("]", 1)
            if "#" in inside or "[" in inside or (after.strip() and after.strip()[0] != "#"):
                return False
            inside = inside.rstrip()
            if inside.strip() == "":
                new_inside = quoted
            else:
                new_inside = inside.rstrip(",").rstrip() + ", " + quoted
            line = edit.lines[i]
            prefix = line[: line.index("[") + 1]
            edit.replace(i, f"{prefix}{new_inside}]{after}")
            return True
        # several lines: find the closing bracket
        for j in range(i + 1, end):
            stripped = edit.lines[j].strip()
            if stripped.startswith("]"):
                items = [
                    k
                    for k in range(i + 1, j)
                    if edit.lines[k].strip() and not edit.lines[k].strip().startswith("#")
                ]
                indent = "    "
                if items:
                    last = items[-1]
                    last_line = edit.lines[last]
                    indent = last_line[: len(last_line) - len(last_line.lstrip())]
                    if not last_line.rstrip().endswith(","):
                        if "#" in last_line:
                            return False
                        edit.replace(last, last_line.rstrip() + ",")
                edit.insert(j, f"{indent}{quoted},")
                return True
            if "]" in stripped and not stripped.startswith("#"):
                return False
        return False
    return False


def add_toml_entries(edit: Edit, section: str, entries: list[tuple[str, str]]) -> None:
    """Add ``key = value`` lines to ``[section]`` (created at the end when absent), skipping keys
    it already has."""
    data = load_toml(edit.text) or {}
    table: Any = data
    for part in section.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    missing = [(k, v) for k, v in entries if not (isinstance(table, dict) and k in table)]
    if not missing:
        return
    bounds = _section_range(edit.lines, section)
    if bounds is not None:
        at = bounds[0] + 1
        for k, v in missing:
            edit.insert(at, f"{k} = {v}")
            at += 1
        return
    at = end_index(edit)
    if at > 0 and edit.lines[at - 1].strip():
        edit.insert(at, "")
        at += 1
    edit.insert(at, f"[{section}]")
    for k, v in missing:
        at += 1
        edit.insert(at, f"{k} = {v}")


def end_index(edit: Edit) -> int:
    """Where to append lines: before the file's final newline, if it has one."""
    n = len(edit.lines)
    return n - 1 if n > 1 and edit.lines[-1] == "" else n


def load_toml(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


# ---------------------------------------------------------------- edits of a plan


def pending_edit(plan: IntoPlan, rel: str) -> Edit:
    """The edit in progress for ``rel`` (several steps may edit one file)."""
    for i, e in enumerate(plan.edits):
        if e.path == rel:
            edit = Edit(rel, read_exact(plan.repo / rel))
            edit.lines = split_lines(e.text)
            edit.changes = list(e.changes)
            del plan.edits[i]
            return edit
    return Edit(rel, read_exact(plan.repo / rel))


def commit_edit(plan: IntoPlan, edit: Edit) -> None:
    result = edit.result()
    if result is not None:
        plan.edits.append(result)


def revert(text: str, changes: list[LineChange]) -> str:
    """The text before ``changes`` (what the file held before the edit)."""
    lines = split_lines(text)
    cr = "\r" if "\r\n" in text else ""
    for c in sorted(changes, key=lambda c: c.line, reverse=True):
        if c.old is None:
            del lines[c.line - 1]
        else:
            lines[c.line - 1] = c.old + cr
    return join_lines(lines)


# ---------------------------------------------------------------- paths


def relative(from_dir: Path, to: Path) -> str:
    return PurePosixPath(os.path.relpath(to, from_dir).replace(os.sep, "/")).as_posix()


def local_path(from_dir: Path, to: Path) -> str:
    """A pip-style local path: ``./services/billing`` or ``../services/billing``."""
    rel = relative(from_dir, to)
    return rel if rel.startswith("../") else f"./{rel}"


def dev_sources(dev_source: Path, names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (n, f'{{ path = "{(dev_source / "packages" / n).as_posix()}", editable = true }}')
        for n in names
    ]
