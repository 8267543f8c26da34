"""Reading a service's spec in a subprocess (shared with eventual-pulumi:
:mod:`eventual.aws_runtime.infra.spec`)."""

from eventual.aws_runtime.infra.spec import ServiceSpecError, load_spec

__all__ = ["ServiceSpecError", "load_spec"]
