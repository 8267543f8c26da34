"""The conformance suite's fixtures (defined in conformance_support, which the tests import by
that name: a module called ``conftest`` is not unique in this repository)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conformance_support import (
    anyio_backend,
    aws_harness,
    conformant_runtime,
    service,
)

__all__ = ["anyio_backend", "aws_harness", "conformant_runtime", "service"]
