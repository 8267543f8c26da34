"""eventual.cli: the ``eventual`` command (see the package README); ``main`` builds it."""
