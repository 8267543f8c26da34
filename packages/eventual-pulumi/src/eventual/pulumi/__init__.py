"""eventual.pulumi: the ``Service`` component that deploys an Eventual service to AWS."""
