"""What both infrastructure packages (``eventual.cdk`` and ``eventual.pulumi``) share and neither
the Lambda handlers import: the per-function configuration model and its checks
(:mod:`.props`, :mod:`.config`), reading a service's spec in a subprocess (:mod:`.spec`), the
runtime's IAM statements by role (:mod:`.permissions`) and the Lambda bundler
(:mod:`.bundling`). Names, environment variables and queue attributes stay in
:mod:`eventual.aws_runtime.names`, which the handlers read too.

Nothing here imports aws-cdk-lib or pulumi: each package translates to its own resources.
"""
