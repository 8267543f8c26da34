"""The retention period every function reads (EVENTUAL_RETENTION_DAYS) and the payload prefix
a finished execution's objects are tagged under."""

from __future__ import annotations

import pytest

from eventual.aws_runtime import names as n


def test_the_retention_period_defaults_to_thirty_days() -> None:
    assert n.retention_days({}) == n.RETENTION_DAYS == 30
    assert n.retention_days({n.RETENTION_DAYS_ENV: " "}) == 30


def test_the_retention_period_is_read_from_the_environment() -> None:
    assert n.retention_days({n.RETENTION_DAYS_ENV: "7"}) == 7
    assert n.retention_days({n.RETENTION_DAYS_ENV: " 365 "}) == 365


@pytest.mark.parametrize("value", ["0", "-3", "7.5", "seven", "7d"])
def test_a_retention_period_that_is_not_a_positive_whole_number_is_refused(value: str) -> None:
    with pytest.raises(RuntimeError) as raised:
        n.retention_days({n.RETENTION_DAYS_ENV: value})
    message = str(raised.value)
    assert n.RETENTION_DAYS_ENV in message and repr(value) in message
    assert "whole number of days, 1 or more" in message


def test_an_executions_payloads_have_a_prefix_of_their_own() -> None:
    a = n.execution_payload_prefix("wf/a")
    assert a.startswith(n.PAYLOAD_EXECUTIONS_PREFIX) and a.endswith("/")
    assert a == n.execution_payload_prefix("wf/a")
    b = n.execution_payload_prefix("wf/b")
    assert a != b and not a.startswith(b) and not b.startswith(a)
