"""eventual.testing: not implemented yet (see the package README)."""
