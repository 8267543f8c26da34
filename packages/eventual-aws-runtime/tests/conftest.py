from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventual.aws_runtime.testing import AwsHarness

sys.path.insert(0, str(Path(__file__).parent / "services"))
sys.path.insert(0, str(Path(__file__).parent))  # _recorded

ENTRY = "aws_e2e_service"


@pytest.fixture
def aws() -> Iterator[AwsHarness]:
    """The e2e service deployed into moto, with Lambda's deliveries played by the harness."""
    import aws_e2e_service

    for values in aws_e2e_service.seen.values():
        values.clear()
    with AwsHarness(ENTRY) as harness:
        yield harness


@pytest.fixture
def service_state() -> dict:
    import aws_e2e_service

    return aws_e2e_service.seen
