"""eventual.aws_runtime: not implemented yet (see the package README)."""
