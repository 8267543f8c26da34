"""Where a new project's eventual packages come from.

They are not on a package index yet, so a scaffolded project points its eventual dependencies
at a checkout of Eventual for Python: the one given with ``--dev-source``, or else the one this
CLI runs from (``uv run eventual init`` in a clone). Outside a clone, and without the option,
``eventual init`` stops before writing anything and says so.
"""

from __future__ import annotations

from pathlib import Path

from .scaffold import ScaffoldError

NO_CHECKOUT = (
    "eventual init needs the Eventual for Python packages, which are not on a package index "
    "yet: run it from a clone of the repository (`uv run eventual init ...` there), or pass "
    "--dev-source PATH with the path of a clone. Nothing was written."
)


def is_checkout(path: Path) -> bool:
    """Whether ``path`` is the root of an Eventual for Python checkout."""
    return (path / "packages" / "eventual-core" / "pyproject.toml").is_file() and (
        path / "packages" / "eventual-cli" / "pyproject.toml"
    ).is_file()


def running_checkout() -> Path | None:
    """The checkout this CLI is installed from (an editable install in a clone), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if is_checkout(parent):
            return parent
    return None


def package_source(dev_source: Path | None) -> Path:
    """The checkout to take the eventual packages from; a clear error when there is none."""
    if dev_source is not None:
        dev_source = dev_source.resolve()
        if not is_checkout(dev_source):
            raise ScaffoldError(
                f"--dev-source {dev_source} is not an Eventual for Python checkout (no "
                "packages/eventual-core/pyproject.toml there): give the root of a clone"
            )
        return dev_source
    checkout = running_checkout()
    if checkout is None:
        raise ScaffoldError(NO_CHECKOUT)
    return checkout
