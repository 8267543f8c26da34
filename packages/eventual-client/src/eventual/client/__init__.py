"""eventual.client: not implemented yet (see the package README)."""
