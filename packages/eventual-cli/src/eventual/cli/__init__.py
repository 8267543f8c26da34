"""eventual.cli: not implemented yet (see the package README)."""
