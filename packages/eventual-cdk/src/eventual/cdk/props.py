"""Per-function settings: ``CommandProps``, ``TaskProps``, ``SubscriptionProps`` and
``FunctionProps``, shared with eventual-pulumi (:mod:`eventual.aws_runtime.infra.props`), and
their durations as CDK ``Duration``s."""

from __future__ import annotations

import aws_cdk as cdk

from eventual.aws_runtime.infra.props import (
    CommandProps,
    FunctionProps,
    SubscriptionProps,
    TaskProps,
    seconds_of,
)
from eventual.aws_runtime.infra.props import DurationLike as _SharedDurationLike

DurationLike = cdk.Duration | _SharedDurationLike
"""A ``Duration``, a ``timedelta``, or seconds."""


def to_duration(value: DurationLike) -> cdk.Duration:
    if isinstance(value, cdk.Duration):
        return value
    seconds = seconds_of(value)
    if seconds != int(seconds):
        return cdk.Duration.millis(int(seconds * 1000))
    return cdk.Duration.seconds(int(seconds))


__all__ = [
    "CommandProps",
    "DurationLike",
    "FunctionProps",
    "SubscriptionProps",
    "TaskProps",
    "to_duration",
]
