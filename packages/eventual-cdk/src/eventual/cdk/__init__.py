"""eventual.cdk: not implemented yet (see the package README)."""
