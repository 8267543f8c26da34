"""``eventual init NAME --into DIR``: add an Eventual service package to an existing repository.

It writes a new folder (``services/NAME`` unless ``--path`` says otherwise) and edits existing
files only by adding (or, for a one-line TOML array, extending) the lines it reports:

- a Python CDK app (``cdk.json`` running Python): an import and an ``eventual.cdk.Service`` line
  in the stack's ``__init__``, and the dependencies in the CDK app's ``requirements.txt`` or
  ``pyproject.toml``;
- a TypeScript CDK app (``cdk.json`` running ts-node/node, or ``aws-cdk-lib`` in
  ``package.json``), an SST app (``sst.config.ts``) or any other repository: the service package
  with its own small Python CDK app (``infra/`` inside it) that deploys the Eventual stack
  beside the rest; the printed next steps say how the other stacks find it;
- a uv workspace (``[tool.uv.workspace]`` in the root ``pyproject.toml``): the new package as a
  member.

Where there is no safe place to edit, it edits nothing there and prints the lines to add. Every
edit is checked (the Python still parses, the TOML still loads) before anything is written.

The modules: ``repo`` (the kinds, detection and the plan), ``edits`` (the line and TOML edit
helpers), one per target kind (``python_cdk``, ``stack_app`` for TypeScript CDK, SST and the
rest, ``workspace``), and ``plan`` (:func:`plan_into`, which dispatches to them, and
:func:`apply`).
"""

from .edits import revert
from .plan import apply, plan_into
from .repo import (
    KIND_LABELS,
    OTHER,
    PYTHON_CDK,
    SST,
    TYPESCRIPT_CDK,
    FileEdit,
    IntoPlan,
    LineChange,
    ManualStep,
    detect,
)

__all__ = [
    "KIND_LABELS",
    "OTHER",
    "PYTHON_CDK",
    "SST",
    "TYPESCRIPT_CDK",
    "FileEdit",
    "IntoPlan",
    "LineChange",
    "ManualStep",
    "apply",
    "detect",
    "plan_into",
    "revert",
]
